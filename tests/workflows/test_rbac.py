"""The workflows' ServiceAccounts and RBAC: valid, deployed by their Application, least privilege."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.argocd_apps.argocd_policy import ProjectPolicy
from tests.argocd_apps.manifests import directory_source_files
from vaultflow.gitops.crd_schemas import CrdRegistry

REPO_ROOT = Path(__file__).resolve().parents[2]
FOLDER = REPO_ROOT / "argocd-apps" / "workflows"
KUBERNETES_VERSION = "1.33.0"
IN_CLUSTER = "https://kubernetes.default.svc"

Grant = tuple[
    str, str, str, str, str
]  # namespace ("" = cluster), api group, resource, verb, resource name ("" = any)


def _documents(*patterns: str) -> list[dict[str, Any]]:
    return [
        doc
        for pattern in patterns
        for path in sorted(FOLDER.glob(pattern))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def _rbac() -> list[dict[str, Any]]:
    return _documents("rbac/*.yaml")


@pytest.mark.parametrize("document", _rbac(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_rbac_validates_against_the_kubernetes_schemas(document: dict[str, Any]) -> None:
    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_validator_catches_a_typo() -> None:
    role = next(d for d in _rbac() if d["kind"] == "Role")
    broken = {**role, "rules": [{**role["rules"][0], "verb": ["get"]}]}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_argo_cd_objects_validate_against_the_crds(upstream_crds: CrdRegistry) -> None:
    for document in _documents("*.yaml"):
        assert upstream_crds.validate(document) == [], document["metadata"]["name"]


def _grants() -> dict[str, set[Grant]]:
    """ServiceAccount -> every (namespace, group, resource, verb, name) its bindings grant."""
    documents = _rbac()
    roles = {
        (d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]): d
        for d in documents
        if d["kind"] in ("Role", "ClusterRole")
    }
    grants: dict[str, set[Grant]] = defaultdict(set)
    for binding in (d for d in documents if d["kind"] in ("RoleBinding", "ClusterRoleBinding")):
        namespace = binding["metadata"].get("namespace", "")
        ref = binding["roleRef"]
        role = roles[(ref["kind"], namespace if ref["kind"] == "Role" else "", ref["name"])]
        for subject in binding["subjects"]:
            assert subject["kind"] == "ServiceAccount" and subject["namespace"] == "argo"
            for rule in role["rules"]:
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        for verb in rule["verbs"]:
                            for name in rule.get("resourceNames", [""]):
                                grants[subject["name"]].add((namespace, group, resource, verb, name))
    return grants


EXECUTOR = {("argo", "argoproj.io", "workflowtaskresults", verb, "") for verb in ("create", "patch")}


def test_the_default_workflow_identity_may_only_report_outputs() -> None:
    assert _grants()["vaultflow-workflow"] == EXECUTOR


def test_rotation_gets_only_its_catalog_here_the_rest_is_rendered_from_the_catalog() -> None:
    """What rotation does to consumers is rendered per cluster (tests/gitops/test_rotation_rbac.py); the
    hand-written RBAC gives it only the pipeline's input, in argo, by name: never the bootstrap's keeper."""
    assert _grants()["vaultflow-rotation"] - EXECUTOR == {
        ("argo", "", "configmaps", "get", "vaultflow-catalog"),
    }


def test_bootstrap_gets_its_keeper_catalog_lock_and_two_tokens_nothing_more() -> None:
    assert _grants()["vaultflow-bootstrap"] - EXECUTOR == {
        ("argo", "", "secrets", "create", ""),
        ("argo", "", "secrets", "get", "vaultflow-vault-keeper"),
        ("argo", "", "secrets", "update", "vaultflow-vault-keeper"),
        ("argo", "", "configmaps", "get", "vaultflow-catalog"),
        ("argo", "coordination.k8s.io", "leases", "create", ""),
        ("argo", "coordination.k8s.io", "leases", "get", "vaultflow-vault-bootstrap"),
        ("argo", "coordination.k8s.io", "leases", "update", "vaultflow-vault-bootstrap"),
        ("vault-system", "", "serviceaccounts/token", "create", "vault-token-reviewer"),
        ("external-secrets-system", "", "serviceaccounts/token", "create", "external-secrets"),
    }


def test_no_rule_uses_a_wildcard() -> None:
    for document in _rbac():
        for rule in document.get("rules", []):
            assert "*" not in [*rule["apiGroups"], *rule["resources"], *rule["verbs"]], document["metadata"][
                "name"
            ]


def test_the_application_deploys_rbac_and_templates_within_its_project(tmp_path: Path) -> None:
    (application,) = _documents("application.yaml")
    (project_doc,) = _documents("project.yaml")
    project = ProjectPolicy.from_manifest(project_doc)
    assert project.application_violations(application) == []
    source = application["spec"]["source"]
    files = directory_source_files(REPO_ROOT / source["path"], source.get("directory"))
    relative = {p.relative_to(FOLDER).as_posix() for p in files}
    assert {p.relative_to(FOLDER).as_posix() for p in FOLDER.glob("rbac/*.yaml")} <= relative
    assert "templates/workflowtemplates/vaultflow-selftest.yaml" in relative
    assert not {"application.yaml", "project.yaml"} & relative, "the top level belongs to the root"
    for path in files:
        for document in yaml.safe_load_all(path.read_text()):
            namespaced = document["kind"] not in ("ClusterRole", "ClusterRoleBinding")
            document.setdefault("metadata", {}).setdefault(
                "namespace", application["spec"]["destination"]["namespace"]
            )
            if not namespaced:
                document["metadata"].pop("namespace")
            assert project.object_violations(document, namespaced=namespaced, server=IN_CLUSTER) == []


def test_every_template_runs_as_a_declared_service_account() -> None:
    accounts = {d["metadata"]["name"] for d in _rbac() if d["kind"] == "ServiceAccount"}
    for template in _documents("templates/workflowtemplates/*.yaml"):
        assert template["spec"]["serviceAccountName"] in accounts
