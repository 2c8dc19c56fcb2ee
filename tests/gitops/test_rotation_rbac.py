"""The rotation service account's RBAC, rendered from the catalog: exactly what rotation calls, nothing else.

Two kinds of proof. The rules of a small catalog are compared whole: only the
namespaces that consume a rotated secret get a Role, restarted workloads are
named, a cluster without a rotated consumer gets no RoleBinding. Then the
rotation steps run against emulated clusters holding the rendered tree, with
a client that records every request they send; each request is put, as the
rotation service account, to the cluster's SelfSubjectAccessReview (the
emulator answers from the stored RBAC objects by kube-apiserver's rules,
sandbox/kube/access_review.py), and every rendered rule must be used by some
request: the RBAC suffices, and grants nothing the steps never ask for.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import kubernetes_validate
import pytest
import yaml
from kubernetes import client

from vaultflow.gitops.catalog import LoadedCatalog, parse_catalog
from vaultflow.gitops.catalog.model import WorkloadRef
from vaultflow.gitops.crd_schemas import CrdRegistry
from vaultflow.gitops.render import render_catalog, validate_tree
from vaultflow.gitops.resources.meta import ObjectMeta
from vaultflow.gitops.resources.rbac import PolicyRule, Role, RoleBinding, RoleRef, ServiceAccountSubject
from vaultflow.sandbox.crd_sources import CrdSource, load_crds
from vaultflow.sandbox.kube import KubeCluster
from vaultflow.steps.rotation.discover import discover_consumers
from vaultflow.steps.rotation.force_sync import force_sync, force_sync_consumer
from vaultflow.steps.rotation.push_status import PushSecretCues
from vaultflow.steps.rotation.restart import restart_workloads
from vaultflow.steps.rotation.verify import KubeTarget, data_hashes, target_key, verify_kubernetes_targets

REPO_ROOT = Path(__file__).resolve().parents[2]
KUBERNETES_VERSION = "1.33.0"
RBAC = "rbac.authorization.k8s.io/v1"
ESO = "external-secrets.io"
RUN = "run-rbac-1"
ACCOUNT = {"kind": "ServiceAccount", "name": "vaultflow-rotation", "namespace": "argo"}

# hub runs the workflows (the first cluster); shop/db rotates and is consumed in hub/shop and edge/shop,
# pushed from both; billing/stripe does not rotate and is all that quiet consumes.
CATALOG = """\
apiVersion: vaultflow.io/v1alpha1
kind: SecretsCatalog
vault: {address: "https://vault.example.com:8200"}
gitops: {repoUrl: https://git.example.com/gitops.git}
clusters:
  - {name: hub, kubeContext: hub, argocd: {server: https://kubernetes.default.svc}}
  - {name: edge, kubeContext: edge, argocd: {name: edge}}
  - {name: quiet, kubeContext: quiet, argocd: {name: quiet}}
clouds:
  - {name: aws, provider: aws, region: eu-west-1, auth: {secretRef: {secretName: aws-credentials}}}
secrets:
  - path: shop/db
    keys: [{name: password, generator: {type: password}}]
    rotation:
      schedule: "@daily"
      restart:
        - {cluster: hub, namespace: shop, kind: Deployment, name: worker}
        - {cluster: hub, namespace: shop, kind: Deployment, name: api}
        - {cluster: hub, namespace: shop, kind: StatefulSet, name: db}
        - {cluster: edge, namespace: shop, kind: DaemonSet, name: agent}
    consumers:
      - {cluster: hub, namespace: shop, secretName: db}
      - {cluster: edge, namespace: shop, secretName: db}
    pushes:
      - {cloud: aws, remoteKey: shop/db}
      - {cloud: aws, remoteKey: edge/shop/db, cluster: edge, namespace: shop}
  - path: billing/stripe
    keys: [{name: key, generator: {type: static}}]
    consumers:
      - {cluster: hub, namespace: billing, secretName: stripe}
      - {cluster: quiet, namespace: billing, secretName: stripe}
"""
WORKLOADS = [
    WorkloadRef.model_validate({"cluster": c, "namespace": "shop", "kind": k, "name": n})
    for c, k, n in [
        ("hub", "Deployment", "worker"),
        ("hub", "Deployment", "api"),
        ("hub", "StatefulSet", "db"),
        ("edge", "DaemonSet", "agent"),
    ]
]


@pytest.fixture(scope="module")
def loaded() -> LoadedCatalog:
    return parse_catalog(CATALOG, Path("catalog.yaml"))


def _rendered(loaded: LoadedCatalog, account: str = "vaultflow-rotation") -> dict[str, list[dict[str, Any]]]:
    """Per cluster, the rendered RBAC objects of ``account``: its ServiceAccount, its Roles and bindings
    (``<account>-*``). The Namespace that holds the accounts is checked on its own: it is shared."""
    out: dict[str, list[dict[str, Any]]] = {}
    for path, manifest in render_catalog(loaded).manifests():
        parts, name = path.split("/"), (manifest.get("metadata") or {}).get("name", "")
        if parts[0] == "clusters" and (
            (manifest["kind"] == "ServiceAccount" and name == account)
            or (manifest["kind"] in RBAC_KINDS and name.startswith(f"{account}-"))
        ):
            out.setdefault(parts[1], []).append(manifest)
    return out


RBAC_KINDS = ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")


def account_namespace(loaded: LoadedCatalog, cluster: str) -> dict[str, Any] | None:
    """The Namespace rendered in ``cluster`` for the accounts (outside the workflows cluster only)."""
    found = [
        m
        for path, m in render_catalog(loaded).manifests()
        if path.startswith(f"clusters/{cluster}/namespace-")
    ]
    assert len(found) <= 1
    return found[0] if found else None


Shape = tuple[str, str, str, str]  # kind, namespace ("" if cluster-scoped), name, what it grants or binds


def _shape(manifest: dict[str, Any]) -> Shape:
    """What one rendered object grants (rules) or binds (roleRef, subjects), comparable as text."""
    meta = manifest["metadata"]
    body = {key: manifest[key] for key in ("rules", "roleRef", "subjects") if key in manifest}
    return manifest["kind"], meta.get("namespace", ""), meta["name"], json.dumps(body, sort_keys=True)


def _role(kind: str, name: str, rules: list[dict[str, Any]], namespace: str = "") -> Shape:
    return kind, namespace, name, json.dumps({"rules": rules}, sort_keys=True)


def _binding(kind: str, name: str, namespace: str = "") -> Shape:
    ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": kind.removesuffix("Binding"), "name": name}
    return kind, namespace, name, json.dumps({"roleRef": ref, "subjects": [ACCOUNT]}, sort_keys=True)


DISCOVERY = [
    {
        "apiGroups": [ESO],
        "resources": ["externalsecrets", "pushsecrets", "secretstores", "clustersecretstores"],
        "verbs": ["list"],
    }
]
WATCH = [{"apiGroups": [ESO], "resources": ["externalsecrets", "pushsecrets"], "verbs": ["watch"]}]  # verify
CES = [{"apiGroups": [ESO], "resources": ["clusterexternalsecrets"], "verbs": ["patch"]}]
CONSUMERS = [
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]},
    {"apiGroups": [ESO], "resources": ["externalsecrets", "pushsecrets"], "verbs": ["patch"]},
]


def _workloads(resource: str, *names: str) -> dict[str, Any]:
    return {
        "apiGroups": ["apps"],
        "resources": [resource],
        "resourceNames": list(names),
        "verbs": ["get", "patch"],
    }


def _cluster_wide(*, ces: bool) -> set[Shape]:
    roles = [("vaultflow-rotation-discovery", DISCOVERY + WATCH if ces else DISCOVERY)]
    if ces:
        roles.append(("vaultflow-rotation-cluster-external-secrets", CES))
    return {_role("ClusterRole", name, rules) for name, rules in roles} | {
        _binding("ClusterRoleBinding", name) for name, _ in roles
    }


# Outside the workflows cluster: the rotation's account (its namespace: account_namespace).
ACCOUNT_OBJECTS = {("ServiceAccount", "argo", "vaultflow-rotation", "{}")}


def _shop(*workloads: dict[str, Any]) -> set[Shape]:
    name = "vaultflow-rotation-consumers"
    return {_role("Role", name, [*CONSUMERS, *workloads], "shop"), _binding("RoleBinding", name, "shop")}


def test_rules_are_exactly_those_of_the_small_catalog(loaded: LoadedCatalog) -> None:
    objects = _rendered(loaded)
    rendered = {cluster: {_shape(m) for m in manifests} for cluster, manifests in objects.items()}
    assert rendered == {
        # the workflows cluster: its service account comes with the workflows (argocd-apps), not rendered
        "hub": _cluster_wide(ces=True)
        | _shop(_workloads("deployments", "api", "worker"), _workloads("statefulsets", "db")),
        "edge": _cluster_wide(ces=True) | ACCOUNT_OBJECTS | _shop(_workloads("daemonsets", "agent")),
        # no rotated consumer: discovery only (it still lists every cluster), no RoleBinding at all
        "quiet": _cluster_wide(ces=False) | ACCOUNT_OBJECTS,
    }
    for cluster in ("edge", "quiet"):
        (account,) = (m for m in objects[cluster] if m["kind"] == "ServiceAccount")
        assert account["automountServiceAccountToken"] is False  # no pod runs as it there
        namespace = account_namespace(loaded, cluster)
        assert namespace is not None and namespace["metadata"]["name"] == "argo"
        assert (
            namespace["metadata"]["annotations"]["argocd.argoproj.io/sync-options"]
            == "Prune=false,Delete=false"
        )
        # one Namespace for both accounts it holds (the delivery's too: gitops/delivery_rbac.py)
        why = namespace["metadata"]["annotations"]["kubernetes.io/description"]
        assert "vaultflow-delivery, vaultflow-rotation" in why
    assert account_namespace(loaded, "hub") is None  # the workflows cluster: argocd-apps makes argo


def test_a_namespace_consuming_only_unrotated_secrets_gets_nothing(loaded: LoadedCatalog) -> None:
    namespaces = {m["metadata"].get("namespace") for objects in _rendered(loaded).values() for m in objects}
    assert "billing" not in namespaces
    assert namespaces == {None, "shop", "argo"}  # cluster-wide, the consumer, the account's


def test_the_example_catalog_grants_nothing_in_argocd_and_no_role_in_argo(repo_root: Path) -> None:
    from vaultflow.gitops.catalog import load_catalog

    rendered = _rendered(load_catalog(repo_root / "examples" / "catalog.yaml"))
    roles = {
        (cluster, m["metadata"]["namespace"])
        for cluster, objects in rendered.items()
        for m in objects
        if m["kind"] in ("Role", "RoleBinding")
    }
    # argocd/admin does not rotate; argo (the bootstrap's keeper) consumes nothing
    assert roles == {
        ("prod-eu", "production"),
        ("prod-eu", "external-secrets-system"),
        ("prod-us", "production"),
        ("prod-us", "payments"),
    }
    restart = next(
        m for m in rendered["prod-eu"] if m["kind"] == "Role" and m["metadata"]["namespace"] == "production"
    )["rules"][2]
    assert restart == _workloads("deployments", "api")


def test_a_catalog_where_nothing_rotates_renders_no_rbac() -> None:
    start, end = CATALOG.index("    rotation:\n"), CATALOG.index("    consumers:\n")
    loaded = parse_catalog(CATALOG[:start] + CATALOG[end:], Path("catalog.yaml"))
    assert all(secret.rotation is None for secret in loaded.catalog.secrets)
    assert _rendered(loaded) == {}


def test_the_rendered_rbac_is_valid_kubernetes_and_passes_render_schemas(
    loaded: LoadedCatalog, repo_root: Path, upstream_crds: CrdRegistry
) -> None:
    from vaultflow.gitops.catalog import load_catalog

    for catalog in (loaded, load_catalog(repo_root / "examples" / "catalog.yaml")):
        for objects in _rendered(catalog).values():
            for manifest in objects:
                kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
        validate_tree(render_catalog(catalog), upstream_crds)


def test_the_models_refuse_malformed_rbac() -> None:
    meta = ObjectMeta(name="x")
    with pytest.raises(ValueError, match="needs a namespace"):
        Role(
            kind="Role",
            metadata=meta,
            rules=[PolicyRule(api_groups=[""], resources=["secrets"], verbs=["list"])],
        )
    with pytest.raises(ValueError, match="only refer to a ClusterRole"):
        RoleBinding(
            kind="ClusterRoleBinding",
            metadata=meta,
            role_ref=RoleRef(kind="Role", name="x"),
            subjects=[ServiceAccountSubject(name="a", namespace="b")],
        )
    with pytest.raises(ValueError, match="at least 1"):
        PolicyRule(api_groups=[""], resources=["secrets"], verbs=[])


# --- the steps' requests, authorised as the rotation service account -------------------------------


@dataclass(frozen=True)
class Request:
    """A request as RBAC sees it (kube-apiserver's RequestInfoFactory, requestinfo.go)."""

    verb: str
    group: str
    resource: str
    namespace: str
    name: str
    subresource: str = ""


def request_info(method: str, url: str) -> Request:
    """``/api/v1/...`` or ``/apis/<group>/<version>/...``, then ``namespaces/<ns>/``, resource, name."""
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    group, rest = ("", segments[2:]) if segments[0] == "api" else (segments[1], segments[3:])
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 2:  # /namespaces/<name> alone is the Namespace itself
        namespace, rest = rest[1], rest[2:]
    name = rest[1] if len(rest) > 1 else ""
    verb = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method, "")
    if method == "GET":
        watching = parse_qs(parts.query).get("watch", [""])[0] in ("true", "1")
        verb = "watch" if watching else "get" if name else "list"
    return Request(verb, group, rest[0], namespace, name, rest[2] if len(rest) > 2 else "")


class RecordingClient(client.ApiClient):  # type: ignore[misc]
    """The real client (as the admin: the emulator does not enforce RBAC), writing down each request."""

    def __init__(self, url: str, token: str, cluster: str, log: list[tuple[str, Request]]) -> None:
        configuration = client.Configuration()
        configuration.host = url
        configuration.api_key = {"authorization": f"Bearer {token}"}
        super().__init__(configuration)
        self._cluster, self._log = cluster, log

    def call_api(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        self._log.append((self._cluster, request_info(method, url)))
        return super().call_api(method, url, *args, **kwargs)


def _api(cluster: KubeCluster, token: str | None = None) -> client.ApiClient:
    configuration = client.Configuration()
    configuration.host = cluster.url
    configuration.api_key = {"authorization": f"Bearer {token or cluster.admin_token}"}
    return client.ApiClient(configuration)


def apply(api: client.ApiClient, manifest: dict[str, Any]) -> dict[str, Any]:
    """Create one object as Argo CD would apply it (admin)."""
    kind, namespace = manifest["kind"], manifest["metadata"].get("namespace")
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    built_in = {
        "Namespace": lambda: core.create_namespace(manifest),
        "ServiceAccount": lambda: core.create_namespaced_service_account(namespace, manifest),
        "Role": lambda: rbac.create_namespaced_role(namespace, manifest),
        "RoleBinding": lambda: rbac.create_namespaced_role_binding(namespace, manifest),
        "ClusterRole": lambda: rbac.create_cluster_role(manifest),
        "ClusterRoleBinding": lambda: rbac.create_cluster_role_binding(manifest),
    }
    if kind in built_in:
        return dict(api.sanitize_for_serialization(built_in[kind]()))
    group, version = manifest["apiVersion"].split("/")
    custom, plural = client.CustomObjectsApi(api), kind.lower() + "s"
    if namespace:
        return dict(custom.create_namespaced_custom_object(group, version, namespace, plural, manifest))
    return dict(custom.create_cluster_custom_object(group, version, plural, manifest))


def _workload(kind: str, name: str) -> dict[str, Any]:
    labels = {"app": name}
    spec: dict[str, Any] = {
        "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "i"}]}},
    }
    if kind != "DaemonSet":
        spec["replicas"] = 1
    if kind != "Deployment":
        spec["updateStrategy"] = {"type": "RollingUpdate"}  # an OnDelete one is never restarted
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name}, "spec": spec}


def _fanned_out(api: client.ApiClient) -> None:
    """A ClusterExternalSecret reading shop/db and the ExternalSecret it controls in shop (hand-written)."""
    spec = {
        "secretStoreRef": {"name": "vault-backend", "kind": "ClusterSecretStore"},
        "target": {"name": "db-fanned-out"},
        "dataFrom": [{"extract": {"key": "shop/db"}}],
    }
    owner = apply(
        api,
        {
            "apiVersion": f"{ESO}/v1",
            "kind": "ClusterExternalSecret",
            "metadata": {"name": "fanout"},
            "spec": {"externalSecretSpec": spec, "namespaces": ["shop"]},
        },
    )
    reference = {
        "apiVersion": f"{ESO}/v1",
        "kind": "ClusterExternalSecret",
        "name": "fanout",
        "uid": owner["metadata"]["uid"],
        "controller": True,
    }
    apply(
        api,
        {
            "apiVersion": f"{ESO}/v1",
            "kind": "ExternalSecret",
            "metadata": {"name": "fanout", "namespace": "shop", "ownerReferences": [reference]},
            "spec": spec,
        },
    )


@dataclass
class Clusters:
    served: dict[str, KubeCluster]
    sent: list[tuple[str, Request]]
    recording: dict[str, RecordingClient]
    tokens: dict[str, str] = field(default_factory=dict)

    def review(self, cluster: str, request: Request) -> bool:
        """The cluster's SelfSubjectAccessReview of ``request``, asked as the rotation service account."""
        served = self.served[cluster]
        if cluster not in self.tokens:
            self.tokens[cluster] = (
                client.CoreV1Api(_api(served))
                .create_namespaced_service_account_token(
                    "vaultflow-rotation",
                    "argo",
                    client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec()),
                )
                .status.token
            )
        token = self.tokens[cluster]
        attributes = {
            "verb": request.verb,
            "group": request.group,
            "resource": request.resource,
            "subresource": request.subresource,
            "namespace": request.namespace,
            "name": request.name,
        }
        review = client.AuthorizationV1Api(_api(served, token)).create_self_subject_access_review(
            {"spec": {"resourceAttributes": attributes}}
        )
        return bool(review.status.allowed)


@pytest.fixture(scope="module")
def clusters(schemas_dir: Path, loaded: LoadedCatalog) -> Iterator[Clusters]:
    crds = load_crds(CrdSource(schemas_dir, upstream=True))
    served = {name: KubeCluster(f"rbac-{name}").start() for name in ("hub", "edge", "quiet")}
    try:
        admins = {name: _api(cluster) for name, cluster in served.items()}
        for cluster in served.values():
            cluster.register_crds(crds)
        # hub is the workflows cluster: argo and the rotation's account come with the workflows
        hand_written = REPO_ROOT / "argocd-apps" / "workflows" / "rbac"
        apply(admins["hub"], {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "argo"}})
        for path in ("service-accounts.yaml", "rotation-pipeline.yaml"):
            for document in yaml.safe_load_all((hand_written / path).read_text()):
                document["metadata"].setdefault("namespace", "argo")
                apply(admins["hub"], document)
        tree = list(render_catalog(loaded).manifests())
        by_cluster: dict[str, list[dict[str, Any]]] = {}
        for path, manifest in tree:
            if path.startswith("clusters/") and manifest["kind"] != "Kustomization":
                by_cluster.setdefault(path.split("/")[1], []).append(manifest)
        for name, manifests in by_cluster.items():
            # the teams' namespaces exist already; the rendered Namespace is applied first (Argo CD's order)
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
        sent: list[tuple[str, Request]] = []
        recording = {
            name: RecordingClient(cluster.url, cluster.admin_token, name, sent)
            for name, cluster in served.items()
        }
        yield Clusters(served, sent, recording)
    finally:
        for cluster in served.values():
            cluster.stop()


