"""Start, inspect, repair and stop a sandbox: the Python API behind ``vaultflow sandbox ...``.

    state = up(Path(".sandbox"), clusters=2).state   # idempotent for the same options
    state.vault_addr, state.kubeconfig, state.aws_endpoint
    restart_vault(Path(".sandbox"), node="node-1")   # one OpenBao node, on its data
    down(Path(".sandbox"))                           # stops what up started, keeps the state
    down(Path(".sandbox"), purge=True)               # ... and removes it

``up`` spawns ``python -m vaultflow.sandbox.supervisor`` in its own session (it outlives
the command) and waits for it to record the endpoints. Like ``minikube stop``/``start``,
``down`` keeps every piece of state (OpenBao's raft data, the clusters' objects and keys,
the keeper, runs and GitOps repository) and ``up`` brings the same platform back: the
same Vault, initialised and sealed, on the same ports where it can. ``up`` also repairs
what died: an OpenBao node of a running sandbox is restarted on its data, the leftovers
of a supervisor that crashed are stopped and the sandbox started again. Each way a
directory can be unusable has one message: a port that is taken, a directory that holds
a sandbox of other options, another ``vaultflow sandbox`` command working on it right now.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from vaultflow.base.errors import InputError, OperationError
from vaultflow.sandbox.argocd.reconciliation import (
    DEFAULT_RECONCILIATION_JITTER,
    DEFAULT_RECONCILIATION_TIMEOUT,
)
from vaultflow.sandbox.crd_sources import resolve_crd_source
from vaultflow.sandbox.kube.validation import dns1123_label
from vaultflow.sandbox.layout import SandboxPaths
from vaultflow.sandbox.monitoring import missing_packages
from vaultflow.sandbox.postgres import POSTGRES_PID, sandbox_postgres_dir
from vaultflow.sandbox.processes import (
    port_is_free,
    port_is_listening,
    process_alive,
    process_matches,
    read_pid,
    stop_process,
)
from vaultflow.sandbox.state import (
    DEFAULT_AZURE_VAULTS,
    MANAGEMENT_CLUSTER,
    PostgresSpec,
    SandboxSpec,
    SandboxState,
    VaultNode,
    dump,
    read_spec,
    read_state,
    write_json_atomically,
)

DEFAULT_DIR = Path(".sandbox")
SEALS = ("shamir", "transit")  # --seal: what the sandbox's Vault nodes are sealed with
START_TIMEOUT = 120.0
_REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class UpResult:
    state: SandboxState
    started: bool  # False: the same sandbox was already running
    resumed: bool = False  # started on the state a previous run kept (the same Vault, clusters, ...)
    repaired: tuple[str, ...] = ()  # what up restarted or cleaned up on the way, one line each


@dataclass(frozen=True)
class DownResult:
    stopped: list[str] = field(default_factory=list)
    found: bool = True
    purged: bool = False


@dataclass(frozen=True)
class ComponentStatus:
    component: str
    name: str
    endpoint: str
    pid: int | None
    state: str
    healthy: bool


@dataclass(frozen=True)
class SandboxStatus:
    state: SandboxState
    components: list[ComponentStatus]

    @property
    def healthy(self) -> bool:
        return all(c.healthy for c in self.components)


def workload_cluster_names(count: int) -> tuple[str, ...]:
    return tuple(f"workload-{index}" for index in range(1, count + 1))


def _cluster_names(count: int, names: Sequence[str] | None) -> tuple[str, ...]:
    if not names:
        if count < 1:
            raise InputError(f"--clusters must be at least 1 (got {count})")
        return workload_cluster_names(count)
    for name in names:
        if dns1123_label(name) is not None:
            raise InputError(
                f"--cluster-names: {name!r} is not a valid name (lowercase letters, digits and '-')"
            )
    if len(set(names)) != len(names) or MANAGEMENT_CLUSTER in names:
        raise InputError(
            f"--cluster-names: names must be unique and not {MANAGEMENT_CLUSTER!r} (got {', '.join(names)})"
        )
    return tuple(names)


_KEY_VAULT_NAME = re.compile(r"^[a-zA-Z](?!.*--)[a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$")


def _azure_vault_names(names: Sequence[str] | None) -> tuple[str, ...]:
    """Key Vault names as Azure allows them: 3-24 letters, digits and single dashes, a letter first."""
    if not names:
        return DEFAULT_AZURE_VAULTS
    for name in names:
        if not _KEY_VAULT_NAME.match(name):
            raise InputError(
                f"--azure-vaults: {name!r} is not a Key Vault name (3-24 letters, digits and single dashes, "
                "starting with a letter, ending with a letter or digit)"
            )
    if len(set(names)) != len(names):
        raise InputError(f"--azure-vaults: names must be unique (got {', '.join(names)})")
    return tuple(names)


def _supervisor_marker(directory: Path) -> str:
    return f"vaultflow.sandbox.supervisor --dir {directory}"


def _pid_file_marker(paths: SandboxPaths, pid_file: Path) -> str:
    if pid_file == paths.supervisor_pid:
        return _supervisor_marker(paths.root)
    if pid_file.stem.startswith("monitoring-"):  # its data directory is in its command line
        return str(paths.monitoring / pid_file.stem.removeprefix("monitoring-"))
    if pid_file.name == POSTGRES_PID:  # postgres -D <its data directory>
        return str(sandbox_postgres_dir(paths.root) / "data")
    node_id = pid_file.stem.removeprefix("openbao-")
    return str(paths.openbao_config(node_id))


@contextlib.contextmanager
def _exclusive(paths: SandboxPaths) -> Iterator[None]:
    """One ``up``/``down`` at a time per directory; a refused ``up`` leaves the directory as it was."""
    created = not paths.root.exists()
    paths.root.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(paths.lock, os.O_RDWR | os.O_CREAT, 0o644)
    locked = False
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 32, 0).decode(errors="replace").strip() or "?"
            raise InputError(
                f"{paths.root}: another `vaultflow sandbox` command (pid {holder}) "
                "is working on this directory; wait for it to finish"
            ) from None
        locked = True
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        if locked and not paths.has_state() and not paths.logs.exists():
            paths.lock.unlink(missing_ok=True)
        if locked:
            # Released explicitly: closing only drops this descriptor, and a process that shares its
            # open file description would keep the directory locked for the next command.
            fcntl.flock(descriptor, fcntl.LOCK_UN)
        os.close(descriptor)
        if created:
            with contextlib.suppress(OSError):
                paths.root.rmdir()  # only if nothing else was put there


def _check_directory(directory: Path) -> Path:
    if directory.exists() and not directory.is_dir():
        raise InputError(f"--dir {directory}: exists and is not a directory")
    return directory.resolve()


def _running_supervisor(paths: SandboxPaths) -> int | None:
    pid = read_pid(paths.supervisor_pid)
    if pid is not None and process_matches(pid, _supervisor_marker(paths.root)):
        return pid
    return None


@dataclass(frozen=True)
class _Leftovers:
    stopped: list[str]  # "openbao-node-1 (pid N)"
    stale: list[str]  # pid files of processes that are gone


def _stop_leftovers(paths: SandboxPaths) -> _Leftovers:
    """What a sandbox that stopped without ``down`` left: stop its processes, remove its pid files.

    A process is stopped only when its command line proves it is this sandbox's
    (a reused pid is left alone).
    """
    leftovers = _Leftovers([], [])
    for pid_file in sorted(paths.pid_files(), key=lambda path: path != paths.supervisor_pid):
        pid = read_pid(pid_file)
        if pid is not None and process_matches(pid, _pid_file_marker(paths, pid_file)):
            stop_process(pid)
            leftovers.stopped.append(f"{pid_file.stem} (pid {pid})")
        else:
            leftovers.stale.append(f"{pid_file.name} (process {pid} is not running)")
        pid_file.unlink(missing_ok=True)
    return leftovers


def _repair_lines(leftovers: _Leftovers) -> list[str]:
    lines = [f"stopped {entry}, left running by a supervisor that is gone" for entry in leftovers.stopped]
    return lines + [f"removed the stale pid file {entry}" for entry in leftovers.stale]


def up(
    directory: Path = DEFAULT_DIR,
    *,
    clusters: int = 2,
    cluster_names: Sequence[str] | None = None,
    vault_replicas: int = 1,
    vault_port: int = 0,
    crds: Path | None = None,
    builtin_crds: bool = False,
    azure_vaults: Sequence[str] | None = None,
    eso_concurrent: int = 1,
    eso_vault_token_cache: bool = False,
    argocd_reconciliation_timeout: float = DEFAULT_RECONCILIATION_TIMEOUT,
    argocd_reconciliation_jitter: float = DEFAULT_RECONCILIATION_JITTER,
    seal: str = "shamir",
    postgres: PostgresSpec | None = None,
    timeout: float = START_TIMEOUT,
) -> UpResult:
    """Start a sandbox in ``directory``, or return the one already running there with these options.

    ``cluster_names`` names the workload clusters (and kubeconfig contexts);
    without it they are ``workload-1`` .. ``workload-<clusters>``. ``azure_vaults``
    names the emulated Key Vaults (``https://<name>.vault.azure.net``; default ``sandbox``).
    ``argocd_reconciliation_timeout``/``_jitter`` (seconds) are Argo CD's ``timeout.reconciliation``
    and ``timeout.reconciliation.jitter``: how long a push waits when nobody asks Argo CD to refresh.
    ``seal``: ``shamir`` (the default: bootstrap unseals with shares) or ``transit`` (a second OpenBao,
    the unsealer, auto-unseals every node; ``vaultflow.sandbox.unsealer``). OpenBao (and the unsealer)
    always serve TLS with certificates from the sandbox CA (``VAULT_CACERT`` in ``environment``).
    ``postgres``: a PostgreSQL server holding what it names (``vaultflow.sandbox.postgres.postgres_spec``
    of the catalog, when one of its rotations names a postgres credential).
    """
    names = _cluster_names(clusters, cluster_names)
    vaults = _azure_vault_names(azure_vaults)
    if vault_replicas < 1:
        raise InputError(f"--vault-replicas must be at least 1 (got {vault_replicas})")
    if vault_port and not 1024 <= vault_port <= 65535:
        raise InputError(f"--vault-port must be between 1024 and 65535 (got {vault_port})")
    if eso_concurrent < 1:
        raise InputError(f"--eso-concurrent must be at least 1 (got {eso_concurrent})")
    for option, seconds in (
        ("--argocd-reconciliation-timeout", argocd_reconciliation_timeout),
        ("--argocd-reconciliation-jitter", argocd_reconciliation_jitter),
    ):
        if seconds < 0:
            raise InputError(f"{option} cannot be negative (got {seconds:g}s)")
    if seal not in SEALS:
        raise InputError(f"--seal must be one of {', '.join(SEALS)} (got {seal!r})")
    source = resolve_crd_source(crds, builtin=builtin_crds)
    spec = SandboxSpec(
        workload_clusters=names,
        management_cluster=MANAGEMENT_CLUSTER,
        vault_replicas=vault_replicas,
        vault_port=vault_port,
        crd_dir=str(source.directory),
        crd_upstream=source.upstream,
        azure_vaults=vaults,
        eso_concurrent=eso_concurrent,
        eso_vault_token_cache=eso_vault_token_cache,
        argocd_reconciliation_timeout=argocd_reconciliation_timeout,
        argocd_reconciliation_jitter=argocd_reconciliation_jitter,
        seal="transit" if seal == "transit" else "shamir",
        postgres=postgres,
    )
    return _up(_check_directory(directory), spec, timeout)


def kept_spec(directory: Path = DEFAULT_DIR) -> SandboxSpec | None:
    """The options of the sandbox in ``directory`` (running or stopped), None when it holds none."""
    paths = SandboxPaths(_check_directory(directory))
    return read_spec(paths.root) if paths.spec.is_file() else None


def resume(directory: Path = DEFAULT_DIR, *, timeout: float = START_TIMEOUT) -> UpResult:
    """``up`` with the options the sandbox in ``directory`` was started with (``vaultflow sandbox up``
    without options on a directory that holds one)."""
    spec = kept_spec(directory)
    if spec is None:
        raise InputError(
            f"{directory} holds no sandbox to start again; start one with `vaultflow sandbox up`"
        )
    return _up(_check_directory(directory), spec, timeout)


def _up(root: Path, spec: SandboxSpec, timeout: float) -> UpResult:
    paths = SandboxPaths(root)
    with _exclusive(paths):
        running = _running_supervisor(paths)
        if running is not None:
            return _running(paths, running, spec)
        repaired = _repair_lines(_stop_leftovers(paths))
        kept = read_spec(root) if paths.spec.is_file() else None
        if kept is not None and kept != spec:
            raise InputError(
                f"{root} holds a stopped sandbox started with other options ({kept.describe()}); "
                f"start it with those options (or `vaultflow sandbox up --dir {root}` without any), "
                f"or remove it first with `vaultflow sandbox down --purge --dir {root}`"
            )
        if spec.vault_port and not port_is_free(spec.vault_port):
            raise InputError(
                f"port {spec.vault_port} on 127.0.0.1 is already in use; "
                "choose another --vault-port or stop what listens there"
            )
        resumed = kept is not None
        state = _start(paths, spec, timeout, fresh=not resumed)
        return UpResult(state, started=True, resumed=resumed, repaired=tuple(repaired))


def _running(paths: SandboxPaths, supervisor: int, spec: SandboxSpec) -> UpResult:
    """``up`` on a running sandbox: the same options change nothing but restart what died."""
    state = read_state(paths.root)
    if state is None or state.spec != spec:
        described = state.spec.describe() if state is not None else "still starting"
        raise InputError(
            f"{paths.root} is owned by a running sandbox (pid {supervisor}; {described}) "
            "started with other options; "
            f"run `vaultflow sandbox down --dir {paths.root}` first or choose another --dir"
        )
    nodes = [*([state.unsealer] if state.unsealer is not None else []), *state.vault]
    dead = [node.node_id for node in nodes if not process_alive(node.pid)]
    if not dead:
        return UpResult(state, started=False)
    state = _request_restart(paths, supervisor, dead)
    now = "now auto-unsealed" if state.unsealer is not None else "now sealed"
    repaired = tuple(
        "restarted the transit unsealer on its data (it had stopped; unsealed again)"
        if state.unsealer is not None and node_id == state.unsealer.node_id
        else f"restarted OpenBao {node_id} on its data (it had stopped; {now})"
        for node_id in dead
    )
    return UpResult(state, started=False, repaired=repaired)


RESTART_TIMEOUT = 90.0


def _request_restart(paths: SandboxPaths, supervisor: int, node_ids: list[str]) -> SandboxState:
    """Ask the supervisor (which owns the OpenBao processes) to restart ``node_ids``, wait for its answer."""
    request_id = uuid.uuid4().hex
    paths.restart_done.unlink(missing_ok=True)
    write_json_atomically(paths.restart_request, json.dumps({"id": request_id, "nodes": node_ids}) + "\n")
    os.kill(supervisor, signal.SIGHUP)
    deadline = time.monotonic() + RESTART_TIMEOUT
    while time.monotonic() < deadline:
        try:
            answer = json.loads(paths.restart_done.read_text())
        except (FileNotFoundError, ValueError):
            answer = {}
        if answer.get("id") == request_id:
            paths.restart_done.unlink(missing_ok=True)
            if answer.get("error"):
                raise OperationError(f"restarting OpenBao {', '.join(node_ids)}: {answer['error']}")
            state = read_state(paths.root)
            assert state is not None
            return state
        if not process_alive(supervisor):
            raise OperationError(
                f"the sandbox supervisor (pid {supervisor}) stopped; see {paths.supervisor_log}"
            )
        time.sleep(0.1)
    raise OperationError(
        f"OpenBao {', '.join(node_ids)} did not restart within {RESTART_TIMEOUT:.0f}s; "
        f"see {paths.supervisor_log}"
    )


@dataclass(frozen=True)
class RestartResult:
    state: SandboxState
    restarted: tuple[str, ...]


def restart_vault(directory: Path = DEFAULT_DIR, *, node: str | None = None) -> RestartResult:
    """Restart one OpenBao node (or every node) of the running sandbox on its data and ports.

    The node comes back sealed, as a restarted Vault pod does: unseal it with the
    keeper's shares (the bootstrap pipeline does).
    """
    root = directory.resolve()
    paths = SandboxPaths(root)
    with _exclusive(paths):
        state = load_state(directory)
        known = [n.node_id for n in state.vault]
        if state.unsealer is not None and node == state.unsealer.node_id:
            return RestartResult(_request_restart(paths, state.supervisor_pid, [node]), (node,))
        if node is not None and node not in known:
            raise InputError(f"--node {node}: the sandbox's OpenBao nodes are {', '.join(known)}")
        targets = [node] if node is not None else known
        return RestartResult(_request_restart(paths, state.supervisor_pid, targets), tuple(targets))


def _start(paths: SandboxPaths, spec: SandboxSpec, timeout: float, *, fresh: bool) -> SandboxState:
    """Spawn the supervisor and wait for its state; a failed fresh start leaves only its log behind,
    a failed restart leaves the kept state as it was."""
    for folder in (paths.run, paths.logs):
        folder.mkdir(parents=True, exist_ok=True)
    paths.gitignore.write_text("# a vaultflow sandbox: local runtime state, never commit it\n*\n")
    paths.supervisor_error.unlink(missing_ok=True)
    write_json_atomically(paths.spec, dump(spec))
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(_REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    with paths.supervisor_log.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "vaultflow.sandbox.supervisor", "--dir", str(paths.root)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=paths.root,
            env=environment,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = read_state(paths.root)
        if state is not None and state.supervisor_pid == process.pid:
            return state
        if process.poll() is not None:
            error = _start_error(paths, process.returncode)
            if fresh:
                _remove(paths, keep_logs=True)
            raise error
        time.sleep(0.1)
    stop_process(process.pid, timeout=30)
    if fresh:
        _remove(paths, keep_logs=True)
    raise OperationError(f"the sandbox did not start within {timeout:.0f}s; see {paths.supervisor_log}")


def _start_error(paths: SandboxPaths, code: int) -> InputError | OperationError:
    try:
        recorded = json.loads(paths.supervisor_error.read_text())
    except (FileNotFoundError, ValueError):
        return OperationError(f"the sandbox supervisor exited with code {code}; see {paths.supervisor_log}")
    message = f"{recorded['message']} (sandbox not started; log: {paths.supervisor_log})"
    return InputError(message) if recorded.get("kind") == "input" else OperationError(message)


def down(directory: Path = DEFAULT_DIR, *, purge: bool = False) -> DownResult:
    """Stop every process ``up`` started in ``directory``; keep its state unless ``purge``.

    Without ``purge`` every file stays (OpenBao's raft data, the clusters' objects
    and keys, the keeper, runs, GitOps repository, logs) and ``up`` brings the same
    sandbox back; with it, everything a sandbox keeps in the directory is removed
    (the user's own files there stay).
    """
    root = _check_directory(directory)
    paths = SandboxPaths(root)
    if not root.is_dir() or not (paths.has_state() or paths.pid_files()):
        return DownResult(found=False)
    stopped: list[str] = []
    with _exclusive(paths):
        state = read_state(root) if paths.state.is_file() else None
        supervisor = _running_supervisor(paths)
        if supervisor is not None:
            stop_process(supervisor, timeout=30)  # it saves the clusters, then stops OpenBao
            stopped.append(f"supervisor (pid {supervisor})")
        stopped += _stop_leftovers(paths).stopped
        if state is not None and stopped:
            _wait_ports_closed(state.ports())
        if purge:
            _remove(paths)
            if state is not None and state.spec.postgres is not None:  # its data may live outside DIR
                shutil.rmtree(sandbox_postgres_dir(root), ignore_errors=True)
    if purge:
        with contextlib.suppress(OSError):
            root.rmdir()  # only when empty: the user's own files stay
    return DownResult(stopped=stopped, purged=purge)


def _wait_ports_closed(ports: list[int], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listening = [p for p in ports if port_is_listening(p)]
        if not listening:
            return
        time.sleep(0.1)
    raise OperationError(f"ports {', '.join(map(str, listening))} still listen after the sandbox stopped")


def _remove(paths: SandboxPaths, *, keep_logs: bool = False) -> None:
    for path in paths.kept():
        if keep_logs and path in (paths.logs, paths.gitignore):
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def load_state(directory: Path = DEFAULT_DIR) -> SandboxState:
    """The state of the sandbox running in ``directory``; ``OperationError`` when none runs."""
    root = directory.resolve()
    paths = SandboxPaths(root)
    state = read_state(root)
    if state is None or _running_supervisor(paths) != state.supervisor_pid:
        if paths.spec.is_file():
            raise OperationError(
                f"the sandbox in {root} is stopped (its state is kept); "
                f"start it again with `vaultflow sandbox up --dir {directory}`"
            )
        raise OperationError(
            f"no sandbox is running in {root}; start one with `vaultflow sandbox up --dir {directory}`"
        )
    return state


def _answers(url: str, ca_file: str | None = None) -> tuple[bool, str]:
    """``ca_file``: the CA an HTTPS endpoint's certificate must chain to (verified, never skipped)."""
    context = ssl.create_default_context(cafile=ca_file) if ca_file else None
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as response:  # noqa: S310 (loopback)
            return True, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return True, error.read().decode(errors="replace")
    except (urllib.error.URLError, OSError):
        return False, ""


def _vault_condition(address: str, ca_file: str | None = None) -> tuple[bool, str]:
    ok, body = _answers(f"{address}/v1/sys/seal-status", ca_file)
    if not ok:
        return False, "not answering"
    try:
        seal = json.loads(body)
    except ValueError:
        return False, "unexpected answer"
    initialised = "initialised" if seal.get("initialized") else "uninitialised"
    kind = "" if seal.get("type", "shamir") == "shamir" else f", {seal['type']} seal"
    return True, f"{'sealed' if seal.get('sealed') else 'unsealed'}, {initialised}{kind}"


def status(directory: Path = DEFAULT_DIR) -> SandboxStatus:
    """Each component with its endpoint and whether it answers now."""
    state = load_state(directory)
    components = [
        ComponentStatus("supervisor", "supervisor", state.directory, state.supervisor_pid, "running", True)
    ]
    if state.unsealer is not None:
        components.append(_unsealer_component(state.unsealer, state.ca_file))
    for node in state.vault:
        alive = process_alive(node.pid)
        ok, condition = _vault_condition(node.address, state.ca_file) if alive else (False, "not running")
        components.append(
            ComponentStatus("openbao", node.node_id, node.address, node.pid, condition, alive and ok)
        )
    for cluster in state.clusters:
        ok, _ = _answers(f"{cluster.url}/version", cluster.ca_file)
        components.append(
            ComponentStatus(
                "kubernetes",
                f"{cluster.name} ({cluster.role})",
                cluster.url,
                None,
                "answering" if ok else "down",
                ok,
            )
        )
    aws_up = port_is_listening(int(state.aws_endpoint.rsplit(":", 1)[1]))
    components.append(
        ComponentStatus(
            "aws (moto)",
            "secretsmanager, kms",
            state.aws_endpoint,
            None,
            "answering" if aws_up else "down",
            aws_up,
        )
    )
    components += _service_components(state)
    components += _monitoring_components(state)
    if state.postgres:
        pg_up = port_is_listening(int(state.postgres.rsplit(":", 1)[1]))
        database = f"database {state.spec.postgres.database}" if state.spec.postgres else ""
        condition = "answering" if pg_up else "down"
        components.append(ComponentStatus("postgresql", database, state.postgres, None, condition, pg_up))
    if state.exporter:  # a TCP check: a GET would run a whole scrape
        up = port_is_listening(int(state.exporter.rsplit(":", 1)[1]))
        condition = "serving (as the observer)" if up else "down"
        exporter = ComponentStatus("monitoring", "vaultflow-exporter", state.exporter, None, condition, up)
        components.append(exporter)
    return SandboxStatus(state, components)


def _monitoring_components(state: SandboxState) -> list[ComponentStatus]:
    """Prometheus, the Pushgateway and the Alertmanager, or why the sandbox runs without them."""
    if not state.prometheus:
        missing = ", ".join(missing_packages()) or "none"
        why = f"not started (missing packages: {missing})"
        return [ComponentStatus("monitoring", "prometheus", "", None, why, True)]
    components = []
    for name, url in (
        ("prometheus", state.prometheus),
        ("pushgateway", state.pushgateway),
        ("alertmanager", state.alertmanager),
    ):
        ok, _ = _answers(f"{url}/-/ready")
        components.append(ComponentStatus("monitoring", name, url, None, "ready" if ok else "down", ok))
    return components


def _unsealer_component(node: VaultNode, ca_file: str) -> ComponentStatus:
    """The transit unsealer: healthy only while it runs unsealed (the nodes need it at every start)."""
    alive = process_alive(node.pid)
    ok, condition = _vault_condition(node.address, ca_file) if alive else (False, "not running")
    healthy = alive and ok and condition.startswith("unsealed")
    if not healthy:
        condition += (
            ": the Vault nodes cannot start (or restart) until it runs unsealed; "
            "`vaultflow sandbox up` restarts it"
        )
    return ComponentStatus(
        "openbao (transit unsealer)", node.node_id, node.address, node.pid, condition, healthy
    )


def _listening(name: str, kind: str, url: str) -> ComponentStatus:
    up = port_is_listening(urlsplit(url).port or 0)
    return ComponentStatus(name, kind, url, None, "answering" if up else "down", up)


def _service_components(state: SandboxState) -> list[ComponentStatus]:
    """Sandbox II: the cloud emulators, and the controllers as the admin API reports them."""
    if not state.admin_endpoint:
        return []
    components = [_listening("gcp (emulator)", "secret manager", state.gcp_endpoint)]
    components += [_listening("azure (emulator)", f"key vault {v.name}", v.url) for v in state.azure_vaults]
    if state.argo_server:
        components.append(_listening("argo server (local runner)", "workflows", state.argo_server))
    if state.github_endpoint:
        components.append(_listening("github (emulator)", "rest api v3", state.github_api_url))
    from vaultflow.sandbox.admin import AdminClient

    admin = AdminClient.for_state(state)
    try:
        controllers, faults, routes = admin.controllers(), admin.faults(), admin.routes()
    except OperationError as error:
        failure = ComponentStatus("admin api", "controllers", state.admin_endpoint, None, str(error), False)
        return [*components, failure]
    for report in controllers:
        name = "eso (emulator)" if report["controller"] == "external-secrets" else "argocd (emulator)"
        condition = _controller_condition(report)
        components.append(
            ComponentStatus(name, report["cluster"], state.admin_endpoint, None, condition, True)
        )
    for provider, fault in sorted(faults.items()):
        described = "down" if fault.down else f"error rate {fault.error_rate:g}, latency {fault.latency:g}s"
        components.append(ComponentStatus("fault (injected)", provider, "", None, described, True))
    for kind, table in sorted(routes.items()):
        for source, target in sorted(table.items()):
            components.append(ComponentStatus("route (sandbox)", kind, source, None, f"-> {target}", True))
    return components


def _controller_condition(report: dict[str, Any]) -> str:
    """``running: N reconciles, N queued[, N scheduled]``: queued is what waits to be worked on now;
    requeues scheduled for later (each ExternalSecret's next refresh) are counted apart when reported."""
    condition = f"running: {report['reconciles']} reconciles, {report['queued']} queued"
    if "scheduled" in report:
        condition += f", {report['scheduled']} scheduled"
    return condition


def environment(state: SandboxState) -> dict[str, str]:
    """The variables that point SDKs and CLIs at the sandbox (``vaultflow sandbox env``)."""
    return {
        "VAULT_ADDR": state.vault_addr,
        "BAO_ADDR": state.vault_addr,
        "VAULT_ADDRESSES": ",".join(node.address for node in state.vault),  # every replica, leader first
        # The CA OpenBao's certificate chains to (the vault/bao CLIs and vaultflow read it); the other
        # emulators' CA is VAULTFLOW_SANDBOX_CA (the same file).
        "VAULT_CACERT": state.ca_file,
        "BAO_CACERT": state.ca_file,
        "KUBECONFIG": state.kubeconfig,
        "AWS_ENDPOINT_URL": state.aws_endpoint,
        # botocore's own CA setting (the aws CLI and boto3 read it; nothing else trusts it)
        "AWS_CA_BUNDLE": state.ca_file,
        "AWS_ACCESS_KEY_ID": "sandbox",
        "AWS_SECRET_ACCESS_KEY": "sandbox",  # moto accepts any credentials; these are not secrets
        "AWS_DEFAULT_REGION": state.aws_region,
        "AWS_REGION": state.aws_region,
        "VAULTFLOW_SANDBOX_DIR": state.directory,
        **_service_environment(state),
        **_postgres_environment(state),
    }


def _postgres_environment(state: SandboxState) -> dict[str, str]:
    """The catalog's PostgreSQL host:port routed to the sandbox's server (the rotation's checker reads
    ``VAULTFLOW_POSTGRES_ROUTES``), and libpq's own ``PGSSLROOTCERT``: the sandbox CA its certificate
    chains to, for a client (``psql``, psycopg) that names no ``sslrootcert`` itself."""
    spec = state.spec.postgres
    if not state.postgres or spec is None:
        return {}
    return {
        "VAULTFLOW_POSTGRES_ROUTES": f"{spec.host}:{spec.port}={state.postgres}",
        "PGSSLROOTCERT": state.ca_file,
    }


def _service_environment(state: SandboxState) -> dict[str, str]:
    """Where the emulated clouds are. The CA is given by path, for clients to pass explicitly
    (``connection_verify=``): nothing here makes a process trust it globally."""
    if not state.admin_endpoint:
        return {}
    environment = {
        "VAULTFLOW_SANDBOX_CA": state.ca_file,
        "VAULTFLOW_GCP_ENDPOINT": state.gcp_endpoint,
        "VAULTFLOW_AZURE_VAULTS": ",".join(f"{v.name}={v.url}" for v in state.azure_vaults),
        "VAULTFLOW_SANDBOX_ADMIN": state.admin_endpoint,
        # where Argo CD's Applications are (vaultflow gitops apply --wait): the management cluster
        "VAULTFLOW_ARGOCD_CONTEXT": state.management_cluster.name,
    }
    if state.argo_server:
        environment["ARGO_SERVER"] = state.argo_server
        environment["ARGO_NAMESPACE"] = "argo"
    if state.azure_vaults:
        environment["VAULTFLOW_AZURE_VAULT_URL"] = state.azure_vaults[0].url
    if state.github_endpoint:
        # The token's path only: a client reads the file (never GITHUB_TOKEN, which tools such as
        # `gh` would send to github.com). Clients verify the emulator with VAULTFLOW_SANDBOX_CA.
        environment["GITHUB_API_URL"] = state.github_api_url
        environment["VAULTFLOW_GITHUB_TOKEN_FILE"] = state.github_token_file
    if state.prometheus:
        environment["VAULTFLOW_PROMETHEUS_URL"] = state.prometheus
        environment["VAULTFLOW_PUSHGATEWAY_URL"] = state.pushgateway
        environment["VAULTFLOW_ALERTMANAGER_URL"] = state.alertmanager
    return {**environment, **_git_url_mapping(state)}


def _git_url_mapping(state: SandboxState) -> dict[str, str]:
    """Git's own ``url.<bare repo>.insteadOf <repository URL>`` for every ``git`` route, through the
    environment (``GIT_CONFIG_COUNT``/``KEY_n``/``VALUE_n``, git 2.31+): a plain ``git clone`` or
    ``git push`` of the catalog's ``repoUrl`` reaches the bare repository the Argo CD and GitHub
    emulators serve. Each URL is mapped with and without ``.git`` (git picks the longest match)."""
    from vaultflow.sandbox.admin import AdminClient

    try:
        routes = AdminClient.for_state(state).routes().get("git", {})
    except (OperationError, InputError):
        return {}
    pairs = []
    for source, target in sorted(routes.items()):
        spellings = (
            {source, source.removesuffix(".git")} if source.startswith(("http://", "https://")) else {source}
        )
        pairs += [
            (f"url.{target}.insteadOf", spelling) for spelling in sorted(spellings, key=len, reverse=True)
        ]
    if not pairs:
        return {}
    mapping = {"GIT_CONFIG_COUNT": str(len(pairs))}
    for index, (key, value) in enumerate(pairs):
        mapping[f"GIT_CONFIG_KEY_{index}"] = key
        mapping[f"GIT_CONFIG_VALUE_{index}"] = value
    return mapping
