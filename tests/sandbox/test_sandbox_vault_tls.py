"""``sandbox up`` (by default, the only mode): OpenBao's listener serves TLS with a certificate from
the sandbox CA, and so does the transit unsealer (``--seal transit``).

``sandbox env`` exports an https ``VAULT_ADDR`` and ``VAULT_CACERT``; ``status``, hvac, the steps'
``VaultApi`` and the ESO emulator (through a ClusterSecretStore's ``caProvider``) verify it; a
three-node raft cluster joins over verified TLS (``retry_join`` with ``leader_ca_cert_file``).
"""

from __future__ import annotations

import base64
import socket
import ssl
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import hvac
import pytest
import requests
from cryptography import x509
from kubernetes import client, config

from vaultflow.base.errors import OperationError
from vaultflow.base.retry import poll_until
from vaultflow.sandbox import lifecycle
from vaultflow.sandbox.pki import CertificateAuthority
from vaultflow.sandbox.state import SandboxState
from vaultflow.steps.vault.api import VaultApi
from vaultflow.steps.vault.status import vault_status

T = TypeVar("T")


def _wait(observe: Callable[[], T], what: str) -> T:
    """``observe`` until it returns something truthy (a bounded wait on a real condition)."""
    return poll_until(observe, bool, what=what, timeout=60)


@pytest.fixture(scope="module")
def tls_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxState]:
    directory = tmp_path_factory.mktemp("vault-tls") / "sbx"
    state = lifecycle.up(directory, clusters=1, builtin_crds=True).state
    try:
        yield state
    finally:
        lifecycle.down(directory, purge=True)


@pytest.fixture(scope="module")
def root_client(tls_sandbox: SandboxState) -> hvac.Client:
    """Initialised (one share), unsealed, KV v2 at ``secret/``, over verified TLS."""
    vault = hvac.Client(url=tls_sandbox.vault_addr, verify=tls_sandbox.ca_file)
    init = vault.sys.initialize(secret_shares=1, secret_threshold=1)
    vault.sys.submit_unseal_key(init["keys"][0])
    vault.token = init["root_token"]
    VaultApi(tls_sandbox.vault_addr, ca_cert=tls_sandbox.ca_file).wait_until_active()
    vault.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
    _wait(lambda: _kv_ready(vault), "the KV v2 mount to serve requests")
    return vault


def _kv_ready(vault: hvac.Client) -> bool:
    try:
        vault.secrets.kv.v2.create_or_update_secret("probe", secret={"ok": "1"}, mount_point="secret")
    except hvac.exceptions.InvalidRequest:
        return False
    return True


def test_env_status_and_config_name_the_tls_listener(tls_sandbox: SandboxState) -> None:
    exports = lifecycle.environment(tls_sandbox)
    assert exports["VAULT_ADDR"].startswith("https://127.0.0.1:")
    assert exports["VAULT_CACERT"] == exports["BAO_CACERT"] == tls_sandbox.ca_file
    assert exports["VAULT_CACERT"] == str(Path(tls_sandbox.directory) / "tls" / "ca.crt")
    status = lifecycle.status(Path(tls_sandbox.directory))
    assert status.healthy
    node = next(c for c in status.components if c.component == "openbao")
    assert node.endpoint == tls_sandbox.vault_addr and "sealed" in node.state
    hcl = (Path(tls_sandbox.directory) / "openbao" / "node-1" / "openbao.hcl").read_text()
    assert "tls_disable" not in hcl and "tls_cert_file" in hcl
    assert f'api_addr      = "{tls_sandbox.vault_addr}"' in hcl


def test_the_served_certificate_comes_from_the_sandbox_ca_with_the_right_names(
    tls_sandbox: SandboxState,
) -> None:
    port = int(tls_sandbox.vault_addr.rsplit(":", 1)[1])
    context = ssl.create_default_context(cafile=tls_sandbox.ca_file)  # verifies chain and 127.0.0.1
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    served = x509.load_der_x509_certificate(der)
    names = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "vault.vault-system.svc" in names.get_values_for_type(x509.DNSName)
    assert "*.vault-internal" in names.get_values_for_type(x509.DNSName)
    authority = x509.load_pem_x509_certificate(Path(tls_sandbox.ca_file).read_bytes())
    assert served.issuer == authority.subject


