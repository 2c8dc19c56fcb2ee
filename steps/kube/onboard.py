"""Onboarding a catalog cluster: the pipelines' identities there, and the kubeconfigs that reach it.

Modeled on ``argocd cluster add`` (argo-cd ``util/clusterauth/clusterauth.go``): run once by an admin
with admin credentials for the cluster and for the workflows cluster, it

1. applies, in the cluster, the service accounts and RBAC of every pipeline that acts there, exactly
   as rendered from the catalog: the bootstrap's (``gitops/bootstrap_rbac.py``), the rotation's and
   the delivery's (the ESO tree's, ``render.pipeline_rbac``) and the observer's
   (``monitoring_exporter.observer_rbac``). Namespaces are only created when missing, never changed
   (others own them); a Role in a namespace that does not exist yet is skipped and said so, except the
   bootstrap's, which nothing else delivers;
2. gets each account a long-lived token the way Argo CD does: a ``kubernetes.io/service-account-token``
   Secret ``<account>-long-lived-token`` beside the account, which the token controller fills with
   ``token``, ``ca.crt`` and ``namespace`` (polled until it has);
3. writes, in the workflows cluster, one kubeconfig Secret per account (key ``config``): a context per
   onboarded cluster, named as the catalog's ``kubeContext``, with its server, CA data and token. The
   pipelines' templates mount it and point ``KUBECONFIG`` at it; their own cluster stays in-cluster.

Onboarding the workflows cluster itself only does step 1 (its pods use their projected tokens). Every
step converges: a re-run changes nothing and says so. No token is ever printed or logged.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml

from vaultflow.base.errors import InputError, OperationError
from vaultflow.base.retry import poll_until
from vaultflow.gitops.bootstrap_rbac import bootstrap_rbac
from vaultflow.gitops.catalog import LoadedCatalog
from vaultflow.gitops.catalog.model import Catalog, Cluster, ServiceAccountRef
from vaultflow.gitops.monitoring_exporter import KUBECONFIG_SECRET as OBSERVER_KUBECONFIG_SECRET
from vaultflow.gitops.monitoring_exporter import observer_rbac
from vaultflow.gitops.rbac_objects import account_namespaces
from vaultflow.gitops.render import pipeline_rbac, rbac_meta
from vaultflow.gitops.resources.rbac import Namespace
from vaultflow.steps.kube.errors import kube_errors

TOKEN_SECRET_SUFFIX = "-long-lived-token"  # Argo CD's SATokenSecretSuffix
SERVICE_ACCOUNT_TOKEN = "kubernetes.io/service-account-token"
SERVICE_ACCOUNT_NAME = "kubernetes.io/service-account.name"
SERVICE_ACCOUNT_UID = "kubernetes.io/service-account.uid"
KUBECONFIG_KEY = "config"
KUBECONFIG_PREFIX = "vaultflow-kubeconfig-"  # + the account's name: the pipelines' kubeconfig Secrets
MANAGED_BY = {"app.kubernetes.io/managed-by": "vaultflow"}
TOKEN_WAIT_SECONDS = 30.0  # Argo CD waits as long for the token controller
CHANGES = ("created", "updated", "replaced", "would")  # how the outcomes of a change begin

# kind -> (the client's API class, the snake-case name in its methods, whether namespaced)
_KINDS: dict[str, tuple[str, str, bool]] = {
    "Namespace": ("CoreV1Api", "namespace", False),
    "ServiceAccount": ("CoreV1Api", "service_account", True),
    "Secret": ("CoreV1Api", "secret", True),
    "Role": ("RbacAuthorizationV1Api", "role", True),
    "RoleBinding": ("RbacAuthorizationV1Api", "role_binding", True),
    "ClusterRole": ("RbacAuthorizationV1Api", "cluster_role", False),
    "ClusterRoleBinding": ("RbacAuthorizationV1Api", "cluster_role_binding", False),
}


def kubeconfig_secret(catalog: Catalog, account: ServiceAccountRef) -> str:
    """The name of ``account``'s kubeconfig Secret in the workflows cluster (in the account's namespace):
    the one the exporter's rendered Deployment mounts for the observer, ``vaultflow-kubeconfig-<name>``
    (the pipelines' templates' default) for the others."""
    if account == catalog.vault.kubernetes_auth.observer_service_account:
        return OBSERVER_KUBECONFIG_SECRET
    return KUBECONFIG_PREFIX + account.name


@dataclass(frozen=True)
class Action:
    """What onboarding did (or, in a dry run, would do) to one object: never a value."""

    cluster: str
    kind: str
    name: str  # namespace/name, or name for cluster-scoped objects
    outcome: str  # created, updated, unchanged, skipped (why), would create, would update

    def line(self) -> str:
        return f"{self.cluster}: {self.kind} {self.name}: {self.outcome}"


@dataclass
class OnboardReport:
    cluster: str
    workflows_cluster: str
    dry_run: bool
    actions: list[Action] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Did (would) anything change? Outcomes start with what happened: created, updated, replaced."""
        return any(a.outcome.startswith(CHANGES) for a in self.actions)


