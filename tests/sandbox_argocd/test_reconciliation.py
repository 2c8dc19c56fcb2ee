"""When the Argo CD emulator reads Git on its own: Argo CD's ``timeout.reconciliation`` (120 s, plus up to
60 s of jitter), unless asked with ``argocd.argoproj.io/refresh``.

With the defaults, a pushed commit is not synced while nobody asks, even though the emulator looks at
the Application (its spec changes, a resource it manages drifts): those looks compare with the revision
of the last comparison, as Argo CD's ``CompareWithRecent`` does. The refresh annotation makes it read
Git at once. The settings are ``vaultflow sandbox up`` options.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.sandbox_argocd.conftest import ArgoSandbox, GitRemote, eventually
from tests.sandbox_argocd.test_argocd import configmap, synced_at
from vaultflow.base.errors import InputError
from vaultflow.sandbox import lifecycle
from vaultflow.sandbox.argocd import ArgoCdController
from vaultflow.sandbox.kube import KubeCluster
from vaultflow.sandbox.routes import Routes
from vaultflow.sandbox.state import SandboxSpec

REFRESH = "argocd.argoproj.io/refresh"


@pytest.fixture(scope="module")
def default_argo(crd_documents: list[dict[str, Any]]) -> Iterator[ArgoSandbox]:
    """The emulator as the sandbox starts it: Argo CD's own reconciliation settings."""
    mgmt, dest = KubeCluster("mgmt").start(), KubeCluster("dest").start()
    for cluster in (mgmt, dest):
        cluster.register_crds(crd_documents)
    mgmt.store.create(mgmt.type_of("v1", "Namespace"), "", {"metadata": {"name": "argocd"}})
    dest.store.create(dest.type_of("v1", "Namespace"), "", {"metadata": {"name": "team"}})
    routes = Routes.for_sandbox({mgmt.url: "mgmt", dest.url: "dest"}, "mgmt")
    controller = ArgoCdController(mgmt, {"mgmt": mgmt, "dest": dest}, routes).start()
    yield ArgoSandbox(mgmt, dest, routes, controller)
    controller.stop()
    mgmt.stop()
    dest.stop()


def _patch_app(argo: ArgoSandbox, name: str, metadata: dict[str, Any]) -> None:
    def change(document: dict[str, Any]) -> dict[str, Any]:
        for field, values in metadata.items():
            document["metadata"].setdefault(field, {}).update(values)
        return document

    argo.mgmt.store.patch(argo.mgmt.type_of("argoproj.io/v1alpha1", "Application"), "argocd", name, change)


def _drift(argo: ArgoSandbox, name: str, value: str) -> None:
    """Someone edits the live ConfigMap: a change of a resource the Application manages."""

    def change(document: dict[str, Any]) -> dict[str, Any]:
        document["data"] = {"key": value}
        return document

    argo.dest.store.patch(argo.dest.type_of("v1", "ConfigMap"), "team", name, change)


def test_the_defaults_are_argo_cds_and_a_push_waits_until_a_refresh_is_asked_for(
    default_argo: ArgoSandbox, remote: GitRemote
) -> None:
    argo = default_argo
    assert (argo.controller.reconciliation_timeout, argo.controller.reconciliation_jitter) == (120.0, 60.0)
    first = remote.commit({"team/cm.yaml": configmap("cm", "team", key="one")})
    argo.create_app("team", remote.url, "team")  # a new Application is compared at once
    eventually(lambda: synced_at(argo, "team", first), what="the first sync")

    second = remote.commit({"team/cm.yaml": configmap("cm", "team", key="two")})
    # Two looks that are not a refresh: a label on the Application, then a drifted live object. Each
    # is compared with the last comparison's revision: the drift shows as OutOfSync at the first commit.
    _patch_app(argo, "team", {"labels": {"team": "payments"}})
    _drift(argo, "cm", "edited")

    def drifted() -> dict[str, Any] | None:
        status = argo.app("team")["status"]
        return status if status["sync"]["status"] == "OutOfSync" else None

    status = eventually(drifted, what="the drift compared")
    assert status["sync"]["revision"] == first
    assert [h["revision"] for h in status["history"]] == [first]
    live = argo.live("v1", "ConfigMap", "team", "cm")
    assert live is not None and live["data"] == {"key": "edited"}  # not self-healed, not synced

    # A refresh: Git is read now, the new commit is synced, the annotation is removed.
    _patch_app(argo, "team", {"annotations": {REFRESH: "normal"}})
    status = eventually(lambda: synced_at(argo, "team", second), timeout=30, what="the refreshed sync")
    live = argo.live("v1", "ConfigMap", "team", "cm")
    assert live is not None and live["data"] == {"key": "two"}
    assert [h["revision"] for h in status["history"]] == [first, second]

    def compared_after_sync() -> dict[str, Any] | None:
        app = argo.app("team")
        status = app["status"]
        done = REFRESH not in (app["metadata"].get("annotations") or {})
        return status if done and status["reconciledAt"] >= status["operationState"]["finishedAt"] else None

    assert eventually(compared_after_sync, what="the annotation removed and a comparison after the sync")


