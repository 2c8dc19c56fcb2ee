"""Every rule the pipelines ship is needed, and the full set is enough: proven against enforced RBAC.

The emulated API server authorises service-account requests as kube-apiserver
does (sandbox/kube/authz.py). For the bootstrap Role
(``argocd-apps/workflows/rbac/bootstrap.yaml``) and the rotation RBAC that
``vaultflow render`` derives from the catalog (``gitops/rotation_rbac.py``),
the steps run as their own service account with the shipped rules; then each
grant (one verb of one resource of one rule) is taken away in turn and the
smallest step invocation that needs it must fail, naming that verb and
resource as the API server's 403 does, while every other invocation still
succeeds.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.gitops.test_rotation_rbac import (
    CATALOG,
    RUN,
    WORKLOADS,
    _fanned_out,
    _workload,
    apply,
    apply_workload,
)
from vaultflow.base.errors import OperationError
from vaultflow.gitops.catalog import LoadedCatalog, parse_catalog
from vaultflow.gitops.render import render_catalog
from vaultflow.sandbox.crd_sources import CrdSource, load_crds
from vaultflow.sandbox.kube import KubeCluster
from vaultflow.sandbox.kubeconfig import ClusterAccess, write_kubeconfig
from vaultflow.steps.catalog_source import load_catalog_source
from vaultflow.steps.keeper.kubernetes import KubernetesSecretKeeper
from vaultflow.steps.kube.lease import LeaseLock
from vaultflow.steps.kube.reflector import Collection, Reflector
from vaultflow.steps.rotation.discover import discover_consumers
from vaultflow.steps.rotation.force_sync import force_sync, force_sync_consumer
from vaultflow.steps.rotation.restart import restart_workloads
from vaultflow.steps.rotation.verify import data_hashes
from vaultflow.steps.vault.lock import LEASE_NAME
from vaultflow.steps.vault.login import service_account_token

REPO_ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP_RBAC = REPO_ROOT / "argocd-apps" / "workflows" / "rbac" / "bootstrap.yaml"
CATALOG_CONFIGMAP = (
    REPO_ROOT / "argocd-apps" / "workflows" / "templates" / "configmaps" / "vaultflow-catalog.yaml"
)
RBAC_API = "rbac.authorization.k8s.io"


@dataclass(frozen=True)
class Grant:
    """One verb on one resource of one rule of a Role (or ClusterRole)."""

    kind: str
    namespace: str  # "" for a ClusterRole
    role: str
    rule: int
    group: str
    resource: str
    verb: str

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.role} rule {self.rule}: {self.verb} {self.resource}"

    @property
    def denial(self) -> str:
        """What kube-apiserver's forbidden message says of it (``responsewriters.forbiddenMessage``)."""
        return f'cannot {self.verb} resource "{self.resource}" in API group "{self.group}"'


def grants(role: dict[str, Any]) -> list[Grant]:
    meta = role["metadata"]
    return [
        Grant(role["kind"], meta.get("namespace", ""), meta["name"], index, group, resource, verb)
        for index, rule in enumerate(role["rules"])
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    ]


def without(role: dict[str, Any], grant: Grant) -> dict[str, Any]:
    """``role`` with ``grant`` taken out of its rule (the rule's other verbs and resources kept)."""
    trimmed = copy.deepcopy(role)
    rule = trimmed["rules"][grant.rule]
    rest = [
        {**rule, "apiGroups": [group], "resources": [resource], "verbs": [verb]}
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
        if (group, resource, verb) != (grant.group, grant.resource, grant.verb)
    ]
    trimmed["rules"][grant.rule : grant.rule + 1] = rest
    return trimmed


def replace_role(admin: client.ApiClient, role: dict[str, Any]) -> None:
    rbac = client.RbacAuthorizationV1Api(admin)
    body = {key: value for key, value in role.items() if key != "status"}
    body["metadata"] = {
        key: role["metadata"][key] for key in ("name", "namespace") if key in role["metadata"]
    }
    if role["kind"] == "Role":
        rbac.replace_namespaced_role(body["metadata"]["name"], body["metadata"]["namespace"], body)
    else:
        rbac.replace_cluster_role(body["metadata"]["name"], body)


def outcome(invocation: Callable[[], Any]) -> str:
    """The error a step invocation ends in ("" when it succeeds), or the messages of its results."""
    try:
        result = invocation()
    except OperationError as error:
        return str(error)
    messages = [getattr(item, "message", "") for item in result] if isinstance(result, list) else []
    return "\n".join(message for message in messages if "forbidden" in message)


