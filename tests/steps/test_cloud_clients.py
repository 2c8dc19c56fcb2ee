"""The steps' cloud clients: the sandbox's emulators when its variables say so, the real clouds otherwise.

With the variables of ``vaultflow sandbox env`` pointing at running emulators
(moto, and the GCP and Azure emulators of tests/sandbox_clouds), a value written
through each emulator is read back through the function, through a keeper and
through the rotation step's default cloud readers. Without them the functions
build the clouds' default clients: checked on their endpoints and credentials,
without a network call.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.sandbox_clouds import conftest as clouds
from vaultflow.base.errors import InputError
from vaultflow.sandbox.azure import KeyVaultServer
from vaultflow.sandbox.gcp import GcpSecretManagerEmulator
from vaultflow.steps.cloud_clients import (
    AZURE_VAULTS,
    GCP_ENDPOINT,
    SANDBOX_CA,
    aws_secrets_manager,
    azure_secret_client,
    gcp_secret_manager,
)
from vaultflow.steps.keeper import UnsealMaterial, open_keeper
from vaultflow.steps.rotation.clouds import CloudReaders
from vaultflow.steps.rotation.discover import CloudStore

# the emulators and their SDK clients, as the cloud emulator tests start them
gcp_emulator = clouds.gcp_emulator
gcp = clouds.gcp
authority = clouds.authority
ca_file = clouds.ca_file
key_vault = clouds.key_vault
credential = clouds.credential
azure = clouds.azure

PROJECT = "vaultflow-test"
MATERIAL = UnsealMaterial(shares=["c2hhcmU="], threshold=1, root_token=None)
EVERY_OVERRIDE = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    "AWS_PROFILE",
    GCP_ENDPOINT,
    AZURE_VAULTS,
    SANDBOX_CA,
)


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def sandbox_env(
    monkeypatch: pytest.MonkeyPatch,
    moto_endpoint: str,
    gcp_emulator: GcpSecretManagerEmulator,
    key_vault: KeyVaultServer,
    ca_file: Path,
) -> None:
    """The variables ``vaultflow sandbox env`` exports, for these emulators (another vault listed first)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "sandbox")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "sandbox")
    monkeypatch.setenv(GCP_ENDPOINT, gcp_emulator.url)
    monkeypatch.setenv(AZURE_VAULTS, f"other=https://127.0.0.1:9,{key_vault.name}={key_vault.url}")
    monkeypatch.setenv(SANDBOX_CA, str(ca_file))


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def add_gcp_secret(gcp: Any, name: str, value: bytes) -> None:
    gcp.create_secret(parent=f"projects/{PROJECT}", secret_id=name, secret={"replication": {"automatic": {}}})
    gcp.add_secret_version(parent=f"projects/{PROJECT}/secrets/{name}", payload={"data": value})


@pytest.mark.usefixtures("sandbox_env")
def test_the_aws_client_reaches_moto_through_aws_endpoint_url(moto_endpoint: str) -> None:
    name = unique("aws")
    direct = boto3.client(
        "secretsmanager",
        region_name="eu-west-1",
        endpoint_url=moto_endpoint,
        aws_access_key_id="sandbox",
        aws_secret_access_key="sandbox",
    )
    direct.create_secret(Name=name, SecretString="from-moto")

    secrets = aws_secrets_manager("eu-west-1")

    assert secrets.meta.endpoint_url == moto_endpoint
    assert secrets.get_secret_value(SecretId=name)["SecretString"] == "from-moto"


@pytest.mark.usefixtures("sandbox_env")
def test_the_gcp_client_reaches_the_emulator(gcp: Any, gcp_emulator: GcpSecretManagerEmulator) -> None:
    name = unique("gcp")
    add_gcp_secret(gcp, name, b"from-the-emulator")

    manager = gcp_secret_manager()

    assert manager.api_endpoint == gcp_emulator.url
    answer = manager.access_secret_version(name=f"projects/{PROJECT}/secrets/{name}/versions/latest")
    assert answer.payload.data == b"from-the-emulator"


