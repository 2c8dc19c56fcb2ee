"""How the Argo CD emulator's operations fail, retry, end and come back, as Argo CD's controller does.

controller/appcontroller.go: an automated sync without ``syncPolicy.retry``
retries 5 times; a revision whose automated sync failed is not tried again
automatically; ``argocd app terminate-op`` (``operationState.phase:
Terminating``) ends the operation without retrying; a requested ``operation``
syncs that revision again; an operation in progress when the controller
stopped is resumed by the next one. And what the demo's recovery
(``vaultflow.sandbox.recovery``) asks of it after a fault.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import config

from tests.sandbox_argocd.conftest import FAST, ArgoSandbox, GitRemote, eventually
from tests.sandbox_argocd.test_argocd import configmap, synced_at
from vaultflow.sandbox.argocd import ArgoCdController
from vaultflow.sandbox.kube import KubeCluster
from vaultflow.sandbox.kubeconfig import ClusterAccess, write_kubeconfig
from vaultflow.sandbox.recovery import resync_failed_applications
from vaultflow.sandbox.routes import Routes

APPLICATION = ("argoproj.io/v1alpha1", "Application")


def operation_state(argo: ArgoSandbox, app: str) -> dict[str, Any]:
    return dict((argo.app(app).get("status") or {}).get("operationState") or {})


def retrying(argo: ArgoSandbox, app: str) -> dict[str, Any] | None:
    """The operation once it failed and waits for its next retry (Running with ``finishedAt``)."""
    state = operation_state(argo, app)
    return state if state.get("phase") == "Running" and state.get("finishedAt") else None


def patch_app(argo: ArgoSandbox, app: str, change: Any) -> None:
    def apply(document: dict[str, Any]) -> dict[str, Any]:
        change(document)
        return document

    argo.mgmt.store.patch(argo.mgmt.type_of(*APPLICATION), "argocd", app, apply)


def later_namespace() -> str:
    return f"later-{uuid.uuid4().hex[:8]}"


def create_namespace(argo: ArgoSandbox, name: str) -> None:
    argo.dest.store.create(argo.dest.type_of("v1", "Namespace"), "", {"metadata": {"name": name}})


def reconciled_again(argo: ArgoSandbox, times: int) -> None:
    """Let the controller reconcile ``times`` more times (it polls every app): no clock involved."""
    start = argo.controller.reconciles
    eventually(lambda: argo.controller.reconciles >= start + times, what=f"{times} more reconciles")


def test_an_automated_sync_without_a_retry_policy_retries_five_times(
    argo: ArgoSandbox, remote: GitRemote
) -> None:
    missing = later_namespace()
    remote.commit({"r/cm.yaml": configmap("cm", missing)})
    argo.create_app("retries", remote.url, "r")

    state = eventually(lambda: retrying(argo, "retries"), what="the first failed attempt")
    assert state["operation"]["retry"] == {"limit": 5}
    assert state["operation"]["initiatedBy"] == {"automated": True}
    assert state["retryCount"] == 1
    assert state["message"].startswith("one or more objects failed to apply. Retrying attempt #1 at ")

    create_namespace(argo, missing)  # the retry, 5 s later, finds it
    revision = state["syncResult"]["revision"]
    eventually(lambda: synced_at(argo, "retries", revision), timeout=30, what="the retried sync")


def test_a_terminated_operation_is_not_retried_and_a_requested_sync_takes_the_revision_again(
    argo: ArgoSandbox, remote: GitRemote
) -> None:
    missing = later_namespace()
    revision = remote.commit({"t/cm.yaml": configmap("cm", missing)})
    argo.create_app("terminated", remote.url, "t")
    eventually(lambda: retrying(argo, "terminated"), what="the first failed attempt")

    patch_app(argo, "terminated", lambda doc: doc["status"]["operationState"].update(phase="Terminating"))

    def ended() -> dict[str, Any] | None:
        state = operation_state(argo, "terminated")
        return state if state.get("phase") == "Failed" else None

    state = eventually(ended, what="the operation to end")
    assert state["message"] == "Operation terminated (retried 1 times)."
    assert state["syncResult"]["revision"] == revision

    # the cause is gone, yet an automated sync does not try a revision whose sync failed again
    create_namespace(argo, missing)
    reconciled_again(argo, 20)
    assert operation_state(argo, "terminated")["phase"] == "Failed"
    assert argo.live("v1", "ConfigMap", missing, "cm") is None

    # what `argocd app sync` sets: the controller takes the operation and clears the field when done
    patch_app(
        argo,
        "terminated",
        lambda doc: doc.update(
            operation={"sync": {"revision": revision}, "initiatedBy": {"username": "t"}, "retry": {}}
        ),
    )
    status = eventually(lambda: synced_at(argo, "terminated", revision), what="the requested sync")
    assert status["operationState"]["operation"]["initiatedBy"] == {"username": "admin"}
    assert "operation" not in argo.app("terminated")
    assert argo.live("v1", "ConfigMap", missing, "cm") is not None


@pytest.fixture
def own_argo(crd_documents: list[dict[str, Any]]) -> Iterator[ArgoSandbox]:
    """Clusters of this test's own, so that their controller can be stopped and another started."""
    mgmt, dest = KubeCluster("mgmt").start(), KubeCluster("dest").start()
    for cluster in (mgmt, dest):
        cluster.register_crds(crd_documents)
    mgmt.store.create(mgmt.type_of("v1", "Namespace"), "", {"metadata": {"name": "argocd"}})
    routes = Routes.for_sandbox({mgmt.url: "mgmt", dest.url: "dest"}, "mgmt")
    controller = ArgoCdController(
        mgmt, {"mgmt": mgmt, "dest": dest}, routes, reconciliation_timeout=FAST, reconciliation_jitter=0
    ).start()
    sandbox = ArgoSandbox(mgmt, dest, routes, controller)
    yield sandbox
    sandbox.controller.stop()
    mgmt.stop()
    dest.stop()