def apply_workload(api: client.ApiClient, manifest: dict[str, Any]) -> None:
    apps, namespace = client.AppsV1Api(api), manifest["metadata"]["namespace"]
    create = {
        "Deployment": apps.create_namespaced_deployment,
        "StatefulSet": apps.create_namespaced_stateful_set,
        "DaemonSet": apps.create_namespaced_daemon_set,
    }
    create[manifest["kind"]](namespace, manifest)


@pytest.fixture(scope="module")
def rotation_requests(clusters: Clusters, loaded: LoadedCatalog) -> list[tuple[str, Request]]:
    """Every request the Kubernetes-facing rotation steps send for shop/db (discover, read the data-hashes,
    force-sync, verify, restart), in each cluster. Nothing runs ESO here: verification times out."""
    clients = clusters.recording
    found = discover_consumers(loaded.catalog, loaded.plan, ["shop/db"], clients)["shop/db"]
    assert {(c.cluster, c.name, c.cluster_external_secret) for c in found.external_secrets} == {
        ("hub", "shop-db", None),
        ("edge", "shop-db", None),
        ("hub", "fanout", "fanout"),
        ("edge", "fanout", "fanout"),
    }
    assert {(p.cluster, p.namespace) for p in found.push_secrets} == {("hub", "shop"), ("edge", "shop")}
    hashes = data_hashes(clients, found.external_secrets)
    for consumer in found.external_secrets:
        force_sync_consumer(clients[consumer.cluster], consumer, RUN)
    for push in found.push_secrets:
        force_sync(
            clients[push.cluster],
            cluster=push.cluster,
            kind="PushSecret",
            namespace=push.namespace,
            name=push.name,
            run_id=RUN,
        )
    written_at = datetime.now(UTC)
    targets = [
        KubeTarget(c, {"password": b"new"}, hashes.get(target_key(c)), written_at)
        for c in found.external_secrets
    ]
    verified = verify_kubernetes_targets(clients, targets, timeout=0.3)
    assert {r.phase for r in verified} == {"TimedOut"}  # no ESO: nothing refreshes
    with PushSecretCues(clients, found.push_secrets):  # what says when to read the cloud secrets
        until = time.monotonic() + 20
        while {c for c, r in clusters.sent if (r.verb, r.resource) == ("watch", "pushsecrets")} != {
            "hub",
            "edge",
        }:
            assert time.monotonic() < until, "the PushSecrets were never watched"
            time.sleep(0.02)
    restarted = restart_workloads(clients, WORKLOADS, run_id=RUN, timeout=0.3)
    assert all("does not exist" not in r.message for r in restarted), restarted
    return list(clusters.sent)