@pytest.mark.usefixtures("sandbox_env")
def test_the_azure_client_reaches_the_vault_its_name_maps_to(azure: Any, key_vault: KeyVaultServer) -> None:
    name = unique("azure")
    azure.set_secret(name, "from-the-emulator")

    with azure_secret_client(f"https://{key_vault.name}.vault.azure.net/") as secrets:
        assert secrets.vault_url == key_vault.url
        assert secrets.get_secret(name).value == "from-the-emulator"
    with azure_secret_client(key_vault.url) as secrets:  # the loopback URL itself is one of the vaults
        assert secrets.get_secret(name).value == "from-the-emulator"


def store(provider: str, location: str) -> CloudStore:
    return CloudStore.model_validate(
        {"store_kind": "SecretStore", "store_name": "s", "provider": provider, "location": location}
    )


@pytest.mark.usefixtures("sandbox_env")
def test_the_keepers_and_the_rotation_readers_build_theirs_from_the_variables(
    gcp: Any, azure: Any, key_vault: KeyVaultServer
) -> None:
    """Neither is handed a client: what they write and read is what the emulators' own clients see."""
    gcp_name, azure_name, aws_name = unique("gcp"), unique("azure"), unique("aws")
    vault_url = f"https://{key_vault.name}.vault.azure.net"
    open_keeper(f"gcp-sm://{PROJECT}/{gcp_name}").fill(MATERIAL)
    open_keeper(f"azure-kv://{key_vault.name}.vault.azure.net/{azure_name}").fill(MATERIAL)
    in_gcp = gcp.access_secret_version(name=f"projects/{PROJECT}/secrets/{gcp_name}/versions/latest")
    in_azure = azure.get_secret(azure_name).value.encode()
    assert json.loads(in_gcp.payload.data)["shares"] == json.loads(in_azure)["shares"] == MATERIAL.shares

    aws_secrets_manager("eu-west-1").create_secret(Name=aws_name, SecretString="pushed")
    readers = CloudReaders()
    assert readers.current(store("gcp", PROJECT), gcp_name) == in_gcp.payload.data
    assert readers.current(store("azure", vault_url), azure_name) == in_azure
    assert readers.current(store("aws", "eu-west-1"), aws_name) == b"pushed"


def test_a_vault_the_sandbox_lacks_is_an_error_never_azure() -> None:
    environ = {AZURE_VAULTS: "team-a=https://127.0.0.1:9"}
    with pytest.raises(InputError, match=r"team-b\.vault\.azure\.net is not one of .* \(it has: team-a\)"):
        azure_secret_client("https://team-b.vault.azure.net", environ=environ)
    with pytest.raises(InputError, match=r"\(it has: none\)"):
        azure_secret_client("https://team-a.vault.azure.net", environ={AZURE_VAULTS: ""})
    with pytest.raises(InputError, match=r"'team-a' is not name=url"):
        azure_secret_client("https://team-a.vault.azure.net", environ={AZURE_VAULTS: "team-a"})


def test_an_empty_gcp_endpoint_is_an_error_never_google_cloud() -> None:
    with pytest.raises(InputError, match=rf"{GCP_ENDPOINT} is set but empty"):
        gcp_secret_manager(environ={GCP_ENDPOINT: ""})


def test_without_the_variables_the_clients_are_the_real_clouds(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from azure.identity import DefaultAzureCredential
    from google.oauth2.credentials import Credentials

    for variable in EVERY_OVERRIDE:
        monkeypatch.delenv(variable, raising=False)
    for variable in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):  # no local profile's endpoint
        monkeypatch.setenv(variable, str(tmp_path / "absent"))
    adc = (
        tmp_path / "adc.json"
    )  # Google's default chain finds these user credentials first: no metadata server
    adc.write_text(
        json.dumps(
            {
                "type": "authorized_user",
                "client_id": "c",
                "client_secret": "not-a-secret",
                "refresh_token": "r",
            }
        )
    )
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(adc))
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))

    assert (
        aws_secrets_manager("eu-west-1").meta.endpoint_url == "https://secretsmanager.eu-west-1.amazonaws.com"
    )
    manager = gcp_secret_manager()
    assert manager.api_endpoint == "secretmanager.googleapis.com"
    assert type(manager.transport).__name__ == "SecretManagerServiceGrpcTransport"  # the SDK's default
    assert isinstance(manager.transport._credentials, Credentials)  # google.auth.default()'s, not anonymous
    with azure_secret_client("https://team-a.vault.azure.net") as secrets:
        assert secrets.vault_url == "https://team-a.vault.azure.net"
        assert isinstance(secrets._client._config.credential, DefaultAzureCredential)
