"""The emulated DaemonSet controller reports its pods on three nodes as the upstream one does.

Each test goes through the real ``kubernetes`` client (get, list, patch, watch of
``apps/v1`` daemonsets): apps/v1 defaults, the template generation the registry
keeps, and the status of pkg/controller/daemon (daemon_controller.go, update.go)
batch by batch: a watch from before a template change sees every status the
controller writes, ``maxUnavailable`` (or ``maxSurge``) pods at a time.
kubectl's rollout-status rule (the restart step's) then judges the result.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client, watch

from tests.sandbox.test_deployment_rollout import restart
from vaultflow.sandbox.kube.controllers import NODES
from vaultflow.steps.rotation.restart import rollout_status

TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"


def daemon_set(name: str, **spec: Any) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "metadata": {"name": name, "labels": {"tier": "node"}},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "i"}]},
            },
            **spec,
        },
    }


def raw(apps: client.AppsV1Api, name: str, namespace: str) -> dict[str, Any]:
    """The object's JSON exactly as served (the typed model hides which fields were left out)."""
    response = apps.read_namespaced_daemon_set(name, namespace, _preload_content=False)
    document: dict[str, Any] = json.loads(response.data)
    return document


Counts = tuple[int | None, int | None, int | None, int | None]


def statuses_after(
    apps: client.AppsV1Api, namespace: str, resource_version: str, events: int
) -> list[Counts]:
    """(observedGeneration, updated, available, unavailable) of the next ``events`` watch events."""
    seen: list[Counts] = []
    stream = watch.Watch()
    for event in stream.stream(
        apps.list_namespaced_daemon_set, namespace, resource_version=resource_version, timeout_seconds=5
    ):
        status = event["object"].status
        seen.append(
            (
                status.observed_generation,
                status.updated_number_scheduled,
                status.number_available,
                status.number_unavailable,
            )
        )
        if len(seen) == events:
            stream.stop()
    return seen


def test_a_new_daemon_set_runs_an_updated_available_pod_on_every_node(
    apps: client.AppsV1Api, namespace: str
) -> None:
    created = apps.create_namespaced_daemon_set(namespace, daemon_set("agent"))
    assert created.status is None  # the write's answer: the controller has not synced yet
    assert created.metadata.generation == 1
    assert created.metadata.annotations[TEMPLATE_GENERATION] == "1"
    strategy = created.spec.update_strategy
    assert strategy.type == "RollingUpdate"  # SetDefaults_DaemonSet
    assert (strategy.rolling_update.max_unavailable, strategy.rolling_update.max_surge) == (1, 0)
    assert created.spec.revision_history_limit == 10

    served = raw(apps, "agent", namespace)
    assert served["status"] == {
        "currentNumberScheduled": NODES,
        "numberMisscheduled": 0,
        "desiredNumberScheduled": NODES,
        "numberReady": NODES,
        "observedGeneration": 1,
        "updatedNumberScheduled": NODES,
        "numberAvailable": NODES,  # numberUnavailable: 0 is omitempty, so absent
    }
    verdict = rollout_status("DaemonSet", served)
    assert (verdict.state, verdict.message) == ("done", 'daemon set "agent" successfully rolled out')

    listed = apps.list_namespaced_daemon_set(namespace, label_selector="tier=node").items
    assert [d.metadata.name for d in listed] == ["agent"]
    everywhere = apps.list_daemon_set_for_all_namespaces(field_selector=f"metadata.namespace={namespace}")
    assert everywhere.items[0].status.desired_number_scheduled == NODES


def test_a_template_change_replaces_one_pod_at_a_time(apps: client.AppsV1Api, namespace: str) -> None:
    """maxUnavailable 1 (the default): each new pod is unavailable until ready, then the next goes."""
    apps.create_namespaced_daemon_set(namespace, daemon_set("agent"))
    before = apps.read_namespaced_daemon_set("agent", namespace).metadata.resource_version

    answer = apps.patch_namespaced_daemon_set("agent", namespace, restart("2026-12-01T03:00:00Z"))
    assert answer.metadata.generation == 2
    assert answer.status.observed_generation == 1  # the write's answer: not observed yet
    assert answer.metadata.annotations[TEMPLATE_GENERATION] == "2"

    assert statuses_after(apps, namespace, before, 5) == [
        (1, 3, 3, None),  # the spec write itself, the old generation's status
        (2, 1, 2, 1),
        (2, 2, 2, 1),
        (2, 3, 2, 1),
        (2, 3, 3, None),
    ]
    verdict = rollout_status("DaemonSet", raw(apps, "agent", namespace))
    assert verdict.state == "done"