def watch_consumers(api: client.ApiClient, cluster: str, plural: str) -> None:
    """What the verification's reflectors ask of a cluster: a LIST of ExternalSecrets (or PushSecrets)
    across namespaces, then WATCHes (each ended by the server after a second); raises what it fails with."""
    version = "v1alpha1" if plural == "pushsecrets" else "v1"
    reflector = Reflector(
        api,
        cluster,
        Collection("external-secrets.io", version, plural, plural),
        lambda: None,
        watch_timeout=1,
    )
    reflector.start()
    try:
        until = time.monotonic() + 30
        while reflector.requests["WATCH"] < 2 and not reflector.error:  # the second: the first was served
            assert time.monotonic() < until, "the reflector neither watched twice nor failed"
            time.sleep(0.02)
    finally:
        reflector.stop()
    if reflector.error:
        raise OperationError(reflector.error)


def token_for(admin: client.ApiClient, namespace: str, name: str) -> str:
    request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec())
    return str(
        client.CoreV1Api(admin).create_namespaced_service_account_token(name, namespace, request).status.token
    )


def admin_client(cluster: KubeCluster) -> client.ApiClient:
    configuration = client.Configuration()
    configuration.host = cluster.url
    configuration.api_key = {"authorization": f"Bearer {cluster.admin_token}"}
    return client.ApiClient(configuration)


def as_account(cluster: KubeCluster, token: str) -> client.ApiClient:
    configuration = client.Configuration()
    configuration.host = cluster.url
    configuration.api_key = {"authorization": f"Bearer {token}"}
    return client.ApiClient(configuration)


# ---------------------------------------------------------------- the bootstrap Role

BOOTSTRAP_ROLES = [d for d in yaml.safe_load_all(BOOTSTRAP_RBAC.read_text()) if d["kind"] == "Role"]
BOOTSTRAP_GRANTS = [grant for role in BOOTSTRAP_ROLES for grant in grants(role)]


@dataclass
class Bootstrap:
    admin: client.ApiClient
    invocations: dict[tuple[str, str, str], Callable[[], Any]]  # (namespace, resource, verb) -> step call


@pytest.fixture(scope="module")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bootstrap]:
    """A workflows cluster holding what argocd-apps ships for the bootstrap, and a kubeconfig whose
    context ``workflows`` is the bootstrap's service account (how its pod reaches the API)."""
    with KubeCluster("rbac-bootstrap") as cluster, pytest.MonkeyPatch.context() as patch:
        admin = admin_client(cluster)
        core, rbac = client.CoreV1Api(admin), client.RbacAuthorizationV1Api(admin)
        for namespace, account in (
            ("argo", "vaultflow-bootstrap"),
            ("vault-system", "vault-token-reviewer"),
            ("external-secrets-system", "external-secrets"),
        ):
            core.create_namespace({"metadata": {"name": namespace}})
            core.create_namespaced_service_account(namespace, {"metadata": {"name": account}})
        core.create_namespaced_config_map("argo", yaml.safe_load(CATALOG_CONFIGMAP.read_text()))
        for document in yaml.safe_load_all(BOOTSTRAP_RBAC.read_text()):
            namespace = document["metadata"]["namespace"]
            if document["kind"] == "Role":
                rbac.create_namespaced_role(namespace, document)
            else:
                rbac.create_namespaced_role_binding(namespace, document)
        token = token_for(admin, "argo", "vaultflow-bootstrap")
        kubeconfig = write_kubeconfig(
            tmp_path_factory.mktemp("bootstrap") / "kubeconfig",
            [ClusterAccess("workflows", cluster.url, token, "argo")],
        )
        patch.setenv("KUBECONFIG", str(kubeconfig))
        runs = iter(range(1_000_000))

        def keeper() -> Any:
            """The keeper's reserve: asks SelfSubjectAccessReview, then creates its Secret."""
            core.delete_collection_namespaced_secret("argo")
            return KubernetesSecretKeeper("argo", "vaultflow-vault-keeper", context="workflows").reserve()

        def lease() -> Any:
            """The bootstrap lock: take the lease (read, create), give it up (update)."""
            client.CoordinationV1Api(admin).delete_collection_namespaced_lease("argo")
            lock = LeaseLock(
                "argo", LEASE_NAME, f"run-{next(runs)}", duration_seconds=60, context="workflows"
            )
            if lock.try_acquire() is not None:
                raise OperationError("the lease is held")
            return lock.release()

        def token_of(namespace: str, name: str) -> Callable[[], Any]:
            return lambda: service_account_token(namespace=namespace, name=name, context="workflows")

        invocations: dict[tuple[str, str, str], Callable[[], Any]] = {
            **{("argo", "secrets", verb): keeper for verb in ("create", "get", "update")},
            ("argo", "configmaps", "get"): lambda: load_catalog_source(
                "configmap://argo/vaultflow-catalog?context=workflows"
            ),
            **{("argo", "leases", verb): lease for verb in ("create", "get", "update")},
            ("vault-system", "serviceaccounts/token", "create"): token_of(
                "vault-system", "vault-token-reviewer"
            ),
            ("external-secrets-system", "serviceaccounts/token", "create"): token_of(
                "external-secrets-system", "external-secrets"
            ),
        }
        yield Bootstrap(admin, invocations)


