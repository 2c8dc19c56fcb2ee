"""The Azure Key Vault emulator through the real ``azure-keyvault-secrets`` client, over HTTPS."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import requests
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from azure.keyvault.secrets import SecretClient

from vaultflow.sandbox.azure import SANDBOX_TENANT, KeyVaultServer
from vaultflow.sandbox.azure.credential import StaticTokenCredential


@pytest.fixture
def name() -> str:
    return f"s-{uuid.uuid4().hex[:10]}"


def test_the_first_request_is_challenged_like_the_real_service(
    key_vault: KeyVaultServer, ca_file: Path
) -> None:
    response = requests.get(f"{key_vault.url}/secrets?api-version=7.6", verify=str(ca_file), timeout=5)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer authorization="https://login.microsoftonline.com/{SANDBOX_TENANT}", '
        'resource="https://vault.azure.net"'
    )


def test_the_client_answers_the_challenge_with_its_credential(
    key_vault: KeyVaultServer, ca_file: Path, name: str
) -> None:
    credential = StaticTokenCredential()
    with SecretClient(
        key_vault.url, credential, connection_verify=str(ca_file), verify_challenge_resource=False
    ) as c:
        c.set_secret(name, "v")
    assert credential.requested_scopes == [("https://vault.azure.net/.default",)]


def test_round_trip_versions_and_listing(azure: SecretClient, name: str) -> None:
    first = azure.set_secret(name, "one", content_type="text/plain", tags={"team": "platform"})
    second = azure.set_secret(name, "two")
    assert first.name == name and len(first.properties.version or "") == 32
    assert first.properties.vault_url == azure.vault_url
    assert azure.get_secret(name).value == "two"
    assert azure.get_secret(name, first.properties.version).value == "one"
    assert azure.get_secret(name, first.properties.version).properties.content_type == "text/plain"
    assert azure.get_secret(name, first.properties.version).properties.tags == {"team": "platform"}
    versions = {p.version for p in azure.list_properties_of_secret_versions(name)}
    assert versions == {first.properties.version, second.properties.version}
    assert name in {p.name for p in azure.list_properties_of_secrets()}


def test_paging_follows_next_link(azure: SecretClient) -> None:
    prefix = f"page-{uuid.uuid4().hex[:6]}"
    for index in range(30):  # more than the 25 per page of the service
        azure.set_secret(f"{prefix}-{index}", "v")
    assert len([p for p in azure.list_properties_of_secrets() if p.name and p.name.startswith(prefix)]) == 30


def test_not_found(azure: SecretClient, name: str) -> None:
    with pytest.raises(ResourceNotFoundError, match=f"A secret with \\(name/id\\) {name} was not found"):
        azure.get_secret(name)
    azure.set_secret(name, "x")
    with pytest.raises(ResourceNotFoundError):
        azure.get_secret(name, "0" * 32)


def test_soft_delete_recover_and_purge(azure: SecretClient, name: str) -> None:
    azure.set_secret(name, "kept")
    deleted = azure.begin_delete_secret(name).result()
    assert deleted.recovery_id == f"{azure.vault_url}/deletedsecrets/{name}"
    assert deleted.scheduled_purge_date is not None and deleted.deleted_date is not None
    with pytest.raises(ResourceNotFoundError):
        azure.get_secret(name)
    with pytest.raises(ResourceExistsError, match="deleted but recoverable state"):
        azure.set_secret(name, "reuse")  # 409 until purged or recovered
    assert name in {d.name for d in azure.list_deleted_secrets()}

    azure.begin_recover_deleted_secret(name).result()
    assert azure.get_secret(name).value == "kept"
    azure.begin_delete_secret(name).result()
    azure.purge_deleted_secret(name)
    with pytest.raises(ResourceNotFoundError):
        azure.get_deleted_secret(name)
    assert azure.set_secret(name, "new life").value == "new life"


def test_disabled_versions_are_forbidden(azure: SecretClient, name: str) -> None:
    azure.set_secret(name, "v")
    azure.update_secret_properties(name, enabled=False)
    with pytest.raises(HttpResponseError) as refused:
        azure.get_secret(name)
    assert refused.value.status_code == 403
    assert "Operation get is not allowed on a disabled secret" in str(refused.value.message)


def test_invalid_names_are_bad_parameters(azure: SecretClient) -> None:
    with pytest.raises(HttpResponseError) as refused:
        azure.set_secret("under_score", "v")
    assert refused.value.status_code == 400
    assert refused.value.error is not None and refused.value.error.code == "BadParameter"


def test_tls_is_verified_against_the_sandbox_ca(key_vault: KeyVaultServer) -> None:
    """Without ``connection_verify`` the client refuses the emulator: nothing trusts the CA globally."""
    with (
        SecretClient(key_vault.url, StaticTokenCredential(), verify_challenge_resource=False) as untrusting,
        pytest.raises(ServiceRequestError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        untrusting.get_secret("anything")


def test_the_challenge_resource_is_checked_unless_told_otherwise(
    key_vault: KeyVaultServer, ca_file: Path
) -> None:
    with (
        SecretClient(key_vault.url, StaticTokenCredential(), connection_verify=str(ca_file)) as strict,
        pytest.raises(ValueError, match="does not match the requested domain"),
    ):
        strict.get_secret("anything")
