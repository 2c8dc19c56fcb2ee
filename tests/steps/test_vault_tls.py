"""Steps verify Vault's certificate with the CA they are given (``--ca-cert``, the ``ca-cert`` parameter).

A real OpenBao serving TLS with a certificate from a throwaway CA: the steps' ``VaultApi`` trusts
exactly the given CA. (hvac lets a passed-in session's ``verify`` win over its own argument, which
once made every ``ca_cert`` fall back to the system's roots.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from vaultflow.base.errors import OperationError
from vaultflow.sandbox.openbao import OpenBaoServer
from vaultflow.sandbox.pki import CertificateAuthority
from vaultflow.steps.vault.api import VaultApi
from vaultflow.steps.vault.status import vault_status


@pytest.fixture(scope="module")
def tls_openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OpenBaoServer, Path]]:
    root = tmp_path_factory.mktemp("tls-openbao")
    authority = CertificateAuthority.kept_in(root / "ca.crt", root / "ca.key", "steps test CA")
    server = OpenBaoServer(root / "node", authority=authority, ca_file=root / "ca.crt")
    server.start()
    try:
        yield server, root / "ca.crt"
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def no_connect_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULTFLOW_VAULT_CONNECT_RETRIES", "0")
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


def test_the_given_ca_verifies_the_server(tls_openbao: tuple[OpenBaoServer, Path]) -> None:
    server, ca_file = tls_openbao
    assert server.address.startswith("https://127.0.0.1:")
    status = VaultApi(server.address, ca_cert=str(ca_file)).seal_status()
    assert status.sealed and not status.initialized
    assert vault_status(server.address, str(ca_file)).replicas[0].address == server.address
    derived = VaultApi(server.address, ca_cert=str(ca_file)).with_token("not-a-token")
    assert derived.health() == "uninitialised"


def test_another_ca_or_none_fails_in_one_clear_line(
    tls_openbao: tuple[OpenBaoServer, Path], tmp_path: Path
) -> None:
    server, _ = tls_openbao
    other = tmp_path / "other.crt"
    other.write_text(CertificateAuthority("another CA").certificate_pem)
    for ca_cert in (str(other), None):
        with pytest.raises(OperationError) as refused:
            VaultApi(server.address, ca_cert=ca_cert).seal_status()
        message = str(refused.value)
        assert message.startswith(
            f"Vault at {server.address}: TLS verification failed (TLS certificate not trusted: "
        )
        assert message.endswith("): could not read the seal status (set the CA bundle)")
        assert "\n" not in message
