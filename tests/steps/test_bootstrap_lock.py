"""The bootstrap lock: a Lease on the emulated Kubernetes API, through the real client.

client-go's leader-election rules: the holder renews, nobody else takes a live
lease, anyone takes an expired or released one (counting a transition), and of
two contenders exactly one wins. A holder working longer than the lease keeps
it by renewing while it works (``kept``), and learns when it lost it.
"""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from vaultflow.base.errors import OperationError
from vaultflow.sandbox.kube.cluster import KubeCluster
from vaultflow.sandbox.openbao import free_port
from vaultflow.steps.kube.lease import LeaseHeld, LeaseLock, LeaseLost


def _api(url: str, token: str) -> client.ApiClient:
    configuration = client.Configuration()
    configuration.host = url
    configuration.api_key = {"authorization": f"Bearer {token}"}
    configuration.retries = 1
    return client.ApiClient(configuration)


@pytest.fixture(scope="module")
def coordination() -> Iterator[Any]:
    with KubeCluster("lock-test") as cluster:
        api = _api(cluster.url, cluster.admin_token)
        client.CoreV1Api(api).create_namespace({"metadata": {"name": "argo"}})
        yield client.CoordinationV1Api(api)


def lock(coordination: Any, name: str, holder: str, seconds: int = 600) -> LeaseLock:
    return LeaseLock("argo", name, holder, duration_seconds=seconds, api=coordination)


def test_served_in_discovery(coordination: Any) -> None:
    groups = {g.name for g in client.ApisApi(coordination.api_client).get_api_versions().groups}
    assert {"coordination.k8s.io", "authorization.k8s.io"} <= groups


def test_one_holder_at_a_time_the_holder_renews_and_release_frees_it(coordination: Any) -> None:
    first, second = lock(coordination, "turns", "run-a"), lock(coordination, "turns", "run-b")
    first.acquire(0)
    record = second.try_acquire()
    assert record is not None and record.holder == "run-a"
    with pytest.raises(LeaseHeld, match=r"Lease argo/turns is held by run-a until .* \(waited 0s\)"):
        second.acquire(0)
    assert first.try_acquire() is None and first.held_by_me()  # renewed
    assert not second.release()  # not its lease
    assert first.release()
    second.acquire(0)
    lease = coordination.read_namespaced_lease("turns", "argo")
    assert (
        lease.spec.holder_identity == "run-b" and lease.spec.lease_transitions == 0
    )  # a release, no takeover
    assert not first.held_by_me() and second.held_by_me()


def test_an_expired_lease_of_a_crashed_run_is_taken_over(coordination: Any) -> None:
    long_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=2)
    coordination.create_namespaced_lease(
        "argo",
        client.V1Lease(
            metadata=client.V1ObjectMeta(name="crashed"),
            spec=client.V1LeaseSpec(
                holder_identity="crashed-run",
                lease_duration_seconds=2700,
                acquire_time=long_ago,
                renew_time=long_ago,
                lease_transitions=3,
            ),
        ),
    )
    lock(coordination, "crashed", "next-run").acquire(0)
    lease = coordination.read_namespaced_lease("crashed", "argo")
    assert lease.spec.holder_identity == "next-run" and lease.spec.lease_transitions == 4


def test_of_two_contenders_exactly_one_wins(coordination: Any) -> None:
    barrier = threading.Barrier(8)
    winners: list[str] = []

    def contend(holder: str) -> None:
        barrier.wait()
        if lock(coordination, "race", holder).try_acquire() is None:
            winners.append(holder)

    threads = [threading.Thread(target=contend, args=(f"run-{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1
    assert coordination.read_namespaced_lease("race", "argo").spec.holder_identity == winners[0]


def test_an_unreachable_api_server_is_one_clear_error() -> None:
    api = client.CoordinationV1Api(_api(f"http://127.0.0.1:{free_port()}", "token"))
    with pytest.raises(OperationError, match="Lease argo/x: cannot read it: the Kubernetes API server"):
        LeaseLock("argo", "x", "me", duration_seconds=60, api=api).acquire(0)


def steal(coordination: Any, name: str, thief: str) -> None:
    """Another holder takes the lease over, as after an expiry."""
    lease = coordination.read_namespaced_lease(name, "argo")
    lease.spec.holder_identity = thief
    lease.spec.renew_time = datetime.datetime.now(datetime.UTC)
    coordination.replace_namespaced_lease(name, "argo", lease)


def test_renew_keeps_the_stored_duration_and_fails_naming_who_holds_it_instead(coordination: Any) -> None:
    lock(coordination, "renewed", "run-a", seconds=900).acquire(0)
    first = coordination.read_namespaced_lease("renewed", "argo").spec.renew_time
    # A step renews without knowing the duration the lock step chose: the stored one stays.
    record = lock(coordination, "renewed", "run-a", seconds=5).renew()
    spec = coordination.read_namespaced_lease("renewed", "argo").spec
    assert record.duration_seconds == spec.lease_duration_seconds == 900 and spec.renew_time >= first
    with pytest.raises(LeaseLost, match=r"is no longer held by run-b: run-a holds it now \(until "):
        lock(coordination, "renewed", "run-b").renew()
    lock(coordination, "renewed", "run-a").release()
    with pytest.raises(LeaseLost, match="is no longer held by run-a: it was released"):
        lock(coordination, "renewed", "run-a").renew()
    with pytest.raises(LeaseLost, match="it no longer exists"):
        lock(coordination, "never-taken", "run-a").renew()


def test_an_expired_lease_nobody_took_is_renewed_by_its_holder(coordination: Any) -> None:
    lock(coordination, "lapsed", "run-a", seconds=1).acquire(0)
    lapsed = lock(coordination, "lapsed", "run-a", seconds=1)
    while lapsed.held_by_me():  # let it expire
        time.sleep(0.2)
    lapsed.renew()
    assert lapsed.held_by_me()


def test_a_block_longer_than_the_lease_keeps_it_from_a_contender(coordination: Any) -> None:
    holder, contender = lock(coordination, "kept", "run-a", seconds=2), lock(coordination, "kept", "run-b")
    holder.acquire(0)
    taken = []
    with holder.kept():
        deadline = time.monotonic() + 5  # two and a half lease durations
        while time.monotonic() < deadline:
            if contender.try_acquire() is None:
                taken.append(True)
                break
            time.sleep(0.2)
    assert taken == [] and holder.held_by_me()


def test_a_lease_lost_during_a_block_is_raised_when_the_block_ends(coordination: Any) -> None:
    holder = lock(coordination, "stolen", "run-a", seconds=1)
    holder.acquire(0)
    with pytest.raises(LeaseLost, match="is no longer held by run-a: run-b holds it now"), holder.kept():
        steal(coordination, "stolen", "run-b")
        time.sleep(1.5)  # several renewal intervals (a third of a second each)
    assert coordination.read_namespaced_lease("stolen", "argo").spec.holder_identity == "run-b"
    # A block that starts after the loss does not start at all.
    with pytest.raises(LeaseLost), holder.kept():
        pytest.fail("the block ran without the lease")
