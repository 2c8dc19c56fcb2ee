"""The whole ``vault-bootstrap`` pipeline on the sandbox as its own service account, never admin.

The sandbox onboards every catalog cluster (``sandbox/accounts.onboard_clusters``: what ``vaultflow
cluster onboard`` does), then the pipeline runs on the local runner with the kubeconfig a pod of it
has: its own token in the workflows cluster, the onboarded kubeconfig Secret's contexts for prod-us.
The emulated API servers enforce the shipped RBAC. Each rule of the rendered bootstrap Roles of
prod-us is taken away in turn and the pipeline fails at the step that needs it, with the API
server's 403 naming it; with the full set it succeeds. No token reaches a step's log.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config

from vaultflow.gitops.bootstrap_rbac import bootstrap_rbac
from vaultflow.gitops.catalog import LoadedCatalog, load_catalog
from vaultflow.gitops.render import rbac_meta
from vaultflow.sandbox import lifecycle
from vaultflow.sandbox.accounts import onboard_clusters, pipeline_kubeconfig
from vaultflow.sandbox.layout import SandboxPaths
from vaultflow.sandbox.platform import install_platform_accounts
from vaultflow.sandbox.state import SandboxState
from vaultflow.workflows import runner
from vaultflow.workflows.registry import load_registry

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml"
LOADED: LoadedCatalog = load_catalog(EXAMPLE)
ACCOUNT = LOADED.catalog.vault.kubernetes_auth.bootstrap_service_account
REMOTE_ROLES = {
    resource.metadata.name: resource.to_manifest()
    for _, resource in bootstrap_rbac(LOADED.catalog, rbac_meta)["prod-us"]
    if resource.kind == "Role"
}


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxState]:
    directory = tmp_path_factory.mktemp("sandbox")
    state = lifecycle.up(directory, cluster_names=[c.name for c in LOADED.catalog.clusters]).state
    try:
        install_platform_accounts(state, LOADED.catalog)
        yield state
    finally:
        lifecycle.down(directory)


def admin(state: SandboxState, cluster: str) -> client.ApiClient:
    return config.new_client_from_config(config_file=state.kubeconfig, context=cluster)


def run_bootstrap(
    state: SandboxState, kubeconfig: Path, monkeypatch: pytest.MonkeyPatch
) -> runner.WorkflowResult:
    registry = load_registry()
    spec = runner.load(registry.document("vault-bootstrap"), lookup=registry.lookup)
    paths = SandboxPaths(Path(state.directory))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    parameters = {
        "vault-addresses": ",".join(node.address for node in state.vault),
        "ca-cert": state.ca_file,
        "keeper": paths.keeper.as_uri(),
        "catalog": str(EXAMPLE),
        "seed-placeholders": "true",
    }
    return runner.run(spec, parameters, run_root=paths.runs)


def tokens(state: SandboxState, kubeconfig: Path) -> list[str]:
    """Every token the bootstrap held: its kubeconfig's, and each long-lived one onboarding made."""
    held = [user["user"]["token"] for user in yaml.safe_load(kubeconfig.read_text())["users"]]
    for cluster in ("prod-eu", "prod-us"):
        for secret in client.CoreV1Api(admin(state, cluster)).list_secret_for_all_namespaces().items:
            if secret.type == "kubernetes.io/service-account-token" and secret.data:
                held.append(base64.b64decode(secret.data["token"]).decode())
    return held


def test_the_bootstrap_runs_as_its_account_and_needs_each_remote_rule(
    sandbox: SandboxState, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = onboard_clusters(sandbox, LOADED)
    assert "prod-us: Role vault-system/vaultflow-bootstrap-reviewer-token: created" in first
    again = onboard_clusters(sandbox, LOADED)
    assert [line for line in again if line.rsplit(": ", 1)[-1].startswith(("created", "updated"))] == []
    kubeconfig = pipeline_kubeconfig(sandbox, LOADED, ACCOUNT)
    assert kubeconfig.stat().st_mode & 0o077 == 0
    assert sorted(c["name"] for c in yaml.safe_load(kubeconfig.read_text())["contexts"]) == [
        "prod-eu",
        "prod-us",
    ]
    rbac = client.RbacAuthorizationV1Api(admin(sandbox, "prod-us"))

    # The first configure needs the reviewer's token of prod-us (Vault has none yet); the smoke test,
    # on every run, ESO's. Taken away in that order, each fails the step that needs it.
    for role, step in (
        ("vaultflow-bootstrap-reviewer-token", "configure"),
        ("vaultflow-bootstrap-eso-token", "smoke-test"),
    ):
        manifest = REMOTE_ROLES[role]
        namespace = manifest["metadata"]["namespace"]
        rbac.replace_namespaced_role(role, namespace, {**manifest, "rules": []})
        try:
            result = run_bootstrap(sandbox, kubeconfig, monkeypatch)
        finally:
            rbac.replace_namespaced_role(role, namespace, manifest)
        assert not result.succeeded
        failed = result.node(step)
        assert "403 Forbidden" in failed.message, failed.message
        assert (
            f'User "system:serviceaccount:{ACCOUNT.namespace}:{ACCOUNT.name}" cannot create resource '
            f'"serviceaccounts/token" in API group "" in the namespace "{namespace}"'
        ) in failed.message

    result = run_bootstrap(sandbox, kubeconfig, monkeypatch)
    assert result.succeeded, result.message
    assert result.node("smoke-test").phase.value == "Succeeded"

    logs = "\n".join(
        path.read_text(errors="replace")
        for path in SandboxPaths(Path(sandbox.directory)).runs.rglob("*")
        if path.is_file()
    )
    assert logs
    assert not [token for token in tokens(sandbox, kubeconfig) if token in logs]
