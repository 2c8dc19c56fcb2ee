"""The checkers reproduce Argo CD's rules, including the surprising ones."""

from __future__ import annotations

from typing import Any

import pytest

from tests.argocd_apps.argocd_policy import ProjectPolicy, glob_match
from tests.argocd_apps.manifests import argo_glob_match


def _project(**spec: Any) -> ProjectPolicy:
    return ProjectPolicy.from_manifest({"metadata": {"name": "p"}, "spec": spec})


def test_namespaced_kinds_are_open_without_a_whitelist_and_closed_with_an_empty_one() -> None:
    assert _project().permits_kind("apps", "Deployment", namespaced=True)
    assert not _project(namespaceResourceWhitelist=[]).permits_kind("apps", "Deployment", namespaced=True)
    blacklisted = _project(namespaceResourceBlacklist=[{"group": "", "kind": "Secret"}])
    assert not blacklisted.permits_kind("", "Secret", namespaced=True)
    assert blacklisted.permits_kind("", "ConfigMap", namespaced=True)


def test_cluster_kinds_need_a_whitelist_entry_matching_group_kind_and_name() -> None:
    assert not _project().permits_kind("", "Namespace", namespaced=False, name="a")
    named = _project(clusterResourceWhitelist=[{"group": "", "kind": "Namespace", "name": "team-*"}])
    assert named.permits_kind("", "Namespace", namespaced=False, name="team-a")
    assert not named.permits_kind("", "Namespace", namespaced=False, name="kube-system")
    anyname = _project(clusterResourceWhitelist=[{"group": "*", "kind": "*"}])
    assert anyname.permits_kind("rbac.authorization.k8s.io", "ClusterRole", namespaced=False, name="x")


def test_destinations_match_by_server_or_by_cluster_name() -> None:
    project = _project(
        destinations=[{"server": "https://a", "namespace": "n"}, {"name": "b", "namespace": "n"}]
    )
    assert project.permits_destination(server="https://a", namespace="n")
    assert project.permits_destination(name="b", namespace="n")
    assert not project.permits_destination(name="a", namespace="n")
    assert not project.permits_destination(server="https://a", namespace="m")


def test_source_urls_compare_normalised() -> None:
    project = _project(sourceRepos=["https://github.com/Org/Repo.git"])
    assert project.permits_source("https://github.com/org/repo")
    assert not project.permits_source("https://github.com/org/repo-fork")
    assert glob_match("https://github.com/org/*", "https://github.com/org/repo", "/")
    assert not glob_match("https://github.com/org/*", "https://github.com/org/repo/sub", "/")


def test_deny_patterns_are_reported_not_guessed() -> None:
    with pytest.raises(ValueError, match="deny pattern"):
        _project(destinations=[{"server": "https://a", "namespace": "!kube-system"}]).permits_destination(
            server="https://a", namespace="x"
        )


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("{root.yaml,apps/*.yaml}", "apps/vault.yaml", True),
        ("{root.yaml,apps/*.yaml}", "projects/p.yaml", False),
        ("apps/*.yaml", "apps/nested/x.yaml", True),  # '*' crosses '/' in Argo CD's include/exclude
        ("*/*/*", "workflows/templates/t.yaml", True),
        ("*/*/*", "workflows/application.yaml", False),
    ],
)
def test_directory_globs_follow_argo_cd(pattern: str, path: str, matches: bool) -> None:
    assert argo_glob_match(pattern, path) is matches
