"""What TLS costs a Vault client: 1,000 reads over OpenBao's HTTPS listener (issue 14).

Setup (not timed): a real OpenBao whose listener serves TLS with a certificate
from a throwaway sandbox CA (as ``sandbox up --vault-tls`` runs it), initialised,
KV v2 at ``secret/`` with one secret.

Measured: 1,000 reads of that secret through one ``requests`` session, one
kept-alive, verified TLS connection (what every long-lived client in the steps,
the ESO emulator and the exporter does). Baseline, in the same run: the same
reads, each on a new connection (a TCP and TLS handshake per read, what a client
that builds a session per request pays). The ratio shows how much connection
reuse saves; the note gives the per-read cost of a handshake.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from bench.common import Measurement, best_of
from bench.platform_setup import initialise_vault

COUNT = 1_000
PATH = "bench/tls"


def _reads(address: str, token: str, ca_file: str, *, reuse: bool) -> None:
    import requests

    url = f"{address}/v1/secret/data/{PATH}"
    headers = {"X-Vault-Token": token}
    if reuse:
        with requests.Session() as session:
            for _ in range(COUNT):
                # verify per request: a session's own is overridden by $REQUESTS_CA_BUNDLE
                response = session.get(url, headers=headers, timeout=10, verify=ca_file)
                response.raise_for_status()
        return
    for _ in range(COUNT):
        with requests.Session() as session:  # a new pool: a new connection and handshake
            response = session.get(url, headers=headers, timeout=10, verify=ca_file)
            response.raise_for_status()


def _kv_ready(root: Any) -> bool:
    import hvac

    try:
        root.secrets.kv.v2.create_or_update_secret(PATH, secret={"value": "bench"}, mount_point="secret")
    except hvac.exceptions.InvalidRequest:  # a fresh KV v2 mount upgrades its storage for a moment
        return False
    return True


def run() -> list[Measurement]:
    from vaultflow.base.retry import poll_until
    from vaultflow.sandbox.openbao import OpenBaoServer
    from vaultflow.sandbox.pki import CertificateAuthority

    with tempfile.TemporaryDirectory() as directory:
        root_dir = Path(directory)
        ca_file = root_dir / "ca.crt"
        authority = CertificateAuthority.kept_in(ca_file, root_dir / "ca.key", "vaultflow bench CA")
        server = OpenBaoServer(root_dir / "openbao", authority=authority, ca_file=ca_file)
        server.start()
        try:
            root = initialise_vault(server.address, ca_file=str(ca_file))
            root.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
            poll_until(lambda: _kv_ready(root), bool, what="the KV v2 mount", timeout=30)
            token = str(root.token)
            _reads(server.address, token, str(ca_file), reuse=True)  # warm up
            reused = best_of(3, lambda: _reads(server.address, token, str(ca_file), reuse=True))
            fresh = best_of(2, lambda: _reads(server.address, token, str(ca_file), reuse=False))
        finally:
            server.stop()
    handshake_ms = (fresh - reused) / COUNT * 1000
    return [
        Measurement(
            name=f"{COUNT:,} Vault reads over HTTPS, one reused connection",
            seconds=reused,
            baseline_name=f"the same {COUNT:,} reads, a new TLS connection each",
            baseline_seconds=fresh,
            note=f"a TCP + TLS handshake costs about {handshake_ms:.2f} ms per read",
        )
    ]
