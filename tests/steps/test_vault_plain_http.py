"""A step refuses ``http://`` Vault addresses off loopback unless the user explicitly accepts it."""

from __future__ import annotations

import pytest

from vaultflow.base.errors import InputError, OperationError
from vaultflow.sandbox.openbao import free_port
from vaultflow.steps.vault.api import INSECURE_HTTP_ENV, VaultApi
from vaultflow.steps.vault.status import check_status

REMOTE = "http://vault-0.vault-internal.invalid:8200"


@pytest.fixture(autouse=True)
def no_connect_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULTFLOW_VAULT_CONNECT_RETRIES", "0")
    monkeypatch.delenv(INSECURE_HTTP_ENV, raising=False)


def test_plain_http_to_a_remote_host_is_refused_in_one_line_before_connecting() -> None:
    with pytest.raises(InputError) as refused:
        VaultApi(REMOTE)
    message = str(refused.value)
    assert message == (
        f"Vault at {REMOTE}: plain http to a host that is not loopback sends tokens and secrets "
        f"unencrypted; use https (with --ca-cert / $VAULT_CACERT for a private CA), or set "
        f"{INSECURE_HTTP_ENV}=true to accept that"
    )
    assert "\n" not in message


def test_a_pipeline_step_refuses_it_too() -> None:
    """The bootstrap pipeline's first step, with a remote http address among the replicas."""
    with pytest.raises(InputError, match="plain http to a host that is not loopback"):
        check_status(f"https://vault-1.vault-internal.invalid:8200,{REMOTE}")


def test_the_explicit_flag_lets_it_through_and_then_it_connects() -> None:
    """Accepted, the request goes out: here it fails on DNS, which proves it was not refused."""
    with pytest.raises(OperationError, match=r"DNS name vault-0\.vault-internal\.invalid not found"):
        VaultApi(REMOTE, insecure_http=True).seal_status()
    # A client derived from an accepted one keeps the choice.
    derived = VaultApi(REMOTE, insecure_http=True).with_token("not-a-real-token")
    assert derived.insecure_http is True


@pytest.mark.parametrize("value", ["true", "1", "yes"])
def test_the_environment_flag_lets_it_through(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(INSECURE_HTTP_ENV, value)
    with pytest.raises(OperationError, match="not found"):
        VaultApi(REMOTE).seal_status()


def test_the_environment_flag_set_to_false_still_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(INSECURE_HTTP_ENV, "false")
    with pytest.raises(InputError):
        VaultApi(REMOTE)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_plain_http_to_loopback_is_accepted(host: str) -> None:
    """The sandbox's own components on 127.0.0.1 (and a port-forward) are not refused."""
    address = f"http://{host}:{free_port()}"
    with pytest.raises(OperationError, match="unreachable"):
        VaultApi(address).seal_status()


def test_https_anywhere_is_accepted() -> None:
    with pytest.raises(OperationError, match="not found"):
        VaultApi("https://vault-0.vault-internal.invalid:8200").seal_status()