def test_every_request_of_the_rotation_steps_is_allowed_by_the_rendered_rbac(
    clusters: Clusters, rotation_requests: list[tuple[str, Request]]
) -> None:
    asked = sorted(set(rotation_requests), key=str)
    assert {cluster for cluster, _ in asked} == {"hub", "edge", "quiet"}  # discovery reaches every cluster
    denied = [(cluster, request) for cluster, request in asked if not clusters.review(cluster, request)]
    assert denied == []


def _granted(rule: dict[str, Any], namespace: str) -> set[Request]:
    return {
        Request(verb, group, resource, namespace, name)
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
        for name in rule.get("resourceNames", [""])
    }


def test_every_rendered_rule_is_used_by_some_request(
    loaded: LoadedCatalog, rotation_requests: list[tuple[str, Request]]
) -> None:
    """Nothing granted that the steps never ask for: each (verb, resource, namespace, name) of each rule is
    requested (a ClusterRole's in any namespace, a rule without resourceNames for any name)."""
    unused = []
    for cluster, objects in _rendered(loaded).items():
        sent = [request for where, request in rotation_requests if where == cluster]
        for role in (m for m in objects if m["kind"] in ("Role", "ClusterRole")):
            namespace = role["metadata"].get("namespace", "")
            for rule in role["rules"]:
                for grant in _granted(rule, namespace):
                    if not any(
                        (r.verb, r.group, r.resource) == (grant.verb, grant.group, grant.resource)
                        and (not namespace or r.namespace == namespace)
                        and (not grant.name or r.name == grant.name)
                        for r in sent
                    ):
                        unused.append((cluster, role["metadata"]["name"], grant))
    assert unused == []


