"""Faults the bootstrap must survive (issue 10), each reproduced on the real thing.

1. The active node dies mid-pipeline (three-node raft OpenBao, the sandbox's
   own processes): after unseal, once the followers are voters, the run
   finishes against the new leader; with the quorum gone it fails naming the
   stopped nodes and keeps root; either way a re-run after the nodes are back
   converges, and nothing secret is shown anywhere.
2. A corrupt keeper (truncated, not text, empty, the wrong shape, a keeper of
   another Vault) in a file and in cloud keepers (moto's AWS Secrets Manager,
   the GCP emulator): one message naming the keeper and what is wrong, exit 1,
   no traceback, and nothing written to Vault or the keeper.
3. The lock outlives its lease: a step longer than ``lock-duration`` keeps the
   lock from a second run; a step that finds it lost stops before Vault.

Faults at a step boundary are injected by ``run_with_fault``: the pipeline runs
as ``vaultflow run`` does, in its own process, with one step function wrapped so
that the fault happens when the real step returns.
"""

from __future__ import annotations

import datetime
import functools
import importlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import hvac
import hvac.exceptions
import pytest

from tests.steps.test_vault_bootstrap_pipeline import (
    EXAMPLE,
    bootstrap,
    bootstrap_command,
    everything_shown,
    fresh_vault,
    logs,
    step_output,
)
from vaultflow.base.errors import OperationError
from vaultflow.gitops.catalog import load_catalog
from vaultflow.sandbox import lifecycle
from vaultflow.sandbox.openbao import OpenBaoServer
from vaultflow.sandbox.platform import install_platform_accounts
from vaultflow.sandbox.state import SandboxState
from vaultflow.steps.keeper import Keeper, UnsealMaterial, WritePolicy, open_keeper
from vaultflow.steps.keeper.aws import AwsSecretsManagerKeeper
from vaultflow.steps.kube.lease import LeaseLock
from vaultflow.steps.vault.api import VaultApi
from vaultflow.steps.vault.init import initialise
from vaultflow.steps.vault.lock import LEASE_NAME
from vaultflow.steps.vault.status import vault_status

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCK_CONTEXT = "prod-eu"  # the example catalog's workflows cluster: where the bootstrap Lease lives
FAULT_ENV = "VAULTFLOW_TEST_FAULT"
QUICK = WritePolicy(timeout=0, first_wait=0.01)
OTHER_VAULTS = UnsealMaterial(shares=["b3RoZXItdmF1bHQ="], threshold=1, root_token="s.other-vaults-root")


def _sandbox(directory: Path, replicas: int) -> Iterator[SandboxState]:
    catalog = load_catalog(EXAMPLE).catalog
    state = lifecycle.up(
        directory, cluster_names=[c.name for c in catalog.clusters], vault_replicas=replicas
    ).state
    try:
        install_platform_accounts(state, catalog)
        yield state
    finally:
        lifecycle.down(directory)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxState]:
    """Clusters (the lock's Lease, Kubernetes auth) and moto; its own OpenBao is not used here."""
    yield from _sandbox(tmp_path_factory.mktemp("fault-sandbox"), 1)


@pytest.fixture
def raft_sandbox(tmp_path: Path) -> Iterator[SandboxState]:
    """A fresh three-node raft OpenBao (uninitialised) with its clusters, for one test to break."""
    yield from _sandbox(tmp_path / "raft-sandbox", 3)


def coordination(state: SandboxState) -> Any:
    """The coordination API of the cluster where the bootstrap Lease lives."""
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=state.kubeconfig, context=LOCK_CONTEXT)
    return client.CoordinationV1Api(api)


def lease(state: SandboxState, holder: str = "observer", seconds: int = 600) -> LeaseLock:
    """The bootstrap Lease of ``state``'s clusters, as ``holder`` would take it."""
    return LeaseLock("argo", LEASE_NAME, holder, duration_seconds=seconds, api=coordination(state))


def lease_holder(state: SandboxState) -> str:
    """Who holds the bootstrap Lease now ("" when released)."""
    record = lease(state).current()
    return record.holder if record is not None else ""


# --- faults at a step boundary, in the pipeline's own process --------------------------------------


