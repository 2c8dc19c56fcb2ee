"""The PushSecrets' status, watched, says when to read a pushed cloud secret (steps/rotation/push_status.py).

On the kube emulator with ESO's CRDs: a status change (what ESO writes after a push, or a failed
one) calls the follower; the force-sync annotation alone does not; a status that changed between the
look before the annotation and ``follow`` calls it at once; one LIST and one WATCH per cluster.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.steps.test_rotation_listing import NAMESPACE, Recording, served_with_eso_crds
from vaultflow.gitops.render import SECRET_LABEL
from vaultflow.sandbox.kube import KubeCluster
from vaultflow.steps.rotation.discover import CloudStore, ConsumingPushSecret, PushedKey
from vaultflow.steps.rotation.force_sync import force_sync
from vaultflow.steps.rotation.push_status import UNKNOWN, PushSecretCues

ESO = "external-secrets.io"
LABEL = "apps-db"


@pytest.fixture
def cluster(schemas_dir: Path) -> Iterator[KubeCluster]:
    with served_with_eso_crds(schemas_dir, "pushing") as served:
        yield served


def _push_secret(api: client.ApiClient, name: str) -> ConsumingPushSecret:
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        ESO,
        "v1alpha1",
        NAMESPACE,
        "pushsecrets",
        {
            "apiVersion": f"{ESO}/v1alpha1",
            "kind": "PushSecret",
            "metadata": {"name": name, "labels": {SECRET_LABEL: LABEL}},
            "spec": {
                "secretStoreRefs": [{"name": "aws", "kind": "ClusterSecretStore"}],
                "selector": {"secret": {"name": "db"}},
                "data": [{"match": {"secretKey": "password", "remoteRef": {"remoteKey": f"apps/{name}"}}}],
            },
        },
    )
    return ConsumingPushSecret(
        cluster="one",
        namespace=NAMESPACE,
        name=name,
        source_secret="db",
        source="catalog",
        keys=[PushedKey(secret_key="password", remote_key=f"apps/{name}", property=None)],
        stores=[CloudStore(store_kind="ClusterSecretStore", store_name="aws", provider="aws", location="x")],
        secret_label=LABEL,
    )


def _pushed_by_eso(served: KubeCluster, name: str, refreshed: str) -> None:
    """What ESO writes after a push: the PushSecret's status (straight into the store)."""
    push_secrets = served.type_of(f"{ESO}/v1alpha1", "PushSecret")

    def status(current: dict[str, Any]) -> dict[str, Any]:
        current["status"] = {
            "refreshTime": refreshed,
            "syncedResourceVersion": f"2-{refreshed}",
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Synced",
                    "message": "PushSecret synced successfully",
                }
            ],
        }
        return current

    served.store.patch(push_secrets, NAMESPACE, name, status, subresource="status")


class Calls:
    def __init__(self) -> None:
        self.count = 0
        self._changed = threading.Condition()

    def __call__(self) -> None:
        with self._changed:
            self.count += 1
            self._changed.notify_all()

    def wait_for(self, count: int) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: self.count >= count, timeout=20), f"{self.count} calls"


def _listed(cues: PushSecretCues, push: ConsumingPushSecret) -> Any:
    until = time.monotonic() + 20
    while (status := cues.status(push)) is UNKNOWN:
        assert time.monotonic() < until, "the PushSecrets were never listed"
        time.sleep(0.02)
    return status


def test_a_status_change_cues_the_follower_and_the_annotation_alone_does_not(cluster: KubeCluster) -> None:
    with Recording(cluster) as api:
        push = _push_secret(api, "db-aws")
        api.sent.clear()
        calls = Calls()
        with PushSecretCues({"one": api}, [push]) as cues:
            before = _listed(cues, push)
            assert before is None  # ESO never pushed it
            force_sync(api, cluster="one", kind="PushSecret", namespace=NAMESPACE, name="db-aws", run_id="r1")
            cues.follow(push, before, calls)
            _pushed_by_eso(cluster, "db-aws", "2026-12-04T10:00:00Z")
            calls.wait_for(1)
            _pushed_by_eso(cluster, "db-aws", "2026-12-04T10:00:05Z")  # pushed again (or failed): again
            calls.wait_for(2)
        # the annotation's event came before both status events, on the same watch: it called nothing
        assert calls.count == 2
        assert len(api.lists("pushsecrets")) == 1 and len(api.lists("pushsecrets", "WATCH")) == 1
        assert api.lists("pushsecrets") == [("cluster", f"{SECRET_LABEL} in ({LABEL})")]


def test_a_push_between_the_look_before_the_annotation_and_follow_cues_at_once(cluster: KubeCluster) -> None:
    with Recording(cluster) as api:
        push = _push_secret(api, "db-early")
        calls = Calls()
        with PushSecretCues({"one": api}, [push]) as cues:
            before = _listed(cues, push)
            _pushed_by_eso(cluster, "db-early", "2026-12-04T10:00:00Z")
            until = time.monotonic() + 20
            while cues.status(push) == before:  # the watch has seen the push
                assert time.monotonic() < until, "the watch never saw the status"
                time.sleep(0.02)
            cues.follow(push, before, calls)
            assert calls.count == 1  # in ``follow`` itself
