"""Which Applications a delivery waits for, and when one (and each ESO object) counts as done.

Argo CD's own status shapes (controller/appcontroller.go, pkg/apis/application/v1alpha1/types.go):
the cases ``argocd app wait`` gets wrong are the ones that must not count as done here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from vaultflow.steps.delivery.argocd_wait import (
    Tracking,
    WatchedApplication,
    WatchedObject,
    application_status,
    applications_of,
    normal_repo_url,
    object_status,
)

REPO = "https://github.com/example-org/platform-gitops.git"
OLD, NEW, LATER = "a" * 40, "b" * 40, "c" * 40
TRACKING = Tracking(frozenset({normal_repo_url(REPO)}), "main", "main")


def app(name: str, path: str, *, repo: str = REPO, revision: str = "main") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "argocd"},
        "spec": {"source": {"repoURL": repo, "targetRevision": revision, "path": path}},
    }


def test_rendered_and_live_applications_of_the_changed_paths_are_waited_for() -> None:
    changed = {"eso/clusters/eu/es.yaml", "eso/argocd/eso-resources-eu.yaml"}
    tree = changed | {"eso/clusters/us/es.yaml"}
    rendered = [app("eso-resources-eu", "eso/clusters/eu"), app("eso-resources-us", "eso/clusters/us")]
    live = [
        app("apps", "eso/argocd", repo="https://GitHub.com/example-org/platform-gitops/"),  # same repository
        app("eso-resources-us", "eso/clusters/us"),
        app("typo", "eso/clusters/eu-typo"),  # in our directory, at a path the tree does not have
        app("other-branch", "eso/clusters/eu", revision="staging"),
        app("other-repo", "eso/clusters/eu", repo="https://github.com/example-org/other.git"),
        app("head", "eso", revision="HEAD"),  # HEAD is main, the default branch
        app("someone-else", "apps/payments"),  # outside our directory, nothing changed there
    ]
    found = applications_of(
        changed, rendered=rendered, live=live, tracking=TRACKING, owned="eso", tree_files=tree
    )
    assert [(a.name, a.path, a.rendered) for a in found] == [
        ("apps", "eso/argocd", False),
        ("eso-resources-eu", "eso/clusters/eu", True),
        ("head", "eso", False),
        ("typo", "eso/clusters/eu-typo", False),
    ]
    on_staging = Tracking(TRACKING.repo_urls, "main", "staging")
    found = applications_of(
        changed, rendered=[], live=live, tracking=on_staging, owned="eso", tree_files=tree
    )
    assert "head" not in [a.name for a in found]  # HEAD is another branch there


def stamp(second: int) -> str:
    return f"2025-01-01T00:00:{second:02d}Z"


def status(
    *,
    revision: str = NEW,
    synced: str = NEW,
    phase: str = "Succeeded",
    sync: str = "Synced",
    health: str = "Healthy",
    finished: int = 10,
    reconciled: int = 12,
    **extra: Any,
) -> dict[str, Any]:
    return {
        **app("eso-resources-eu", "eso/clusters/eu"),
        "status": {
            "sync": {"status": sync, "revision": revision},
            "health": {"status": health},
            "operationState": {
                "phase": phase,
                "message": "successfully synced (all tasks run)",
                "startedAt": stamp(5),
                "finishedAt": stamp(finished),
                "syncResult": {"revision": synced},
            },
            "reconciledAt": stamp(reconciled),
            "history": [
                {"id": 0, "revision": OLD, "deployStartedAt": stamp(1)},
                {"id": 1, "revision": NEW, "deployStartedAt": stamp(5)},
            ],
            **extra,
        },
    }


WATCHED = WatchedApplication("argocd", "eso-resources-eu", "eso/clusters/eu")


def verdict(document: dict[str, Any] | None, accept: Any = None) -> Any:
    return application_status(WATCHED, document, accept or (lambda revision: revision == NEW), NEW)


def test_an_application_is_done_only_when_it_compared_and_synced_the_commit_after_the_sync() -> None:
    done = verdict(status())
    assert done.status.converged and done.status.message.startswith("Synced at bbbbbbbbbbbb, Healthy")
    assert done.sync_started == datetime(2025, 1, 1, 0, 0, 5, tzinfo=UTC)
    # Synced and Healthy at the previous revision: what `argocd app wait` returns on
    stale = verdict(status(revision=OLD, synced=OLD))
    assert not stale.status.converged and stale.status.message.startswith("not at bbbbbbbbbbbb yet")
    # compared the new commit, still synced at the old one
    assert "last synced aaaaaaaaaaaa" in verdict(status(synced=OLD)).status.message
    # the sync ended, and no comparison has run since: Synced and Healthy are from before it
    assert (
        "not compared since its sync finished" in verdict(status(finished=12, reconciled=11)).status.message
    )
    assert verdict(status(finished=12, reconciled=12)).status.converged  # the same second counts
    assert not verdict(status(phase="Running")).status.converged
    assert not verdict(status(health="Progressing")).status.converged
    assert not verdict(status(sync="OutOfSync")).status.converged
    # a later commit of the branch that contains ours: done (someone pushed after us)
    assert verdict(status(revision=LATER, synced=LATER), lambda r: r in (NEW, LATER)).status.converged


def test_what_is_seen_names_the_condition_and_the_unhealthy_resources() -> None:
    missing = verdict(None)
    assert not missing.status.converged and missing.status.message == "does not exist"
    broken = status(
        revision="",
        phase="",
        sync="Unknown",
        conditions=[
            {"type": "ComparisonError", "message": "Failed to load target state: app path does not exist: x"}
        ],
    )
    broken["status"].pop("operationState")
    message = verdict(broken).status.message
    assert "ComparisonError: Failed to load target state: app path does not exist: x" in message
    degraded = status(
        health="Degraded",
        resources=[
            {
                "kind": "ExternalSecret",
                "namespace": "prod",
                "name": "db",
                "health": {"status": "Degraded", "message": "could not get secret data from provider"},
            }
        ],
    )
    assert (
        "ExternalSecret prod/db Degraded: could not get secret data from provider"
        in verdict(degraded).status.message
    )
    moved = application_status(
        WatchedApplication("argocd", "eso-resources-eu", "eso-v2/clusters/eu"), status(), lambda r: True, NEW
    )
    assert not moved.status.converged
    assert "reads eso/clusters/eu, the rendered Application eso-v2/clusters/eu" in moved.status.message


def external_secret(
    *, ready: str = "True", generation: int = 2, processed: int = 2, refreshed: int = 7
) -> dict[str, Any]:
    return {
        "metadata": {"name": "db", "namespace": "prod", "generation": generation},
        "status": {
            "conditions": [
                {
                    "type": "Ready",
                    "status": ready,
                    "reason": "SecretSynced" if ready == "True" else "SecretSyncedError",
                    "message": "secret synced"
                    if ready == "True"
                    else "could not get secret data from provider",
                }
            ],
            "syncedResourceVersion": f"{processed}-0a1b",
            "refreshTime": stamp(refreshed),
        },
    }


def test_an_external_secret_is_done_when_ready_at_its_generation_and_refreshed_after_the_sync() -> None:
    synced_at = datetime(2025, 1, 1, 0, 0, 5, 500000, tzinfo=UTC)
    changed = WatchedObject("ExternalSecret", "eu", "prod", "db", "argocd/eso-resources-eu", changed=True)
    kept = WatchedObject("ExternalSecret", "eu", "prod", "db", "argocd/eso-resources-eu", changed=False)
    assert object_status(changed, external_secret(), synced_at).converged
    assert object_status(changed, external_secret(refreshed=5), synced_at).converged  # the sync's second
    stale = object_status(changed, external_secret(refreshed=4), synced_at)
    assert not stale.converged and "not refreshed since the sync" in stale.message
    assert object_status(kept, external_secret(refreshed=1), synced_at).converged  # unchanged: no refresh due
    behind = object_status(kept, external_secret(generation=3), synced_at)
    assert not behind.converged and "has not processed generation 3" in behind.message
    failing = object_status(kept, external_secret(ready="False"), synced_at)
    assert not failing.converged
    assert failing.message == "SecretSyncedError: could not get secret data from provider"
    assert object_status(kept, None, synced_at).message == "does not exist"