@pytest.mark.parametrize(
    ("cluster", "request_"),
    [
        ("hub", Request("list", "", "secrets", "billing", "")),  # consumes only an unrotated secret
        ("hub", Request("get", "", "secrets", "shop", "db")),  # the steps only ever list
        ("hub", Request("list", "", "secrets", "argo", "")),  # the bootstrap's keeper
        ("hub", Request("list", "", "secrets", "", "")),  # nothing on Secrets cluster-wide
        ("hub", Request("patch", ESO, "externalsecrets", "billing", "billing-stripe")),
        ("hub", Request("create", ESO, "externalsecrets", "shop", "")),
        ("hub", Request("delete", ESO, "externalsecrets", "shop", "shop-db")),
        ("hub", Request("get", ESO, "externalsecrets", "shop", "shop-db")),
        ("hub", Request("patch", "apps", "deployments", "shop", "not-named")),
        ("hub", Request("list", "apps", "deployments", "shop", "")),
        ("hub", Request("watch", "apps", "deployments", "shop", "")),
        ("hub", Request("patch", "apps", "statefulsets", "shop", "api")),  # api is a Deployment
        ("hub", Request("update", ESO, "clusterexternalsecrets", "", "fanout")),
        ("edge", Request("patch", "apps", "deployments", "shop", "api")),  # hub's, not edge's
        ("quiet", Request("list", "", "secrets", "billing", "")),
        ("quiet", Request("patch", ESO, "clusterexternalsecrets", "", "fanout")),  # no consumer to sync
    ],
    ids=str,
)
def test_the_rotation_account_is_refused_everything_else(
    clusters: Clusters, cluster: str, request_: Request
) -> None:
    assert not clusters.review(cluster, request_)


def test_the_workflows_cluster_lets_rotation_read_its_catalog_configmap(clusters: Clusters) -> None:
    """The pipeline's own input: get argo/vaultflow-catalog, by name (argocd-apps/workflows/rbac)."""
    assert clusters.review("hub", Request("get", "", "configmaps", "argo", "vaultflow-catalog"))
    assert not clusters.review("hub", Request("get", "", "configmaps", "argo", "other"))
    assert not clusters.review("edge", Request("get", "", "configmaps", "argo", "vaultflow-catalog"))
