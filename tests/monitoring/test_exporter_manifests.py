"""The exporter on a cluster (``gitops/monitoring_exporter.py``): the committed manifests are what the
example catalog renders, every object validates (core kinds against Kubernetes' schemas, the
ServiceMonitor against the Prometheus Operator's CRD), the Deployment runs ``vaultflow exporter`` with
options it has, and the observer's rendered RBAC is exactly what the exporter's calls need: applied
to emulated clusters that enforce RBAC, the exporter's LIST passes as ``vaultflow-observer`` and
fails with the API server's 403 once its grant is gone, its Vault login sends the account's own token
(no TokenRequest, so no grant for one), and what the account is never meant to do is refused."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import typer
from kubernetes import client
from kubernetes.client.rest import ApiException
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from tests.gitops.test_rotation_rbac import KUBERNETES_VERSION, apply
from tests.sandbox.test_rbac_rules_needed import admin_client, as_account, token_for
from vaultflow.base.errors import OperationError
from vaultflow.cli import app
from vaultflow.gitops.catalog import load_catalog
from vaultflow.gitops.crd_schemas import CrdRegistry
from vaultflow.gitops.monitoring import MANIFESTS_DIR, rendered
from vaultflow.gitops.monitoring_exporter import EXPORTER, OBSERVER_ROLE, exporter_manifests
from vaultflow.sandbox.crd_sources import CrdSource, load_crds
from vaultflow.sandbox.kube import KubeCluster
from vaultflow.steps.observe.exporter import CatalogCollector, _Scrape
from vaultflow.steps.vault.login import service_account_token

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_NAME = "examples/catalog.yaml"
EXAMPLE = load_catalog(REPO_ROOT / EXAMPLE_NAME)
OBSERVER = EXAMPLE.catalog.vault.kubernetes_auth.observer_service_account
WORKFLOWS = EXAMPLE.catalog.workflows_cluster().name
CLUSTERS = [cluster.name for cluster in EXAMPLE.catalog.clusters]
ESO = "external-secrets.io"


def _committed() -> dict[Path, str]:
    out = REPO_ROOT / MANIFESTS_DIR
    return {path.relative_to(out): path.read_text() for path in sorted(out.rglob("*.yaml"))}


def test_the_committed_manifests_are_what_the_example_catalog_renders(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(REPO_ROOT)  # the headers name the sources as the command line gives them
    expected = rendered(Path("monitoring"), EXAMPLE, EXAMPLE_NAME)
    assert _committed() == expected, (
        f"{MANIFESTS_DIR} is out of date: run `vaultflow monitoring render --catalog {EXAMPLE_NAME}`"
    )


def test_every_exporter_object_validates(upstream_crds: CrdRegistry) -> None:
    kinds = set()
    for objects in exporter_manifests(EXAMPLE).values():
        for _, manifest in objects:
            kinds.add(manifest["kind"])
            if manifest["apiVersion"].startswith("monitoring.coreos.com/"):
                assert upstream_crds.validate(manifest) == [], manifest["kind"]
            else:
                kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    assert {"Deployment", "Service", "ServiceMonitor", "ConfigMap", "ServiceAccount", "ClusterRole"} <= kinds
    (monitor,) = [m for _, m in exporter_manifests(EXAMPLE)[WORKFLOWS] if m["kind"] == "ServiceMonitor"]
    broken = {**monitor, "spec": {**monitor["spec"], "endpoints": [{"prot": "metrics"}]}}
    assert upstream_crds.validate(broken), "the CRD schema must refuse a misspelt endpoint field"


def test_the_deployment_runs_the_exporter_as_the_observer_with_options_it_has() -> None:
    manifests = {m["kind"]: m for _, m in exporter_manifests(EXAMPLE)[WORKFLOWS]}
    pod = manifests["Deployment"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == OBSERVER.name
    assert manifests["Deployment"]["metadata"]["namespace"] == OBSERVER.namespace
    (container,) = pod["containers"]
    assert container["command"] == ["vaultflow"] and container["args"][0] == "exporter"
    command = typer.main.get_command(app)
    exporter = command.commands["exporter"]  # type: ignore[attr-defined]
    options = {name for param in exporter.params for name in param.opts}
    given = [arg for arg in container["args"][1:] if arg.startswith("--")]
    assert set(given) <= options and "--catalog" in given and "--listen" in given
    mounted = {m["mountPath"] for m in container["volumeMounts"]}
    for flag in ("--catalog", "--ca-cert"):
        value = container["args"][container["args"].index(flag) + 1]
        assert any(value.startswith(path + "/") for path in mounted), (flag, value)
    # The Service and the ServiceMonitor reach the container's port by its name.
    labels = manifests["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert manifests["Service"]["spec"]["selector"].items() <= labels.items()
    assert manifests["Service"]["spec"]["ports"][0]["targetPort"] == container["ports"][0]["name"]
    monitor = manifests["ServiceMonitor"]["spec"]
    assert monitor["selector"]["matchLabels"].items() <= manifests["Service"]["metadata"]["labels"].items()
    assert monitor["endpoints"][0]["port"] == manifests["Service"]["spec"]["ports"][0]["name"]
    catalog_map = manifests["ConfigMap"]
    assert catalog_map["data"]["catalog.yaml"] == (REPO_ROOT / EXAMPLE_NAME).read_text()


def test_render_check_names_a_stale_exporter_file_and_a_leftover_one(tmp_path: Path) -> None:
    out = tmp_path / "manifests"
    base = ["monitoring", "render", "--source", str(REPO_ROOT / "monitoring"), "--out", str(out)]
    with_catalog = [*base, "--catalog", str(REPO_ROOT / EXAMPLE_NAME)]
    assert CliRunner().invoke(app, with_catalog).exit_code == 0
    assert CliRunner().invoke(app, [*with_catalog, "--check"]).exit_code == 0
    deployment = out / f"{EXPORTER}-deployment.yaml"
    deployment.write_text(deployment.read_text().replace("replicas: 1", "replicas: 2"))
    leftover = out / "clusters" / "gone" / "cluster-role-vaultflow-observer.yaml"
    leftover.parent.mkdir(parents=True)
    leftover.write_text("kind: ClusterRole\n")
    stale = CliRunner().invoke(app, [*with_catalog, "--check"])
    assert stale.exit_code == 1
    assert f"{deployment} differs from its source" in stale.output
    assert f"{leftover} is not rendered by the catalog any more" in stale.output
    assert CliRunner().invoke(app, with_catalog).exit_code == 0
    assert not leftover.exists()
    assert CliRunner().invoke(app, [*with_catalog, "--check"]).exit_code == 0


# ---------------------------------------------------------------- the observer's RBAC, enforced


@dataclass
class Observed:
    admins: dict[str, client.ApiClient]
    accounts: dict[str, client.ApiClient]


def _rbac(cluster: str) -> list[dict[str, Any]]:
    kinds = {"Namespace", "ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}
    objects = [m for _, m in exporter_manifests(EXAMPLE)[cluster] if m["kind"] in kinds]
    return sorted(objects, key=lambda m: m["kind"] != "Namespace")


@pytest.fixture(scope="module")
def observed(schemas_dir: Path) -> Iterator[Observed]:
    """Both example clusters holding the rendered RBAC (Argo CD's view), an ExternalSecret each, and
    clients as the observer's account."""
    crds = load_crds(CrdSource(schemas_dir, upstream=True))
    served = {name: KubeCluster(f"rbac-observer-{name}").start() for name in CLUSTERS}
    try:
        admins = {name: admin_client(cluster) for name, cluster in served.items()}
        for name, cluster in served.items():
            cluster.register_crds(crds)
            if name == WORKFLOWS:  # the Application's CreateNamespace=true
                apply(
                    admins[name],
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OBSERVER.namespace}},
                )
            for manifest in _rbac(name):
                apply(admins[name], manifest)
            apply(admins[name], {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
            apply(admins[name], _external_secret("shop", "db"))
        accounts = {
            name: as_account(served[name], token_for(admins[name], OBSERVER.namespace, OBSERVER.name))
            for name in served
        }
        yield Observed(admins, accounts)
    finally:
        for cluster in served.values():
            cluster.stop()


def _external_secret(namespace: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{ESO}/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "secretStoreRef": {"kind": "ClusterSecretStore", "name": "vault-backend"},
            "target": {"name": name},
            "data": [{"secretKey": "k", "remoteRef": {"key": "shop/db", "property": "k"}}],
        },
    }


def _exporter_lists(accounts: dict[str, client.ApiClient]) -> dict[str, bool]:
    """The exporter's own per-cluster LIST (what a scrape does), as the given clients."""
    collector = CatalogCollector(EXAMPLE.catalog, None, accounts, CollectorRegistry())  # type: ignore[arg-type]
    scrape = _Scrape()
    return {name: collector._list(name, scrape) for name in CLUSTERS}


def _login_jwt(api: client.ApiClient, name: str = OBSERVER.name) -> str:
    """What the exporter's Vault login sends with a kubeconfig: "own" when it is the client's own
    token, "requested" for one TokenRequest gave, else the refusal (never a token in a message)."""
    own = str(api.configuration.api_key["authorization"]).removeprefix("Bearer ")
    try:
        jwt = service_account_token(namespace=OBSERVER.namespace, name=name, core_api=client.CoreV1Api(api))
    except OperationError as error:
        return str(error)
    return "own" if jwt == own else "requested"


def test_the_rendered_rbac_is_enough_for_the_exporter(observed: Observed) -> None:
    assert _exporter_lists(observed.accounts) == dict.fromkeys(CLUSTERS, True)
    # The Vault login sends the observer's own token: no TokenRequest, so no grant for one.
    assert _login_jwt(observed.accounts[WORKFLOWS]) == "own"


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_each_cluster_needs_its_list_grant(observed: Observed, cluster: str) -> None:
    rbac = client.RbacAuthorizationV1Api(observed.admins[cluster])
    role = rbac.read_cluster_role(OBSERVER_ROLE)
    rbac.delete_cluster_role(OBSERVER_ROLE)
    try:
        assert _exporter_lists(observed.accounts) == {name: name != cluster for name in CLUSTERS}
    finally:
        role.metadata.resource_version = None
        rbac.create_cluster_role(role)


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_what_the_observer_may_never_do(observed: Observed, cluster: str) -> None:
    account = observed.accounts[cluster]
    custom, core = client.CustomObjectsApi(account), client.CoreV1Api(account)
    refused = {
        "list pushsecrets": lambda: custom.list_cluster_custom_object(ESO, "v1alpha1", "pushsecrets"),
        "watch externalsecrets": lambda: custom.list_cluster_custom_object(
            ESO, "v1", "externalsecrets", watch=True, timeout_seconds=1
        ),
        "get an externalsecret": lambda: custom.get_namespaced_custom_object(
            ESO, "v1", "shop", "externalsecrets", "db"
        ),
        "delete an externalsecret": lambda: custom.delete_namespaced_custom_object(
            ESO, "v1", "shop", "externalsecrets", "db"
        ),
        "list secrets": core.list_secret_for_all_namespaces,
        "get a secret": lambda: core.read_namespaced_secret("db", "shop"),
    }
    for what, call in refused.items():
        with pytest.raises(ApiException) as raised:
            call()
        assert raised.value.status == 403, what
    request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec())
    for name in (OBSERVER.name, "external-secrets"):  # a token for itself or for another account
        with pytest.raises(ApiException) as raised:
            core.create_namespaced_service_account_token(name, OBSERVER.namespace, request)
        assert raised.value.status == 403, name
    assert "forbidden" in _login_jwt(account, name="external-secrets")


def test_the_only_rule_is_the_exporters_list() -> None:
    for cluster in CLUSTERS:
        rules = [rule for m in _rbac(cluster) if "rules" in m for rule in m["rules"]]
        assert rules == [{"apiGroups": [ESO], "resources": ["externalsecrets"], "verbs": ["list"]}], cluster
