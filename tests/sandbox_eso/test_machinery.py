"""The controller machinery the emulators share: work queue, rate limiters, routes, apply merges.

The rate limiter follows ESO's ``pkg/controllers/common/common.go`` (``BuildRateLimiter``) over
client-go's ``util/workqueue`` limiters; the result handling controller-runtime's
``pkg/internal/controller/controller.go`` (``reconcileHandler``).
"""

from __future__ import annotations

import re
import threading

import pytest

from vaultflow.sandbox.argocd.apply import _merge
from vaultflow.sandbox.routes import RouteMissing, Routes
from vaultflow.sandbox.workqueue import (
    ESO_BASE_BACKOFF,
    ESO_BURST,
    ESO_MAX_BACKOFF,
    ESO_QPS,
    EsoRateLimiter,
    ExponentialFailureLimiter,
    Result,
    TokenBucketLimiter,
    Workers,
    WorkQueue,
)


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


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_add_after_keeps_one_schedule_per_key_the_earliest() -> None:
    """client-go's delaying queue: one waiting entry per key; an earlier ``AddAfter`` wins."""
    queue: WorkQueue[str] = WorkQueue()
    queue.add_after("late", 0.05)
    queue.add("now")
    assert queue.get() == "now"  # ordering only: the delayed key comes after the immediate one
    queue.done("now")
    assert queue.get() == "late"
    queue.done("late")

    queue.add_after("k", 60)
    queue.add_after("k", 0.01)  # earlier: replaces the 60 s schedule
    queue.add_after("k", 30)  # later: dropped
    assert len(queue) == 1
    assert queue.get() == "k"
    queue.done("k")
    assert len(queue) == 0  # nothing is left waiting to fire the key again in 30 or 60 s
    queue.shutdown()
    assert queue.get() is None


def test_client_go_default_backoff_is_kept_for_other_controllers() -> None:
    queue: WorkQueue[str] = WorkQueue(base_backoff=0.01)
    assert [queue.add_rate_limited("x") for _ in range(4)] == pytest.approx([0.01, 0.02, 0.04, 0.08])
    queue.forget("x")
    assert queue.failures("x") == 0
    queue.shutdown()


def test_eso_failure_backoff_doubles_from_one_second_to_seven_minutes() -> None:
    """ESO's BuildRateLimiter (pkg/controllers/common/common.go): 1 s base, 7 min cap, per key."""
    limiter: ExponentialFailureLimiter[str] = ExponentialFailureLimiter(ESO_BASE_BACKOFF, ESO_MAX_BACKOFF)
    delays = [limiter.when("a") for _ in range(11)]
    assert delays == [1, 2, 4, 8, 16, 32, 64, 128, 256, 420, 420]
    assert limiter.when("b") == 1  # per key
    assert limiter.requeues("a") == 11
    limiter.forget("a")
    assert limiter.requeues("a") == 0 and limiter.when("a") == 1
    for _ in range(200):  # no overflow however long a key keeps failing
        limiter.when("c")
    assert limiter.when("c") == 420


def test_eso_token_bucket_allows_a_burst_of_100_then_10_per_second() -> None:
    """golang.org/x/time/rate reservations behind client-go's BucketRateLimiter(10 qps, burst 100)."""
    clock = FakeClock()
    bucket: TokenBucketLimiter[str] = TokenBucketLimiter(ESO_QPS, ESO_BURST, clock)
    assert all(bucket.when(f"k{i}") == 0 for i in range(100))  # the bucket starts full
    assert bucket.when("k") == pytest.approx(0.1)  # tokens go negative: each waits for its refill
    assert bucket.when("k") == pytest.approx(0.2)
    clock.now += 0.2  # two tokens refilled: the debt is paid, the next waits for its own
    assert bucket.when("k") == pytest.approx(0.1)
    clock.now += 3600  # refills stop at the burst
    assert all(bucket.when("k") == 0 for _ in range(100))
    assert bucket.when("k") == pytest.approx(0.1)


def test_eso_rate_limiter_is_the_longer_of_backoff_and_bucket() -> None:
    clock = FakeClock()
    limiter: EsoRateLimiter[str] = EsoRateLimiter(clock)
    assert limiter.when("a") == 1  # backoff 1 s, bucket free
    for index in range(150):  # a mass failure drains the shared bucket (99 left, then 51 in debt)
        limiter.when(f"other-{index}")
    assert limiter.when("b") == pytest.approx(5.2)  # first failure of b: the bucket's 5.2 s beats 1 s
    assert limiter.when("a") == pytest.approx(5.3)  # a's second failure: 2 s backoff, 5.3 s bucket
    clock.now += 60
    assert limiter.when("a") == 4  # bucket refilled: the backoff rules again
    limiter.forget("a")
    assert limiter.requeues("a") == 0 and limiter.requeues("b") == 1


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


def test_results_are_handled_as_controller_runtime_does() -> None:
    """reconcileHandler: errors and ``Requeue`` count failures; ``RequeueAfter`` and success forget."""
    plan: list[Result | None] = [
        None,
        Result(requeue=True),
        Result(requeue_after=0.001),
        Result(requeue=True),
    ]
    plan += [Result(requeue=True, requeue_after=0.001), Result()]
    seen: list[int] = []
    finished = threading.Event()
    queue: WorkQueue[str] = WorkQueue(base_backoff=0.001)

    def reconcile(key: str) -> Result:
        seen.append(queue.failures(key))
        step = plan[len(seen) - 1]
        if len(seen) == len(plan):
            finished.set()
        if step is None:
            raise RuntimeError("failed")
        return step

    workers = Workers("test", queue, reconcile).start()
    queue.add("k")
    assert finished.wait(5)
    workers.stop()
    # error -> 1, Requeue -> 2, RequeueAfter forgets -> 0, Requeue -> 1, RequeueAfter wins over Requeue -> 0
    assert seen == [0, 1, 2, 0, 1, 0]
    assert queue.failures("k") == 0


def test_a_failed_key_waits_its_backoff_while_new_work_goes_first() -> None:
    """Ordering only: a key scheduled 0.5 s after the failure runs before the failed key's 1 s retry."""
    order: list[str] = []
    finished = threading.Event()
    queue: WorkQueue[str] = WorkQueue(EsoRateLimiter())

    def reconcile(key: str) -> Result:
        order.append(key)
        if order == ["failing"]:
            queue.add_after("newcomer", 0.5)  # scheduled before the failure's retry is computed
            raise RuntimeError("first attempt fails")
        if len(order) == 3:
            finished.set()
        return Result()

    workers = Workers("test", queue, reconcile).start()
    queue.add("failing")
    assert finished.wait(10)
    workers.stop()
    assert order == ["failing", "newcomer", "failing"]


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


def test_depth_counts_what_waits_now_and_scheduled_what_waits_for_later() -> None:
    """client-go's workqueue depth is the ready queue; a key waiting for its requeue time is not queued."""
    queue: WorkQueue[str] = WorkQueue()
    queue.add_after("refresh-in-an-hour", 3600)
    queue.add("now")
    assert (queue.depth, queue.scheduled, len(queue)) == (1, 1, 2)
    assert queue.get() == "now"
    queue.done("now")
    assert (queue.depth, queue.scheduled) == (0, 1)
    queue.shutdown()
