"""``wait_for_sync`` (what ``vaultflow gitops apply --wait`` runs) against an Argo CD that polls slowly.

The emulator here polls Git every 10 minutes, as a real Argo CD polls every 3:
right after a push the Application is still Synced and Healthy at the previous
commit, which is all ``argocd app wait`` looks at. The wait must not take that
for done, and must not need the poll either: it asks for a refresh.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import config

from tests.sandbox_argocd.conftest import ArgoSandbox, GitRemote, eventually
from tests.sandbox_argocd.test_argocd import configmap, synced_at
from vaultflow.sandbox.argocd import ArgoCdController
from vaultflow.sandbox.kube import KubeCluster
from vaultflow.sandbox.kubeconfig import ClusterAccess, write_kubeconfig
from vaultflow.sandbox.routes import Routes
from vaultflow.steps.delivery.argocd_wait import REFRESH_ANNOTATION, WatchedApplication, wait_for_sync

SLOW_POLL = 600.0


@pytest.fixture(scope="module")
def slow_argo(crd_documents: list[dict[str, Any]]) -> Iterator[ArgoSandbox]:
    mgmt, dest = KubeCluster("mgmt").start(), KubeCluster("dest").start()
    for cluster in (mgmt, dest):
        cluster.register_crds(crd_documents)
    mgmt.store.create(mgmt.type_of("v1", "Namespace"), "", {"metadata": {"name": "argocd"}})
    dest.store.create(dest.type_of("v1", "Namespace"), "", {"metadata": {"name": "team"}})
    routes = Routes.for_sandbox({mgmt.url: "mgmt", dest.url: "dest"}, "mgmt")
    controller = ArgoCdController(
        mgmt, {"mgmt": mgmt, "dest": dest}, routes, reconciliation_timeout=SLOW_POLL, reconciliation_jitter=0
    ).start()
    yield ArgoSandbox(mgmt, dest, routes, controller)
    controller.stop()
    mgmt.stop()
    dest.stop()


@pytest.fixture
def mgmt_api(slow_argo: ArgoSandbox, tmp_path: Path) -> Iterator[Any]:
    kubeconfig = write_kubeconfig(
        tmp_path / "kubeconfig", [ClusterAccess("mgmt", slow_argo.mgmt.url, slow_argo.mgmt.admin_token)]
    )
    with config.new_client_from_config(config_file=str(kubeconfig), context="mgmt") as api:
        yield api


def test_a_push_is_awaited_at_its_commit_through_a_refresh_not_the_poll(
    slow_argo: ArgoSandbox, remote: GitRemote, mgmt_api: Any
) -> None:
    argo = slow_argo
    first = remote.commit({"team/cm.yaml": configmap("cm", "team", key="one")})
    argo.create_app("team", remote.url, "team")  # a new Application is compared at once
    eventually(lambda: synced_at(argo, "team", first), what="the first sync")
    second = remote.commit({"team/cm.yaml": configmap("cm", "team", key="two")})
    time.sleep(1.0)
    stale = argo.app("team")["status"]
    # what `argocd app wait --sync --health` returns on: Synced and Healthy, at the previous commit
    assert (stale["sync"]["status"], stale["sync"]["revision"], stale["health"]["status"]) == (
        "Synced",
        first,
        "Healthy",
    )

    started = time.monotonic()
    report = wait_for_sync(
        mgmt_api,
        [WatchedApplication("argocd", "team", "team")],
        [],
        {},
        commit=second,
        accept=lambda revision: revision == second,
        timeout=30,
    )
    assert report.converged, report.pending
    assert time.monotonic() - started < 10  # seconds, not the 10-minute poll
    [app] = report.applications
    assert app.revision == second and app.sync == "Synced" and app.health == "Healthy"
    assert synced_at(argo, "team", second)
    assert argo.live("v1", "ConfigMap", "team", "cm")["data"] == {"key": "two"}
    annotations = argo.app("team")["metadata"].get("annotations") or {}
    assert REFRESH_ANNOTATION not in annotations  # Argo CD removes it once it has refreshed


def test_an_application_that_cannot_sync_is_named_with_its_condition(
    slow_argo: ArgoSandbox, remote: GitRemote, mgmt_api: Any
) -> None:
    commit = remote.commit({"here/cm.yaml": configmap("cm2", "team")})
    slow_argo.create_app("nowhere", remote.url, "not-there")
    report = wait_for_sync(
        mgmt_api,
        [WatchedApplication("argocd", "nowhere", "not-there"), WatchedApplication("argocd", "absent", "x")],
        [],
        {},
        commit=commit,
        accept=lambda revision: revision == commit,
        timeout=2,
    )
    assert not report.converged
    [nowhere, absent] = report.pending
    assert nowhere.startswith("Application argocd/nowhere: not at ")
    assert "ComparisonError: Failed to load target state: app path does not exist: not-there" in nowhere
    assert absent == "Application argocd/absent: does not exist"
