"""Each PATCH flavour, generation and workload status through the real client."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"


def deployment(name: str, image: str = "nginx:1") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {"name": "web", "image": image, "env": [{"name": "A", "value": "1"}]},
                        {"name": "sidecar", "image": "busybox"},
                    ]
                },
            },
        },
    }


def test_strategic_merge_restart_annotation_and_container_by_name(
    apps: client.AppsV1Api, namespace: str
) -> None:
    apps.create_namespaced_deployment(namespace, deployment("web"))
    patched = apps.patch_namespaced_deployment(
        "web",
        namespace,
        {
            "spec": {
                "template": {
                    "metadata": {
                        "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}
                    },
                    "spec": {
                        "containers": [
                            {"name": "web", "image": "nginx:2", "env": [{"name": "B", "value": "2"}]}
                        ]
                    },
                }
            }
        },
        _content_type=STRATEGIC,
    )
    template = patched.spec.template
    assert template.metadata.annotations == {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}
    containers = {c.name: c for c in template.spec.containers}
    assert set(containers) == {"web", "sidecar"}  # merged by name, the sidecar kept
    assert containers["web"].image == "nginx:2"
    assert [e.name for e in containers["web"].env] == ["A", "B"]  # env merged by name too


def test_strategic_merge_is_the_default_for_built_in_kinds(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_secret(namespace, {"metadata": {"name": "s", "annotations": {"a": "1"}}})
    patched = core.patch_namespaced_secret("s", namespace, {"metadata": {"annotations": {"b": "2"}}})
    assert patched.metadata.annotations == {"a": "1", "b": "2"}


def test_strategic_merge_directives(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "c", "finalizers": ["a/x", "b/y"], "labels": {"k": "v"}}}
    )
    patched = core.patch_namespaced_config_map(
        "c",
        namespace,
        {
            "metadata": {
                "$deleteFromPrimitiveList/finalizers": ["a/x"],
                "labels": {"$patch": "replace", "n": "m"},
            }
        },
        _content_type=STRATEGIC,
    )
    assert patched.metadata.finalizers == ["b/y"]
    assert patched.metadata.labels == {"n": "m"}
    core.patch_namespaced_config_map("c", namespace, {"metadata": {"finalizers": None}}, _content_type=MERGE)


def test_json_merge_patch_replaces_lists_and_null_deletes(apps: client.AppsV1Api, namespace: str) -> None:
    apps.create_namespaced_deployment(namespace, deployment("m"))
    patched = apps.patch_namespaced_deployment(
        "m",
        namespace,
        {
            "metadata": {"labels": {"app": None, "team": "platform"}},
            "spec": {"template": {"spec": {"containers": [{"name": "only", "image": "x"}]}}},
        },
        _content_type=MERGE,
    )
    assert patched.metadata.labels == {"team": "platform"}
    assert [c.name for c in patched.spec.template.spec.containers] == ["only"]


def test_json_patch_operations_and_failed_test_is_422(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}})
    patched = core.patch_namespaced_config_map(
        "c",
        namespace,
        [
            {"op": "test", "path": "/data/a", "value": "1"},
            {"op": "replace", "path": "/data/a", "value": "10"},
            {"op": "remove", "path": "/data/b"},
            {"op": "add", "path": "/metadata/annotations", "value": {}},
            {"op": "add", "path": "/metadata/annotations/example.com~1owner", "value": "team"},
            {"op": "copy", "from": "/data/a", "path": "/data/c"},
        ],
        _content_type=JSON_PATCH,
    )
    assert patched.data == {"a": "10", "c": "10"}
    assert patched.metadata.annotations == {"example.com/owner": "team"}

    before = core.read_namespaced_config_map("c", namespace).metadata.resource_version
    with pytest.raises(client.ApiException) as failed:
        core.patch_namespaced_config_map(
            "c",
            namespace,
            [
                {"op": "replace", "path": "/data/a", "value": "99"},
                {"op": "test", "path": "/data/c", "value": "nope"},
            ],
            _content_type=JSON_PATCH,
        )
    assert failed.value.status == 422
    after = core.read_namespaced_config_map("c", namespace)
    assert after.metadata.resource_version == before and after.data["a"] == "10"  # all or nothing


def test_strategic_merge_on_a_custom_resource_is_415(custom: client.CustomObjectsApi, namespace: str) -> None:
    custom.create_namespaced_custom_object(
        "argoproj.io",
        "v1alpha1",
        namespace,
        "appprojects",
        {"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject", "metadata": {"name": "p"}, "spec": {}},
    )
    with pytest.raises(client.ApiException) as unsupported:
        custom.patch_namespaced_custom_object(
            "argoproj.io",
            "v1alpha1",
            namespace,
            "appprojects",
            "p",
            {"spec": {"description": "d"}},
            _content_type=STRATEGIC,
        )
    assert unsupported.value.status == 415
    assert json.loads(unsupported.value.body)["reason"] == "UnsupportedMediaType"


def test_generation_counts_spec_changes_and_rollout_reports_it(
    apps: client.AppsV1Api, namespace: str
) -> None:
    created = apps.create_namespaced_deployment(namespace, deployment("gen"))
    assert created.metadata.generation == 1
    assert created.status is None or created.status.observed_generation is None  # the controller runs after

    rolled = apps.read_namespaced_deployment_status("gen", namespace)
    assert rolled.status.observed_generation == 1
    assert rolled.status.ready_replicas == rolled.status.updated_replicas == rolled.spec.replicas == 1

    relabelled = apps.patch_namespaced_deployment("gen", namespace, {"metadata": {"labels": {"extra": "1"}}})
    assert relabelled.metadata.generation == 1  # metadata is not spec

    restarted = apps.patch_namespaced_deployment(
        "gen", namespace, {"spec": {"template": {"metadata": {"annotations": {"restartedAt": "now"}}}}}
    )
    assert restarted.metadata.generation == 2
    assert apps.read_namespaced_deployment("gen", namespace).status.observed_generation == 2


def test_statefulset_rollout_and_selector_validation(apps: client.AppsV1Api, namespace: str) -> None:
    spec = deployment("db")
    spec["spec"]["replicas"] = 3
    apps.create_namespaced_stateful_set(namespace, spec)
    status = apps.read_namespaced_stateful_set("db", namespace).status
    assert status.ready_replicas == 3 and status.current_revision == status.update_revision

    mismatched = deployment("bad")
    mismatched["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    with pytest.raises(client.ApiException) as invalid:
        apps.create_namespaced_deployment(namespace, mismatched)
    assert invalid.value.status == 422
    assert json.loads(invalid.value.body)["details"]["causes"][0]["field"] == "spec.template.metadata.labels"


def test_writes_to_the_object_ignore_status_of_a_workload(apps: client.AppsV1Api, namespace: str) -> None:
    apps.create_namespaced_deployment(namespace, deployment("st"))
    patched = apps.patch_namespaced_deployment(
        "st", namespace, {"status": {"readyReplicas": 42}}, _content_type=MERGE
    )
    assert patched.status.ready_replicas == 1
