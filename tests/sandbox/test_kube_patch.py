"""Each PATCH flavour, generation and workload status through the real client."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from kubernetes import client

from vaultflow.sandbox.kube import KubeCluster

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


def _status_of(error: client.ApiException) -> dict[str, Any]:
    status: dict[str, Any] = json.loads(error.body)
    return status


def test_a_json_patch_that_does_not_apply_answers_what_kube_apiserver_answers(
    core: client.CoreV1Api, namespace: str
) -> None:
    """handlers/patch.go answers NewGenericServerResponse(422, ...): no operation message, no value."""
    core.create_namespaced_secret(
        namespace, {"metadata": {"name": "s"}, "stringData": {"password": "hunter2-x"}}
    )
    with pytest.raises(client.ApiException) as failed:
        core.patch_namespaced_secret(
            "s",
            namespace,
            [{"op": "test", "path": "/data/password", "value": "bm9wZQ=="}],
            _content_type=JSON_PATCH,
        )
    status = _status_of(failed.value)
    assert (failed.value.status, status["reason"]) == (422, "Invalid")
    assert status["message"] == "the server rejected our request due to an error in our request"
    assert "aHVudGVyMi14" not in failed.value.body and "hunter2" not in failed.value.body

    with pytest.raises(client.ApiException) as missing:
        core.patch_namespaced_secret(
            "s", namespace, [{"op": "remove", "path": "/metadata/labels/nope"}], _content_type=JSON_PATCH
        )
    assert (missing.value.status, _status_of(missing.value)["reason"]) == (422, "Invalid")


def raw_json_patch(url: str, token: str, body: Any) -> tuple[int, dict[str, Any]]:
    """A JSON patch request as any HTTP client sends it."""
    request = urllib.request.Request(  # noqa: S310 (the emulator on loopback)
        url,
        data=json.dumps(body).encode(),
        method="PATCH",
        headers={"Authorization": f"Bearer {token}", "Content-Type": JSON_PATCH},
    )
    try:
        with urllib.request.urlopen(request) as response:  # noqa: S310
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_json_patch_that_is_not_a_list_of_operations_is_400_and_too_many_is_413(
    cluster: KubeCluster, core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "c"}, "data": {"a": "1"}})
    # the kubernetes client turns a JSON patch that is not a list into a strategic merge: send it raw
    url = f"{cluster.url}/api/v1/namespaces/{namespace}/configmaps/c"
    code, status = raw_json_patch(url, cluster.admin_token, {"op": "remove", "path": "/data/a"})
    assert (code, status["reason"]) == (400, "BadRequest")

    too_many = [{"op": "test", "path": "/data/a", "value": "1"}] * 10001
    with pytest.raises(client.ApiException) as too_large:
        core.patch_namespaced_config_map("c", namespace, too_many, _content_type=JSON_PATCH)
    status = _status_of(too_large.value)
    assert (too_large.value.status, status["reason"]) == (413, "RequestEntityTooLarge")
    assert status["message"].endswith("The allowed maximum operations in a JSON patch is 10000, got 10001")
    assert core.read_namespaced_config_map("c", namespace).data == {"a": "1"}


def test_a_strategic_merge_list_element_without_its_merge_key_is_a_500(
    apps: client.AppsV1Api, namespace: str
) -> None:
    """interpretStrategicMergePatchError passes ErrNoMergeKey on unwrapped: ErrorToAPIStatus: 500."""
    apps.create_namespaced_deployment(namespace, deployment("k"))
    with pytest.raises(client.ApiException) as refused:
        apps.patch_namespaced_deployment(
            "k",
            namespace,
            {"spec": {"template": {"spec": {"containers": [{"image": "nginx:3"}]}}}},
            _content_type=STRATEGIC,
        )
    assert refused.value.status == 500
    assert "does not contain declared merge key: name" in _status_of(refused.value)["message"]
    image = apps.read_namespaced_deployment("k", namespace).spec.template.spec.containers[0].image
    assert image == "nginx:1"