def test_max_unavailable_is_a_share_of_the_nodes_rounded_up(apps: client.AppsV1Api, namespace: str) -> None:
    rolling = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "50%"}}
    apps.create_namespaced_daemon_set(namespace, daemon_set("agent", updateStrategy=rolling))
    before = apps.read_namespaced_daemon_set("agent", namespace).metadata.resource_version
    apps.patch_namespaced_daemon_set("agent", namespace, restart("2026-12-01T03:00:00Z"))
    # 50% of 3 nodes is 2 (rounded up): two pods, then the last one
    assert statuses_after(apps, namespace, before, 4)[1:] == [(2, 2, 1, 2), (2, 3, 2, 1), (2, 3, 3, None)]


def test_max_surge_keeps_every_node_available(apps: client.AppsV1Api, namespace: str) -> None:
    rolling = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    apps.create_namespaced_daemon_set(namespace, daemon_set("agent", updateStrategy=rolling))
    before = apps.read_namespaced_daemon_set("agent", namespace).metadata.resource_version
    apps.patch_namespaced_daemon_set("agent", namespace, restart("2026-12-01T03:00:00Z"))
    assert statuses_after(apps, namespace, before, 4)[1:] == [
        (2, 1, 3, None),
        (2, 2, 3, None),
        (2, 3, 3, None),
    ]


def test_on_delete_observes_the_change_but_keeps_the_old_pods(apps: client.AppsV1Api, namespace: str) -> None:
    apps.create_namespaced_daemon_set(namespace, daemon_set("agent", updateStrategy={"type": "OnDelete"}))
    created = apps.read_namespaced_daemon_set("agent", namespace)
    assert created.spec.update_strategy.rolling_update is None  # only RollingUpdate is defaulted
    assert created.status.updated_number_scheduled == NODES  # the first pods run the first template

    apps.patch_namespaced_daemon_set("agent", namespace, restart("2026-12-01T03:00:00Z"))
    served = raw(apps, "agent", namespace)
    assert served["status"]["observedGeneration"] == 2
    assert "updatedNumberScheduled" not in served["status"]  # no pod was deleted, so none replaced
    assert served["status"]["numberAvailable"] == NODES
    verdict = rollout_status("DaemonSet", served)
    assert verdict.state == "failed"  # kubectl: rollout status is only available for RollingUpdate

    apps.patch_namespaced_daemon_set("agent", namespace, {"spec": {"minReadySeconds": 5}})
    assert apps.read_namespaced_daemon_set("agent", namespace).status.updated_number_scheduled is None

    rolling = {"spec": {"updateStrategy": {"type": "RollingUpdate"}}}
    apps.patch_namespaced_daemon_set("agent", namespace, rolling)  # the old pods are rolled now
    status = apps.read_namespaced_daemon_set("agent", namespace).status
    assert (status.observed_generation, status.updated_number_scheduled) == (4, NODES)


def test_metadata_changes_are_no_new_generation_of_the_set_or_its_template(
    apps: client.AppsV1Api, namespace: str
) -> None:
    apps.create_namespaced_daemon_set(namespace, daemon_set("agent"))
    apps.patch_namespaced_daemon_set("agent", namespace, {"metadata": {"annotations": {"a": "b"}}})
    seen = apps.read_namespaced_daemon_set("agent", namespace)
    assert seen.metadata.generation == 1
    assert seen.metadata.annotations == {"a": "b", TEMPLATE_GENERATION: "1"}
    # the template generation is the server's: a client cannot set it
    apps.patch_namespaced_daemon_set(
        "agent", namespace, {"metadata": {"annotations": {TEMPLATE_GENERATION: "9"}}}
    )
    assert (
        apps.read_namespaced_daemon_set("agent", namespace).metadata.annotations[TEMPLATE_GENERATION] == "1"
    )


@pytest.mark.parametrize(
    ("strategy", "field", "message"),
    [
        (
            {"type": "Recreate"},
            "spec.updateStrategy",
            'Unsupported value: "Recreate": supported values: "OnDelete", "RollingUpdate"',
        ),
        (
            {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": "10%"}},
            "spec.updateStrategy.rollingUpdate.maxSurge",
            'Invalid value: "10%": may not be set when maxUnavailable is non-zero',
        ),
        (
            {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0}},
            "spec.updateStrategy.rollingUpdate.maxUnavailable",
            "Required value: cannot be 0 when maxSurge is 0",
        ),
        (
            {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "150%"}},
            "spec.updateStrategy.rollingUpdate.maxUnavailable",
            'Invalid value: "150%": must not be greater than 100%',
        ),
    ],
)
def test_an_invalid_update_strategy_is_422_naming_the_field(
    apps: client.AppsV1Api, namespace: str, strategy: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(client.ApiException) as invalid:
        apps.create_namespaced_daemon_set(namespace, daemon_set("agent", updateStrategy=strategy))
    assert invalid.value.status == 422
    causes = json.loads(invalid.value.body)["details"]["causes"]
    assert [(c["field"], c["message"]) for c in causes] == [(field, message)]
