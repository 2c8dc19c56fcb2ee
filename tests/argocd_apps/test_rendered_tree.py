"""The rendered GitOps tree of the example catalog fits the Applications and
projects of argocd-apps/: what `vaultflow render` writes is what Argo CD will
accept, cluster by cluster and object by object."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.argocd_apps.argocd_policy import ProjectPolicy
from tests.argocd_apps.manifests import Document
from vaultflow.gitops.catalog import load_catalog
from vaultflow.gitops.crd_schemas import CrdRegistry
from vaultflow.gitops.render import render_catalog

IN_CLUSTER = "https://kubernetes.default.svc"
# Kubernetes' own kinds the render writes (the rotation's RBAC and identity): no CRD says their scope.
BUILT_IN_NAMESPACED = {
    ("v1", "Namespace"): False,
    ("v1", "ServiceAccount"): True,
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): False,
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): False,
    ("rbac.authorization.k8s.io/v1", "Role"): True,
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): True,
}


@pytest.fixture(scope="module")
def rendered(repo_root: Path) -> dict[str, dict[str, Any]]:
    """Rendered manifests by path, as they land under the catalog's gitops.path."""
    loaded = load_catalog(repo_root / "examples" / "catalog.yaml")
    prefix = loaded.catalog.gitops.path
    return {f"{prefix}/{path}": manifest for path, manifest in render_catalog(loaded).manifests()}


def _under(rendered: Mapping[str, dict[str, Any]], directory: str) -> dict[str, dict[str, Any]]:
    return {path: obj for path, obj in rendered.items() if path.startswith(f"{directory}/")}


def _kustomize_resources(rendered: Mapping[str, dict[str, Any]], directory: str) -> list[dict[str, Any]]:
    """The objects a Kustomize source at ``directory`` produces (flat resource lists only)."""
    kustomization = rendered[f"{directory}/kustomization.yaml"]
    return [rendered[f"{directory}/{resource}"] for resource in kustomization["resources"]]


def test_eso_resources_application_finds_the_rendered_applications(
    applications: dict[str, Document], rendered: dict[str, dict[str, Any]]
) -> None:
    path = applications["eso-resources"].obj["spec"]["source"]["path"]
    objects = _kustomize_resources(rendered, path)
    assert objects, f"nothing rendered under {path}/"
    assert {obj["kind"] for obj in objects} == {"Application"}


def test_the_rendered_applications_fit_through_the_eso_project(
    applications: dict[str, Document], projects: dict[str, ProjectPolicy], rendered: dict[str, dict[str, Any]]
) -> None:
    bridge = applications["eso-resources"].obj
    bridge_project = projects[bridge["spec"]["project"]]
    problems = []
    for app in _kustomize_resources(rendered, bridge["spec"]["source"]["path"]):
        name = app["metadata"]["name"]
        problems += [
            f"{name}: {p}" for p in bridge_project.object_violations(app, namespaced=True, server=IN_CLUSTER)
        ]
        if app["spec"]["project"] not in projects:
            problems.append(f"{name}: project {app['spec']['project']!r} is not defined in argocd-apps/")
            continue
        problems += [f"{name}: {p}" for p in projects[app["spec"]["project"]].application_violations(app)]
    assert problems == []


def test_every_rendered_eso_object_is_admitted_in_its_cluster(
    applications: dict[str, Document],
    projects: dict[str, ProjectPolicy],
    rendered: dict[str, dict[str, Any]],
    upstream_crds: CrdRegistry,
) -> None:
    bridge = applications["eso-resources"].obj
    problems = []
    for app in _kustomize_resources(rendered, bridge["spec"]["source"]["path"]):
        project = projects[app["spec"]["project"]]
        destination = app["spec"]["destination"]
        objects = _under(rendered, app["spec"]["source"]["path"])
        assert objects, f"{app['metadata']['name']}: nothing rendered under {app['spec']['source']['path']}/"
        for path, obj in objects.items():
            if obj["kind"] == "Kustomization":
                continue
            key = (obj["apiVersion"], obj["kind"])
            crd = upstream_crds.lookup(*key)
            assert crd is not None or key in BUILT_IN_NAMESPACED, f"{path}: no CRD for {key}"
            namespaced = crd.namespaced if crd is not None else BUILT_IN_NAMESPACED[key]
            where = {"server": destination.get("server", ""), "name": destination.get("name", "")}
            problems += [
                f"{path}: {p}" for p in project.object_violations(obj, namespaced=namespaced, **where)
            ]
    assert problems == [], "add the missing destinations to argocd-apps/projects/vaultflow-eso-resources.yaml"