def run_with_fault() -> None:
    """``vaultflow run`` with ``spec["step"]`` (``module:function``) wrapped so that ``spec["fault"]``
    happens once the real step has returned (called in the subprocess that ``faulty_bootstrap`` starts)."""
    spec = json.loads(os.environ[FAULT_ENV])
    module_name, _, name = spec["step"].partition(":")
    module = importlib.import_module(module_name)
    step = getattr(module, name)
    fault = FAULTS[spec["fault"]]

    @functools.wraps(step)
    def step_then_fault(*args: Any, **kwargs: Any) -> Any:
        result = step(*args, **kwargs)
        fault(spec)
        return result

    setattr(module, name, step_then_fault)
    from vaultflow.cli import main

    sys.argv = ["vaultflow", *spec["argv"]]
    main()


def fault_command(
    addresses: str,
    keeper: str,
    run_dir: Path,
    *,
    kubeconfig: str,
    fault: dict[str, Any],
    params: dict[str, str] | None = None,
) -> tuple[list[str], dict[str, str]]:
    """``bootstrap_command`` run through ``run_with_fault``, with the fault's spec in the environment."""
    command, environment = bootstrap_command(addresses, keeper, run_dir, kubeconfig=kubeconfig, params=params)
    spec = {**fault, "argv": command[3:]}  # after: python -m vaultflow
    runner = "from tests.steps.test_bootstrap_faults import run_with_fault; run_with_fault()"
    return [sys.executable, "-c", runner], {**environment, FAULT_ENV: json.dumps(spec)}


def faulty_bootstrap(
    addresses: str,
    keeper: str,
    run_dir: Path,
    *,
    kubeconfig: str,
    fault: dict[str, Any],
    env: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    command, environment = fault_command(
        addresses, keeper, run_dir, kubeconfig=kubeconfig, fault=fault, params=params
    )
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={**environment, **(env or {})},
        check=False,
    )


def _port_closed(address: str) -> bool:
    parts = urlsplit(address)
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=1).close()
    except OSError:
        return True
    return False