def test_a_stale_refresh_timestamp_leaves_a_newer_request_in_place(
    default_argo: ArgoSandbox, remote: GitRemote
) -> None:
    """``refresh-timestamp`` identifies a request: both annotations go once it is honoured."""
    argo = default_argo
    first = remote.commit({"stamped/cm.yaml": configmap("stamped", "team", key="one")})
    argo.create_app("stamped", remote.url, "stamped")
    eventually(lambda: synced_at(argo, "stamped", first), what="the first sync")
    second = remote.commit({"stamped/cm.yaml": configmap("stamped", "team", key="two")})
    stamp = "argocd.argoproj.io/refresh-timestamp"
    _patch_app(argo, "stamped", {"annotations": {REFRESH: "normal", stamp: "2026-12-01T10:00:00Z"}})
    eventually(lambda: synced_at(argo, "stamped", second), timeout=30, what="the refreshed sync")
    eventually(
        lambda: not ({REFRESH, stamp} & set(argo.app("stamped")["metadata"].get("annotations") or {})),
        what="both annotations removed",
    )


def test_a_short_timeout_reads_git_on_its_own(crd_documents: list[dict[str, Any]], remote: GitRemote) -> None:
    """What the resync does once ``reconciledAt`` is older than the timeout (the emulator's own tests
    run this way)."""
    mgmt, dest = KubeCluster("mgmt").start(), KubeCluster("dest").start()
    controller = None
    try:
        for cluster in (mgmt, dest):
            cluster.register_crds(crd_documents)
        mgmt.store.create(mgmt.type_of("v1", "Namespace"), "", {"metadata": {"name": "argocd"}})
        dest.store.create(dest.type_of("v1", "Namespace"), "", {"metadata": {"name": "team"}})
        routes = Routes.for_sandbox({mgmt.url: "mgmt", dest.url: "dest"}, "mgmt")
        controller = ArgoCdController(
            mgmt, {"mgmt": mgmt, "dest": dest}, routes, reconciliation_timeout=1.0, reconciliation_jitter=0.5
        ).start()
        argo = ArgoSandbox(mgmt, dest, routes, controller)
        first = remote.commit({"polled/cm.yaml": configmap("polled", "team", key="one")})
        argo.create_app("polled", remote.url, "polled")
        eventually(lambda: synced_at(argo, "polled", first), what="the first sync")
        second = remote.commit({"polled/cm.yaml": configmap("polled", "team", key="two")})
        eventually(lambda: synced_at(argo, "polled", second), timeout=30, what="the polled sync")
        assert REFRESH not in (argo.app("polled")["metadata"].get("annotations") or {})
    finally:
        if controller is not None:
            controller.stop()
        mgmt.stop()
        dest.stop()


def test_the_sandbox_starts_argo_cd_with_its_defaults_and_refuses_negative_settings(tmp_path: Path) -> None:
    spec = SandboxSpec(workload_clusters=("a",), crd_dir=str(tmp_path), crd_upstream=False)
    assert (spec.argocd_reconciliation_timeout, spec.argocd_reconciliation_jitter) == (120.0, 60.0)
    assert "Argo CD" not in spec.describe()
    slow = spec.model_copy(update={"argocd_reconciliation_timeout": 600.0})
    assert slow.describe().endswith("; Argo CD reconciliation 600s + up to 60s")
    with pytest.raises(InputError, match=r"--argocd-reconciliation-jitter cannot be negative \(got -1s\)"):
        lifecycle.up(tmp_path / "sbx", argocd_reconciliation_jitter=-1)
    assert not (tmp_path / "sbx").exists()


def test_sandbox_up_takes_go_durations_and_names_a_bad_one(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "vaultflow",
            "sandbox",
            "up",
            "--dir",
            str(tmp_path / "sbx"),
            "--argocd-reconciliation-timeout",
            "soon",
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "--argocd-reconciliation-timeout: 'soon' is not a duration" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "sbx").exists()
