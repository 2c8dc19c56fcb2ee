"""The exporter's cluster clients follow its kubeconfig files (``KubeconfigClients``): kubelet updates a
pod's kubeconfig Secret volume in place after a re-onboarding, and a Kubernetes client reads its file
only once, so each scrape makes the clients again when the files' bytes changed, and only then."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from vaultflow.base.errors import OperationError
from vaultflow.gitops.catalog import load_catalog
from vaultflow.steps.observe.exporter import KubeconfigClients

EXAMPLE = load_catalog(Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml")


def _kubeconfig(path: Path, tokens: dict[str, str]) -> None:
    """A kubeconfig with a context per entry of ``tokens`` (context -> its user's token)."""
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": c, "cluster": {"server": f"https://{c}.invalid"}} for c in tokens],
                "users": [{"name": c, "user": {"token": t}} for c, t in tokens.items()],
                "contexts": [{"name": c, "context": {"cluster": c, "user": c}} for c in tokens],
            }
        )
    )


def _token(api: object) -> str:
    return str(api.configuration.api_key["BearerToken"])  # type: ignore[attr-defined]


def test_the_clients_are_made_again_only_when_a_kubeconfig_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own, volume = tmp_path / "own", tmp_path / "volume"
    _kubeconfig(own, {"prod-eu": "own-token"})
    _kubeconfig(volume, {"prod-us": "onboarded-1"})
    monkeypatch.setenv("KUBECONFIG", f"{own}:{volume}")
    clients = KubeconfigClients(EXAMPLE)

    first = clients.current()
    assert {name: _token(api) for name, api in first.items()} == {
        "prod-eu": "Bearer own-token",
        "prod-us": "Bearer onboarded-1",
    }
    assert clients.current() is first  # unchanged files: the same clients, no new connections

    _kubeconfig(volume, {"prod-us": "onboarded-2"})  # a re-onboarding, as kubelet writes it
    assert _token(clients.current()["prod-us"]) == "Bearer onboarded-2"


def test_a_cluster_without_a_context_is_left_out_until_the_kubeconfig_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    own, volume = tmp_path / "own", tmp_path / "volume"
    _kubeconfig(own, {"prod-eu": "own-token"})
    monkeypatch.setenv("KUBECONFIG", f"{own}:{volume}")  # the volume not filled: onboarding missing

    with pytest.raises(OperationError, match="prod-us"):  # a one-shot scrape: an error
        KubeconfigClients(EXAMPLE, strict=True).current()

    clients = KubeconfigClients(EXAMPLE)
    assert set(clients.current()) == {"prod-eu"}  # the workflows cluster is still read
    assert "cluster prod-us: cannot reach Kubernetes (context 'prod-us')" in caplog.text

    _kubeconfig(volume, {"prod-us": "onboarded"})
    assert set(clients.current()) == {"prod-eu", "prod-us"}