def _await(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _failure_tolerance(active: str, token: str, ca_file: str) -> int:
    client = hvac.Client(url=active, token=token, verify=ca_file)
    state = client.adapter.get("/v1/sys/storage/raft/autopilot/state")["data"]
    return int(state["failure_tolerance"])


def kill_active(spec: dict[str, Any]) -> None:
    """SIGKILL the active node (and ``spec["also"]`` more nodes), optionally once raft tolerates losing
    one (the followers promoted to voters); record which were killed in ``spec["record"]``."""
    pids: dict[str, int] = spec["pids"]
    active = next(address for address in pids if VaultApi(address, ca_cert=spec["ca"]).is_active())
    if spec.get("once_tolerant"):
        material = open_keeper(spec["keeper"]).load()
        assert material is not None and material.root_token
        token = material.root_token
        _await(lambda: _failure_tolerance(active, token, spec["ca"]) >= 1, "the followers to become voters")
    victims = [active, *[address for address in pids if address != active][: spec.get("also", 0)]]
    for address in victims:
        os.kill(pids[address], 9)
    for address in victims:
        _await(functools.partial(_port_closed, address), f"{address} to stop")
    Path(spec["record"]).write_text(json.dumps(victims))


def take_over_lock(spec: dict[str, Any]) -> None:
    """Another run takes the lease, as if it had expired: the next step must notice and stop."""
    from kubernetes import client

    from vaultflow.steps.kube import api_client

    coordination = client.CoordinationV1Api(api_client(LOCK_CONTEXT))
    lease = coordination.read_namespaced_lease(LEASE_NAME, "argo")
    lease.spec.holder_identity = spec["thief"]
    lease.spec.renew_time = datetime.datetime.now(datetime.UTC)
    lease.spec.lease_duration_seconds = 600
    coordination.replace_namespaced_lease(LEASE_NAME, "argo", lease)


def pause(spec: dict[str, Any]) -> None:
    """A step that takes longer than the lock's lease (a keeper write retried, a slow follower)."""
    time.sleep(float(spec["seconds"]))


FAULTS: dict[str, Callable[[dict[str, Any]], None]] = {
    "kill-active": kill_active,
    "take-over-lock": take_over_lock,
    "pause": pause,
}


# --- 1. the active node dies mid-pipeline ---------------------------------------------------------


def _pids(state: SandboxState) -> dict[str, int]:
    return {node.address: node.pid for node in state.vault}


def _restart(state: SandboxState, addresses: list[str]) -> SandboxState:
    for node in state.vault:
        if node.address in addresses:
            state = lifecycle.restart_vault(Path(state.directory), node=node.node_id).state
    return state


def test_the_active_node_killed_after_unseal_the_run_finishes_on_the_new_leader_and_a_rerun_converges(
    raft_sandbox: SandboxState, tmp_path: Path
) -> None:
    addresses = ",".join(node.address for node in raft_sandbox.vault)
    keeper = (tmp_path / "keeper.json").as_uri()
    record = tmp_path / "killed.json"
    fault = {
        "step": "vaultflow.steps.vault.unseal:unseal_vault",
        "fault": "kill-active",
        "pids": _pids(raft_sandbox),
        "keeper": keeper,
        "once_tolerant": True,
        "record": str(record),
        "ca": raft_sandbox.ca_file,
    }
    tls = {"ca-cert": raft_sandbox.ca_file}  # OpenBao's certificate chains to the sandbox CA
    first = faulty_bootstrap(
        addresses, keeper, tmp_path / "run-1", kubeconfig=raft_sandbox.kubeconfig, fault=fault, params=tls
    )
    assert first.returncode == 0, logs(tmp_path / "run-1")
    (killed,) = json.loads(record.read_text())
    assert "the active node is Vault at" in logs(tmp_path / "run-1")
    assert step_output(tmp_path / "run-1", "configure")["changes"]
    assert step_output(tmp_path / "run-1", "revoke-root")["revoked"] is True
    material = open_keeper(keeper).load()
    assert material is not None and material.root_token is None  # revoked and forgotten

    state = _restart(raft_sandbox, [killed])
    second = bootstrap(addresses, keeper, tmp_path / "run-2", kubeconfig=state.kubeconfig, params=tls)
    assert second.returncode == 0, logs(tmp_path / "run-2")
    unsealed = {r["address"]: r for r in step_output(tmp_path / "run-2", "unseal")["replicas"]}
    assert unsealed[killed]["was_sealed"] is True and unsealed[killed]["sealed"] is False
    assert step_output(tmp_path / "run-2", "root-token")["source"] == "generated"
    assert step_output(tmp_path / "run-2", "configure")["changes"] == []
    assert step_output(tmp_path / "run-2", "revoke-root")["revoked"] is True
    assert vault_status(addresses, raft_sandbox.ca_file).sealed_replicas == []

    shown = everything_shown([tmp_path / "run-1", tmp_path / "run-2"], [first, second])
    for value in material.shares:
        assert value not in shown


def test_with_the_quorum_gone_the_run_fails_naming_the_stopped_nodes_keeps_root_and_a_rerun_converges(
    raft_sandbox: SandboxState, tmp_path: Path
) -> None:
    addresses = ",".join(node.address for node in raft_sandbox.vault)
    keeper = (tmp_path / "keeper.json").as_uri()
    record = tmp_path / "killed.json"
    fault = {
        "step": "vaultflow.steps.vault.unseal:unseal_vault",
        "fault": "kill-active",
        "pids": _pids(raft_sandbox),
        "also": 1,
        "record": str(record),
        "ca": raft_sandbox.ca_file,
    }
    tls = {"ca-cert": raft_sandbox.ca_file}  # OpenBao's certificate chains to the sandbox CA
    quick = {"VAULTFLOW_VAULT_ACTIVE_TIMEOUT": "10", "VAULTFLOW_VAULT_CONNECT_RETRIES": "0"}
    first = faulty_bootstrap(
        addresses,
        keeper,
        tmp_path / "run-1",
        kubeconfig=raft_sandbox.kubeconfig,
        fault=fault,
        params=tls,
        env=quick,
    )
    assert first.returncode == 1
    killed = json.loads(record.read_text())
    (survivor,) = set(addresses.split(",")) - set(killed)
    failed = logs(tmp_path / "run-1")
    assert f"error: no active Vault node among {addresses.replace(',', ', ')} within 10s" in failed
    for address in killed:
        assert f"Vault at {address} is unreachable (connection refused)" in failed
    assert f"Vault at {survivor}: standby" in failed
    assert "Traceback" not in failed + first.stdout + first.stderr
    exit_handler = step_output(tmp_path / "run-1", "revoke-root")
    assert exit_handler["lock_held"] is True and exit_handler["revoked"] is False
    assert "no active Vault node among" in exit_handler["kept_because"]
    material = open_keeper(keeper).load()
    assert material is not None and material.root_token  # kept: the next run needs it
    assert lease_holder(raft_sandbox) == ""  # the lock was released

    state = _restart(raft_sandbox, killed)
    second = bootstrap(addresses, keeper, tmp_path / "run-2", kubeconfig=state.kubeconfig, params=tls)
    assert second.returncode == 0, logs(tmp_path / "run-2")
    assert step_output(tmp_path / "run-2", "root-token")["source"] == "keeper"
    assert step_output(tmp_path / "run-2", "configure")["changes"]
    assert step_output(tmp_path / "run-2", "revoke-root")["revoked"] is True
    assert vault_status(addresses, raft_sandbox.ca_file).sealed_replicas == []
    with pytest.raises(hvac.exceptions.Forbidden):
        hvac.Client(
            url=survivor, token=material.root_token, verify=raft_sandbox.ca_file
        ).auth.token.lookup_self()

    shown = everything_shown([tmp_path / "run-1", tmp_path / "run-2"], [first, second])
    for value in [*material.shares, material.root_token]:
        assert value not in shown


# --- 2. a corrupt keeper ---------------------------------------------------------------------------

SHARE_LIKE = "c2hhcmUtb25l"  # what must never be echoed: it stands for a share in the content


@dataclass(frozen=True)
class Corruption:
    content: bytes
    problem: str  # what the message must say is wrong, right after "<keeper> is corrupt: "


CORRUPTIONS = {
    "truncated": Corruption(
        b'{"shares": ["' + SHARE_LIKE.encode() + b'", "c2hh',
        "it is not JSON (Unterminated string starting at",
    ),
    "not-text": Corruption(b"\x1f\x8b\x08\x00" + SHARE_LIKE.encode() + b"\xff\xfe", "it is not UTF-8 text"),
    "blank": Corruption(b" \n", "it holds no data (2 bytes)"),
    "a-list": Corruption(b'["' + SHARE_LIKE.encode() + b'"]', "it holds a JSON list, not the object"),
    "init-output-pasted": Corruption(
        json.dumps(
            {"unseal_keys_b64": [SHARE_LIKE], "unseal_threshold": 1, "root_token": "s.pasted"}
        ).encode(),
        "it is not valid unseal material (shares: Field required; threshold: Field required; "
        "2 field(s) vaultflow does not write (not named here))",
    ),
    "threshold-unreachable": Corruption(
        json.dumps({"shares": [SHARE_LIKE], "threshold": 3}).encode(),
        "it is not valid unseal material (threshold 3 is more than the 1 shares)",
    ),
    "broken-reservation": Corruption(
        b'{"kind": "vaultflow-keeper-reservation"}',
        "it is not valid a reservation (reservation: Field required; reserved_at: Field required)",
    ),
}


@dataclass
class RawKeeper:
    """A keeper, and its backend's raw content beside it: what a human (or a bug) put there."""

    uri: str
    keeper: Keeper
    put: Callable[[bytes], None]
    raw: Callable[[], tuple[bytes, int]]  # the stored bytes, and how many writes the backend holds


@pytest.fixture(scope="module")
def gcp_emulator() -> Iterator[str]:
    from vaultflow.sandbox.gcp import GcpSecretManagerEmulator

    with GcpSecretManagerEmulator() as emulator:
        yield emulator.url


def secretsmanager(state: SandboxState) -> Any:
    return boto3.client(
        "secretsmanager",
        endpoint_url=state.aws_endpoint,
        verify=state.ca_file,  # moto serves HTTPS from the sandbox CA
        region_name=state.aws_region,
        aws_access_key_id="sandbox",
        aws_secret_access_key="sandbox",
    )


def file_keeper(tmp_path: Path) -> RawKeeper:
    path = tmp_path / "unseal.json"

    def put(content: bytes) -> None:
        path.write_bytes(content)
        path.chmod(0o600)

    return RawKeeper(path.as_uri(), open_keeper(path.as_uri()), put, lambda: (path.read_bytes(), 1))


def aws_keeper(state: SandboxState, name: str) -> RawKeeper:
    sm = secretsmanager(state)

    def put(content: bytes) -> None:
        try:
            sm.create_secret(Name=name, SecretString=content.decode())
        except UnicodeDecodeError:  # what is not text can only be stored as binary
            sm.create_secret(Name=name, SecretBinary=content)

    def raw() -> tuple[bytes, int]:
        value = sm.get_secret_value(SecretId=name)
        versions = sm.list_secret_version_ids(SecretId=name)["Versions"]
        content = value["SecretString"].encode() if "SecretString" in value else value["SecretBinary"]
        return content, len(versions)

    uri = f"aws-sm://{name}?region={state.aws_region}"
    return RawKeeper(uri, AwsSecretsManagerKeeper(name, region=state.aws_region, client=sm), put, raw)


def gcp_keeper(url: str, secret_id: str) -> RawKeeper:
    from tests.steps.test_keepers import gcp_client
    from vaultflow.steps.keeper.gcp import GcpSecretManagerKeeper

    gcp = gcp_client(url)
    name = f"projects/vaultflow-test/secrets/{secret_id}"

    def put(content: bytes) -> None:
        gcp.create_secret(
            parent="projects/vaultflow-test", secret_id=secret_id, secret={"replication": {"automatic": {}}}
        )
        gcp.add_secret_version(parent=name, payload={"data": content})

    def raw() -> tuple[bytes, int]:
        latest = gcp.access_secret_version(name=f"{name}/versions/latest").payload.data
        return bytes(latest), len(list(gcp.list_secret_versions(parent=name)))

    keeper = GcpSecretManagerKeeper("vaultflow-test", secret_id, client=gcp)
    return RawKeeper(f"gcp-sm://vaultflow-test/{secret_id}", keeper, put, raw)


@pytest.fixture(params=["file", "aws", "gcp"])
def raw_keeper(
    request: pytest.FixtureRequest, tmp_path: Path, sandbox: SandboxState, gcp_emulator: str
) -> RawKeeper:
    unique = f"keeper-{tmp_path.name}"  # one secret per test in the shared backends
    if request.param == "aws":
        return aws_keeper(sandbox, f"vaultflow/{unique}")
    if request.param == "gcp":
        return gcp_keeper(gcp_emulator, unique)
    return file_keeper(tmp_path)


@pytest.fixture(scope="module")
def blank_vault(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBaoServer]:
    """Never initialised: every test asserts it stays so."""
    server = OpenBaoServer(tmp_path_factory.mktemp("blank-vault"), node_id="blank")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def other_shape_vault(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBaoServer]:
    """Initialised with 3 shares and threshold 2, never unsealed: every test asserts it stays so."""
    server = OpenBaoServer(tmp_path_factory.mktemp("other-shape-vault"), node_id="other-shape")
    server.start()
    hvac.Client(url=server.address).sys.initialize(secret_shares=3, secret_threshold=2)
    yield server
    server.stop()


def untouched(vault: OpenBaoServer, *, initialized: bool) -> bool:
    status = VaultApi(vault.address).seal_status()
    return status.initialized is initialized and status.sealed and status.progress == 0


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_a_corrupt_keeper_is_one_message_naming_it_and_what_is_wrong_and_never_written_over(
    raw_keeper: RawKeeper, corruption: str, blank_vault: OpenBaoServer
) -> None:
    case = CORRUPTIONS[corruption]
    raw_keeper.put(case.content)
    before = raw_keeper.raw()
    keeper = raw_keeper.keeper
    attempts: list[Callable[[], object]] = [
        keeper.load,
        keeper.reserve,
        lambda: keeper.fill(OTHER_VAULTS),
        lambda: keeper.set_root_token(None),
        lambda: initialise(
            VaultApi(blank_vault.address), keeper, None, shares=1, threshold=1, pgp_keys=[], policy=QUICK
        ),
    ]
    for attempt in attempts:
        with pytest.raises(OperationError) as caught:
            attempt()
        message = str(caught.value)
        assert message.startswith(f"{keeper.location} is corrupt: {case.problem}"), message
        assert "vaultflow never writes over it" in message
        assert SHARE_LIKE not in message and "s.pasted" not in message
    assert raw_keeper.raw() == before  # the same bytes, no write in between
    assert untouched(blank_vault, initialized=False)


@pytest.mark.parametrize("vault_state", ["uninitialised", "initialised-with-another-shape"])
def test_a_keeper_of_another_vault_stops_init_before_anything_is_written(
    raw_keeper: RawKeeper,
    vault_state: str,
    blank_vault: OpenBaoServer,
    other_shape_vault: OpenBaoServer,
) -> None:
    raw_keeper.put(OTHER_VAULTS.to_json().encode())
    before = raw_keeper.raw()
    vault = blank_vault if vault_state == "uninitialised" else other_shape_vault
    with pytest.raises(OperationError) as caught:
        initialise(
            VaultApi(vault.address), raw_keeper.keeper, None, shares=3, threshold=2, pgp_keys=[], policy=QUICK
        )
    message = str(caught.value)
    assert message.startswith(raw_keeper.keeper.location)
    assert "the keeper belongs to another Vault" in message
    if vault_state != "uninitialised":
        assert (
            f"holds 1 shares with threshold 1, but Vault at {vault.address} was initialised with 3 shares "
            "and threshold 2" in message
        )
    for value in [*OTHER_VAULTS.shares, "s.other-vaults-root"]:
        assert value not in message
    assert raw_keeper.raw() == before
    assert untouched(vault, initialized=vault_state != "uninitialised")


@pytest.mark.parametrize(
    ("kind", "corruption"), [("file", "truncated"), ("file", "not-text"), ("aws", "not-text")]
)
def test_the_pipeline_stops_at_a_corrupt_keeper_with_one_message_and_writes_nothing(
    sandbox: SandboxState, tmp_path: Path, kind: str, corruption: str
) -> None:
    """Through ``vaultflow run``: exit 1, the message in the step's log, no traceback, Vault and the
    keeper as they were, the lock released."""
    case = CORRUPTIONS[corruption]
    raw = file_keeper(tmp_path) if kind == "file" else aws_keeper(sandbox, f"vaultflow/run-{tmp_path.name}")
    raw.put(case.content)
    before = raw.raw()
    server = fresh_vault(tmp_path / "vault")
    try:
        result = bootstrap(
            server.address,
            raw.uri,
            tmp_path / "run",
            kubeconfig=sandbox.kubeconfig,
            env=lifecycle.environment(sandbox),  # moto for aws-sm://
        )
        assert result.returncode == 1
        shown = logs(tmp_path / "run") + result.stdout + result.stderr
        assert f"error: {raw.keeper.location} is corrupt: {case.problem}" in shown
        assert "Traceback" not in shown and SHARE_LIKE not in shown
        assert untouched(server, initialized=False)
        assert raw.raw() == before
        assert lease_holder(sandbox) == ""
    finally:
        server.stop()


def test_the_pipeline_refuses_a_keeper_of_another_vault_before_unsealing(
    sandbox: SandboxState, tmp_path: Path
) -> None:
    raw = file_keeper(tmp_path)
    raw.put(OTHER_VAULTS.to_json().encode())
    before = raw.raw()
    server = fresh_vault(tmp_path / "vault")
    try:
        hvac.Client(url=server.address).sys.initialize(secret_shares=3, secret_threshold=2)
        result = bootstrap(server.address, raw.uri, tmp_path / "run", kubeconfig=sandbox.kubeconfig)
        assert result.returncode == 1
        shown = logs(tmp_path / "run") + result.stdout + result.stderr
        assert f"error: {raw.keeper.location} holds 1 shares with threshold 1" in shown
        assert "the keeper belongs to another Vault" in shown
        assert "Traceback" not in shown and OTHER_VAULTS.shares[0] not in shown
        assert not list((tmp_path / "run").glob("*/unseal.log"))  # the unseal step never ran
        assert untouched(server, initialized=True)  # no share was submitted
        assert raw.raw() == before
    finally:
        server.stop()


def test_a_keeper_of_another_vault_with_the_same_shape_is_refused_by_vault_and_nothing_changes(
    sandbox: SandboxState, tmp_path: Path
) -> None:
    """Same number of shares and threshold: only Vault can tell, when it cannot decrypt its keyring with
    them. The unseal step then names the keeper, the replica and Vault's reason; the progress is reset."""
    other = fresh_vault(tmp_path / "other", "other")
    server = fresh_vault(tmp_path / "vault")
    try:
        hvac.Client(url=server.address).sys.initialize(secret_shares=1, secret_threshold=1)
        foreign = hvac.Client(url=other.address).sys.initialize(secret_shares=1, secret_threshold=1)
        raw = file_keeper(tmp_path)
        material = UnsealMaterial(
            shares=foreign["keys_base64"], threshold=1, root_token=foreign["root_token"]
        )
        raw.put(material.to_json().encode())
        before = raw.raw()
        result = bootstrap(server.address, raw.uri, tmp_path / "run", kubeconfig=sandbox.kubeconfig)
        assert result.returncode == 1
        shown = logs(tmp_path / "run") + result.stdout + result.stderr
        assert f"the shares in {raw.keeper.location} do not unseal Vault at {server.address}" in shown
        assert "the keeper holds another Vault's material" in shown and "failed to decrypt keys" in shown
        assert "Traceback" not in shown
        for value in [*material.shares, foreign["root_token"]]:
            assert value not in shown
        assert untouched(server, initialized=True)
        assert raw.raw() == before
    finally:
        server.stop()
        other.stop()


# --- 3. the lock outlives its lease ----------------------------------------------------------------


class SecondRun:
    """Another bootstrap trying to take the lock for as long as the first one runs: it starts once the
    first holds the lock and stops once the first released it. A takeover counts only when it was of a
    lease that expired while still naming the first run (``leaseTransitions`` goes up; taking a
    released lease does not count one)."""

    def __init__(self, state: SandboxState, process: subprocess.Popen[bytes]) -> None:
        self.lease = lease(state, "second-run")
        self.api = coordination(state)
        self.process = process
        self.stolen_from: list[str] = []
        self.renewals: set[datetime.datetime] = set()
        self._thread = threading.Thread(target=self._contend, daemon=True)
        self._thread.start()

    def _transitions(self) -> int:
        return int(self.api.read_namespaced_lease(LEASE_NAME, "argo").spec.lease_transitions or 0)

    def _contend(self) -> None:
        first_seen = False
        while self.process.poll() is None:
            record = self.lease.current()
            if record is None or not record.holder.startswith("vault-bootstrap-"):
                if first_seen:
                    return  # released by the first run
                time.sleep(0.05)
                continue
            if not first_seen:
                first_seen, transitions = True, self._transitions()
            if record.renewed is not None:
                self.renewals.add(record.renewed)
            if self.lease.try_acquire() is None:
                if self._transitions() > transitions:
                    self.stolen_from.append(record.holder)
                self.lease.release()
                return
            time.sleep(0.2)

    def join(self) -> None:
        self._thread.join(30)


def test_a_step_longer_than_the_lease_keeps_the_lock_from_a_second_run(
    sandbox: SandboxState, tmp_path: Path
) -> None:
    """``lock-duration`` 2s, and the init step takes twice as long: renewed while it runs, the lock is
    never free for the second run that keeps trying, and the first run's exit handler still holds it."""
    server = fresh_vault(tmp_path / "vault")
    keeper = (tmp_path / "keeper.json").as_uri()
    command, environment = fault_command(
        server.address,
        keeper,
        tmp_path / "run",
        kubeconfig=sandbox.kubeconfig,
        fault={"step": "vaultflow.steps.vault.init:init_vault", "fault": "pause", "seconds": 4},
        params={"lock-duration": "2s"},
    )
    try:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        second = SecondRun(sandbox, process)
        assert process.wait(timeout=300) == 0, logs(tmp_path / "run")
        second.join()
        assert second.stolen_from == []
        assert len(second.renewals) > 1  # renewed while init ran, not only taken
        exit_handler = step_output(tmp_path / "run", "revoke-root")
        assert exit_handler["lock_held"] is True and exit_handler["revoked"] is True
        assert lease_holder(sandbox) in {"", "second-run"}  # released at the end (then maybe taken)
    finally:
        lease(sandbox, "second-run").release()
        server.stop()


def test_a_step_that_finds_the_lock_taken_by_another_run_stops_before_touching_vault(
    sandbox: SandboxState, tmp_path: Path
) -> None:
    server = fresh_vault(tmp_path / "vault")
    keeper = tmp_path / "keeper.json"
    fault = {
        "step": "vaultflow.steps.vault.status:check_status",
        "fault": "take-over-lock",
        "thief": "another-run",
    }
    try:
        result = faulty_bootstrap(
            server.address, keeper.as_uri(), tmp_path / "run", kubeconfig=sandbox.kubeconfig, fault=fault
        )
        assert result.returncode == 1
        shown = logs(tmp_path / "run")
        lost = (
            f"error: Lease argo/{LEASE_NAME} (context {LOCK_CONTEXT}) is no longer held by vault-bootstrap-"
        )
        assert lost in shown
        assert "another-run holds it now" in shown
        assert "Traceback" not in shown + result.stdout + result.stderr
        assert untouched(server, initialized=False) and not keeper.exists()
        assert step_output(tmp_path / "run", "revoke-root")["lock_held"] is False
        assert lease_holder(sandbox) == "another-run"  # the other run's lock is left alone
    finally:
        lease(sandbox, "another-run").release()
        server.stop()