def test_an_operation_waiting_for_its_retry_is_resumed_by_a_restarted_controller(
    own_argo: ArgoSandbox, remote: GitRemote
) -> None:
    argo, missing = own_argo, later_namespace()
    revision = remote.commit({"s/cm.yaml": configmap("cm", missing)})
    argo.create_app("resumed", remote.url, "s")
    eventually(lambda: retrying(argo, "resumed"), what="the first failed attempt")

    argo.controller.stop()
    create_namespace(argo, missing)
    argo.controller = ArgoCdController(
        argo.mgmt,
        {"mgmt": argo.mgmt, "dest": argo.dest},
        argo.routes,
        reconciliation_timeout=FAST,
        reconciliation_jitter=0,
    ).start()

    status = eventually(lambda: synced_at(argo, "resumed", revision), timeout=30, what="the resumed retry")
    assert status["operationState"]["retryCount"] == 1
    assert status["operationState"]["operation"]["initiatedBy"] == {"automated": True}
    assert argo.live("v1", "ConfigMap", missing, "cm") is not None


@pytest.fixture
def mgmt_api(argo: ArgoSandbox, tmp_path: Path) -> Iterator[Any]:
    """A Kubernetes client of the management cluster, as the demo's recovery uses one."""
    kubeconfig = write_kubeconfig(
        tmp_path / "kubeconfig", [ClusterAccess("mgmt", argo.mgmt.url, argo.mgmt.admin_token)]
    )
    with config.new_client_from_config(config_file=str(kubeconfig), context="mgmt") as api:
        yield api


SLOW_RETRY = {"limit": 3, "backoff": {"duration": "10m"}}  # the next attempt is minutes away


def test_the_recovery_terminates_a_sync_waiting_to_retry_and_requests_its_revision_again(
    argo: ArgoSandbox, remote: GitRemote, mgmt_api: Any
) -> None:
    missing = later_namespace()
    revision = remote.commit({"w/cm.yaml": configmap("cm", missing)})
    argo.create_app(
        "waiting", remote.url, "w", syncPolicy={"automated": {"prune": True}, "retry": SLOW_RETRY}
    )
    eventually(lambda: retrying(argo, "waiting"), what="the first failed attempt")
    create_namespace(argo, missing)  # the cause is gone; Argo CD would try again in 10 minutes

    lines = resync_failed_applications(mgmt_api, ["waiting"], revision, before=time.time(), timeout=15)
    assert [line.split(":")[0] for line in lines] == [
        "terminated the sync of waiting waiting to retry",
        f"asked Argo CD to sync waiting at {revision[:12]} again (its last sync failed",
    ]
    assert lines[1].endswith("(its last sync failed: Operation terminated (retried 1 times).)")
    status = eventually(lambda: synced_at(argo, "waiting", revision), what="the requested sync")
    assert status["operationState"]["operation"]["retry"] == SLOW_RETRY  # as the API server fills it
    assert status["operationState"]["operation"]["sync"]["prune"] is True


def test_the_recovery_requests_a_failed_revision_again_and_leaves_later_failures_alone(
    argo: ArgoSandbox, remote: GitRemote, mgmt_api: Any
) -> None:
    missing = later_namespace()
    revision = remote.commit({"f/cm.yaml": configmap("cm", missing)})
    no_retry = {"automated": {"prune": True}, "retry": {"limit": 0}}
    argo.create_app("failed", remote.url, "f", syncPolicy=no_retry)

    def failed() -> dict[str, Any] | None:
        state = operation_state(argo, "failed")
        return state if state.get("phase") == "Failed" else None

    eventually(failed, what="the sync to fail")
    # a failure after the moment given is the fault still in force: nothing is asked for
    assert resync_failed_applications(mgmt_api, ["failed"], revision, before=0.0, timeout=15) == []
    assert "operation" not in argo.app("failed")

    create_namespace(argo, missing)
    [line] = resync_failed_applications(mgmt_api, ["failed"], revision, before=time.time(), timeout=15)
    assert line.startswith(f"asked Argo CD to sync failed at {revision[:12]} again")
    eventually(lambda: synced_at(argo, "failed", revision), what="the requested sync")
