"""The AppProjects admit exactly what vaultflow deploys, and refuse the rest."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from tests.argocd_apps.argocd_policy import ProjectPolicy
from tests.argocd_apps.manifests import Document

IN_CLUSTER = "https://kubernetes.default.svc"
GITOPS_REPO = "https://github.com/example-org/platform-gitops.git"
ESO_GROUP = "external-secrets.io"


def test_every_application_fits_through_its_project(
    applications: dict[str, Document], projects: dict[str, ProjectPolicy]
) -> None:
    problems = []
    for name, app in applications.items():
        project_name = app.obj["spec"]["project"]
        if project_name not in projects:
            problems.append(f"{name}: project {project_name!r} is not defined in argocd-apps/")
            continue
        problems += [f"{name}: {p}" for p in projects[project_name].application_violations(app.obj)]
    assert problems == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"destination": {"server": IN_CLUSTER, "namespace": "kube-system"}}, "namespace 'kube-system'"),
        (
            {"destination": {"server": "https://other-cluster:6443", "namespace": "vault-system"}},
            "other-cluster",
        ),
        (
            {
                "source": {
                    "repoURL": "https://charts.example.com",
                    "chart": "openbao",
                    "targetRevision": "1.0.0",
                }
            },
            "charts.example.com",
        ),
    ],
    ids=["foreign-namespace", "foreign-cluster", "foreign-repository"],
)
def test_the_project_check_fails_an_application_that_leaves_its_project(
    applications: dict[str, Document],
    projects: dict[str, ProjectPolicy],
    change: dict[str, Any],
    expected: str,
) -> None:
    vault = applications["vault"].obj
    moved = {**vault, "spec": {**vault["spec"], **change}}
    (problem,) = projects[vault["spec"]["project"]].application_violations(moved)
    assert expected in problem


def test_projects_list_no_wildcard_and_no_unused_source(
    applications: dict[str, Document], projects: dict[str, ProjectPolicy]
) -> None:
    used: dict[str, set[str]] = {}
    for app in applications.values():
        used.setdefault(app.obj["spec"]["project"], set()).add(app.obj["spec"]["source"]["repoURL"])
    for name, project in projects.items():
        assert "*" not in "".join(project.source_repos), f"{name}: sourceRepos must be exact"
        for destination in project.destinations:
            assert "*" not in destination.server + destination.name + destination.namespace, (
                f"{name}: {destination}"
            )
        for rule in (*project.cluster_whitelist, *(project.namespace_whitelist or ())):
            assert "*" not in rule.group + rule.kind, f"{name}: {rule}"
            assert rule.name != "*", f"{name}: {rule} whitelists every name"
        # The GitOps repository is every project's home; any other source must be in use.
        unused = set(project.source_repos) - used.get(name, set()) - {GITOPS_REPO}
        assert not unused, f"{name}: sourceRepos no Application of the project uses: {sorted(unused)}"


def test_platform_project_cannot_touch_argo_cd_or_cluster_wide_rbac(
    projects: dict[str, ProjectPolicy],
) -> None:
    platform = projects["vaultflow-platform"]
    crd = ("apiextensions.k8s.io", "CustomResourceDefinition")
    assert platform.permits_kind(*crd, namespaced=False, name="externalsecrets.external-secrets.io")
    assert platform.permits_kind(*crd, namespaced=False, name="passwords.generators.external-secrets.io")
    assert platform.permits_kind(*crd, namespaced=False, name="workflowtemplates.argoproj.io")
    assert not platform.permits_kind(*crd, namespaced=False, name="applications.argoproj.io")
    assert not platform.permits_kind(*crd, namespaced=False, name="appprojects.argoproj.io")
    assert not platform.permits_kind(
        "rbac.authorization.k8s.io", "ClusterRole", namespaced=False, name="cluster-admin"
    )
    assert not platform.permits_kind(
        "rbac.authorization.k8s.io", "ClusterRoleBinding", namespaced=False, name="cluster-admin"
    )
    assert not platform.permits_kind("", "Namespace", namespaced=False, name="kube-system")
    assert platform.permits_kind("", "Namespace", namespaced=False, name="vault-system")
    assert not platform.permits_kind("argoproj.io", "Application", namespaced=True)
    assert not platform.permits_kind("", "ResourceQuota", namespaced=True)
    assert not platform.permits_destination(server=IN_CLUSTER, namespace="argocd")


def test_every_platform_namespace_created_by_an_application_is_whitelisted(
    applications: dict[str, Document], projects: dict[str, ProjectPolicy]
) -> None:
    """CreateNamespace=true needs the Namespace object itself to be allowed by name."""
    for name, app in applications.items():
        spec = app.obj["spec"]
        if "CreateNamespace=true" not in spec.get("syncPolicy", {}).get("syncOptions", []):
            continue
        namespace = spec["destination"]["namespace"]
        assert projects[spec["project"]].permits_kind("", "Namespace", namespaced=False, name=namespace), name


def _eso_object(kind: str, namespace: str | None, name: str = "x") -> dict[str, Any]:
    api_version = f"{ESO_GROUP}/v1alpha1" if kind == "PushSecret" else f"{ESO_GROUP}/v1"
    metadata = {"name": name} if namespace is None else {"name": name, "namespace": namespace}
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata}


def _catalog_placements(catalog: Mapping[str, Any]) -> Iterator[tuple[Mapping[str, str], str, str]]:
    """(Argo CD destination of the cluster, namespace, what) for every consumer and placed push."""
    clusters = {c["name"]: c["argocd"] for c in catalog["clusters"]}
    for secret in catalog["secrets"]:
        for consumer in secret.get("consumers", []):
            yield clusters[consumer["cluster"]], consumer["namespace"], f"{secret['path']} consumer"
        for push in secret.get("pushes", []):
            if "cluster" in push:
                yield clusters[push["cluster"]], push["namespace"], f"{secret['path']} push"


def test_eso_project_admits_every_placement_of_the_example_catalog(
    projects: dict[str, ProjectPolicy], example_catalog: Mapping[str, Any]
) -> None:
    project = projects[example_catalog["gitops"]["project"]]
    problems = []
    for destination, namespace, what in _catalog_placements(example_catalog):
        target = {"server": destination.get("server", ""), "name": destination.get("name", "")}
        for kind in ("ExternalSecret", "SecretStore", "PushSecret"):
            problems += [
                f"{what}: {p}"
                for p in project.object_violations(_eso_object(kind, namespace), namespaced=True, **target)
            ]
    store = _eso_object("ClusterSecretStore", None, example_catalog["vault"]["storeName"])
    problems += project.object_violations(store, namespaced=False)
    assert problems == [], "add the missing destinations to argocd-apps/projects/vaultflow-eso-resources.yaml"


def test_eso_project_refuses_secrets_workloads_other_cluster_rbac_and_namespaces(
    projects: dict[str, ProjectPolicy],
) -> None:
    """The rotation's RBAC (rendered) is admitted: namespaced kinds (a whitelist cannot name them) in the
    project's destinations only, cluster-scoped ones only by their names; nothing else."""
    project = projects["vaultflow-eso-resources"]
    rbac = "rbac.authorization.k8s.io"
    for group, kind in [("", "Secret"), ("", "ConfigMap"), ("apps", "Deployment"), ("", "Pod")]:
        assert not project.permits_kind(group, kind, namespaced=True), kind
    for kind in ("Role", "RoleBinding"):
        assert project.permits_kind(rbac, kind, namespaced=True)
    for kind in ("ClusterRole", "ClusterRoleBinding"):
        assert project.permits_kind(rbac, kind, namespaced=False, name="vaultflow-rotation-discovery")
        assert not project.permits_kind(rbac, kind, namespaced=False, name="cluster-admin")
        assert not project.permits_kind(rbac, kind, namespaced=False, name="vaultflow-bootstrap")
    assert project.permits_kind("", "Namespace", namespaced=False, name="argo")
    assert not project.permits_kind("", "Namespace", namespaced=False, name="production")
    assert not project.permits_kind(ESO_GROUP, "ClusterSecretStore", namespaced=False, name="planted-store")
    assert not project.permits_kind(ESO_GROUP, "ClusterExternalSecret", namespaced=False)
    assert not project.permits_destination(server=IN_CLUSTER, namespace="kube-system")
    # argo of the workflows cluster holds the bootstrap's keeper: the rendered tree never reaches it.
    assert not project.permits_destination(server=IN_CLUSTER, namespace="argo")