def test_every_bootstrap_grant_has_a_step_that_needs_it() -> None:
    keys = {(g.namespace, g.resource, g.verb) for g in BOOTSTRAP_GRANTS}
    assert len(keys) == len(BOOTSTRAP_GRANTS) == 9


def test_the_bootstrap_role_is_enough_for_its_steps(bootstrap: Bootstrap) -> None:
    failures = {key: outcome(call) for key, call in bootstrap.invocations.items()}
    assert {key: text for key, text in failures.items() if text} == {}


@pytest.mark.parametrize("grant", BOOTSTRAP_GRANTS, ids=str)
def test_each_bootstrap_grant_is_needed(bootstrap: Bootstrap, grant: Grant) -> None:
    role = next(r for r in BOOTSTRAP_ROLES if r["metadata"]["name"] == grant.role)
    replace_role(bootstrap.admin, without(role, grant))
    try:
        outcomes = {key: outcome(call) for key, call in bootstrap.invocations.items()}
    finally:
        replace_role(bootstrap.admin, role)
    needing = (grant.namespace, grant.resource, grant.verb)
    failed = {key for key, text in outcomes.items() if text}
    assert needing in failed
    message = outcomes[needing]
    if grant.resource == "secrets":
        # the keeper asks first (SelfSubjectAccessReview) and names what it may not do
        assert f"may not {grant.verb} secrets" in message
    else:
        assert "403 Forbidden" in message
        assert f'User "system:serviceaccount:argo:vaultflow-bootstrap" {grant.denial}' in message
        assert f'in the namespace "{grant.namespace}"' in message
    # the invocations sharing the grant's step fail with it; every other one still works
    sharing = {key for key, call in bootstrap.invocations.items() if call is bootstrap.invocations[needing]}
    assert failed <= sharing


def test_the_bootstrap_account_may_not_read_its_namespace(bootstrap: Bootstrap) -> None:
    """Why the keeper asks SelfSubjectAccessReview: reading the Namespace, the stand-in it once used
    for "may I write here", is not granted by the bootstrap Role, so on a real cluster it is a 403."""
    core = client.CoreV1Api(as_account_from_kubeconfig())
    with pytest.raises(client.ApiException) as denied:
        core.read_namespace("argo")
    assert denied.value.status == 403
    keeper = KubernetesSecretKeeper("argo", "vaultflow-vault-keeper", context="workflows")
    client.CoreV1Api(bootstrap.admin).delete_collection_namespaced_secret("argo")
    keeper.reserve()  # the keeper itself checks what it will do, and may
    assert [
        s.metadata.name for s in client.CoreV1Api(bootstrap.admin).list_namespaced_secret("argo").items
    ] == ["vaultflow-vault-keeper"]


def as_account_from_kubeconfig() -> client.ApiClient:
    from vaultflow.steps.kube import api_client

    return api_client("workflows")


# ---------------------------------------------------------------- the rotation's rendered RBAC


@dataclass
class Rotation:
    admins: dict[str, client.ApiClient]
    accounts: dict[str, client.ApiClient]
    roles: dict[str, list[dict[str, Any]]]  # cluster -> rendered Roles and ClusterRoles
    invocation: Callable[[str, Grant], Callable[[], Any]]