def cluster_manifests(loaded: LoadedCatalog, cluster: str) -> list[dict[str, Any]]:
    """The pipelines' objects in ``cluster``, as rendered: Namespaces first, then accounts, then RBAC."""
    catalog = loaded.catalog
    eso_tree = pipeline_rbac(catalog, loaded.plan)[cluster]
    bootstrap = bootstrap_rbac(catalog, rbac_meta)[cluster]
    held = {r.to_manifest()["metadata"]["name"] for _, r in eso_tree if isinstance(r, Namespace)}
    extra = [
        p
        for p in account_namespaces(bootstrap, rbac_meta)
        if p[1].to_manifest()["metadata"]["name"] not in held
    ]
    placed = [*extra, *eso_tree, *bootstrap, *observer_rbac(catalog)[cluster]]
    order = {"Namespace": 0, "ServiceAccount": 1, "ClusterRole": 2, "Role": 2}
    manifests: dict[tuple[str, str, str], dict[str, Any]] = {}
    for _, resource in placed:
        manifest = resource.to_manifest()
        meta = manifest["metadata"]
        manifests.setdefault((manifest["kind"], meta.get("namespace", ""), meta["name"]), manifest)
    return sorted(manifests.values(), key=lambda m: order.get(m["kind"], 3))


def remote_accounts(manifests: Iterable[dict[str, Any]]) -> list[ServiceAccountRef]:
    """The service accounts among ``manifests``: those that need a token of this cluster."""
    return [
        ServiceAccountRef(name=m["metadata"]["name"], namespace=m["metadata"]["namespace"])
        for m in manifests
        if m["kind"] == "ServiceAccount"
    ]


class Kube:
    """The few REST calls onboarding makes with an admin's ``ApiClient``, each failure one sentence."""

    def __init__(self, api_client: Any, cluster: str) -> None:
        self.api = api_client
        self.cluster = cluster

    def _method(self, verb: str, kind: str) -> tuple[Callable[..., Any], bool]:
        from kubernetes import client

        api, snake, namespaced = _KINDS[kind]
        method = f"{verb}_namespaced_{snake}" if namespaced else f"{verb}_{snake}"
        return getattr(getattr(client, api)(self.api), method), namespaced

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The live object, or None when there is none (404)."""
        from kubernetes.client.exceptions import ApiException

        with kube_errors(f"cluster {self.cluster}", f"read {kind} {_named(namespace, name)}"):
            try:
                read, namespaced = self._method("read", kind)
                found = read(name, namespace) if namespaced else read(name)
            except ApiException as error:
                if error.status == 404:
                    return None
                raise
        as_dict: dict[str, Any] = self.api.sanitize_for_serialization(found)
        return as_dict

    def write(self, verb: str, kind: str, manifest: dict[str, Any]) -> None:
        """``verb`` (create, replace, delete) ``manifest``'s object."""
        meta = manifest["metadata"]
        name, namespace = meta["name"], meta.get("namespace")
        call, namespaced = self._method(verb, kind)
        with kube_errors(f"cluster {self.cluster}", f"{verb} {kind} {_named(namespace, name)}"):
            if verb == "create":
                call(namespace, manifest) if namespaced else call(manifest)
            elif verb == "replace":
                call(name, namespace, manifest) if namespaced else call(name, manifest)
            else:
                call(name, namespace) if namespaced else call(name)


