"""The controller machinery the emulators share: work queue, routes, Go durations, apply merges."""

from __future__ import annotations

import re
import threading
import time

import pytest

from vaultflow.sandbox.argocd.apply import _merge
from vaultflow.sandbox.routes import RouteMissing, Routes
from vaultflow.sandbox.workqueue import Result, Workers, WorkQueue


def test_a_key_is_queued_once_and_never_processed_twice_at_once() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    queue.add("a")
    assert len(queue) == 1
    assert queue.get() == "a"
    queue.add("a")  # added while a worker holds it: processed again after done, not concurrently
    assert len(queue) == 0
    queue.done("a")
    assert queue.get() == "a"
    queue.done("a")


def test_add_after_and_backoff() -> None:
    queue: WorkQueue[str] = WorkQueue(base_backoff=0.01)
    queue.add_after("later", 0.05)
    start = time.monotonic()
    assert queue.get() == "later"
    assert time.monotonic() - start >= 0.04
    queue.done("later")
    assert [queue.add_rate_limited("x") for _ in range(4)] == pytest.approx([0.01, 0.02, 0.04, 0.08])
    queue.forget("x")
    assert queue.failures("x") == 0
    queue.shutdown()
    assert queue.get() is None


def test_workers_retry_a_failing_key_until_it_succeeds() -> None:
    attempts: list[str] = []
    done = threading.Event()

    def reconcile(key: str) -> Result:
        attempts.append(key)
        if len(attempts) < 3:
            raise RuntimeError("not yet")
        done.set()
        return Result()

    queue: WorkQueue[str] = WorkQueue(base_backoff=0.001)
    workers = Workers("test", queue, reconcile, count=2).start()
    queue.add("k")
    assert done.wait(5)
    workers.stop()
    assert attempts == ["k", "k", "k"] and workers.errors == 2 and queue.failures("k") == 0


def test_routes_resolve_and_say_what_is_missing() -> None:
    routes = Routes.for_sandbox({"http://127.0.0.1:1234": "prod-eu", "http://127.0.0.1:9": "mgmt"}, "mgmt")
    loopback = "http://127.0.0.1:8200"
    assert routes.resolve_vault(loopback) == loopback  # the sandbox's own address needs no route
    with pytest.raises(RouteMissing, match=re.escape("vaultflow sandbox route vault https://vault.svc:8200")):
        routes.resolve_vault("https://vault.svc:8200")
    routes.set("vault", "https://vault.svc:8200/", "http://127.0.0.1:8200")
    assert routes.resolve_vault("https://vault.svc:8200") == "http://127.0.0.1:8200"

    assert routes.resolve_cluster(server="https://kubernetes.default.svc") == "mgmt"
    assert routes.resolve_cluster(server="http://127.0.0.1:1234/") == "prod-eu"
    assert routes.resolve_cluster(name="prod-eu") == "prod-eu"
    routes.set("clusters", "https://kubernetes.default.svc", "prod-eu")
    assert routes.resolve_cluster(server="https://kubernetes.default.svc") == "prod-eu"
    with pytest.raises(RouteMissing, match="no cluster with name 'elsewhere'"):
        routes.resolve_cluster(name="elsewhere")
    with pytest.raises(ValueError, match="is not a sandbox cluster"):
        routes.set("clusters", "x", "nowhere")
    with pytest.raises(RouteMissing, match="use a file:// bare repository"):
        routes.resolve_git("https://github.com/o/r.git")


def test_three_way_merge_keeps_what_others_added() -> None:
    last = {"labels": {"a": "1", "dropped": "x"}, "data": {"k": "v"}}
    desired = {"labels": {"a": "2"}, "data": {"k": "v2"}}
    live = {"labels": {"a": "1", "dropped": "x", "added-by-controller": "y"}, "data": {"k": "v"}}
    assert _merge(last, desired, live) == {
        "labels": {"a": "2", "added-by-controller": "y"},
        "data": {"k": "v2"},
    }
    assert _merge(None, [1, 2], [3]) == [1, 2]  # lists are replaced whole
