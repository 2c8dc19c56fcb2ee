"""Every manifest under argocd-apps/ parses and fits the upstream Argo CD CRDs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.argocd_apps.conftest import ARGOCD_APPS
from tests.argocd_apps.manifests import Document, load_documents, manifest_files
from vaultflow.gitops.crd_schemas import CrdRegistry

# argocd-apps/workflows/ is written by the workflows side of the project: it may
# hold ServiceAccounts and RBAC next to its Application; argocd-apps/monitoring/
# holds the PrometheusRule its Application delivers. Everywhere else only Argo CD
# objects belong in this tree.
WORKFLOWS_DIR = ARGOCD_APPS / "workflows"
MONITORING_DIR = ARGOCD_APPS / "monitoring"


def _files() -> list[Path]:
    return manifest_files(ARGOCD_APPS)


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(ARGOCD_APPS)))
def test_every_argo_cd_document_validates_against_the_upstream_crd(
    path: Path, upstream_crds: CrdRegistry
) -> None:
    documents = load_documents(path)
    assert documents, f"{path}: no YAML document"
    argo_documents = [doc for doc in documents if doc.is_argo_cd]
    if not (path.is_relative_to(WORKFLOWS_DIR) or path.is_relative_to(MONITORING_DIR)):
        foreign = [
            f"{doc.where(ARGOCD_APPS)} ({doc.obj.get('apiVersion')}/{doc.kind})"
            for doc in documents
            if not doc.is_argo_cd
        ]
        assert not foreign, f"only Argo CD objects belong outside workflows/ and monitoring/: {foreign}"
    for doc in argo_documents:
        assert upstream_crds.validate(doc.obj) == [], f"{doc.where(ARGOCD_APPS)} ({doc.kind} {doc.name})"
        assert doc.obj["metadata"].get("namespace") == "argocd", (
            f"{doc.where(ARGOCD_APPS)}: Argo CD objects live in namespace argocd"
        )


def test_the_tree_holds_the_expected_objects(documents: list[Document]) -> None:
    argo = {(doc.kind, doc.name) for doc in documents if doc.is_argo_cd}
    expected = {
        ("AppProject", "vaultflow-bootstrap"),
        ("AppProject", "vaultflow-platform"),
        ("AppProject", "vaultflow-eso-resources"),
        ("Application", "vaultflow-root"),
        ("Application", "vault"),
        ("Application", "external-secrets"),
        ("Application", "eso-resources"),
        ("Application", "argo-workflows"),
        ("AppProject", "vaultflow-monitoring"),
        ("Application", "vaultflow-monitoring"),
    }
    assert expected <= argo, f"missing: {sorted(expected - argo)}"


def test_the_validator_would_catch_a_typo(documents: list[Document], upstream_crds: CrdRegistry) -> None:
    """Guard the guard: a misspelt field in one of our Applications is reported."""
    vault = next(doc for doc in documents if doc.kind == "Application" and doc.name == "vault")
    broken = {
        **vault.obj,
        "spec": {**vault.obj["spec"], "syncPolicy": {"automated": {"prune": True, "selfHeel": True}}},
    }
    (error,) = upstream_crds.validate(broken)
    assert error.startswith("spec.syncPolicy.automated:") and "selfHeel" in error