def _named(namespace: str | None, name: str) -> str:
    return f"{namespace}/{name}" if namespace else name


def _differs(live: dict[str, Any], desired: dict[str, Any]) -> bool:
    """Does ``live`` lack anything ``desired`` sets (its fields, labels and annotations)?"""
    for key, value in desired.items():
        if key in ("apiVersion", "kind"):
            continue
        if key == "metadata":
            for part in ("labels", "annotations"):
                have = live.get("metadata", {}).get(part) or {}
                if any(have.get(k) != v for k, v in (value.get(part) or {}).items()):
                    return True
        elif live.get(key) != value:
            return True
    return False


def _merged(live: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    """``live`` with ``desired``'s fields, labels and annotations laid over it (what apply would do)."""
    body: dict[str, Any] = json.loads(json.dumps(live))
    for key, value in desired.items():
        if key == "metadata":
            for part in ("labels", "annotations"):
                if value.get(part):
                    body["metadata"][part] = {**(body["metadata"].get(part) or {}), **value[part]}
        else:
            body[key] = value
    return body


def converge(
    kube: Kube,
    manifest: dict[str, Any],
    *,
    dry_run: bool,
    required: bool = True,
    planned: frozenset[str] = frozenset(),
) -> str:
    """Create ``manifest`` or bring its fields up to date; the outcome in a few words. ``planned``:
    the Namespaces a dry run would have created before it (what is in them would be created too)."""
    kind, meta = manifest["kind"], manifest["metadata"]
    namespace = meta.get("namespace")
    if namespace in planned:
        return "would create"
    if namespace and kube.get("Namespace", None, namespace) is None:
        if required:
            raise OperationError(
                f"cluster {kube.cluster}: namespace {namespace} does not exist, so {kind} "
                f"{namespace}/{meta['name']} cannot be created: install what owns it first"
            )
        # its team creates it; Argo CD then delivers this object with the ESO resources
        return f"skipped: namespace {namespace} does not exist yet"
    live = kube.get(kind, namespace, meta["name"])
    if live is None:
        if not dry_run:
            kube.write("create", kind, manifest)
        return "would create" if dry_run else "created"
    if kind == "Namespace" or not _differs(live, manifest):
        return "unchanged"  # a Namespace is never changed: it holds more than vaultflow's objects
    if dry_run:
        return "would update"
    if kind in ("RoleBinding", "ClusterRoleBinding") and live.get("roleRef") != manifest.get("roleRef"):
        # roleRef is immutable (the API server refuses to change it): replace the binding
        kube.write("delete", kind, manifest)
        kube.write("create", kind, manifest)
    else:
        kube.write("replace", kind, _merged(live, manifest))
    return "updated"


@dataclass(frozen=True)
class AccountToken:
    """A long-lived token of one account in one cluster, and that cluster's CA (held, never shown)."""

    token: str
    ca_pem: str


def _token_secret(account: ServiceAccountRef) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": SERVICE_ACCOUNT_TOKEN,
        "metadata": {
            "name": account.name + TOKEN_SECRET_SUFFIX,
            "namespace": account.namespace,
            "labels": dict(MANAGED_BY),
            "annotations": {SERVICE_ACCOUNT_NAME: account.name},
        },
    }


