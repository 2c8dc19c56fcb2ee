"""``vaultflow sandbox up|status|env|down``: idempotent start, clean stop, one message per failure."""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import hvac
import hvac.exceptions
import pytest
import yaml
from kubernetes import client, config
from typer.testing import CliRunner

from vaultflow.base.errors import InputError, OperationError
from vaultflow.cli.sandbox import app
from vaultflow.sandbox import lifecycle
from vaultflow.sandbox.layout import SandboxPaths
from vaultflow.sandbox.processes import port_is_listening, process_alive
from vaultflow.sandbox.state import SandboxState

runner = CliRunner()


def processes_mentioning(text: str) -> list[int]:
    """Every live process whose command line mentions ``text`` (the sandbox directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in command and process_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def assert_nothing_left(directory: Path, state: SandboxState) -> None:
    assert processes_mentioning(str(directory)) == []
    assert [port for port in state.ports() if port_is_listening(port)] == []
    assert not SandboxPaths(directory).has_runtime_files()


@pytest.fixture
def sandbox_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "sbx"
    yield directory
    lifecycle.down(directory)  # whatever a failing test left behind


def test_up_twice_is_harmless_and_down_leaves_nothing(sandbox_dir: Path) -> None:
    first = runner.invoke(app, ["up", "--dir", str(sandbox_dir), "--builtin-crds"])
    assert first.exit_code == 0, first.output
    assert "sandbox started" in first.output and "not a real platform" in first.output
    state = lifecycle.load_state(sandbox_dir)
    recorded = (sandbox_dir / "sandbox.json").read_text()

    second = runner.invoke(app, ["up", "--dir", str(sandbox_dir), "--builtin-crds"])
    assert second.exit_code == 0, second.output
    assert "already running (nothing changed)" in second.output
    assert (sandbox_dir / "sandbox.json").read_text() == recorded
    assert lifecycle.load_state(sandbox_dir).supervisor_pid == state.supervisor_pid

    status = runner.invoke(app, ["status", "--dir", str(sandbox_dir)])
    assert status.exit_code == 0, status.output
    assert "sealed, uninitialised" in status.output

    pids = [state.supervisor_pid, *(node.pid for node in state.vault)]
    down = runner.invoke(app, ["down", "--dir", str(sandbox_dir)])
    assert down.exit_code == 0, down.output
    assert not any(process_alive(pid) for pid in pids)
    assert_nothing_left(sandbox_dir, state)
    assert not sandbox_dir.exists()
    again = runner.invoke(app, ["down", "--dir", str(sandbox_dir)])
    assert again.exit_code == 0 and "nothing to stop" in again.output


def test_env_points_clients_at_the_sandbox(sandbox_state: SandboxState) -> None:
    result = runner.invoke(app, ["env", "--dir", sandbox_state.directory])
    assert result.exit_code == 0, result.output
    exports = dict(
        line.removeprefix("export ").split("=", 1)
        for line in result.output.splitlines()
        if line.startswith("export ")
    )
    assert exports["VAULT_ADDR"] == sandbox_state.vault_addr
    assert exports["AWS_ENDPOINT_URL"] == sandbox_state.aws_endpoint
    assert exports["AWS_DEFAULT_REGION"] and exports["AWS_ACCESS_KEY_ID"]

    kubeconfig = Path(exports["KUBECONFIG"])
    assert stat.S_IMODE(kubeconfig.stat().st_mode) == 0o600  # it carries bearer tokens
    contexts = {c["name"] for c in yaml.safe_load(kubeconfig.read_text())["contexts"]}
    assert contexts == {"workload-1", "workload-2", "mgmt"}
    for context in contexts:
        with config.new_client_from_config(config_file=str(kubeconfig), context=context) as api:
            assert "default" in {n.metadata.name for n in client.CoreV1Api(api).list_namespace().items}

    import boto3

    secrets = boto3.client(
        "secretsmanager",
        endpoint_url=exports["AWS_ENDPOINT_URL"],
        region_name=exports["AWS_DEFAULT_REGION"],
        aws_access_key_id=exports["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=exports["AWS_SECRET_ACCESS_KEY"],
    )
    secrets.create_secret(Name="sandbox/probe", SecretString="value")
    assert secrets.get_secret_value(SecretId="sandbox/probe")["SecretString"] == "value"


def test_status_json_reports_every_component(sandbox_state: SandboxState) -> None:
    import json

    result = runner.invoke(app, ["status", "--dir", sandbox_state.directory, "--output", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["healthy"] is True and "not a real platform" in report["sandbox"]
    kinds = [c["component"] for c in report["components"]]
    assert kinds.count("kubernetes") == 3 and kinds.count("openbao") == 1 and "aws (moto)" in kinds


def test_upstream_crds_are_registered_in_every_cluster(sandbox_dir: Path, schemas_dir: Path) -> None:
    state = lifecycle.up(sandbox_dir, clusters=1, crds=schemas_dir).state
    assert state.crd_source.startswith("upstream")
    for cluster in state.clusters:
        with config.new_client_from_config(config_file=state.kubeconfig, context=cluster.name) as api:
            names = {
                c.metadata.name
                for c in client.ApiextensionsV1Api(api).list_custom_resource_definition().items
            }
            assert {"externalsecrets.external-secrets.io", "pushsecrets.external-secrets.io"} <= names
            assert {"applications.argoproj.io", "workflows.argoproj.io"} <= names
            invalid = {
                "apiVersion": "external-secrets.io/v1",
                "kind": "SecretStore",
                "metadata": {"name": "s"},
                "spec": {"provider": {"vault": {"server": "x", "version": "v3"}}},
            }
            with pytest.raises(client.ApiException) as rejected:
                client.CustomObjectsApi(api).create_namespaced_custom_object(
                    "external-secrets.io", "v1", "default", "secretstores", invalid
                )
            assert rejected.value.status == 422 and "spec.provider.vault.version" in rejected.value.body


def test_minimal_crds_are_the_fallback(sandbox_state: SandboxState) -> None:
    assert sandbox_state.crd_source == "minimal built-in CRDs"
    with config.new_client_from_config(config_file=sandbox_state.kubeconfig, context="mgmt") as api:
        names = {
            c.metadata.name for c in client.ApiextensionsV1Api(api).list_custom_resource_definition().items
        }
    assert {
        "externalsecrets.external-secrets.io",
        "applications.argoproj.io",
        "workflows.argoproj.io",
    } <= names


def test_a_taken_port_is_one_clear_message_and_changes_nothing(sandbox_dir: Path) -> None:
    with socket.socket() as occupied:
        occupied.bind(("127.0.0.1", 0))
        occupied.listen()
        port = occupied.getsockname()[1]
        result = runner.invoke(
            app, ["up", "--dir", str(sandbox_dir), "--builtin-crds", "--vault-port", str(port)]
        )
    assert result.exit_code != 0
    assert isinstance(result.exception, InputError)
    assert str(result.exception) == (
        f"port {port} on 127.0.0.1 is already in use; choose another --vault-port or stop what listens there"
    )
    assert not sandbox_dir.exists()  # nothing was created


def test_a_sandbox_that_died_leaves_stale_pid_files_that_down_cleans(sandbox_dir: Path) -> None:
    state = lifecycle.up(sandbox_dir, clusters=1, builtin_crds=True).state
    os.kill(state.supervisor_pid, signal.SIGKILL)  # a crash: OpenBao, in its own session, keeps running
    deadline = time.monotonic() + 10
    while process_alive(state.supervisor_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process_alive(state.vault[0].pid)

    with pytest.raises(InputError) as stale:
        lifecycle.up(sandbox_dir, clusters=1, builtin_crds=True)
    assert str(stale.value).startswith(f"stale pid file {sandbox_dir.resolve()}/run/supervisor.pid (process ")
    assert "`vaultflow sandbox down --dir" in str(stale.value)
    with pytest.raises(OperationError, match="no sandbox is running"):
        lifecycle.load_state(sandbox_dir)

    result = lifecycle.down(sandbox_dir)
    assert any(entry.startswith("openbao-node-1") for entry in result.stopped)  # the orphan is stopped too
    assert_nothing_left(sandbox_dir, state)
    assert lifecycle.up(
        sandbox_dir, clusters=1, builtin_crds=True
    ).started  # and the directory is usable again


def test_a_directory_owned_by_a_running_sandbox_with_other_options(sandbox_state: SandboxState) -> None:
    result = runner.invoke(app, ["up", "--dir", sandbox_state.directory, "--clusters", "3", "--builtin-crds"])
    assert result.exit_code != 0
    assert isinstance(result.exception, InputError)
    message = str(result.exception)
    assert message.startswith(
        f"{sandbox_state.directory} is owned by a running sandbox (pid {sandbox_state.supervisor_pid};"
    )
    assert "started with other options" in message
    assert lifecycle.load_state(Path(sandbox_state.directory)).supervisor_pid == sandbox_state.supervisor_pid


def test_another_command_working_on_the_directory(sandbox_dir: Path) -> None:
    sandbox_dir.mkdir(parents=True)
    with (sandbox_dir / ".lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        held.write(f"{os.getpid()}\n")
        held.flush()
        with pytest.raises(InputError, match=r"another `vaultflow sandbox` command \(pid \d+\) is working"):
            lifecycle.up(sandbox_dir, builtin_crds=True)
    assert not SandboxPaths(sandbox_dir).has_runtime_files()


def test_bad_options_and_missing_sandbox_messages(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--clusters must be at least 1"):
        lifecycle.up(tmp_path / "x", clusters=0)
    with pytest.raises(InputError, match=r"--cluster-names: 'Prod_EU' is not a valid name"):
        lifecycle.up(tmp_path / "x", cluster_names=["Prod_EU"])
    with pytest.raises(InputError, match=r"--crds .*: directory does not exist"):
        lifecycle.up(tmp_path / "x", crds=tmp_path / "missing")
    assert not (tmp_path / "x").exists()
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError, match="exists and is not a directory"):
        lifecycle.up(tmp_path / "file")
    status = runner.invoke(app, ["status", "--dir", str(tmp_path / "nothing")])
    assert status.exit_code != 0 and isinstance(status.exception, OperationError)
    assert "no sandbox is running in" in str(status.exception)


def test_three_openbao_replicas_form_one_raft_cluster(sandbox_dir: Path) -> None:
    state = lifecycle.up(sandbox_dir, clusters=1, vault_replicas=3, builtin_crds=True).state
    assert len(state.vault) == 3
    nodes = [hvac.Client(url=node.address) for node in state.vault]
    assert all(node.sys.read_seal_status()["sealed"] and not node.sys.is_initialized() for node in nodes)

    leader, followers = nodes[0], nodes[1:]
    keys = leader.sys.initialize(secret_shares=1, secret_threshold=1)
    leader.sys.submit_unseal_key(keys["keys"][0])
    leader.token = keys["root_token"]
    deadline = time.monotonic() + 60
    # Each follower joins through retry_join once the leader is up; it then needs the same share.
    pending = list(followers)
    while pending and time.monotonic() < deadline:
        for node in list(pending):
            if node.sys.read_seal_status()["initialized"]:
                node.sys.submit_unseal_key(keys["keys"][0])
                pending.remove(node)
        time.sleep(0.2)
    members: list[str] = []
    while time.monotonic() < deadline:
        try:
            servers = leader.read("sys/storage/raft/configuration")["data"]["config"]["servers"]
            members = sorted(s["node_id"] for s in servers)  # autopilot makes them voters ~10 s later
        except hvac.exceptions.VaultError:
            members = []  # leader election still running
        if len(members) == 3 and not any(n.sys.read_seal_status()["sealed"] for n in nodes):
            break
        time.sleep(0.5)
    assert members == ["node-1", "node-2", "node-3"]
    assert not any(n.sys.read_seal_status()["sealed"] for n in nodes)

    lifecycle.down(sandbox_dir)
    assert_nothing_left(sandbox_dir, state)


def test_the_supervisor_survives_the_command_that_started_it(sandbox_dir: Path) -> None:
    script = (
        "import sys; from typer.main import get_command; from vaultflow.cli.sandbox import app; "
        "get_command(app)(['up', '--dir', sys.argv[1], '--builtin-crds', '--clusters', '1'])"
    )
    command = [sys.executable, "-c", script, str(sandbox_dir)]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr
    state = lifecycle.load_state(sandbox_dir)
    assert process_alive(state.supervisor_pid)
    assert lifecycle.status(sandbox_dir).healthy