@pytest.fixture(scope="module")
def rotation(schemas_dir: Path) -> Iterator[Rotation]:
    """The catalog of tests/gitops/test_rotation_rbac.py rendered into three clusters (Argo CD's view),
    and the rotation steps' clients as its service account."""
    loaded = ROTATION_LOADED
    crds = load_crds(CrdSource(schemas_dir, upstream=True))
    served = {name: KubeCluster(f"rbac-rotation-{name}").start() for name in ("hub", "edge", "quiet")}
    try:
        admins = {name: admin_client(cluster) for name, cluster in served.items()}
        for cluster in served.values():
            cluster.register_crds(crds)
        hand_written = REPO_ROOT / "argocd-apps" / "workflows" / "rbac"
        apply(admins["hub"], {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "argo"}})
        for path in ("service-accounts.yaml", "rotation-pipeline.yaml"):
            for document in yaml.safe_load_all((hand_written / path).read_text()):
                document["metadata"].setdefault("namespace", "argo")
                apply(admins["hub"], document)
        by_cluster: dict[str, list[dict[str, Any]]] = {}
        for path, manifest in render_catalog(loaded).manifests():
            if path.startswith("clusters/") and manifest["kind"] != "Kustomization":
                by_cluster.setdefault(path.split("/")[1], []).append(manifest)
        for name, manifests in by_cluster.items():
            manifests.sort(key=lambda m: m["kind"] != "Namespace")
            wanted = {m["metadata"]["namespace"] for m in manifests if m["metadata"].get("namespace")}
            rendered = {m["metadata"]["name"] for m in manifests if m["kind"] == "Namespace"}
            for namespace in sorted(wanted - rendered):
                apply(
                    admins[name], {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
                )
            for manifest in manifests:
                apply(admins[name], manifest)
        for ref in WORKLOADS:
            manifest = _workload(ref.kind, ref.name)
            manifest["metadata"]["namespace"] = ref.namespace
            apply_workload(admins[ref.cluster], manifest)
        for name in ("hub", "edge"):
            _fanned_out(admins[name])
        accounts = {
            name: as_account(served[name], token_for(admins[name], "argo", "vaultflow-rotation"))
            for name in served
        }
        found = discover_consumers(loaded.catalog, loaded.plan, ["shop/db"], admins)["shop/db"]

        runs = iter(range(1_000_000))

        def invocation(cluster: str, grant: Grant) -> Callable[[], Any]:  # noqa: PLR0911 (a case per kind of grant)
            """The smallest rotation step call, in ``cluster``, that makes the request ``grant`` allows
            (each under a new run id: a step retried under the same run skips what that run did)."""
            run = f"{RUN}-{next(runs)}"
            mine = [c for c in found.external_secrets if c.cluster == cluster]
            if grant.resource in (
                "externalsecrets",
                "pushsecrets",
                "secretstores",
                "clustersecretstores",
            ) and (grant.verb == "list"):
                return lambda: discover_consumers(loaded.catalog, loaded.plan, ["shop/db"], accounts)
            if grant.resource == "clusterexternalsecrets":
                fanned = next(c for c in mine if c.cluster_external_secret)
                return lambda: force_sync_consumer(accounts[cluster], fanned, run)
            if grant.verb == "watch":  # the verification's reflectors (ExternalSecrets, PushSecrets)
                return lambda: watch_consumers(accounts[cluster], cluster, grant.resource)
            if grant.resource == "externalsecrets":
                direct = next(c for c in mine if not c.cluster_external_secret)
                return lambda: force_sync_consumer(accounts[cluster], direct, run)
            if grant.resource == "pushsecrets":
                push = next(p for p in found.push_secrets if p.cluster == cluster)
                return lambda: force_sync(
                    accounts[cluster],
                    cluster=cluster,
                    kind="PushSecret",
                    namespace=push.namespace,
                    name=push.name,
                    run_id=run,
                )
            if grant.resource == "secrets":
                return lambda: data_hashes(accounts, mine)
            kinds = {"deployments": "Deployment", "statefulsets": "StatefulSet", "daemonsets": "DaemonSet"}
            workloads = [w for w in WORKLOADS if w.cluster == cluster and w.kind == kinds[grant.resource]]
            return lambda: restart_workloads(accounts, workloads, run_id=run, timeout=5)

        yield Rotation(admins, accounts, rendered_roles(loaded), invocation)
    finally:
        for cluster in served.values():
            cluster.stop()


def rendered_roles(loaded: LoadedCatalog) -> dict[str, list[dict[str, Any]]]:
    """Per cluster, the rotation's Roles and ClusterRoles the render delivers there (``<account>-*``,
    gitops/rotation_rbac.py; other pipelines' rendered RBAC is theirs)."""
    prefix = loaded.catalog.vault.kubernetes_auth.rotation_service_account.name + "-"
    roles: dict[str, list[dict[str, Any]]] = {}
    for path, manifest in render_catalog(loaded).manifests():
        if (
            path.startswith("clusters/")
            and manifest["kind"] in ("Role", "ClusterRole")
            and manifest["metadata"]["name"].startswith(prefix)
        ):
            roles.setdefault(path.split("/")[1], []).append(manifest)
    return roles


ROTATION_LOADED = parse_catalog(CATALOG, Path("catalog.yaml"))
ROTATION_GRANTS = [
    (cluster, grant)
    for cluster, roles in rendered_roles(ROTATION_LOADED).items()
    for role in roles
    for grant in grants(role)
]


def test_the_rendered_rotation_rbac_is_enough_for_the_rotation_steps(rotation: Rotation) -> None:
    failures = {
        (cluster, str(grant)): outcome(rotation.invocation(cluster, grant))
        for cluster, grant in ROTATION_GRANTS
    }
    assert {key: text for key, text in failures.items() if text} == {}


@pytest.mark.parametrize(("cluster", "grant"), ROTATION_GRANTS, ids=str)
def test_each_rendered_rotation_grant_is_needed(rotation: Rotation, cluster: str, grant: Grant) -> None:
    role = next(
        r
        for r in rotation.roles[cluster]
        if (r["kind"], r["metadata"]["name"], r["metadata"].get("namespace", ""))
        == (grant.kind, grant.role, grant.namespace)
    )
    replace_role(rotation.admins[cluster], without(role, grant))
    try:
        message = outcome(rotation.invocation(cluster, grant))
    finally:
        replace_role(rotation.admins[cluster], role)
    assert "forbidden" in message
    assert f'User "system:serviceaccount:argo:vaultflow-rotation" {grant.denial}' in message


# ---------------------------------------------------------------- the plan asks first (SSAR)


def test_the_plan_finds_the_rendered_rotation_rbac_enough(rotation: Rotation) -> None:
    from vaultflow.steps.rotation.access import check_rotation_access, needed_permissions

    found = discover_consumers(ROTATION_LOADED.catalog, ROTATION_LOADED.plan, ["shop/db"], rotation.admins)
    asked = needed_permissions(ROTATION_LOADED.catalog, found.values())
    assert sorted(asked) == ["edge", "hub"]  # quiet holds no consumer: nothing is asked there
    assert "patch clusterexternalsecrets.external-secrets.io/fanout at the cluster scope" in map(
        str, asked["hub"]
    )
    assert "patch deployments.apps/worker in namespace shop" in map(str, asked["hub"])
    check_rotation_access(ROTATION_LOADED.catalog, found.values(), rotation.accounts)  # no InputError


ES = "externalsecrets.external-secrets.io"
PS = "pushsecrets.external-secrets.io"


@pytest.mark.parametrize(
    ("kind", "resource", "verb", "named"),
    [
        ("Role", "externalsecrets", "patch", f"may not patch {ES} in namespace shop"),
        ("Role", "pushsecrets", "patch", f"may not patch {PS} in namespace shop"),
        ("Role", "secrets", "list", "may not list secrets in namespace shop"),
        ("Role", "daemonsets", "patch", "may not patch daemonsets.apps/agent in namespace shop"),
        ("ClusterRole", "externalsecrets", "watch", f"may not watch {ES} at the cluster scope"),
        ("ClusterRole", "pushsecrets", "watch", f"may not watch {PS} at the cluster scope"),
    ],
)  # fmt: skip
def test_the_plan_names_what_the_rotation_may_not_do_before_anything_is_written(
    rotation: Rotation, kind: str, resource: str, verb: str, named: str
) -> None:
    from vaultflow.base.errors import InputError
    from vaultflow.steps.rotation.access import check_rotation_access

    found = discover_consumers(ROTATION_LOADED.catalog, ROTATION_LOADED.plan, ["shop/db"], rotation.admins)
    cluster, grant = next(
        (c, g)
        for c, g in ROTATION_GRANTS
        if c == "edge" and g.resource == resource and g.verb == verb and g.kind == kind
    )
    role = next(
        r for r in rotation.roles[cluster] if r["metadata"]["name"] == grant.role and r["kind"] == kind
    )
    replace_role(rotation.admins[cluster], without(role, grant))
    try:
        with pytest.raises(InputError) as refused:
            check_rotation_access(ROTATION_LOADED.catalog, found.values(), rotation.accounts)
    finally:
        replace_role(rotation.admins[cluster], role)
    message = str(refused.value)
    assert message.startswith("nothing was rotated: the rotation's identity lacks what it needs")
    assert message.splitlines()[1:] == [f"cluster edge: {named}"]