def _decoded(secret: dict[str, Any], key: str) -> str:
    return base64.b64decode((secret.get("data") or {}).get(key, "")).decode()


def account_token(
    kube: Kube, account: ServiceAccountRef, *, dry_run: bool, timeout: float = TOKEN_WAIT_SECONDS
) -> tuple[str, AccountToken | None]:
    """``account``'s token Secret (created when missing, replaced when it belongs to an earlier account
    of that name) and, once the token controller filled it, its token; in a dry run without one, None."""
    desired = _token_secret(account)
    name, namespace = desired["metadata"]["name"], account.namespace
    live_account = kube.get("ServiceAccount", namespace, account.name)
    live = kube.get("Secret", namespace, name)
    uid = (live_account or {}).get("metadata", {}).get("uid")
    bound_to = ((live or {}).get("metadata", {}).get("annotations") or {}).get(SERVICE_ACCOUNT_UID)
    stale = live is not None and bound_to not in (None, uid)  # made for an earlier account of that name
    if live is not None and not stale:
        outcome = "unchanged"
    elif dry_run:
        return ("would create" if live is None else "would replace (its account was recreated)"), None
    else:
        if stale:  # the token controller invalidated it with its account; a new Secret gets a new token
            kube.write("delete", "Secret", desired)
        kube.write("create", "Secret", desired)
        outcome = "replaced (its account was recreated)" if stale else "created"
    if dry_run and not _decoded(live or {}, "token"):
        return outcome, None
    filled = poll_until(
        lambda: kube.get("Secret", namespace, name) or {},
        lambda secret: bool(_decoded(secret, "token")),
        what=f"the token controller to fill Secret {namespace}/{name} in cluster {kube.cluster}",
        timeout=timeout,
        initial=0.1,
        maximum=0.5,
        describe=lambda secret: "no token yet" if secret else "the Secret is gone",
    )
    return outcome, AccountToken(token=_decoded(filled, "token"), ca_pem=_decoded(filled, "ca.crt"))


def kubeconfig_text(
    existing: str, *, context: str, server: str, ca_pem: str, token: str, namespace: str
) -> str:
    """``existing`` kubeconfig with ``context`` (its cluster and user of the same name) set, the other
    clusters' contexts kept; entries sorted by name, so the same input gives the same bytes."""
    document = yaml.safe_load(existing) if existing.strip() else {}
    if not isinstance(document, dict):
        document = {}

    def others(section: str) -> list[dict[str, Any]]:
        return [e for e in document.get(section) or [] if isinstance(e, dict) and e.get("name") != context]

    ca_data = base64.b64encode(ca_pem.encode()).decode()
    clusters = [
        *others("clusters"),
        {"name": context, "cluster": {"server": server, "certificate-authority-data": ca_data}},
    ]
    users = [*others("users"), {"name": context, "user": {"token": token}}]
    contexts = [
        *others("contexts"),
        {"name": context, "context": {"cluster": context, "user": context, "namespace": namespace}},
    ]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": sorted(clusters, key=lambda e: str(e["name"])),
        "users": sorted(users, key=lambda e: str(e["name"])),
        "contexts": sorted(contexts, key=lambda e: str(e["name"])),
        "preferences": {},
    }
    return yaml.safe_dump(config, sort_keys=True)


