"""A wrong CA makes each HTTPS SDK client fail, and the steps name why in one line (issue 14).

The Azure Key Vault SDK against the emulator (HTTPS, the sandbox CA), the ``kubernetes`` client
against an HTTPS cluster (its own CA): with the right CA they work, with another one the TLS
handshake fails and ``transport_cause`` (what every step's error message uses) says so in one line.
boto3 against the sandbox's moto (HTTPS, the sandbox CA, through ``AWS_CA_BUNDLE``).
(Vault over TLS: tests/steps/test_vault_tls.py; GCP reaches its emulator over plain loopback
HTTP, see docs/sandbox.md "TLS in the sandbox".)
"""

from __future__ import annotations

from pathlib import Path

import pytest
from azure.core.exceptions import ServiceRequestError
from kubernetes import client

from vaultflow.sandbox.azure import KeyVaultServer
from vaultflow.sandbox.kube import KubeCluster
from vaultflow.sandbox.persistence import MotoServer
from vaultflow.sandbox.pki import CertificateAuthority
from vaultflow.steps.cloud_clients import AZURE_VAULTS, SANDBOX_CA, aws_secrets_manager, azure_secret_client
from vaultflow.steps.transport import transport_cause


@pytest.fixture
def wrong_ca(tmp_path: Path) -> Path:
    path = tmp_path / "wrong-ca.crt"
    path.write_text(CertificateAuthority("not the sandbox CA").certificate_pem)
    return path


def _one_line_tls_cause(error: BaseException) -> str:
    cause = transport_cause(error)
    assert cause.startswith("TLS certificate not trusted: "), cause
    assert "\n" not in cause
    return cause


def test_the_key_vault_sdk_verifies_the_emulator_with_the_sandbox_ca(
    key_vault: KeyVaultServer, ca_file: Path, wrong_ca: Path
) -> None:
    vault_url = "https://test-vault.vault.azure.net"
    right = azure_secret_client(
        vault_url, environ={AZURE_VAULTS: f"test-vault={key_vault.url}", SANDBOX_CA: str(ca_file)}
    )
    right.set_secret("tls-probe", "placeholder-not-a-secret")
    wrong = azure_secret_client(
        vault_url, environ={AZURE_VAULTS: f"test-vault={key_vault.url}", SANDBOX_CA: str(wrong_ca)}
    )
    with pytest.raises(ServiceRequestError) as refused:
        wrong.get_secret("tls-probe")
    _one_line_tls_cause(refused.value)


def test_boto3_verifies_moto_with_the_ca_of_aws_ca_bundle(
    tmp_path: Path, wrong_ca: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import SSLError

    authority = CertificateAuthority()
    right_ca = tmp_path / "sandbox-ca.crt"
    right_ca.write_text(authority.certificate_pem)
    server = MotoServer(ssl_context=authority.issue_server_certificate().ssl_context())
    endpoint = server.start()
    try:
        assert endpoint.startswith("https://127.0.0.1:")
        for name, value in {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "sandbox"}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "sandbox")  # moto accepts any credentials
        monkeypatch.setenv("AWS_CA_BUNDLE", str(right_ca))
        aws_secrets_manager("us-east-1").create_secret(Name="tls-probe", SecretString="placeholder")
        monkeypatch.setenv("AWS_CA_BUNDLE", str(wrong_ca))
        with pytest.raises(SSLError) as refused:
            aws_secrets_manager("us-east-1").get_secret_value(SecretId="tls-probe")
        _one_line_tls_cause(refused.value)
    finally:
        server.stop()


def test_the_kubernetes_client_verifies_the_cluster_with_its_ca(tmp_path: Path, wrong_ca: Path) -> None:
    with KubeCluster("tls-probe", tls=True) as cluster:
        right_ca = tmp_path / "cluster-ca.crt"
        right_ca.write_text(cluster.ca_pem)
        for ca, works in ((right_ca, True), (wrong_ca, False)):
            configuration = client.Configuration()
            configuration.host = cluster.url
            configuration.ssl_ca_cert = str(ca)
            configuration.api_key = {"authorization": f"Bearer {cluster.admin_token}"}
            configuration.retries = False
            with client.ApiClient(configuration) as api:
                if works:
                    assert client.CoreV1Api(api).read_namespace("default").metadata.name == "default"
                    continue
                with pytest.raises(Exception) as refused:
                    client.CoreV1Api(api).read_namespace("default", _request_timeout=10)
                _one_line_tls_cause(refused.value)
