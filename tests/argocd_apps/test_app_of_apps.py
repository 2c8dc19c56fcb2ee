"""The app-of-apps: what the root picks up, the wave order, pinning and sync safety."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.argocd_apps.argocd_policy import ProjectPolicy
from tests.argocd_apps.manifests import (
    Document,
    directory_source_files,
    load_documents,
    sync_options,
    sync_wave,
)

GITOPS_REPO = "https://github.com/example-org/platform-gitops.git"
IN_CLUSTER = "https://kubernetes.default.svc"
# The brief's order: Vault, then ESO, then the rendered ESO resources, then
# Argo Workflows, then the workflow templates (argocd-apps/workflows/).
WAVE_ORDER = ("vault", "external-secrets", "eso-resources", "argo-workflows")
WORKFLOW_TEMPLATES_WAVE = 4
CHART_REPOS = {
    "openbao": "https://openbao.github.io/openbao-helm",
    "external-secrets": "https://charts.external-secrets.io",
    "argo-workflows": "https://argoproj.github.io/argo-helm",
}
EXACT_VERSION = re.compile(r"^\d+\.\d+\.\d+$")


def _root(applications: dict[str, Document]) -> Document:
    return applications["vaultflow-root"]


def _root_files(root: Document, argocd_apps_dir: Path) -> list[Path]:
    source = root.obj["spec"]["source"]
    assert source["path"] == "argocd-apps"
    return directory_source_files(argocd_apps_dir, source.get("directory"))


def _workflow_applications(applications: dict[str, Document], argocd_apps_dir: Path) -> list[Document]:
    return [doc for doc in applications.values() if doc.path.is_relative_to(argocd_apps_dir / "workflows")]


def test_root_points_at_an_existing_directory_of_this_repository(
    applications: dict[str, Document], argocd_apps_dir: Path, repo_root: Path
) -> None:
    source = _root(applications).obj["spec"]["source"]
    assert source["repoURL"] == GITOPS_REPO
    assert (repo_root / source["path"]).resolve() == argocd_apps_dir


def test_root_syncs_itself_the_projects_and_every_platform_application(
    applications: dict[str, Document], argocd_apps_dir: Path
) -> None:
    selected = {
        p.relative_to(argocd_apps_dir).as_posix() for p in _root_files(_root(applications), argocd_apps_dir)
    }
    expected = {"root.yaml"}
    expected |= {f"projects/{p.name}" for p in (argocd_apps_dir / "projects").glob("*.yaml")}
    expected |= {f"apps/{p.name}" for p in (argocd_apps_dir / "apps").glob("*.yaml")}
    assert expected <= selected, f"the root would not sync: {sorted(expected - selected)}"
    deeper = sorted(s for s in selected if s.count("/") > 1)
    assert not deeper, f"files below a first-level folder belong to child Applications: {deeper}"
    unexpected = sorted(
        s
        for s in selected
        if s.split("/")[0] not in {"root.yaml", "projects", "apps", "workflows", "monitoring"}
    )
    assert not unexpected


def test_root_reaches_the_workflow_templates_folder(
    applications: dict[str, Document], tmp_path: Path
) -> None:
    """The top level of argocd-apps/workflows/ is the root's; its subfolders are not.

    Checked on a scratch tree, so it holds whether or not the workflows side
    has written its folder yet.
    """
    for relative in ("root.yaml", "apps/a.yaml", "workflows/application.yaml", "workflows/templates/t.yaml"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("{}\n")
    selected = {p.relative_to(tmp_path).as_posix() for p in _root_files(_root(applications), tmp_path)}
    assert selected == {"root.yaml", "apps/a.yaml", "workflows/application.yaml"}


def test_every_object_the_root_syncs_is_permitted_by_the_root_project(
    applications: dict[str, Document], projects: dict[str, ProjectPolicy], argocd_apps_dir: Path
) -> None:
    root = _root(applications)
    project = projects[root.obj["spec"]["project"]]
    problems = [
        f"{doc.where(argocd_apps_dir)}: {problem}"
        for path in _root_files(root, argocd_apps_dir)
        for doc in load_documents(path)
        for problem in project.object_violations(doc.obj, namespaced=True, server=IN_CLUSTER)
    ]
    assert problems == []


def test_root_project_refuses_anything_but_argo_cd_objects(
    applications: dict[str, Document], projects: dict[str, ProjectPolicy]
) -> None:
    project = projects[_root(applications).obj["spec"]["project"]]
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "argocd"}}
    assert project.object_violations(config_map, namespaced=True, server=IN_CLUSTER)
    app_elsewhere = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "x", "namespace": "default"},
    }
    assert project.object_violations(app_elsewhere, namespaced=True, server=IN_CLUSTER)
    assert not project.permits_kind(
        "rbac.authorization.k8s.io", "ClusterRoleBinding", namespaced=False, name="x"
    )


def test_sync_waves_follow_vault_eso_resources_workflows_templates(
    applications: dict[str, Document], argocd_apps_dir: Path
) -> None:
    waves = [sync_wave(applications[name].obj) for name in WAVE_ORDER]
    assert waves == sorted(waves) and len(set(waves)) == len(waves), dict(zip(WAVE_ORDER, waves, strict=True))
    assert waves == [0, 1, 2, 3]
    for app in _workflow_applications(applications, argocd_apps_dir):
        assert sync_wave(app.obj) == WORKFLOW_TEMPLATES_WAVE, f"{app.name} must come after Argo Workflows"


def test_projects_are_created_before_the_applications_that_use_them(documents: list[Document]) -> None:
    first_app_wave = min(
        sync_wave(doc.obj) for doc in documents if doc.is_argo_cd and doc.kind == "Application"
    )
    for doc in documents:
        if doc.is_argo_cd and doc.kind == "AppProject":
            assert sync_wave(doc.obj) < first_app_wave, f"AppProject {doc.name} must be in an earlier wave"


def test_no_application_uses_the_default_project(applications: dict[str, Document]) -> None:
    offenders = [
        name for name, app in applications.items() if app.obj["spec"].get("project", "default") == "default"
    ]
    assert offenders == []


def test_chart_versions_are_pinned_to_an_exact_release(applications: dict[str, Document]) -> None:
    charts = {}
    for name, app in applications.items():
        source = app.obj["spec"]["source"]
        if "chart" not in source:
            continue
        version = str(source.get("targetRevision", ""))
        assert EXACT_VERSION.match(version), (
            f"{name}: chart version {version!r} is not an exact x.y.z release"
        )
        charts[source["chart"]] = source["repoURL"]
    assert charts == CHART_REPOS


def test_git_sources_track_the_gitops_repository(applications: dict[str, Document]) -> None:
    for name, app in applications.items():
        source = app.obj["spec"]["source"]
        if "chart" in source:
            continue
        assert source["repoURL"] == GITOPS_REPO, f"{name}: one placeholder URL for the GitOps repository"
        assert source.get("targetRevision"), f"{name}: name the branch Argo CD tracks"


def test_every_platform_application_syncs_itself_with_retries(
    applications: dict[str, Document], argocd_apps_dir: Path
) -> None:
    workflow_apps = {app.name for app in _workflow_applications(applications, argocd_apps_dir)}
    for name, app in applications.items():
        if name in workflow_apps:
            continue  # the workflows side decides its own sync policy
        policy: dict[str, Any] = app.obj["spec"].get("syncPolicy", {})
        automated = policy.get("automated", {})
        assert automated.get("selfHeal") is True, f"{name}: drift must be reverted"
        assert automated.get("prune") is True, f"{name}: what leaves Git leaves the cluster"
        assert automated.get("allowEmpty", False) is False, (
            f"{name}: an empty render must not prune everything"
        )
        backoff = policy.get("retry", {}).get("backoff", {})
        assert policy["retry"]["limit"] > 0 and backoff.get("factor", 1) > 1 and backoff.get("maxDuration")


def test_vault_data_cannot_be_deleted_by_argo_cd(
    applications: dict[str, Document], vault_values: dict[str, Any]
) -> None:
    vault = applications["vault"].obj
    assert "resources-finalizer.argocd.argoproj.io" not in vault["metadata"].get("finalizers", [])
    assert "Prune=false" in sync_options(vault), "the root must not delete the Vault Application on its own"
    statefulset = {"metadata": {"annotations": vault_values["server"]["statefulSet"]["annotations"]}}
    assert {"Prune=false", "Delete=false"} <= sync_options(statefulset)
    assert vault_values["server"]["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Retain",
        "whenScaled": "Retain",
    }
    assert "PrunePropagationPolicy=orphan" in vault["spec"]["syncPolicy"]["syncOptions"]
    assert vault_values["server"]["updateStrategyType"] == "OnDelete"


def test_deleting_a_parent_never_cascades_into_running_secrets(applications: dict[str, Document]) -> None:
    for name in ("vaultflow-root", "vault", "eso-resources"):
        finalizers = applications[name].obj["metadata"].get("finalizers", [])
        assert "resources-finalizer.argocd.argoproj.io" not in finalizers, name
    eso_crds = applications["external-secrets"].obj["spec"]["source"]["helm"]["valuesObject"]["crds"]
    assert {"Prune=false", "Delete=false"} <= sync_options(
        {"metadata": {"annotations": eso_crds["annotations"]}}
    )
    argo_crds = applications["argo-workflows"].obj["spec"]["source"]["helm"]["valuesObject"]["crds"]
    assert argo_crds["keep"] is True  # helm.sh/resource-policy: keep, honoured by Argo CD as Delete=false


def test_large_crds_are_applied_server_side(applications: dict[str, Document]) -> None:
    for name in ("external-secrets", "argo-workflows"):
        assert "ServerSideApply=true" in applications[name].obj["spec"]["syncPolicy"]["syncOptions"], name


def test_eso_resources_follow_the_catalogs_gitops_path(
    applications: dict[str, Document], example_catalog: dict[str, Any]
) -> None:
    source = applications["eso-resources"].obj["spec"]["source"]
    gitops = example_catalog["gitops"]
    assert source["repoURL"] == gitops["repoUrl"] == GITOPS_REPO
    assert source["targetRevision"] == gitops["revision"]
    assert source["path"] == f"{gitops['path']}/argocd"
    assert "directory" not in source, (
        "argocd/ is a Kustomize source; directory mode would apply kustomization.yaml"
    )
    assert applications["eso-resources"].obj["spec"]["project"] == gitops["project"]
