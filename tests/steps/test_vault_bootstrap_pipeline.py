"""The vault-bootstrap pipeline as an operator runs it (`vaultflow run`), on a three-node sandbox.

Everything Argo would store or show (parameters, outputs, step logs, the
command's own output) is scanned for the unseal shares, the root token and its
accessor. Then what must never wedge Vault: a run failing between init and
configure (root is kept, the re-run converges), two runs at once (they take
turns through the lock), a run that cannot get the lock (it touches nothing).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions
import pytest

from vaultflow.gitops.catalog import load_catalog
from vaultflow.sandbox import lifecycle
from vaultflow.sandbox.openbao import OpenBaoServer, audit_stanza, free_port
from vaultflow.sandbox.platform import install_platform_accounts
from vaultflow.sandbox.state import SandboxState
from vaultflow.steps.keeper import open_keeper
from vaultflow.steps.kube.lease import LeaseLock
from vaultflow.steps.vault.init import init_vault
from vaultflow.steps.vault.lock import LEASE_NAME
from vaultflow.steps.vault.status import vault_status

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml"


@pytest.fixture(scope="module")
def raft_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxState]:
    directory = tmp_path_factory.mktemp("raft-sandbox")
    catalog = load_catalog(EXAMPLE).catalog
    state = lifecycle.up(directory, cluster_names=[c.name for c in catalog.clusters], vault_replicas=3).state
    try:
        install_platform_accounts(state, catalog)
        yield state
    finally:
        lifecycle.down(directory)


def bootstrap_command(
    addresses: str, keeper: str, run_dir: Path, *, kubeconfig: str, params: dict[str, str] | None = None
) -> tuple[list[str], dict[str, str]]:
    command = [
        sys.executable, "-m", "vaultflow", "run", "vault-bootstrap", "--quiet", "--run-dir", str(run_dir),
        "-p", f"vault-addresses={addresses}", "-p", f"keeper={keeper}", "-p", f"catalog={EXAMPLE}",
    ]  # fmt: skip
    for name, value in (params or {}).items():
        command += ["-p", f"{name}={value}"]
    return command, {**os.environ, "KUBECONFIG": kubeconfig, "COLUMNS": "200"}


def bootstrap(
    addresses: str,
    keeper: str,
    run_dir: Path,
    *,
    kubeconfig: str,
    env: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``vaultflow run vault-bootstrap`` in its own process, as an operator would run it."""
    command, environment = bootstrap_command(addresses, keeper, run_dir, kubeconfig=kubeconfig, params=params)
    return subprocess.run(
        command, capture_output=True, text=True, env={**environment, **(env or {})}, check=False
    )


def logs(run_dir: Path) -> str:
    return "\n".join(p.read_text() for p in run_dir.rglob("*.log"))


def step_output(run_dir: Path, step: str) -> Any:
    (status_file,) = run_dir.glob("*/status.json")
    nodes = json.loads(status_file.read_text())["status"]["nodes"].values()
    node = next(n for n in nodes if n.get("displayName") == step)
    return json.loads(node["outputs"]["result"])


def everything_shown(run_dirs: list[Path], processes: list[subprocess.CompletedProcess[str]]) -> str:
    files = [
        path.read_text(errors="replace") for run in run_dirs for path in run.rglob("*") if path.is_file()
    ]
    return "\n".join(files + [p.stdout + p.stderr for p in processes])


