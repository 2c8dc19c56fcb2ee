"""Verification through a watch of the ExternalSecrets (one LIST, then a WATCH, per cluster).

What a target must show to count is unchanged (tests/steps/test_rotation_verify.py and
test_rotation_listing.py); these tests are about the watch itself: a watch that can no longer go
on (410) is followed by a new LIST, and a change ESO reports that is older than the write does not
count.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.steps.test_rotation_listing import (
    NAMESPACE,
    NEW,
    WRITTEN,
    Recording,
    served_with_eso_crds,
    synced,
    target,
)
from vaultflow.sandbox.eso import gohash
from vaultflow.sandbox.kube import KubeCluster
from vaultflow.steps.rotation.verify import DATA_HASH, TargetResult, verify_kubernetes_targets

ESO = "external-secrets.io"
LOG = 20  # events the cluster keeps: a watch that falls further behind cannot go on


@pytest.fixture
def cluster(schemas_dir: Path) -> Iterator[KubeCluster]:
    with served_with_eso_crds(schemas_dir, "watching", event_log_size=LOG) as served:
        yield served


class Verification:
    """``verify_kubernetes_targets`` in a thread of its own, so that the test can change the cluster
    while it waits."""

    def __init__(self, api: Recording, names: list[str], timeout: float) -> None:
        self.results: list[TargetResult] = []
        self._thread = threading.Thread(
            target=lambda: self.results.extend(
                verify_kubernetes_targets({"one": api}, [target(n) for n in names], timeout=timeout)
            )
        )
        self._api = api

    def __enter__(self) -> Verification:
        self._thread.start()
        until = time.monotonic() + 20
        while not self._api.lists("externalsecrets", "WATCH"):  # the watch has been asked for
            assert time.monotonic() < until, "the verification never watched"
            time.sleep(0.02)
        return self

    def __exit__(self, *_: object) -> None:
        self._thread.join()


def _refreshed_by_eso(served: KubeCluster, name: str, at: datetime, data: dict[str, bytes]) -> None:
    """What ESO writes on a sync, straight into the store: the Secret, then the ExternalSecret's status."""
    secrets = served.type_of("v1", "Secret")
    external_secrets = served.type_of(f"{ESO}/v1", "ExternalSecret")

    def secret(current: dict[str, Any]) -> dict[str, Any]:
        current["data"] = {key: base64.b64encode(value).decode() for key, value in data.items()}
        current["metadata"].setdefault("annotations", {})[DATA_HASH] = gohash.data_hash(data)
        return current

    def status(current: dict[str, Any]) -> dict[str, Any]:
        current["status"] = {
            "refreshTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "conditions": [{"type": "Ready", "status": "True", "reason": "SecretSynced"}],
        }
        return current

    served.store.patch(secrets, NAMESPACE, name, secret)
    served.store.patch(external_secrets, NAMESPACE, name, status, subresource="status")


def test_a_refresh_the_watch_missed_when_it_expired_is_found_by_the_new_list(cluster: KubeCluster) -> None:
    """ESO's refresh is written, then the cluster's event log overruns before the watch reads it (the
    store's lock held): the watch ends with 410, the reflector lists again, and the target is verified
    from that LIST."""
    configmaps = cluster.type_of("v1", "ConfigMap")
    with Recording(cluster) as api:
        synced(api, "a", {"password": b"old-value"}, refreshed=WRITTEN - timedelta(minutes=1))
        api.sent.clear()
        # The store's lock held: the watch cannot read these events before they leave the log.
        with Verification(api, ["a"], timeout=30) as verification, cluster.store._lock:
            _refreshed_by_eso(cluster, "a", datetime.now(UTC), NEW)
            for index in range(2 * LOG):
                cluster.store.create(configmaps, NAMESPACE, {"metadata": {"name": f"noise-{index}"}})
        [result] = verification.results
        assert result.phase == "Verified", result.message
        # The first LIST, then the one after the 410: the refresh was found by listing again.
        assert len(api.lists("externalsecrets")) == 2
        assert len(api.lists("externalsecrets", "WATCH")) >= 2


