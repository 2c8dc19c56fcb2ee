"""Every keeper against a real backend: the emulated Kubernetes API (real client), moto (real boto3).

The contract: empty reads as None, ``store_new`` never overwrites, the root
token can be kept and forgotten, and no value ever reaches a message.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from kubernetes import client

from vaultflow.base.errors import InputError, OperationError
from vaultflow.sandbox.kube.cluster import KubeCluster
from vaultflow.steps.keeper import Keeper, KeeperConflict, UnsealMaterial, open_keeper
from vaultflow.steps.keeper.aws import AwsSecretsManagerKeeper
from vaultflow.steps.keeper.kubernetes import KubernetesSecretKeeper

MATERIAL = UnsealMaterial(
    shares=["c2hhcmUtb25l", "c2hhcmUtdHdv", "c2hhcmUtdGhyZWU="], threshold=2, root_token="s.root-xyz"
)


@pytest.fixture(scope="module")
def kube_core() -> Iterator[Any]:
    cluster = KubeCluster("keeper-test").start()
    configuration = client.Configuration()
    configuration.host = cluster.url
    configuration.api_key = {"authorization": f"Bearer {cluster.admin_token}"}
    api = client.ApiClient(configuration)
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": "argo"}})
    yield core
    api.close()
    cluster.stop()


@pytest.fixture(scope="module")
def secretsmanager() -> Iterator[Any]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield boto3.client(
        "secretsmanager",
        endpoint_url=f"http://{host}:{port}",
        region_name="eu-west-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    server.stop()


def exercise(keeper: Keeper) -> None:
    assert keeper.load() is None
    keeper.check_writable()
    keeper.store_new(MATERIAL)
    assert keeper.load() == MATERIAL
    with pytest.raises(KeeperConflict) as caught:
        keeper.store_new(MATERIAL.with_root_token("s.other"))
    assert keeper.load() == MATERIAL
    keeper.set_root_token(None)
    forgotten = keeper.load()
    assert forgotten is not None and forgotten.root_token is None and forgotten.shares == MATERIAL.shares
    keeper.set_root_token("s.new-root")
    kept = keeper.load()
    assert kept is not None and kept.root_token == "s.new-root"
    for value in [*MATERIAL.shares, "s.root-xyz", "s.new-root"]:
        assert value not in str(caught.value) and value not in keeper.location and value not in repr(kept)


def test_kubernetes_secret_keeper(kube_core: Any) -> None:
    keeper = KubernetesSecretKeeper("argo", "vaultflow-vault-keeper", api=kube_core)
    exercise(keeper)
    secret = kube_core.read_namespaced_secret("vaultflow-vault-keeper", "argo")
    assert secret.metadata.labels == {"app.kubernetes.io/managed-by": "vaultflow"}


def test_kubernetes_keeper_in_a_missing_namespace_is_refused_before_anything(kube_core: Any) -> None:
    keeper = KubernetesSecretKeeper("nowhere", "k", api=kube_core)
    with pytest.raises(OperationError, match="namespace nowhere is not usable"):
        keeper.check_writable()


def test_aws_secrets_manager_keeper(secretsmanager: Any) -> None:
    exercise(AwsSecretsManagerKeeper("vaultflow/vault-keeper", client=secretsmanager))
    tags = secretsmanager.describe_secret(SecretId="vaultflow/vault-keeper")["Tags"]
    assert {"Key": "managed-by", "Value": "vaultflow"} in tags


def test_gcp_secret_manager_keeper(tmp_path: Any) -> None:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import secretmanager

    from vaultflow.sandbox.gcp import GcpSecretManagerEmulator
    from vaultflow.steps.keeper.gcp import GcpSecretManagerKeeper

    with GcpSecretManagerEmulator() as emulator:
        gcp = secretmanager.SecretManagerServiceClient(
            transport="rest",
            client_options={"api_endpoint": emulator.url},
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        )
        exercise(GcpSecretManagerKeeper("vaultflow-test", "vault-keeper", client=gcp))
        versions = list(gcp.list_secret_versions(parent="projects/vaultflow-test/secrets/vault-keeper"))
        assert len(versions) == 3  # every write is a version: create, forget root, keep root


def test_azure_key_vault_keeper(tmp_path: Any) -> None:
    from azure.keyvault.secrets import SecretClient

    from vaultflow.sandbox.azure import AzureKeyVaultEmulator
    from vaultflow.sandbox.azure.credential import StaticTokenCredential
    from vaultflow.sandbox.pki import CertificateAuthority
    from vaultflow.steps.keeper.azure import AzureKeyVaultKeeper

    authority = CertificateAuthority("keeper test CA")
    ca_file = tmp_path / "ca.crt"
    ca_file.write_text(authority.certificate_pem)
    emulator = AzureKeyVaultEmulator(authority)
    vault = emulator.add_vault("keeper-test")
    try:
        with SecretClient(
            vault.url,
            StaticTokenCredential(),
            connection_verify=str(ca_file),
            verify_challenge_resource=False,
        ) as azure:
            exercise(AzureKeyVaultKeeper(vault.url, "vault-keeper", client=azure))
            assert azure.get_secret("vault-keeper").properties.tags == {"managed-by": "vaultflow"}
    finally:
        emulator.stop()


def test_file_keeper_refuses_a_file_others_can_read(tmp_path: Any) -> None:
    path = tmp_path / "unseal.json"
    keeper = open_keeper(path.as_uri())
    exercise(keeper)
    path.chmod(0o644)
    with pytest.raises(OperationError, match="readable by others"):
        keeper.load()


def test_corrupt_content_is_reported_without_echoing_it(tmp_path: Any) -> None:
    path = tmp_path / "unseal.json"
    path.write_text('{"shares": ["only-half-a-secret"')
    path.chmod(0o600)
    with pytest.raises(OperationError) as caught:
        open_keeper(path.as_uri()).load()
    assert "not valid unseal material" in str(caught.value)
    assert "only-half-a-secret" not in str(caught.value)


@pytest.mark.parametrize(
    ("uri", "kind"),
    [
        ("kubernetes://argo/keeper", "KubernetesSecretKeeper"),
        ("aws-sm://vaultflow/keeper?region=eu-west-1", "AwsSecretsManagerKeeper"),
        ("gcp-sm://my-project/keeper", "GcpSecretManagerKeeper"),
        ("azure-kv://v.vault.azure.net/keeper", "AzureKeyVaultKeeper"),
    ],
)
def test_uris_name_their_keeper(uri: str, kind: str) -> None:
    assert type(open_keeper(uri)).__name__ == kind


@pytest.mark.parametrize(
    "uri", ["s3://bucket/key", "file://relative/path", "kubernetes://only-namespace", ""]
)
def test_bad_uris_are_input_errors(uri: str) -> None:
    with pytest.raises(InputError, match="keeper"):
        open_keeper(uri)
