"""The rendered Application of each other catalog cluster (``manifests/applications/``), synced by the
sandbox's Argo CD emulator from a real Git repository: the observer's account and RBAC arrive in that
cluster, the exporter's LIST there passes as the observer (and nothing more does), and deleting the
Application takes the grant away again."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException
from prometheus_client import CollectorRegistry

from tests.sandbox.test_rbac_rules_needed import admin_client, as_account, token_for
from vaultflow.gitops.catalog import load_catalog
from vaultflow.gitops.crd_schemas import CrdRegistry
from vaultflow.gitops.monitoring import exporter_files
from vaultflow.gitops.monitoring_exporter import MANIFESTS_PATH, OBSERVER_ROLE, cluster_applications
from vaultflow.sandbox.argocd import ArgoCdController
from vaultflow.sandbox.crd_sources import CrdSource, load_crds
from vaultflow.sandbox.kube import KubeCluster
from vaultflow.sandbox.routes import Routes
from vaultflow.steps.observe.exporter import CatalogCollector, _Scrape

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_NAME = "examples/catalog.yaml"
EXAMPLE = load_catalog(REPO_ROOT / EXAMPLE_NAME)
OBSERVER = EXAMPLE.catalog.vault.kubernetes_auth.observer_service_account
WORKFLOWS = EXAMPLE.catalog.workflows_cluster().name
(OTHER,) = [c.name for c in EXAMPLE.catalog.clusters if c.name != WORKFLOWS]  # prod-us
APPLICATION = ("argoproj.io/v1alpha1", "Application")
RBAC = "rbac.authorization.k8s.io/v1"


def test_each_other_cluster_has_one_valid_application(upstream_crds: CrdRegistry) -> None:
    applications = cluster_applications(EXAMPLE.catalog)
    assert [a["spec"]["destination"] for _, a in applications] == [
        {"name": OTHER, "namespace": OBSERVER.namespace}
    ]
    for _, application in applications:
        assert upstream_crds.validate(application) == []
        assert application["spec"]["source"]["path"] == f"{MANIFESTS_PATH}/clusters/{OTHER}"


@dataclass
class Synced:
    workflows: KubeCluster
    other: KubeCluster
    application: dict[str, Any]


def _eventually(condition: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Poll an asynchronous controller's outcome; fail naming what never came."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return value


def _git(where: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@localhost", *args],
        cwd=where,
        check=True,
        capture_output=True,
    )


def _gitops_repository(root: Path) -> Path:
    """A bare repository holding the rendered monitoring manifests where the GitOps repository has them."""
    bare, work = root / "gitops.git", root / "work"
    _git(root, "init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    _git(root, "clone", "--quiet", str(bare), str(work))
    _git(work, "checkout", "--quiet", "-B", "main")
    for path, text in exporter_files(EXAMPLE, EXAMPLE_NAME).items():
        target = work / MANIFESTS_PATH / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    _git(work, "add", "--all")
    _git(work, "commit", "--quiet", "-m", "monitoring")
    _git(work, "push", "--quiet", "origin", "main")
    return bare


def _status(cluster: KubeCluster, name: str) -> dict[str, Any]:
    found = cluster.store.get(cluster.type_of(*APPLICATION), EXAMPLE.catalog.gitops.argocd_namespace, name)
    return dict(found.copy().get("status") or {})


@pytest.fixture(scope="module")
def synced(schemas_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synced]:
    """Argo CD in the workflows cluster, the other cluster registered under its catalog name, and the
    rendered Application created as the monitoring Application's sync creates it."""
    crds = load_crds(CrdSource(schemas_dir, upstream=True))
    workflows, other = KubeCluster(WORKFLOWS).start(), KubeCluster(OTHER).start()
    controller: ArgoCdController | None = None
    try:
        for cluster in (workflows, other):
            cluster.register_crds(crds)
        namespace = EXAMPLE.catalog.gitops.argocd_namespace
        workflows.store.create(workflows.type_of("v1", "Namespace"), "", {"metadata": {"name": namespace}})
        routes = Routes.for_sandbox({workflows.url: WORKFLOWS, other.url: OTHER}, WORKFLOWS)
        bare = _gitops_repository(tmp_path_factory.mktemp("observer-applications"))
        routes.set("git", EXAMPLE.catalog.gitops.repo_url, bare.resolve().as_uri())
        controller = ArgoCdController(
            workflows, {WORKFLOWS: workflows, OTHER: other}, routes, reconciliation_timeout=0.1,
            reconciliation_jitter=0,
        ).start()  # fmt: skip
        ((_, application),) = cluster_applications(EXAMPLE.catalog)
        workflows.store.create(
            workflows.type_of(*APPLICATION), namespace, yaml.safe_load(yaml.safe_dump(application))
        )
        name = application["metadata"]["name"]

        def synced_and_healthy() -> bool:
            status = _status(workflows, name)
            return (
                (status.get("sync") or {}).get("status") == "Synced"
                and (status.get("health") or {}).get("status") == "Healthy"
                and (status.get("operationState") or {}).get("phase") == "Succeeded"
            )

        _eventually(synced_and_healthy, f"{name} Synced and Healthy")
        yield Synced(workflows, other, application)
    finally:
        if controller is not None:
            controller.stop()
        workflows.stop()
        other.stop()


def _live(cluster: KubeCluster, api_version: str, kind: str, namespace: str, name: str) -> bool:
    return bool(cluster.store.exists(cluster.type_of(api_version, kind), namespace, name))


def _exporter_lists(api: client.ApiClient) -> bool:
    """The exporter's own LIST of ExternalSecrets in the other cluster (what a scrape does)."""
    collector = CatalogCollector(EXAMPLE.catalog, None, {OTHER: api}, CollectorRegistry())
    return collector._list(OTHER, _Scrape())


def test_the_sync_brings_the_observers_rbac_and_the_exporters_list_passes(synced: Synced) -> None:
    other = synced.other
    assert _live(other, "v1", "Namespace", "", OBSERVER.namespace)
    assert _live(other, "v1", "ServiceAccount", OBSERVER.namespace, OBSERVER.name)
    assert _live(other, RBAC, "ClusterRole", "", OBSERVER_ROLE)
    assert _live(other, RBAC, "ClusterRoleBinding", "", OBSERVER_ROLE)
    assert not _live(
        synced.workflows, RBAC, "ClusterRole", "", OBSERVER_ROLE
    )  # that is its own Application's
    observer = as_account(other, token_for(admin_client(other), OBSERVER.namespace, OBSERVER.name))
    assert _exporter_lists(observer)
    with pytest.raises(ApiException) as refused:  # the grant is the exporter's LIST, nothing more
        client.CoreV1Api(observer).list_secret_for_all_namespaces()
    assert refused.value.status == 403


def test_deleting_the_application_takes_the_grant_and_leaves_the_namespace(synced: Synced) -> None:
    other, metadata = synced.other, synced.application["metadata"]
    admin = admin_client(other)
    observer = as_account(other, token_for(admin, OBSERVER.namespace, OBSERVER.name))
    assert _exporter_lists(observer)
    synced.workflows.store.delete(
        synced.workflows.type_of(*APPLICATION), metadata["namespace"], metadata["name"]
    )
    _eventually(lambda: not _live(other, RBAC, "ClusterRoleBinding", "", OBSERVER_ROLE), "the binding pruned")
    assert not _exporter_lists(observer)
    assert _live(other, "v1", "Namespace", "", OBSERVER.namespace)  # Prune=false,Delete=false
