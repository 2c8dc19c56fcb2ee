"""TLS everywhere in the sandbox: the Kubernetes API emulators of ``sandbox up`` serve HTTPS.

Each cluster's serving certificate comes from that cluster's own CA (``DIR/clusters/NAME/ca.crt``,
the ``ca.crt`` of its service-account tokens), as kube-apiserver's does; the kubeconfig carries
that CA as ``certificate-authority-data``, so the real ``kubectl`` and the ``kubernetes`` SDK
verify the server and send their token only over TLS.
"""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from kubernetes import client, config

from vaultflow.sandbox.pki import CertificateAuthority
from vaultflow.sandbox.state import SandboxState

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


def _external_secret(name: str) -> dict[str, object]:
    return {
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": name},
        "spec": {
            "refreshInterval": "1h",
            "secretStoreRef": {"kind": "ClusterSecretStore", "name": "vault"},
            "target": {"name": name},
            "data": [{"secretKey": "value", "remoteRef": {"key": f"apps/{name}", "property": "value"}}],
        },
    }


def test_every_cluster_is_served_over_https_and_the_kubeconfig_carries_its_ca(
    sandbox_state: SandboxState,
) -> None:
    kubeconfig = yaml.safe_load(Path(sandbox_state.kubeconfig).read_text())
    entries = {entry["name"]: entry["cluster"] for entry in kubeconfig["clusters"]}
    for endpoint in sandbox_state.clusters:
        assert urlsplit(endpoint.url).scheme == "https"
        entry = entries[endpoint.name]
        assert entry["server"] == endpoint.url
        assert base64.b64decode(entry["certificate-authority-data"]).decode() == (
            Path(endpoint.ca_file).read_text()
        )
        assert not {"insecure-skip-tls-verify", "certificate-authority"} & set(entry)
        # The server's certificate chains to the cluster's CA (and names 127.0.0.1).
        context = ssl.create_default_context(cafile=endpoint.ca_file)
        with urllib.request.urlopen(f"{endpoint.url}/version", context=context, timeout=10) as answer:  # noqa: S310
            assert json.load(answer)["major"]


def test_kubectl_lists_the_sandbox_external_secrets_over_tls(sandbox_state: SandboxState) -> None:
    """The real kubectl (it refuses to send a token over plain http) sees objects created through the SDK."""
    with config.new_client_from_config(config_file=sandbox_state.kubeconfig, context="workload-1") as api:
        custom = client.CustomObjectsApi(api)
        client.CoreV1Api(api).create_namespace({"metadata": {"name": "kubectl-tls"}})
        for name in ("orders-db", "payments-api"):
            custom.create_namespaced_custom_object(
                "external-secrets.io", "v1", "kubectl-tls", "externalsecrets", _external_secret(name)
            )
    listed = subprocess.run(
        [
            KUBECTL,
            "--kubeconfig",
            sandbox_state.kubeconfig,
            "--context",
            "workload-1",
            "get",
            "externalsecrets",
            "-A",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    names = {
        (item["metadata"]["namespace"], item["metadata"]["name"])
        for item in json.loads(listed.stdout)["items"]
    }
    assert {("kubectl-tls", "orders-db"), ("kubectl-tls", "payments-api")} <= names

    table = subprocess.run(
        [KUBECTL, "--kubeconfig", sandbox_state.kubeconfig, "get", "externalsecrets", "-A"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert table.returncode == 0, table.stderr
    assert "orders-db" in table.stdout and "payments-api" in table.stdout


def test_a_client_with_a_wrong_ca_is_refused_in_one_clear_line(
    sandbox_state: SandboxState, tmp_path: Path
) -> None:
    """The kubernetes SDK and kubectl verify the server: another CA fails the handshake."""
    endpoint = sandbox_state.cluster("workload-1")
    wrong = tmp_path / "wrong-ca.crt"
    wrong.write_text(CertificateAuthority("not the sandbox CA").certificate_pem)

    configuration = client.Configuration()
    configuration.host = endpoint.url
    configuration.ssl_ca_cert = str(wrong)
    configuration.api_key = {"authorization": "Bearer not-needed-for-the-handshake"}
    with client.ApiClient(configuration) as api, pytest.raises(Exception) as refused:
        client.VersionApi(api).get_code(_request_timeout=10)
    assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value)

    kubeconfig = yaml.safe_load(Path(sandbox_state.kubeconfig).read_text())
    for entry in kubeconfig["clusters"]:
        entry["cluster"]["certificate-authority-data"] = base64.b64encode(wrong.read_bytes()).decode()
    other = tmp_path / "kubeconfig"
    other.write_text(yaml.safe_dump(kubeconfig))
    other.chmod(0o600)
    listed = subprocess.run(
        [KUBECTL, "--kubeconfig", str(other), "get", "namespaces"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert listed.returncode != 0
    assert "certificate signed by unknown authority" in listed.stderr

    with pytest.raises(urllib.error.URLError) as plain:
        urllib.request.urlopen(f"{endpoint.url}/version", context=ssl.create_default_context(), timeout=10)  # noqa: S310
    assert "CERTIFICATE_VERIFY_FAILED" in str(plain.value)
