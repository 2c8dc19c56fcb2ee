"""Why Vault could not be reached, named from real sockets: refused, DNS, no answer, untrusted TLS."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from vaultflow.base.errors import OperationError
from vaultflow.sandbox.openbao import OpenBaoServer, free_port
from vaultflow.sandbox.pki import CertificateAuthority
from vaultflow.steps.vault.api import VaultApi


@pytest.fixture(autouse=True)
def no_connect_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULTFLOW_VAULT_CONNECT_RETRIES", "0")  # the default waits ~30 s for a starting pod


@pytest.fixture
def silent_listener() -> Iterator[str]:
    """A socket that accepts connections (the kernel's backlog does) and never says a word."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def untrusted_tls_server() -> Iterator[str]:
    """An HTTPS server whose certificate comes from a CA the client does not trust."""
    context = CertificateAuthority("a CA nobody trusts").issue_server_certificate().ssl_context()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.settimeout(0.1)  # so that the loop sees ``stop``: closing a socket does not wake accept()
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            connection.settimeout(5)
            try:
                with context.wrap_socket(connection, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                connection.close()  # the client gave up on our certificate, as it should

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"https://localhost:{sock.getsockname()[1]}"
    stop.set()
    thread.join(5)
    sock.close()


def test_a_closed_port_is_connection_refused() -> None:
    address = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(OperationError) as caught:
        VaultApi(address).seal_status()
    assert str(caught.value) == (
        f"Vault at {address} is unreachable (connection refused): could not read the seal status"
    )


def test_an_unresolvable_name_is_dns_name_not_found() -> None:
    with pytest.raises(OperationError) as caught:
        VaultApi("https://vault-0.vault-internal.invalid:8200").seal_status()
    assert str(caught.value) == (
        "Vault at https://vault-0.vault-internal.invalid:8200 is unreachable "
        "(DNS name vault-0.vault-internal.invalid not found): could not read the seal status"
    )


def test_a_server_that_never_answers_is_a_timeout_naming_the_limit(silent_listener: str) -> None:
    with pytest.raises(OperationError) as caught:
        VaultApi(silent_listener, timeout=0.5).is_active()
    assert str(caught.value) == (
        f"Vault at {silent_listener} is unreachable (no answer within 0.5s): could not read its health"
    )


def test_an_untrusted_certificate_is_a_tls_failure_naming_why(
    untrusted_tls_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    with pytest.raises(OperationError) as caught:
        VaultApi(untrusted_tls_server).seal_status()
    message = str(caught.value)
    assert message.startswith(
        f"Vault at {untrusted_tls_server}: TLS verification failed (TLS certificate not trusted: "
    )
    assert message.endswith("): could not read the seal status (set the CA bundle)")
    assert "unable to get local issuer certificate" in message or "self-signed" in message
    # Trusting another CA does not help either, and says the same.
    other = tmp_path / "other-ca.crt"
    other.write_text(CertificateAuthority("another CA").certificate_pem)
    with pytest.raises(OperationError, match="TLS certificate not trusted"):
        VaultApi(untrusted_tls_server, ca_cert=str(other)).seal_status()


def test_waiting_for_an_active_node_gives_up_naming_what_it_saw(
    fresh_openbao: Callable[..., OpenBaoServer],
) -> None:
    server = fresh_openbao()
    with pytest.raises(OperationError) as caught:
        VaultApi(server.address).wait_until_active(timeout=0)
    assert str(caught.value) == (
        f"timed out after 0s waiting for Vault at {server.address} to become the active node "
        "(last seen: uninitialised)"
    )
