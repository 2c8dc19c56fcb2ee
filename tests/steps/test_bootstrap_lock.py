"""The bootstrap lock: a Lease on the emulated Kubernetes API, through the real client.

client-go's leader-election rules: the holder renews, nobody else takes a live
lease, anyone takes an expired or released one (counting a transition), and of
two contenders exactly one wins.
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from vaultflow.base.errors import OperationError
from vaultflow.sandbox.kube.cluster import KubeCluster
from vaultflow.sandbox.openbao import free_port
from vaultflow.steps.kube.lease import LeaseHeld, LeaseLock


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