def test_three_nodes_bootstrap_then_rerun_without_change_and_without_leaks(
    raft_sandbox: SandboxState, tmp_path: Path
) -> None:
    addresses = ",".join(node.address for node in raft_sandbox.vault)
    keeper = (tmp_path / "keeper.json").as_uri()
    # Initialise with the step first, so that the test knows the root token the pipeline will use.
    init_vault(addresses, keeper, ca_cert=raft_sandbox.ca_file)
    material = open_keeper(keeper).load()
    assert material is not None and material.root_token
    root_token = material.root_token

    tls = {"ca-cert": raft_sandbox.ca_file}  # OpenBao's certificate chains to the sandbox CA
    first = bootstrap(addresses, keeper, tmp_path / "run-1", kubeconfig=raft_sandbox.kubeconfig, params=tls)
    assert first.returncode == 0, first.stdout + first.stderr
    assert vault_status(addresses, ca_cert=raft_sandbox.ca_file).sealed_replicas == []
    unseal = step_output(tmp_path / "run-1", "unseal")
    # Followers join either through this step or through their retry_join stanza, whichever is first;
    # unsealed with the leader's shares, they are members of its raft cluster either way.
    assert [r["sealed"] for r in unseal["replicas"]] == [False, False, False]
    configured = step_output(tmp_path / "run-1", "configure")
    assert configured["changes"]
    with pytest.raises(hvac.exceptions.Forbidden):  # root is revoked at the end
        hvac.Client(
            url=raft_sandbox.vault_addr, token=root_token, verify=raft_sandbox.ca_file
        ).auth.token.lookup_self()

    second = bootstrap(addresses, keeper, tmp_path / "run-2", kubeconfig=raft_sandbox.kubeconfig, params=tls)
    assert second.returncode == 0, second.stdout + second.stderr
    assert step_output(tmp_path / "run-2", "root-token") == {
        "source": "generated",
        "keeper": open_keeper(keeper).location,
    }
    assert step_output(tmp_path / "run-2", "configure") == {"product": "openbao", "changes": []}
    seeded = step_output(tmp_path / "run-1", "seed")
    # Without placeholders (a real platform) secrets with static keys wait for their owners.
    assert seeded["needs_human"] == [
        "prod/database:username",
        "prod/database-admin:username",
        "prod/database-admin:password",
        "prod/app-credentials:username",
        "shared/stripe:api-key",
    ]
    assert not any(s["created"] for s in step_output(tmp_path / "run-2", "seed")["secrets"])

    shown = everything_shown([tmp_path / "run-1", tmp_path / "run-2"], [first, second])
    assert "Succeeded" in shown
    for value in [*material.shares, root_token]:
        assert value not in shown


def test_sealed_vault_with_an_empty_keeper_fails_cleanly_and_changes_nothing(
    raft_sandbox: SandboxState, tmp_path: Path
) -> None:
    server = OpenBaoServer(tmp_path / "node", node_id="node-1")
    server.start()
    try:
        hvac.Client(url=server.address).sys.initialize(secret_shares=1, secret_threshold=1)
        keeper = (tmp_path / "keeper.json").as_uri()
        result = bootstrap(server.address, keeper, tmp_path / "run", kubeconfig=raft_sandbox.kubeconfig)
        assert result.returncode == 1
        assert "is already initialised but file keeper" in logs(tmp_path / "run")
        assert "Traceback" not in result.stdout + result.stderr
        assert not (tmp_path / "keeper.json").exists()
        assert vault_status(server.address).sealed_replicas == [server.address]
    finally:
        server.stop()


def test_unreachable_vault_fails_cleanly(raft_sandbox: SandboxState, tmp_path: Path) -> None:
    address = f"http://127.0.0.1:{free_port()}"
    keeper = (tmp_path / "keeper.json").as_uri()
    result = bootstrap(
        address,
        keeper,
        tmp_path / "run",
        kubeconfig=raft_sandbox.kubeconfig,
        env={"VAULTFLOW_VAULT_CONNECT_RETRIES": "0"},
    )
    assert result.returncode == 1
    assert f"Vault at {address} is unreachable" in logs(tmp_path / "run")
    assert "Traceback" not in result.stdout + result.stderr
    assert not (tmp_path / "keeper.json").exists()


def fresh_vault(directory: Path, node_id: str = "node-1") -> OpenBaoServer:
    """An uninitialised single-node OpenBao with the audit device configure requires."""
    server = OpenBaoServer(directory, node_id=node_id, extra_hcl=audit_stanza(directory / "audit.log"))
    server.start()
    return server


