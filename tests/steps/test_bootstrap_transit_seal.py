"""The bootstrap steps under auto-unseal, for real: ``sandbox up --seal transit`` (three OpenBao nodes
whose ``seal "transit"`` is a second OpenBao, the unsealer) and the example catalog with that seal.

Init creates recovery shares, kept like unseal shares; unseal submits none (it
works with an empty keeper); root is regenerated with the recovery shares; a
restart of every node needs no share; a catalog whose seal is not the server's
is refused before anything changes; and a stopped unsealer is one clear line.
"""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from vaultflow.base.errors import OperationError
from vaultflow.base.retry import poll_until
from vaultflow.gitops.catalog import load_catalog
from vaultflow.sandbox import lifecycle
from vaultflow.sandbox.pki import CertificateAuthority
from vaultflow.sandbox.platform import install_platform_accounts
from vaultflow.sandbox.processes import process_alive
from vaultflow.sandbox.state import SandboxState
from vaultflow.steps.keeper import open_keeper
from vaultflow.steps.vault.api import VaultApi
from vaultflow.steps.vault.configure import configure_vault
from vaultflow.steps.vault.init import init_vault
from vaultflow.steps.vault.root_token import ensure_root_token, revoke_root_token
from vaultflow.steps.vault.smoke import smoke_test
from vaultflow.steps.vault.status import check_status
from vaultflow.steps.vault.unseal import unseal_vault

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml"
VAULT_ADDRESS_LINE = "  address: https://vault.vault-system.svc:8200\n"


def transit_catalog(path: Path, unsealer: str) -> str:
    """The example catalog with ``vault.seal`` set to the sandbox's unsealer."""
    text = EXAMPLE.read_text()
    assert VAULT_ADDRESS_LINE in text
    seal = (
        "  seal:\n    type: transit\n"
        f"    address: {unsealer}\n"
        "    mountPath: transit\n    keyName: vaultflow-sandbox-autounseal\n"
        "    tokenSecretRef: {name: vault-transit-seal, key: token}\n"
    )
    path.write_text(text.replace(VAULT_ADDRESS_LINE, VAULT_ADDRESS_LINE + seal, 1))
    return str(path)


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("transit") / "sbx"


@pytest.fixture(scope="module")
def sandbox(directory: Path) -> Iterator[SandboxState]:
    catalog = load_catalog(EXAMPLE).catalog
    names = [c.name for c in catalog.clusters]
    state = lifecycle.up(directory, cluster_names=names, vault_replicas=3, seal="transit").state
    try:
        install_platform_accounts(state, catalog)
        yield state
    finally:
        lifecycle.down(directory)


@pytest.fixture(scope="module")
def catalog(sandbox: SandboxState, tmp_path_factory: pytest.TempPathFactory) -> str:
    assert sandbox.unsealer is not None
    return transit_catalog(tmp_path_factory.mktemp("catalog") / "catalog.yaml", sandbox.unsealer.address)


@pytest.fixture(scope="module")
def keeper(tmp_path_factory: pytest.TempPathFactory) -> str:
    return (tmp_path_factory.mktemp("keeper") / "recovery.json").as_uri()


