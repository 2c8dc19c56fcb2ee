"""The emulated Deployment and StatefulSet controllers report rollouts as kubectl rollout status reads them.

Each test goes through the real ``kubernetes`` client: a spec change bumps
``metadata.generation``, metadata changes do not, and the controller then
reports the new generation observed with every replica updated and available.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client


def workload(name: str, replicas: int = 3) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "i"}]},
            },
        },
    }


def restart(at: str) -> dict[str, Any]:
    return {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": at}}}}}


def conditions(deployment: client.V1Deployment) -> dict[str, client.V1DeploymentCondition]:
    return {c.type: c for c in deployment.status.conditions}


def test_a_new_deployment_reports_its_rollout_complete(apps: client.AppsV1Api, namespace: str) -> None:
    apps.create_namespaced_deployment(namespace, workload("web"))
    seen = apps.read_namespaced_deployment("web", namespace)
    assert seen.metadata.generation == 1
    status = seen.status
    assert (status.observed_generation, status.replicas, status.updated_replicas) == (1, 3, 3)
    assert (status.ready_replicas, status.available_replicas) == (3, 3)
    by_type = conditions(seen)
    assert (by_type["Available"].status, by_type["Available"].reason) == ("True", "MinimumReplicasAvailable")
    assert (by_type["Progressing"].status, by_type["Progressing"].reason) == (
        "True",
        "NewReplicaSetAvailable",
    )
    assert by_type["Progressing"].last_update_time is not None


def test_a_template_change_is_a_new_generation_rolled_out(apps: client.AppsV1Api, namespace: str) -> None:
    apps.create_namespaced_deployment(namespace, workload("web"))
    before = apps.read_namespaced_deployment("web", namespace)

    answer = apps.patch_namespaced_deployment("web", namespace, restart("2026-12-01T03:00:00Z"))
    assert answer.metadata.generation == 2
    assert answer.status.observed_generation == 1  # the write's answer: not observed yet

    after = apps.read_namespaced_deployment("web", namespace)
    assert after.status.observed_generation == 2
    assert (after.status.replicas, after.status.updated_replicas, after.status.available_replicas) == (
        3,
        3,
        3,
    )
    old_set, new_set = conditions(before)["Progressing"].message, conditions(after)["Progressing"].message
    assert old_set != new_set  # a new ReplicaSet, named after the new template


def test_metadata_changes_are_not_a_new_generation(apps: client.AppsV1Api, namespace: str) -> None:
    apps.create_namespaced_deployment(namespace, workload("web"))
    apps.patch_namespaced_deployment("web", namespace, {"metadata": {"annotations": {"a": "b"}}})
    assert apps.read_namespaced_deployment("web", namespace).metadata.generation == 1


def test_scaling_is_observed_with_the_new_replica_count(apps: client.AppsV1Api, namespace: str) -> None:
    apps.create_namespaced_deployment(namespace, workload("web"))
    apps.patch_namespaced_deployment("web", namespace, {"spec": {"replicas": 5}})
    status = apps.read_namespaced_deployment("web", namespace).status
    assert (status.observed_generation, status.replicas, status.updated_replicas) == (2, 5, 5)


def test_a_condition_that_stays_true_keeps_its_transition_time(
    apps: client.AppsV1Api, namespace: str
) -> None:
    """SetDeploymentCondition: lastTransitionTime moves only when the status changes."""
    apps.create_namespaced_deployment(namespace, workload("web"))
    current = apps.read_namespaced_deployment("web", namespace)
    past = "2020-01-01T00:00:00Z"
    old_conditions = [
        {
            **client.ApiClient().sanitize_for_serialization(c),
            "lastTransitionTime": past,
            "lastUpdateTime": past,
        }
        for c in current.status.conditions
    ]
    apps.patch_namespaced_deployment_status("web", namespace, {"status": {"conditions": old_conditions}})

    apps.patch_namespaced_deployment("web", namespace, restart("2026-12-01T03:00:00Z"))
    progressing = conditions(apps.read_namespaced_deployment("web", namespace))["Progressing"]
    assert progressing.last_transition_time.year == 2020
    assert progressing.last_update_time.year > 2020


def test_a_stateful_set_rolls_to_a_new_revision(apps: client.AppsV1Api, namespace: str) -> None:
    apps.create_namespaced_stateful_set(namespace, workload("db", 2))
    before = apps.read_namespaced_stateful_set("db", namespace).status
    apps.patch_namespaced_stateful_set("db", namespace, restart("2026-12-01T03:00:00Z"))
    after = apps.read_namespaced_stateful_set("db", namespace).status
    assert after.observed_generation == 2
    assert (after.replicas, after.ready_replicas, after.updated_replicas) == (2, 2, 2)
    assert after.update_revision == after.current_revision != before.current_revision
