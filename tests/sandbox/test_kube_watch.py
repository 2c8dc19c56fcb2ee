"""The emulator's watches against kube-apiserver's (its watch cache, staging/src/k8s.io/apiserver/pkg/
storage/cacher): bookmarks, an object leaving a label selection, the end at ``timeoutSeconds``."""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client


def _events(core: client.CoreV1Api, namespace: str, **options: Any) -> list[dict[str, Any]]:
    """Every event of one watch of ConfigMaps, as sent, until the server ends it (``timeout_seconds``)."""
    response = core.list_namespaced_config_map(namespace, watch=True, _preload_content=False, **options)
    try:
        body = response.read()  # the server ends the stream at timeoutSeconds
    finally:
        response.release_conn()
    return [json.loads(line) for line in body.decode().splitlines() if line]


def test_a_watch_allowing_bookmarks_gets_one_before_its_timeout(
    core: client.CoreV1Api, namespace: str
) -> None:
    """cacheWatcher.nextBookmarkTime: a bookmark 2 s before the deadline (and every minute), holding
    the resourceVersion the watch has reached: the kind, and metadata.resourceVersion alone."""
    start = core.list_namespaced_config_map(namespace).metadata.resource_version
    created = core.create_namespaced_config_map(namespace, {"metadata": {"name": "c"}})
    events = _events(core, namespace, resource_version=start, timeout_seconds=3, allow_watch_bookmarks=True)
    assert [e["type"] for e in events] == ["ADDED", "BOOKMARK"]
    bookmark = events[-1]["object"]
    assert bookmark["kind"] == "ConfigMap" and bookmark["apiVersion"] == "v1"
    assert list(bookmark["metadata"]) == ["resourceVersion"]
    assert int(bookmark["metadata"]["resourceVersion"]) >= int(created.metadata.resource_version)


def test_a_watch_not_allowing_bookmarks_gets_none(core: client.CoreV1Api, namespace: str) -> None:
    start = core.list_namespaced_config_map(namespace).metadata.resource_version
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "c"}})
    events = _events(core, namespace, resource_version=start, timeout_seconds=3)
    assert [e["type"] for e in events] == ["ADDED"]


def test_an_object_leaving_the_selection_is_deleted_with_its_previous_content(
    core: client.CoreV1Api, namespace: str
) -> None:
    """cacheWatcher.convertToWatchEvent: DELETED carries the object as it last matched, at the
    resourceVersion of the change that made it leave."""
    start = core.list_namespaced_config_map(namespace).metadata.resource_version
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "c", "labels": {"w": "1"}}})
    moved = core.patch_namespaced_config_map("c", namespace, {"metadata": {"labels": {"w": "2"}}})
    events = _events(core, namespace, resource_version=start, timeout_seconds=1, label_selector="w=1")
    assert [e["type"] for e in events] == ["ADDED", "DELETED"]
    left = events[1]["object"]["metadata"]
    assert left["labels"] == {"w": "1"}
    assert left["resourceVersion"] == moved.metadata.resource_version


def test_a_watch_that_fell_behind_the_event_log_ends_with_a_410_error_event() -> None:
    """Events it had not reported left the log (etcd compacted them; the watch cache drops a watcher
    that lags): the watch ends with an ERROR event holding 410 Expired, and the client lists again,
    instead of going on without the events it missed."""
    from kubernetes.watch.watch import iter_resp_lines

    from vaultflow.sandbox.kube import KubeCluster

    small = KubeCluster("lagging", event_log_size=5).start()
    try:
        configuration = client.Configuration()
        configuration.host = small.url
        configuration.api_key = {"authorization": f"Bearer {small.admin_token}"}
        configmaps = small.type_of("v1", "ConfigMap")
        with client.ApiClient(configuration) as api:
            core = client.CoreV1Api(api)
            start = core.list_namespaced_config_map("default").metadata.resource_version
            response = core.list_namespaced_config_map(
                "default", watch=True, resource_version=start, timeout_seconds=30, _preload_content=False
            )
            lines = iter_resp_lines(response)
            small.store.create(configmaps, "default", {"metadata": {"name": "first"}})
            first = json.loads(next(lines))
            assert (first["type"], first["object"]["metadata"]["name"]) == ("ADDED", "first")
            with small.store._lock:  # the watch cannot read while these 10 writes overrun its log of 5
                for index in range(10):
                    small.store.create(configmaps, "default", {"metadata": {"name": f"c{index}"}})
            error = json.loads(next(lines))
            response.release_conn()
        assert error["type"] == "ERROR"
        assert (error["object"]["code"], error["object"]["reason"]) == (410, "Expired")
    finally:
        small.stop()