def test_a_run_failing_between_init_and_configure_keeps_root_and_the_rerun_converges(
    raft_sandbox: SandboxState, tmp_path: Path
) -> None:
    """The first run initialises, then fails at unseal (a replica of another Vault is in the list):
    the bootstrap role does not exist yet, so its exit handler must keep the root token."""
    leader, stranger = fresh_vault(tmp_path / "leader"), fresh_vault(tmp_path / "stranger", "stranger")
    try:
        hvac.Client(url=stranger.address).sys.initialize(secret_shares=1, secret_threshold=1)
        keeper = (tmp_path / "keeper.json").as_uri()
        kubeconfig = raft_sandbox.kubeconfig
        first = bootstrap(
            f"{leader.address},{stranger.address}", keeper, tmp_path / "run-1", kubeconfig=kubeconfig
        )
        assert first.returncode == 1
        assert step_output(tmp_path / "run-1", "init")["initialized_now"] is True
        assert f"Vault at {stranger.address} refused to accept an unseal share" in logs(tmp_path / "run-1")
        exit_handler = step_output(tmp_path / "run-1", "revoke-root")
        assert exit_handler["lock_held"] is True and exit_handler["revoked"] is False
        assert "the bootstrap identity cannot log in" in exit_handler["kept_because"]

        second = bootstrap(leader.address, keeper, tmp_path / "run-2", kubeconfig=kubeconfig)
        assert second.returncode == 0, logs(tmp_path / "run-2")
        assert step_output(tmp_path / "run-2", "root-token")["source"] == "keeper"
        assert step_output(tmp_path / "run-2", "revoke-root")["revoked"] is True

        third = bootstrap(leader.address, keeper, tmp_path / "run-3", kubeconfig=kubeconfig)
        assert third.returncode == 0, logs(tmp_path / "run-3")
        assert step_output(tmp_path / "run-3", "root-token")["source"] == "generated"
        assert step_output(tmp_path / "run-3", "configure")["changes"] == []
    finally:
        leader.stop()
        stranger.stop()


def test_two_concurrent_runs_take_turns_one_initialises_and_a_third_converges(
    raft_sandbox: SandboxState, tmp_path: Path
) -> None:
    server = fresh_vault(tmp_path / "vault")
    try:
        keeper = (tmp_path / "keeper.json").as_uri()
        kubeconfig = raft_sandbox.kubeconfig
        runs = [tmp_path / "run-a", tmp_path / "run-b"]
        processes = []
        for run_dir in runs:
            command, environment = bootstrap_command(
                server.address, keeper, run_dir, kubeconfig=kubeconfig, params={"lock-wait": "5m"}
            )
            processes.append(
                subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            )
        for process, run_dir in zip(processes, runs, strict=True):
            process.communicate(timeout=600)
            assert process.returncode == 0, logs(run_dir)
        initialised = [step_output(run_dir, "init")["initialized_now"] for run_dir in runs]
        assert sorted(initialised) == [False, True]  # exactly one initialised, the other waited its turn
        assert all(step_output(run_dir, "revoke-root")["revoked"] for run_dir in runs)

        third = bootstrap(server.address, keeper, tmp_path / "run-c", kubeconfig=kubeconfig)
        assert third.returncode == 0, logs(tmp_path / "run-c")
        assert step_output(tmp_path / "run-c", "root-token")["source"] == "generated"
        assert step_output(tmp_path / "run-c", "configure")["changes"] == []
    finally:
        server.stop()


def test_a_run_that_cannot_get_the_lock_names_the_holder_and_touches_nothing(
    raft_sandbox: SandboxState, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", raft_sandbox.kubeconfig)
    holder = LeaseLock("argo", LEASE_NAME, "another-bootstrap", duration_seconds=600, context="prod-eu")
    holder.acquire(0)
    server = fresh_vault(tmp_path / "vault")
    try:
        keeper = (tmp_path / "keeper.json").as_uri()
        result = bootstrap(
            server.address,
            keeper,
            tmp_path / "run",
            kubeconfig=raft_sandbox.kubeconfig,
            params={"lock-wait": "1s"},
        )
        assert result.returncode == 1
        assert "Lease argo/vaultflow-vault-bootstrap (context prod-eu) is held by another-bootstrap" in logs(
            tmp_path / "run"
        )
        assert step_output(tmp_path / "run", "revoke-root") == {
            "lock_held": False,
            "revoked": False,
            "keeper": "",
            "kept_because": "",
        }
        assert not vault_status(server.address).initialized
        assert not (tmp_path / "keeper.json").exists()
        assert holder.held_by_me()
    finally:
        holder.release()
        server.stop()
