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