@pytest.fixture(autouse=True)
def kubeconfig(sandbox: SandboxState, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", sandbox.kubeconfig)


def addresses(state: SandboxState) -> str:
    return ",".join(node.address for node in state.vault)


def seal_statuses(state: SandboxState) -> list[tuple[str, bool, bool]]:
    return [
        (status.seal_type, status.initialized, status.sealed)
        for status in (VaultApi(node.address, ca_cert=state.ca_file).seal_status() for node in state.vault)
    ]


def test_the_unsealer_serves_tls_from_the_sandbox_ca_and_the_seal_verifies_it(
    sandbox: SandboxState, directory: Path, tmp_path: Path
) -> None:
    assert sandbox.unsealer is not None
    assert sandbox.unsealer.address.startswith("https://127.0.0.1:")
    # Every node's seal stanza reaches the unsealer over https and verifies it with the sandbox CA.
    for node in sandbox.vault:
        hcl = (Path(node.data_dir) / "openbao.hcl").read_text()
        assert re.search(rf'\n  address +=\s"{re.escape(sandbox.unsealer.address)}"\n', hcl)
        assert re.search(rf'\n  tls_ca_cert +=\s"{re.escape(str(Path(sandbox.ca_file).resolve()))}"\n', hcl)
    unsealer = VaultApi(sandbox.unsealer.address, ca_cert=sandbox.ca_file).seal_status()
    assert unsealer.initialized and not unsealer.sealed
    other = tmp_path / "other-ca.crt"
    other.write_text(CertificateAuthority().certificate_pem)
    with pytest.raises(OperationError, match="TLS verification failed"):
        VaultApi(sandbox.unsealer.address, ca_cert=str(other)).seal_status()


def test_a_catalog_whose_seal_is_not_the_servers_is_refused_before_init(
    sandbox: SandboxState, keeper: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check_status(addresses(sandbox), ca_cert=sandbox.ca_file) == "false"
    logged = capsys.readouterr().err.splitlines()
    assert len(logged) == 3 and all(
        line.endswith("uninitialised, sealed (auto-unseal: transit seal)") for line in logged
    )

    with pytest.raises(OperationError) as caught:
        init_vault(
            addresses(sandbox), keeper, catalog=str(EXAMPLE), ca_cert=sandbox.ca_file
        )  # the example catalog says Shamir
    message = str(caught.value)
    assert (
        "uses the transit seal (auto-unseal, recovery shares), but the catalog's vault.seal is shamir"
        in message
    )
    assert "Nothing was changed" in message and "\n" not in message
    assert open_keeper(keeper).content() is None
    assert all(not initialized for _, initialized, _ in seal_statuses(sandbox))


def test_bootstrap_under_transit_keeps_recovery_shares_and_submits_none(
    sandbox: SandboxState, catalog: str, keeper: str, tmp_path: Path
) -> None:
    vault = addresses(sandbox)
    outputs: list[str] = []

    initialised = init_vault(vault, keeper, shares=3, threshold=2, catalog=catalog, ca_cert=sandbox.ca_file)
    outputs.append(initialised.model_dump_json())
    assert initialised.initialized_now and initialised.recovery and initialised.seal_type == "transit"
    material = open_keeper(keeper).load()
    assert material is not None and material.recovery
    assert (len(material.shares), material.threshold) == (3, 2)
    assert material.root_token
    first_root = material.root_token

    # No share is submitted, nor read: the unseal step works with a keeper that holds nothing.
    empty_keeper = (tmp_path / "nothing-here.json").as_uri()
    unsealed = unseal_vault(vault, empty_keeper, catalog=catalog, join_timeout=60, ca_cert=sandbox.ca_file)
    outputs.append(unsealed.model_dump_json())
    assert unsealed.shares_submitted == 0
    assert [(r.sealed, r.seal_type) for r in unsealed.replicas] == [(False, "transit")] * 3
    assert seal_statuses(sandbox) == [("transit", True, False)] * 3

    assert ensure_root_token(vault, keeper, catalog=catalog, ca_cert=sandbox.ca_file).source == "keeper"
    audit = str(tmp_path / "audit.log")
    assert configure_vault(vault, keeper, catalog, audit_file=audit, ca_cert=sandbox.ca_file).changes
    assert all(c.passed for c in smoke_test(vault, keeper, catalog, ca_cert=sandbox.ca_file).clusters)
    assert revoke_root_token(vault, keeper, catalog=catalog, ca_cert=sandbox.ca_file).revoked
    assert not VaultApi(sandbox.vault_addr, token=first_root, ca_cert=sandbox.ca_file).token_works()

    # Re-run: root is regenerated through the bootstrap identity with the recovery shares.
    again = init_vault(vault, keeper, shares=3, threshold=2, catalog=catalog, ca_cert=sandbox.ca_file)
    assert not again.initialized_now and again.recovery
    assert unseal_vault(vault, keeper, catalog=catalog, ca_cert=sandbox.ca_file).shares_submitted == 0
    regenerated = ensure_root_token(vault, keeper, catalog=catalog, ca_cert=sandbox.ca_file)
    outputs.append(regenerated.model_dump_json())
    assert regenerated.source == "generated"
    kept = open_keeper(keeper).load()
    assert kept is not None and kept.root_token and kept.root_token != first_root
    assert VaultApi(sandbox.vault_addr, token=kept.root_token, ca_cert=sandbox.ca_file).token_works()
    assert configure_vault(vault, keeper, catalog, audit_file=audit, ca_cert=sandbox.ca_file).changes == []
    assert revoke_root_token(vault, keeper, catalog=catalog, ca_cert=sandbox.ca_file).revoked

    text = json.dumps(outputs)
    for value in [*material.shares, first_root, kept.root_token]:
        assert value not in text


def test_every_node_restarted_comes_back_unsealed_with_no_share(
    sandbox: SandboxState, directory: Path, catalog: str, tmp_path: Path
) -> None:
    before = {node.node_id: node.pid for node in sandbox.vault}
    restarted = lifecycle.restart_vault(directory)
    assert set(restarted.restarted) == set(before)
    assert all(node.pid != before[node.node_id] for node in restarted.state.vault)

    # Nobody submits a share: the nodes unseal themselves through the unsealer's transit key.
    poll_until(
        lambda: seal_statuses(restarted.state),
        lambda seen: seen == [("transit", True, False)] * 3,
        what="every restarted node to unseal itself",
        timeout=60,
        transient=(OperationError,),
    )
    assert lifecycle.status(directory).healthy
    empty_keeper = (tmp_path / "nothing-here.json").as_uri()
    assert (
        unseal_vault(
            addresses(restarted.state), empty_keeper, catalog=catalog, ca_cert=sandbox.ca_file
        ).shares_submitted
        == 0
    )

    # The seal's token reaches the nodes through their environment only: no file the sandbox writes
    # (state, configuration, logs) holds it, and its own file is private.
    token_file = directory / "openbao" / "unsealer" / "transit-seal.token"
    assert token_file.stat().st_mode & 0o777 == 0o600
    token = token_file.read_text().strip()
    written = [directory / "sandbox.json", *directory.glob("logs/*"), *directory.glob("openbao/*/openbao.*")]
    assert len(written) > 3 and all(token not in path.read_text(errors="replace") for path in written)


def test_a_stopped_unsealer_is_one_clear_error_and_up_repairs_it(
    sandbox: SandboxState, directory: Path, catalog: str, keeper: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = lifecycle.load_state(directory)
    assert state.unsealer is not None
    os.kill(state.unsealer.pid, signal.SIGKILL)
    poll_until(
        lambda: process_alive(state.unsealer.pid),
        lambda alive: not alive,
        what="the unsealer to stop",
        timeout=10,
    )

    status = lifecycle.status(directory)
    unsealer = next(c for c in status.components if c.name == "unsealer")
    assert not status.healthy and not unsealer.healthy
    assert unsealer.state.startswith("not running: the Vault nodes cannot start")

    # The running nodes stay unsealed; a restarted one cannot start without its seal.
    with pytest.raises(OperationError) as caught:
        lifecycle.restart_vault(directory, node="node-1")
    message = str(caught.value)
    assert "OpenBao node-1 cannot start: its transit seal does not answer (connection refused)" in message
    assert "\n" not in message

    monkeypatch.setenv("VAULTFLOW_VAULT_CONNECT_RETRIES", "0")
    with pytest.raises(OperationError) as unsealing:
        unseal_vault(addresses(state), keeper, catalog=catalog, join_timeout=5, ca_cert=sandbox.ca_file)
    problem = str(unsealing.value)
    assert problem.startswith("1 of 3 Vault replicas are not unsealed")
    assert f"Vault at {state.vault[0].address} is unreachable (connection refused)" in problem
    assert "exits when its seal does not answer (the unsealer Vault or the cloud KMS)" in problem
    assert "\n" not in problem

    # `up` with the same options restarts the unsealer, then the node, which unseals itself.
    repaired = lifecycle.up(
        directory, cluster_names=list(state.spec.workload_clusters), vault_replicas=3, seal="transit"
    )
    assert any("transit unsealer" in line for line in repaired.repaired)
    assert any("OpenBao node-1" in line and "auto-unsealed" in line for line in repaired.repaired)
    poll_until(
        lambda: seal_statuses(repaired.state),
        lambda seen: seen == [("transit", True, False)] * 3,
        what="node-1 to unseal itself once the unsealer is back",
        timeout=60,
        transient=(OperationError,),
    )
    assert lifecycle.status(directory).healthy
