"""Fixtures of the cloud emulator tests: each emulator once per session, its real SDK client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.keyvault.secrets import SecretClient
from google.auth.credentials import AnonymousCredentials
from google.cloud import secretmanager

from vaultflow.sandbox.azure import AzureKeyVaultEmulator, KeyVaultServer
from vaultflow.sandbox.azure.credential import StaticTokenCredential
from vaultflow.sandbox.gcp import GcpSecretManagerEmulator
from vaultflow.sandbox.pki import CertificateAuthority


@pytest.fixture(scope="session")
def gcp_emulator() -> Iterator[GcpSecretManagerEmulator]:
    with GcpSecretManagerEmulator() as emulator:
        yield emulator


@pytest.fixture(scope="session")
def gcp(gcp_emulator: GcpSecretManagerEmulator) -> Any:
    return secretmanager.SecretManagerServiceClient(
        transport="rest",
        client_options={"api_endpoint": gcp_emulator.url},
        credentials=AnonymousCredentials(),
    )


@pytest.fixture(scope="session")
def ca_file(tmp_path_factory: pytest.TempPathFactory, authority: CertificateAuthority) -> Path:
    path = tmp_path_factory.mktemp("ca") / "ca.crt"
    path.write_text(authority.certificate_pem)
    return path


@pytest.fixture(scope="session")
def authority() -> CertificateAuthority:
    return CertificateAuthority("test sandbox CA")


@pytest.fixture(scope="session")
def key_vault(authority: CertificateAuthority) -> Iterator[KeyVaultServer]:
    emulator = AzureKeyVaultEmulator(authority)
    yield emulator.add_vault("test-vault")
    emulator.stop()


@pytest.fixture(scope="session")
def credential() -> StaticTokenCredential:
    return StaticTokenCredential()


@pytest.fixture(scope="session")
def azure(
    key_vault: KeyVaultServer, ca_file: Path, credential: StaticTokenCredential
) -> Iterator[SecretClient]:
    with SecretClient(
        key_vault.url, credential, connection_verify=str(ca_file), verify_challenge_resource=False
    ) as client:
        yield client
