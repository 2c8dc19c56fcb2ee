"""Service-account tokens for the Kubernetes login: what the cluster says, or why it said nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from vaultflow.base.errors import OperationError
from vaultflow.sandbox.kubeconfig import ClusterAccess, write_kubeconfig
from vaultflow.sandbox.openbao import free_port
from vaultflow.steps.vault.login import service_account_token


def test_an_unreachable_api_server_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_kubeconfig(
        tmp_path / "config", [ClusterAccess("gone", f"http://127.0.0.1:{free_port()}", "token")]
    )
    monkeypatch.setenv("KUBECONFIG", str(path))
    with pytest.raises(OperationError) as caught:
        service_account_token(namespace="external-secrets", name="external-secrets", context="gone")
    assert str(caught.value) == (
        "service account external-secrets/external-secrets: cannot get a token for it (TokenRequest): "
        "the Kubernetes API server is unreachable (connection refused)"
    )


def test_a_client_acting_as_the_account_uses_its_own_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pipeline that reaches its cluster as its own service account (a kubeconfig of its token, as
    its pod has) logs into Vault with that token: RBAC need not let it request a token of itself."""
    from kubernetes import client

    from vaultflow.sandbox.kube import KubeCluster

    with KubeCluster("own-token") as cluster:
        admin_config = client.Configuration()
        admin_config.host = cluster.url
        admin_config.api_key = {"authorization": f"Bearer {cluster.admin_token}"}
        with client.ApiClient(admin_config) as admin:
            core = client.CoreV1Api(admin)
            core.create_namespace({"metadata": {"name": "argo"}})
            for account in ("runner", "other"):
                core.create_namespaced_service_account("argo", {"metadata": {"name": account}})
            request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[]))
            own = str(core.create_namespaced_service_account_token("runner", "argo", request).status.token)
        path = write_kubeconfig(tmp_path / "config", [ClusterAccess("c", cluster.url, own, "argo")])
        monkeypatch.setenv("KUBECONFIG", str(path))

        assert service_account_token(namespace="argo", name="runner", context="c") == own
        with pytest.raises(OperationError) as caught:  # another account's token is still requested
            service_account_token(namespace="argo", name="other", context="c")
        assert (
            'User "system:serviceaccount:argo:runner" cannot create resource "serviceaccounts/token"'
            in str(caught.value)
        )