def test_a_watch_event_of_a_refresh_before_the_write_does_not_count(cluster: KubeCluster) -> None:
    """The Secret already holds the new data and ESO reports Ready, but refreshed before the write: the
    event is seen (the target names its refreshTime) and does not make the target verified."""
    with Recording(cluster) as api:
        synced(api, "b", NEW, refreshed=WRITTEN - timedelta(minutes=10))
        before_the_write = WRITTEN - timedelta(minutes=1)
        with Verification(api, ["b"], timeout=2) as verification:
            _refreshed_by_eso(cluster, "b", before_the_write, NEW)
        [result] = verification.results
    assert result.phase == "TimedOut"
    assert f"refreshTime {before_the_write.strftime('%Y-%m-%dT%H:%M:%SZ')}" in result.message


def test_a_refresh_reported_by_the_watch_is_verified_with_one_list_and_one_watch(
    cluster: KubeCluster,
) -> None:
    with Recording(cluster) as api:
        synced(api, "c", {"password": b"old-value"}, refreshed=WRITTEN - timedelta(minutes=1))
        api.sent.clear()
        with Verification(api, ["c"], timeout=30) as verification:
            _refreshed_by_eso(cluster, "c", datetime.now(UTC), NEW)
        [result] = verification.results
        assert result.phase == "Verified", result.message
        assert len(api.lists("externalsecrets")) == 1
        assert len(api.lists("externalsecrets", "WATCH")) == 1
        assert len(api.lists("secrets")) == 1  # looked at once, when ESO reported the refresh


def _account_without_watch(api: client.ApiClient) -> str:
    """A token of an account that may list ExternalSecrets across namespaces and Secrets in the
    namespace, but not watch: RBAC rendered before verification watched."""
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    core.create_namespaced_service_account(NAMESPACE, {"metadata": {"name": "verifier"}})
    subject = [{"kind": "ServiceAccount", "name": "verifier", "namespace": NAMESPACE}]
    rules = [{"apiGroups": [ESO], "resources": ["externalsecrets"], "verbs": ["list"]}]
    rbac.create_cluster_role({"metadata": {"name": "verifier"}, "rules": rules})
    role_ref = {"apiGroup": "rbac.authorization.k8s.io", "name": "verifier"}
    rbac.create_cluster_role_binding(
        {
            "metadata": {"name": "verifier"},
            "roleRef": {**role_ref, "kind": "ClusterRole"},
            "subjects": subject,
        }
    )
    secrets = [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]
    rbac.create_namespaced_role(NAMESPACE, {"metadata": {"name": "verifier"}, "rules": secrets})
    rbac.create_namespaced_role_binding(
        NAMESPACE,
        {"metadata": {"name": "verifier"}, "roleRef": {**role_ref, "kind": "Role"}, "subjects": subject},
    )
    request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[]))
    return str(core.create_namespaced_service_account_token("verifier", NAMESPACE, request).status.token)


def test_a_refused_watch_is_retried_and_named_when_the_target_times_out(cluster: KubeCluster) -> None:
    """As client-go's reflector: no fallback to listing (the plan asks for ``watch`` first); the 403
    is what the timed-out target names as last seen."""
    with Recording(cluster) as admin:
        synced(admin, "d", {"password": b"old-value"}, refreshed=WRITTEN - timedelta(minutes=1))
        token = _account_without_watch(admin)
    with Recording(cluster) as api:
        api.configuration.api_key = {"authorization": f"Bearer {token}"}
        with Verification(api, ["d"], timeout=3) as verification:
            _refreshed_by_eso(cluster, "d", datetime.now(UTC), NEW)
        [result] = verification.results
        assert result.phase == "TimedOut"
        assert "watch ExternalSecrets" in result.message and "forbidden" in result.message
        assert len(api.lists("externalsecrets", "WATCH")) >= 2  # asked again, with backoff