def write_kubeconfig_secret(
    kube: Kube,
    name: str,
    namespace: str,
    *,
    update: Callable[[str], str],
    clusters: str,
    dry_run: bool,
) -> str:
    """The kubeconfig Secret ``namespace/name`` of the workflows cluster, its ``config`` rewritten by
    ``update`` (from what it holds); unchanged when that gives the same text."""
    if kube.get("Namespace", None, namespace) is None:
        return f"skipped: namespace {namespace} does not exist in the workflows cluster"
    live = kube.get("Secret", namespace, name)
    before = _decoded(live, KUBECONFIG_KEY) if live is not None else ""
    after = update(before)
    if live is not None and before == after:
        return "unchanged"
    if dry_run:
        return "would create" if live is None else "would update"
    encoded = {KUBECONFIG_KEY: base64.b64encode(after.encode()).decode()}
    annotations = {
        "kubernetes.io/description": (
            f"vaultflow: a kubeconfig of {clusters}; written by vaultflow cluster onboard"
        )
    }
    if live is None:
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": dict(MANAGED_BY),
                "annotations": annotations,
            },
            "data": encoded,
        }
        kube.write("create", "Secret", body)
        return "created"
    body = json.loads(json.dumps(live))
    body["data"] = {**(body.get("data") or {}), **encoded}
    kube.write("replace", "Secret", body)
    return "updated"


def onboard_cluster(
    loaded: LoadedCatalog,
    cluster: Cluster,
    *,
    cluster_client: Any,
    workflows_client: Any,
    server: str,
    ca_pem: str | None,
    dry_run: bool = False,
    token_timeout: float = TOKEN_WAIT_SECONDS,
) -> OnboardReport:
    """Onboard ``cluster`` (see the module). ``server`` and ``ca_pem``: how the workflows cluster's pods
    reach its API server (``ca_pem`` None: the token Secret's ``ca.crt``)."""
    catalog = loaded.catalog
    workflows = catalog.workflows_cluster()
    report = OnboardReport(cluster=cluster.name, workflows_cluster=workflows.name, dry_run=dry_run)
    remote = cluster.name != workflows.name
    if remote and cluster.kube_context is None:
        raise InputError(
            f"cluster {cluster.name}: inCluster is only for the workflows cluster {workflows.name}; "
            "give it a kubeContext, the context its kubeconfig will name"
        )
    kube = Kube(cluster_client, cluster.name)
    # nothing but onboarding delivers the bootstrap's Roles: their namespaces must exist
    bootstrap_namespaces = {
        o.to_manifest()["metadata"].get("namespace")
        for _, o in bootstrap_rbac(catalog, rbac_meta)[cluster.name]
    }
    manifests = cluster_manifests(loaded, cluster.name)
    planned: set[str] = set()
    for manifest in manifests:
        meta = manifest["metadata"]
        namespace = meta.get("namespace")
        required = manifest["kind"] in ("ServiceAccount", "Namespace") or namespace in bootstrap_namespaces
        outcome = converge(kube, manifest, dry_run=dry_run, required=required, planned=frozenset(planned))
        if manifest["kind"] == "Namespace" and outcome == "would create":
            planned.add(meta["name"])
        report.actions.append(
            Action(cluster.name, manifest["kind"], _named(namespace, meta["name"]), outcome)
        )
    if not remote:
        return report
    workflows_kube = Kube(workflows_client, workflows.name)
    for account in remote_accounts(manifests):
        outcome, issued = account_token(kube, account, dry_run=dry_run, timeout=token_timeout)
        secret_name = account.name + TOKEN_SECRET_SUFFIX
        report.actions.append(Action(cluster.name, "Secret", f"{account.namespace}/{secret_name}", outcome))
        name = kubeconfig_secret(catalog, account)
        if issued is None:
            report.actions.append(
                Action(
                    workflows.name,
                    "Secret",
                    f"{account.namespace}/{name}",
                    f"would set context {cluster.kube_context}",
                )
            )
            continue
        context = str(cluster.kube_context)
        update = functools.partial(
            kubeconfig_text,
            context=context,
            server=server,
            ca_pem=ca_pem or issued.ca_pem,
            token=issued.token,
            namespace=account.namespace,
        )
        outcome = write_kubeconfig_secret(
            workflows_kube,
            name,
            account.namespace,
            update=update,
            clusters="the clusters onboarded",
            dry_run=dry_run,
        )
        report.actions.append(
            Action(workflows.name, "Secret", f"{account.namespace}/{name}", f"{outcome} (context {context})")
        )
    return report
