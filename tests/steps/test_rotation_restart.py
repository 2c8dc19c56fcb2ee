"""The restart step: kubectl's rollout restart on exactly the named workloads, and its rollout status rule.

The workloads live in an emulated cluster reached through the real
``kubernetes`` client; the rollout-status rule is also checked on crafted
statuses, where each clause of kubectl's rollout_status.go can be reached.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from kubernetes import client, config

from vaultflow.base.errors import OperationError
from vaultflow.gitops.catalog.model import WorkloadRef
from vaultflow.sandbox.kube import KubeCluster
from vaultflow.sandbox.kube.controllers import NODES
from vaultflow.sandbox.kubeconfig import ClusterAccess, write_kubeconfig
from vaultflow.steps.rotation.restart import (
    RESTART_RUN,
    RESTARTED_AT,
    restart_workloads,
    rollout_status,
)

CLUSTER = "prod-eu"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[client.ApiClient]:
    served = KubeCluster(CLUSTER).start()
    kubeconfig = write_kubeconfig(
        tmp_path_factory.mktemp("kube") / "kubeconfig",
        [ClusterAccess(CLUSTER, served.url, served.admin_token)],
    )
    api_client = config.new_client_from_config(config_file=str(kubeconfig), context=CLUSTER)
    yield api_client
    api_client.close()
    served.stop()


@pytest.fixture
def namespace(api: client.ApiClient) -> str:
    name = f"t-{uuid.uuid4().hex[:10]}"
    client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    return name


def workload(name: str, **spec: Any) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "i"}]},
            },
            **spec,
        },
    }


def ref(namespace: str, name: str, kind: str = "Deployment", cluster: str = CLUSTER) -> WorkloadRef:
    return WorkloadRef.model_validate(
        {"cluster": cluster, "namespace": namespace, "kind": kind, "name": name}
    )


def test_the_named_deployment_is_restarted_and_rolled_out_and_its_neighbour_is_untouched(
    api: client.ApiClient, namespace: str
) -> None:
    apps = client.AppsV1Api(api)
    for name in ("web", "worker"):
        apps.create_namespaced_deployment(namespace, workload(name))
    before = datetime.now().astimezone()

    results = restart_workloads({CLUSTER: api}, [ref(namespace, "web")], run_id="run-1", timeout=10)

    assert [(r.name, r.phase) for r in results] == [("web", "Restarted")]
    assert 'deployment "web" successfully rolled out' in results[0].message
    web = apps.read_namespaced_deployment("web", namespace)
    assert web.metadata.generation == 2 == web.status.observed_generation
    restarted_at = web.spec.template.metadata.annotations[RESTARTED_AT]
    assert datetime.fromisoformat(restarted_at) >= before.replace(microsecond=0)
    assert restarted_at.endswith("Z") and "." not in restarted_at  # Go's time.RFC3339
    assert web.spec.template.metadata.annotations[RESTART_RUN] == "run-1"
    worker = apps.read_namespaced_deployment("worker", namespace)
    assert worker.metadata.generation == 1
    assert not (worker.spec.template.metadata.annotations or {})


def test_a_retried_run_does_not_roll_the_pods_twice(api: client.ApiClient, namespace: str) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(namespace, workload("web"))
    for _ in range(2):
        results = restart_workloads({CLUSTER: api}, [ref(namespace, "web")] * 2, run_id="run-1", timeout=10)
        assert [r.phase for r in results] == ["Restarted"]  # named twice, restarted once
    assert apps.read_namespaced_deployment("web", namespace).metadata.generation == 2
    restart_workloads({CLUSTER: api}, [ref(namespace, "web")], run_id="run-2", timeout=10)
    assert apps.read_namespaced_deployment("web", namespace).metadata.generation == 3


def test_a_stateful_set_is_restarted(api: client.ApiClient, namespace: str) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_stateful_set(namespace, workload("db"))
    [result] = restart_workloads(
        {CLUSTER: api}, [ref(namespace, "db", "StatefulSet")], run_id="r", timeout=10
    )
    assert result.phase == "Restarted"
    assert result.message.startswith("partitioned roll out complete: 2 new pods have been updated...")
    assert apps.read_namespaced_stateful_set("db", namespace).status.observed_generation == 2


def daemon_set(name: str, **spec: Any) -> dict[str, Any]:
    body = workload(name, **spec)
    del body["spec"]["replicas"]  # one pod per node
    return body


def test_a_daemon_set_is_restarted_and_rolled_out_on_every_node(
    api: client.ApiClient, namespace: str
) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_daemon_set(namespace, daemon_set("agent"))
    [result] = restart_workloads(
        {CLUSTER: api}, [ref(namespace, "agent", "DaemonSet")], run_id="run-1", timeout=10
    )
    assert result.phase == "Restarted"
    assert result.message.startswith('daemon set "agent" successfully rolled out (')
    agent = apps.read_namespaced_daemon_set("agent", namespace)
    assert agent.metadata.generation == 2 == agent.status.observed_generation
    assert agent.spec.template.metadata.annotations[RESTART_RUN] == "run-1"
    assert RESTARTED_AT in agent.spec.template.metadata.annotations
    status = agent.status
    assert (
        status.updated_number_scheduled == status.number_available == status.desired_number_scheduled == NODES
    )


def test_a_daemon_set_rollout_that_does_not_finish_times_out_with_what_was_seen(
    api: client.ApiClient, namespace: str
) -> None:
    """As for a Deployment: a DaemonSet this run restarted already, then a status (written through the
    status subresource) with one node still on the old pod: the step waits, and says so."""
    apps = client.AppsV1Api(api)
    apps.create_namespaced_daemon_set(namespace, daemon_set("agent"))
    marked = {"spec": {"template": {"metadata": {"annotations": {RESTART_RUN: "r"}}}}}
    apps.patch_namespaced_daemon_set("agent", namespace, marked)
    stuck = {
        "observedGeneration": 2,
        "desiredNumberScheduled": 3,
        "currentNumberScheduled": 3,
        "numberMisscheduled": 0,
        "numberReady": 3,
        "updatedNumberScheduled": 2,
        "numberAvailable": 3,
    }
    apps.patch_namespaced_daemon_set_status("agent", namespace, {"status": stuck})

    [result] = restart_workloads(
        {CLUSTER: api}, [ref(namespace, "agent", "DaemonSet")], run_id="r", timeout=0.3
    )

    assert result.phase == "TimedOut"
    assert result.message.endswith(
        '(Waiting for daemon set "agent" rollout to finish: 2 out of 3 new pods have been updated...)'
    )


def test_an_on_delete_daemon_set_is_not_restarted(api: client.ApiClient, namespace: str) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_daemon_set(namespace, daemon_set("agent", updateStrategy={"type": "OnDelete"}))
    [result] = restart_workloads(
        {CLUSTER: api}, [ref(namespace, "agent", "DaemonSet")], run_id="r", timeout=10
    )
    assert result.phase == "Failed"
    assert "has updateStrategy OnDelete" in result.message
    assert apps.read_namespaced_daemon_set("agent", namespace).metadata.generation == 1


def test_missing_paused_and_unreachable_workloads_are_named(api: client.ApiClient, namespace: str) -> None:
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(namespace, workload("paused", paused=True))
    apps.create_namespaced_stateful_set(namespace, workload("db", updateStrategy={"type": "OnDelete"}))
    apps.create_namespaced_deployment(namespace, workload("web"))
    refs = [
        ref(namespace, "gone"),
        ref(namespace, "paused"),
        ref(namespace, "db", "StatefulSet"),
        ref(namespace, "agent", "DaemonSet"),  # no such DaemonSet
        ref(namespace, "web", cluster="elsewhere"),
        ref(namespace, "web"),
    ]

    results = restart_workloads({CLUSTER: api}, refs, run_id="r", timeout=10)

    assert [(r.name, r.phase) for r in results] == [
        ("gone", "Failed"),
        ("paused", "Failed"),
        ("db", "Failed"),
        ("agent", "Failed"),
        ("web", "Failed"),
        ("web", "Restarted"),
    ]
    assert results[0].message == f"Deployment {namespace}/gone in cluster {CLUSTER} does not exist"
    assert "is paused" in results[1].message
    assert "updateStrategy OnDelete" in results[2].message
    assert results[3].message == f"DaemonSet {namespace}/agent in cluster {CLUSTER} does not exist"
    assert "cluster elsewhere" in results[4].message
    assert apps.read_namespaced_deployment("paused", namespace).metadata.generation == 1
    assert apps.read_namespaced_stateful_set("db", namespace).metadata.generation == 1


def test_a_rollout_that_does_not_finish_times_out_with_what_was_seen(
    api: client.ApiClient, namespace: str
) -> None:
    """A Deployment this run restarted already, whose status then says one new replica is missing
    (written through the status subresource, as a stuck rollout leaves it): the step waits, then
    names what it saw last."""
    apps = client.AppsV1Api(api)
    apps.create_namespaced_deployment(namespace, workload("web"))
    marked = {"spec": {"template": {"metadata": {"annotations": {RESTART_RUN: "r"}}}}}
    apps.patch_namespaced_deployment("web", namespace, marked)  # this run restarted it already
    stuck = {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 1}
    apps.patch_namespaced_deployment_status("web", namespace, {"status": stuck})

    [result] = restart_workloads({CLUSTER: api}, [ref(namespace, "web")], run_id="r", timeout=0.3)

    assert result.phase == "TimedOut"
    assert result.message == (
        f"Deployment {namespace}/web in cluster {CLUSTER}: rollout not finished after 0.3s "
        "(1 out of 2 new replicas have been updated...)"
    )


def test_an_unreachable_api_server_is_one_error_naming_the_workload(namespace: str) -> None:
    configuration = client.Configuration()
    configuration.host = "https://127.0.0.1:9"
    configuration.retries = 0
    unreachable = client.ApiClient(configuration)
    with pytest.raises(
        OperationError, match=r"Deployment .*/web in cluster prod-eu: cannot read it: the Kub"
    ):
        restart_workloads({CLUSTER: unreachable}, [ref(namespace, "web")], run_id="r", timeout=1)


def deployment(generation: int, spec: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "web", "generation": generation}, "spec": spec, "status": status}


FULL = {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}


@pytest.mark.parametrize(
    ("status", "state", "message"),
    [
        (
            {**FULL, "observedGeneration": 1},
            "waiting",
            "Waiting for deployment spec update to be observed...",
        ),
        ({**FULL, "updatedReplicas": 1}, "waiting", "1 out of 3 new replicas have been updated..."),
        ({**FULL, "replicas": 4}, "waiting", "1 old replicas are pending termination..."),
        ({**FULL, "availableReplicas": 2}, "waiting", "2 of 3 updated replicas are available..."),
        (
            {**FULL, "conditions": [{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}]},
            "failed",
            'deployment "web" exceeded its progress deadline',
        ),
        (FULL, "done", 'deployment "web" successfully rolled out'),
        ({**FULL, "observedGeneration": 3}, "done", 'deployment "web" successfully rolled out'),
    ],
)
def test_the_deployment_rule_is_kubectls(status: dict[str, Any], state: str, message: str) -> None:
    verdict = rollout_status("Deployment", deployment(2, {"replicas": 3}, status))
    assert (verdict.state, verdict.message) == (state, message)


def test_zero_counts_left_out_by_the_api_count_as_zero() -> None:
    assert (
        rollout_status("Deployment", deployment(1, {"replicas": 0}, {"observedGeneration": 1})).state
        == "done"
    )
    assert rollout_status("Deployment", deployment(1, {"replicas": 1}, {"observedGeneration": 1})).state == (
        "waiting"
    )


ROLLING = {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}


@pytest.mark.parametrize(
    ("spec", "status", "state", "message"),
    [
        ({"updateStrategy": {"type": "OnDelete"}}, {}, "failed", "rollout status is only available for"),
        ({"replicas": 3, "updateStrategy": ROLLING}, {}, "waiting", "Waiting for statefulset spec update"),
        (
            {"replicas": 3, "updateStrategy": ROLLING},
            {"observedGeneration": 2, "readyReplicas": 2},
            "waiting",
            "Waiting for 1 pods to be ready...",
        ),
        (
            {"replicas": 3, "updateStrategy": ROLLING},
            {"observedGeneration": 2, "readyReplicas": 3, "updatedReplicas": 1},
            "waiting",
            "Waiting for partitioned roll out to finish: 1 out of 2 new pods have been updated...",
        ),
        (
            {"replicas": 3, "updateStrategy": ROLLING},
            {"observedGeneration": 2, "readyReplicas": 3, "updatedReplicas": 2},
            "done",
            "partitioned roll out complete: 2 new pods have been updated...",
        ),
        (
            {"replicas": 1, "updateStrategy": {"type": "RollingUpdate"}},
            {"observedGeneration": 2, "readyReplicas": 1, "currentRevision": "a", "updateRevision": "b"},
            "waiting",
            "waiting for statefulset rolling update to complete 0 pods at revision b...",
        ),
    ],
)
def test_the_stateful_set_rule_is_kubectls(
    spec: dict[str, Any], status: dict[str, Any], state: str, message: str
) -> None:
    verdict = rollout_status("StatefulSet", deployment(2, spec, status))
    assert verdict.state == state
    assert verdict.message.startswith(message)


@pytest.mark.parametrize(
    ("status", "state", "message"),
    [
        ({"observedGeneration": 1}, "waiting", "Waiting for daemon set spec update to be observed..."),
        (
            {"observedGeneration": 2, "desiredNumberScheduled": 3, "updatedNumberScheduled": 2},
            "waiting",
            'Waiting for daemon set "web" rollout to finish: 2 out of 3 new pods have been updated...',
        ),
        (
            {
                "observedGeneration": 2,
                "desiredNumberScheduled": 3,
                "updatedNumberScheduled": 3,
                "numberAvailable": 1,
            },
            "waiting",
            'Waiting for daemon set "web" rollout to finish: 1 of 3 updated pods are available...',
        ),
        (
            {
                "observedGeneration": 2,
                "desiredNumberScheduled": 3,
                "updatedNumberScheduled": 3,
                "numberAvailable": 3,
            },
            "done",
            'daemon set "web" successfully rolled out',
        ),
    ],
)
def test_the_daemon_set_rule_is_kubectls(status: dict[str, Any], state: str, message: str) -> None:
    verdict = rollout_status(
        "DaemonSet", deployment(2, {"updateStrategy": {"type": "RollingUpdate"}}, status)
    )
    assert (verdict.state, verdict.message) == (state, message)