def test_clients_verify_with_the_sandbox_ca_and_a_wrong_ca_fails_in_one_line(
    tls_sandbox: SandboxState, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAULTFLOW_VAULT_CONNECT_RETRIES", "0")
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    assert vault_status(tls_sandbox.vault_addr, tls_sandbox.ca_file).replicas[0].address == (
        tls_sandbox.vault_addr
    )
    assert hvac.Client(url=tls_sandbox.vault_addr, verify=tls_sandbox.ca_file).sys.read_seal_status()

    wrong = tmp_path / "wrong-ca.crt"
    wrong.write_text(CertificateAuthority("not the sandbox CA").certificate_pem)
    for ca_cert in (None, str(wrong)):  # the system's roots, another CA
        with pytest.raises(OperationError) as refused:
            VaultApi(tls_sandbox.vault_addr, ca_cert=ca_cert).seal_status()
        message = str(refused.value)
        assert message.startswith(
            f"Vault at {tls_sandbox.vault_addr}: TLS verification failed (TLS certificate not trusted: "
        )
        assert "\n" not in message
    with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        hvac.Client(url=tls_sandbox.vault_addr, verify=str(wrong)).sys.read_seal_status()


def _store(name: str, server: str, token_namespace: str, tls: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "external-secrets.io/v1",
        "kind": "ClusterSecretStore",
        "metadata": {"name": name},
        "spec": {
            "provider": {
                "vault": {
                    "server": server,
                    "path": "secret",
                    "version": "v2",
                    "auth": {
                        "tokenSecretRef": {
                            "name": "vault-token",
                            "key": "token",
                            "namespace": token_namespace,
                        }
                    },
                    **tls,
                }
            }
        },
    }


def _ready(custom: client.CustomObjectsApi, name: str) -> dict[str, Any] | None:
    store = custom.get_cluster_custom_object("external-secrets.io", "v1", "clustersecretstores", name)
    for condition in (store.get("status") or {}).get("conditions", []):
        if condition["type"] == "Ready":
            return dict(condition)
    return None


def test_eso_reads_vault_over_tls_with_the_store_ca_and_refuses_another(
    tls_sandbox: SandboxState, root_client: hvac.Client
) -> None:
    root_client.secrets.kv.v2.create_or_update_secret(
        "apps/tls-demo", secret={"value": "over-tls"}, mount_point="secret"
    )
    namespace = f"tls-{uuid.uuid4().hex[:6]}"
    with config.new_client_from_config(config_file=tls_sandbox.kubeconfig, context="workload-1") as api:
        core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
        core.create_namespace({"metadata": {"name": namespace}})
        core.create_namespaced_secret(
            namespace, {"metadata": {"name": "vault-token"}, "stringData": {"token": root_client.token}}
        )
        core.create_namespaced_config_map(
            namespace,
            {"metadata": {"name": "vault-ca"}, "data": {"ca.crt": Path(tls_sandbox.ca_file).read_text()}},
        )
        provider = {
            "caProvider": {"type": "ConfigMap", "name": "vault-ca", "key": "ca.crt", "namespace": namespace}
        }
        wrong = base64.b64encode(CertificateAuthority("another CA").certificate_pem.encode()).decode()
        for name, tls in ((f"{namespace}-good", provider), (f"{namespace}-wrong", {"caBundle": wrong})):
            custom.create_cluster_custom_object(
                "external-secrets.io",
                "v1",
                "clustersecretstores",
                _store(name, tls_sandbox.vault_addr, namespace, tls),
            )
        good = _wait(lambda: _ready(custom, f"{namespace}-good"), "the good store's Ready condition")
        assert good["status"] == "True", good
        refused = _wait(lambda: _ready(custom, f"{namespace}-wrong"), "the wrong-CA store's Ready condition")
        assert (refused["status"], refused["message"]) == ("False", "unable to validate store")

        def tls_event() -> list[str]:  # ESO records why on the store, as an Event
            events = core.list_event_for_all_namespaces().items
            return [
                e.message
                for e in events
                if e.involved_object.name == f"{namespace}-wrong" and "tls: failed" in (e.message or "")
            ]

        message = _wait(tls_event, "the store's TLS event")[0]
        assert message == (
            f"invalid vault credentials: GET {tls_sandbox.vault_addr}/v1/auth/token/lookup-self: "
            "tls: failed to verify certificate: x509: certificate signed by unknown authority"
        )

        custom.create_namespaced_custom_object(
            "external-secrets.io",
            "v1",
            namespace,
            "externalsecrets",
            {
                "apiVersion": "external-secrets.io/v1",
                "kind": "ExternalSecret",
                "metadata": {"name": "tls-demo"},
                "spec": {
                    "refreshInterval": "1h",
                    "secretStoreRef": {"kind": "ClusterSecretStore", "name": f"{namespace}-good"},
                    "target": {"name": "tls-demo"},
                    "data": [
                        {"secretKey": "value", "remoteRef": {"key": "apps/tls-demo", "property": "value"}}
                    ],
                },
            },
        )

        def synced() -> bytes | None:
            try:
                secret = core.read_namespaced_secret("tls-demo", namespace)
            except client.ApiException:
                return None
            return base64.b64decode(secret.data["value"]) if secret.data else None

        assert _wait(synced, "the synced Secret") == b"over-tls"


def test_three_nodes_join_raft_over_verified_tls(tmp_path_factory: pytest.TempPathFactory) -> None:
    """retry_join reaches the leader's https API and trusts it through ``leader_ca_cert_file``."""
    directory = tmp_path_factory.mktemp("vault-tls-raft") / "sbx"
    state = lifecycle.up(directory, clusters=1, builtin_crds=True, vault_replicas=3).state
    try:
        for node in state.vault:
            hcl = (Path(node.data_dir) / "openbao.hcl").read_text()
            assert hcl.count("leader_ca_cert_file") == 2 and "tls_disable" not in hcl
        nodes = [hvac.Client(url=node.address, verify=state.ca_file) for node in state.vault]
        init = nodes[0].sys.initialize(secret_shares=1, secret_threshold=1)
        for node in nodes:
            _wait(lambda node=node: node.sys.read_seal_status()["initialized"], "the node to join raft")
            node.sys.submit_unseal_key(init["keys"][0])
        nodes[0].token = init["root_token"]

        def members() -> list[str] | None:
            try:
                servers = nodes[0].sys.read_raft_config()["data"]["config"]["servers"]
            except (hvac.exceptions.VaultError, requests.exceptions.RequestException):
                return None
            return sorted(s["node_id"] for s in servers) if len(servers) == 3 else None

        assert _wait(members, "three raft members") == [
            "node-1",
            "node-2",
            "node-3",
        ]
        for node in nodes:
            _wait(lambda node=node: not node.sys.read_seal_status()["sealed"], "the node to unseal")
    finally:
        lifecycle.down(directory, purge=True)


def test_prometheus_scrapes_openbao_over_verified_tls(tls_sandbox: SandboxState) -> None:
    """The scrape job trusts the sandbox CA (``tls_config.ca_file``): the target is up."""
    from urllib.parse import quote

    from vaultflow.sandbox.prometheus import prometheus_api

    assert tls_sandbox.prometheus, "the monitoring packages are installed (task test installs them)"
    query = "query?query=" + quote('up{job="vault"}')

    def scraped() -> list[Any]:
        return [r for r in prometheus_api(tls_sandbox.prometheus, query)["result"] if r["value"][1] == "1"]

    (target,) = _wait(scraped, "Prometheus to scrape OpenBao over TLS")
    assert target["metric"]["instance"] == tls_sandbox.vault_addr.removeprefix("https://")
