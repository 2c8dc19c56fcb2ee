"""The bootstrap steps end to end on the sandbox: real OpenBao, emulated clusters' TokenReview.

init -> unseal -> root token -> configure -> smoke-test -> revoke-root, then a
re-run that must regenerate root through the bootstrap identity, change
nothing and revoke again. And a run that fails before configure: revoke-root
must keep the only root token, or no identity could ever generate another.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import hvac
import hvac.exceptions
import pytest

from vaultflow.base.errors import OperationError
from vaultflow.gitops.catalog import load_catalog
from vaultflow.sandbox import lifecycle
from vaultflow.sandbox.openbao import OpenBaoServer, audit_stanza
from vaultflow.sandbox.platform import install_platform_accounts
from vaultflow.sandbox.state import SandboxState
from vaultflow.steps.keeper import open_keeper
from vaultflow.steps.vault.api import VaultApi
from vaultflow.steps.vault.configure import configure_vault
from vaultflow.steps.vault.init import init_vault
from vaultflow.steps.vault.login import kubernetes_login, service_account_token
from vaultflow.steps.vault.root_token import ensure_root_token, revoke_root_token
from vaultflow.steps.vault.smoke import smoke_test
from vaultflow.steps.vault.unseal import unseal_vault

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxState]:
    directory = tmp_path_factory.mktemp("sandbox")
    catalog = load_catalog(EXAMPLE).catalog
    state = lifecycle.up(directory, cluster_names=[c.name for c in catalog.clusters]).state
    try:
        install_platform_accounts(state, catalog)
        yield state
    finally:
        lifecycle.down(directory)


@pytest.fixture
def kubeconfig(sandbox: SandboxState, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", sandbox.kubeconfig)


def eso_client(state: SandboxState, cluster: str) -> VaultApi:
    jwt = service_account_token(namespace="external-secrets-system", name="external-secrets", context=cluster)
    return kubernetes_login(
        VaultApi(state.vault_addr, ca_cert=state.ca_file),
        mount=f"kubernetes-{cluster}",
        role="external-secrets",
        jwt=jwt,
    )


def test_full_bootstrap_then_a_rerun_that_changes_nothing(
    sandbox: SandboxState, kubeconfig: None, tmp_path: Path
) -> None:
    address, keeper = sandbox.vault_addr, (tmp_path / "unseal.json").as_uri()
    outputs: list[str] = []

    outputs.append(init_vault(address, keeper, ca_cert=sandbox.ca_file).model_dump_json())
    outputs.append(unseal_vault(address, keeper, ca_cert=sandbox.ca_file).model_dump_json())
    first_root = ensure_root_token(address, keeper, catalog=str(EXAMPLE), ca_cert=sandbox.ca_file)
    assert first_root.source == "keeper"
    configured = configure_vault(
        address, keeper, str(EXAMPLE), audit_file=str(tmp_path / "audit.log"), ca_cert=sandbox.ca_file
    )
    outputs.append(configured.model_dump_json())
    assert "mounted KV v2 at secret/" in configured.changes
    assert "enabled Kubernetes auth at auth/kubernetes-prod-eu for cluster prod-eu" in configured.changes
    assert "created role vaultflow-bootstrap on auth/kubernetes-prod-eu" in configured.changes
    assert not any("vaultflow-bootstrap on auth/kubernetes-prod-us" in c for c in configured.changes)

    # Secrets that the ESO roles must (or must not) be able to read afterwards.
    material = open_keeper(keeper).load()
    assert material is not None and material.root_token
    root_token = material.root_token
    root = hvac.Client(url=address, token=root_token, verify=sandbox.ca_file)
    for path in ("prod/database", "argocd/admin", "shared/stripe", "prod/payroll"):
        kv_write = root.secrets.kv.v2.create_or_update_secret  # configure requires check-and-set
        kv_write(path, secret={"value": f"v-{path}"}, cas=0, mount_point="secret")

    smoke = smoke_test(address, keeper, str(EXAMPLE), ca_cert=sandbox.ca_file)
    outputs.append(smoke.model_dump_json())
    assert [c.cluster for c in smoke.clusters] == ["prod-eu", "prod-us"]
    assert all(c.passed for c in smoke.clusters)

    revoked = revoke_root_token(address, keeper, catalog=str(EXAMPLE), ca_cert=sandbox.ca_file)
    outputs.append(revoked.model_dump_json())
    assert revoked.revoked
    with pytest.raises(hvac.exceptions.Forbidden):
        root.auth.token.lookup_self()
    kept = open_keeper(keeper).load()
    assert kept is not None and kept.root_token is None

    # ESO in prod-eu reads exactly its paths; prod-us reads its own, not prod-eu's.
    eu, us = eso_client(sandbox, "prod-eu"), eso_client(sandbox, "prod-us")
    kv_eu, kv_us = eu.client.secrets.kv.v2, us.client.secrets.kv.v2
    assert kv_eu.read_secret_version("argocd/admin", mount_point="secret", raise_on_deleted_version=True)
    assert kv_us.read_secret_version("shared/stripe", mount_point="secret", raise_on_deleted_version=True)
    for client, path in ((kv_us, "argocd/admin"), (kv_eu, "shared/stripe"), (kv_eu, "prod/payroll")):
        with pytest.raises(hvac.exceptions.Forbidden):
            client.read_secret_version(path, mount_point="secret", raise_on_deleted_version=True)

    # Re-run: the root token is gone, so it is regenerated through the bootstrap identity.
    again = ensure_root_token(address, keeper, catalog=str(EXAMPLE), ca_cert=sandbox.ca_file)
    assert again.source == "generated"
    rerun = configure_vault(
        address, keeper, str(EXAMPLE), audit_file=str(tmp_path / "audit.log"), ca_cert=sandbox.ca_file
    )
    assert rerun.changes == []
    assert all(c.passed for c in smoke_test(address, keeper, str(EXAMPLE), ca_cert=sandbox.ca_file).clusters)
    assert revoke_root_token(address, keeper, catalog=str(EXAMPLE), ca_cert=sandbox.ca_file).revoked

    # Nothing that was returned (what Argo would store and show) holds a share or a token.
    text = json.dumps(outputs)
    for value in [*kept.shares, root_token]:
        assert value not in text


def test_without_root_and_without_identity_the_step_says_what_is_missing(
    sandbox: SandboxState, kubeconfig: None, tmp_path: Path
) -> None:
    keeper = (tmp_path / "empty.json").as_uri()
    with pytest.raises(OperationError, match="is empty"):
        ensure_root_token(sandbox.vault_addr, keeper, ca_cert=sandbox.ca_file)


def test_a_run_failing_before_configure_keeps_root_and_the_rerun_converges(
    sandbox: SandboxState, kubeconfig: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Revoking root before the bootstrap role exists would strand Vault: every re-run would fail with
    ``invalid role name "vaultflow-bootstrap"`` (or no auth mount at all)."""
    server = OpenBaoServer(tmp_path / "vault", extra_hcl=audit_stanza(tmp_path / "vault" / "audit.log"))
    server.start()
    try:
        address, keeper = server.address, (tmp_path / "unseal.json").as_uri()
        audit = str(tmp_path / "audit.log")
        init_vault(address, keeper, shares=3, threshold=2)
        unseal_vault(address, keeper)
        assert ensure_root_token(address, keeper, catalog=str(EXAMPLE)).source == "keeper"
        with monkeypatch.context() as broken:
            broken.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
            with pytest.raises(OperationError, match="cannot reach Kubernetes"):
                configure_vault(address, keeper, str(EXAMPLE), audit_file=audit)  # the run fails here

        kept = revoke_root_token(address, keeper, catalog=str(EXAMPLE))  # its exit handler
        assert not kept.revoked and "the bootstrap identity cannot log in" in kept.kept_because
        material = open_keeper(keeper).load()
        assert material is not None and material.root_token
        assert VaultApi(address, token=material.root_token).token_works()

        # The re-run uses the kept token, configures, and only then revokes it.
        assert ensure_root_token(address, keeper, catalog=str(EXAMPLE)).source == "keeper"
        assert configure_vault(address, keeper, str(EXAMPLE), audit_file=audit).changes
        assert revoke_root_token(address, keeper, catalog=str(EXAMPLE)).revoked
        assert not VaultApi(address, token=material.root_token).token_works()

        # And from then on root is regenerated through the bootstrap identity.
        assert ensure_root_token(address, keeper, catalog=str(EXAMPLE)).source == "generated"
        assert configure_vault(address, keeper, str(EXAMPLE), audit_file=audit).changes == []
        assert revoke_root_token(address, keeper, catalog=str(EXAMPLE)).revoked
    finally:
        server.stop()


def test_revoke_without_a_catalog_keeps_root(sandbox: SandboxState, kubeconfig: None, tmp_path: Path) -> None:
    server = OpenBaoServer(tmp_path / "vault")
    server.start()
    try:
        keeper = (tmp_path / "unseal.json").as_uri()
        init_vault(server.address, keeper, shares=1, threshold=1)
        unseal_vault(server.address, keeper)
        result = revoke_root_token(server.address, keeper)
        assert not result.revoked and result.kept_because == "no catalog names the bootstrap identity"
    finally:
        server.stop()
