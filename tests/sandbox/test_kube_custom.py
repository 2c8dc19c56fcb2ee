"""Custom resources under the upstream CRDs: CRUD, status subresource, 422, CRD lifecycle, GC."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client

ESO = ("external-secrets.io", "v1")
MERGE = "application/merge-patch+json"


def external_secret(name: str, key: str = "prod/db") -> dict[str, Any]:
    return {
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": name},
        "spec": {
            "refreshInterval": "1h",
            "secretStoreRef": {"name": "vault-backend", "kind": "ClusterSecretStore"},
            "target": {"name": f"{name}-secret", "creationPolicy": "Owner"},
            "dataFrom": [{"extract": {"key": key}}],
        },
    }


def create_es(custom: client.CustomObjectsApi, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    created: dict[str, Any] = custom.create_namespaced_custom_object(*ESO, namespace, "externalsecrets", body)
    return created


def get_es(custom: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = custom.get_namespaced_custom_object(*ESO, namespace, "externalsecrets", name)
    return found


def test_custom_resource_crud(custom: client.CustomObjectsApi, namespace: str) -> None:
    created = create_es(custom, namespace, external_secret("db"))
    assert created["metadata"]["uid"] and created["metadata"]["generation"] == 1
    listed = custom.list_namespaced_custom_object(*ESO, namespace, "externalsecrets")
    assert listed["kind"] == "ExternalSecretList"
    assert [i["metadata"]["name"] for i in listed["items"]] == ["db"]

    body = get_es(custom, namespace, "db")
    body["spec"]["refreshInterval"] = "5m"
    replaced = custom.replace_namespaced_custom_object(*ESO, namespace, "externalsecrets", "db", body)
    assert replaced["spec"]["refreshInterval"] == "5m"
    assert replaced["metadata"]["generation"] == 2

    deleted = custom.delete_namespaced_custom_object(*ESO, namespace, "externalsecrets", "db")
    assert deleted["metadata"]["name"] == "db"  # custom resources answer with the deleted object
    with pytest.raises(client.ApiException) as missing:
        get_es(custom, namespace, "db")
    assert missing.value.status == 404
    assert json.loads(missing.value.body)["message"] == 'externalsecrets.external-secrets.io "db" not found'


def test_cluster_scoped_custom_resource(custom: client.CustomObjectsApi) -> None:
    store = {
        "apiVersion": "external-secrets.io/v1",
        "kind": "ClusterSecretStore",
        "metadata": {"name": "vault-backend-test"},
        "spec": {
            "provider": {
                "vault": {
                    "server": "http://127.0.0.1:8200",
                    "path": "secret",
                    "version": "v2",
                    "auth": {"kubernetes": {"mountPath": "kubernetes", "role": "eso"}},
                }
            }
        },
    }
    created = custom.create_cluster_custom_object(*ESO, "clustersecretstores", store)
    assert "namespace" not in created["metadata"]
    custom.delete_cluster_custom_object(*ESO, "clustersecretstores", "vault-backend-test")


def test_a_resource_violating_its_upstream_crd_is_422_naming_the_field(
    custom: client.CustomObjectsApi, namespace: str
) -> None:
    invalid = external_secret("bad")
    invalid["spec"]["target"]["creationPolicy"] = "Sometimes"
    with pytest.raises(client.ApiException) as rejected:
        create_es(custom, namespace, invalid)
    assert rejected.value.status == 422
    status = json.loads(rejected.value.body)
    assert status["reason"] == "Invalid"
    assert status["message"].startswith(
        'ExternalSecret.external-secrets.io "bad" is invalid: spec.target.creationPolicy:'
    )
    assert [cause["field"] for cause in status["details"]["causes"]] == ["spec.target.creationPolicy"]


def test_an_unknown_field_is_422_and_a_bad_patch_changes_nothing(
    custom: client.CustomObjectsApi, namespace: str
) -> None:
    typo = external_secret("typo")
    typo["spec"]["dataFrom"][0]["extract"]["kee"] = "prod/db"
    with pytest.raises(client.ApiException) as rejected:
        create_es(custom, namespace, typo)
    assert rejected.value.status == 422
    assert "spec.dataFrom[0].extract" in json.loads(rejected.value.body)["message"]

    created = create_es(custom, namespace, external_secret("good"))
    with pytest.raises(client.ApiException) as bad_patch:
        custom.patch_namespaced_custom_object(
            *ESO, namespace, "externalsecrets", "good", {"spec": {"refreshInterval": 60}}
        )
    assert bad_patch.value.status == 422
    assert "spec.refreshInterval" in json.loads(bad_patch.value.body)["message"]
    unchanged = get_es(custom, namespace, "good")
    assert unchanged["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_an_invalid_argo_workflow_is_rejected(custom: client.CustomObjectsApi, namespace: str) -> None:
    workflow: dict[str, Any] = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "wf"},
        "spec": {"entrypoint": "main", "templates": [{"name": "main", "container": {"image": "busybox"}}]},
    }
    custom.create_namespaced_custom_object("argoproj.io", "v1alpha1", namespace, "workflows", workflow)
    broken = {**workflow, "metadata": {"name": "wf2"}, "spec": {**workflow["spec"], "entrypoint": ["main"]}}
    with pytest.raises(client.ApiException) as rejected:
        custom.create_namespaced_custom_object("argoproj.io", "v1alpha1", namespace, "workflows", broken)
    assert rejected.value.status == 422
    assert "spec.entrypoint" in json.loads(rejected.value.body)["message"]


def test_status_subresource(custom: client.CustomObjectsApi, namespace: str) -> None:
    body = external_secret("st")
    body["status"] = {"refreshTime": "2020-01-01T00:00:00Z"}
    created = create_es(custom, namespace, body)
    assert "status" not in created  # status is dropped on create when it is a subresource

    ready = {
        "status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "SecretSynced", "message": "ok"}],
            "syncedResourceVersion": "1-abc",
        }
    }
    with_status = custom.patch_namespaced_custom_object_status(
        *ESO, namespace, "externalsecrets", "st", ready
    )
    assert with_status["status"]["conditions"][0]["reason"] == "SecretSynced"
    assert with_status["metadata"]["generation"] == 1  # status is not spec

    # /status writes change nothing but status ...
    sneaky = {"spec": {"refreshInterval": "1s"}, "status": {"syncedResourceVersion": "2-def"}}
    after_status = custom.patch_namespaced_custom_object_status(
        *ESO, namespace, "externalsecrets", "st", sneaky
    )
    assert after_status["spec"]["refreshInterval"] == "1h"
    assert after_status["status"]["syncedResourceVersion"] == "2-def"

    # ... and writes to the object ignore status.
    main = custom.patch_namespaced_custom_object(
        *ESO,
        namespace,
        "externalsecrets",
        "st",
        {"spec": {"refreshInterval": "2m"}, "status": {"refreshTime": None}},
    )
    assert main["status"]["syncedResourceVersion"] == "2-def" and "refreshTime" not in main["status"]
    assert main["metadata"]["generation"] == 2

    invalid_status = {"status": {"conditions": [{"type": "Ready"}]}}  # status and type are required
    with pytest.raises(client.ApiException) as rejected:
        custom.patch_namespaced_custom_object_status(*ESO, namespace, "externalsecrets", "st", invalid_status)
    assert rejected.value.status == 422


def test_without_a_status_subresource_status_is_part_of_the_object(
    custom: client.CustomObjectsApi, namespace: str
) -> None:
    app = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "eso-resources"},
        "spec": {
            "project": "default",
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "x"},
            "source": {"repoURL": "file:///repo.git", "path": "clusters/a", "targetRevision": "HEAD"},
        },
        "status": {"sync": {"status": "Synced", "revision": "abc"}},
    }
    created = custom.create_namespaced_custom_object(
        "argoproj.io", "v1alpha1", namespace, "applications", app
    )
    assert created["status"]["sync"]["status"] == "Synced"
    with pytest.raises(client.ApiException) as missing:
        custom.get_namespaced_custom_object_status(
            "argoproj.io", "v1alpha1", namespace, "applications", "eso-resources"
        )
    assert missing.value.status == 404


def test_crd_lifecycle(api_client: client.ApiClient, namespace: str) -> None:
    extensions = client.ApiextensionsV1Api(api_client)
    custom = client.CustomObjectsApi(api_client)
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {"size": {"type": "integer", "minimum": 1}},
                                    "required": ["size"],
                                }
                            },
                        }
                    },
                }
            ],
        },
    }
    created = extensions.create_custom_resource_definition(crd)
    conditions = {c.type: c.status for c in created.status.conditions}
    assert conditions["Established"] == "True"

    widget = {
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"size": 2},
    }
    custom.create_namespaced_custom_object("example.com", "v1", namespace, "widgets", widget)
    with pytest.raises(client.ApiException) as too_small:
        custom.create_namespaced_custom_object(
            "example.com",
            "v1",
            namespace,
            "widgets",
            {**widget, "metadata": {"name": "z"}, "spec": {"size": 0}},
        )
    assert too_small.value.status == 422 and "spec.size" in json.loads(too_small.value.body)["message"]
    assert "example.com" in {g.name for g in client.ApisApi(api_client).get_api_versions().groups}

    extensions.delete_custom_resource_definition("widgets.example.com")
    with pytest.raises(client.ApiException) as gone:
        custom.list_namespaced_custom_object("example.com", "v1", namespace, "widgets")
    assert gone.value.status == 404
    assert "example.com" not in {g.name for g in client.ApisApi(api_client).get_api_versions().groups}


def test_a_misnamed_crd_is_422(api_client: client.ApiClient) -> None:
    extensions = client.ApiextensionsV1Api(api_client)
    crd = {
        "metadata": {"name": "wrong.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"kind": "Gadget", "plural": "gadgets"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object"}},
                }
            ],
        },
    }
    with pytest.raises(client.ApiException) as rejected:
        extensions.create_custom_resource_definition(crd)
    assert rejected.value.status == 422
    assert json.loads(rejected.value.body)["details"]["causes"][0]["field"] == "metadata.name"


def test_finalizers_delay_deletion(custom: client.CustomObjectsApi, namespace: str) -> None:
    body = external_secret("fin")
    body["metadata"]["finalizers"] = ["example.com/cleanup"]
    create_es(custom, namespace, body)
    custom.delete_namespaced_custom_object(*ESO, namespace, "externalsecrets", "fin")
    pending = get_es(custom, namespace, "fin")
    assert pending["metadata"]["deletionTimestamp"]
    custom.patch_namespaced_custom_object(
        *ESO, namespace, "externalsecrets", "fin", {"metadata": {"finalizers": None}}
    )
    with pytest.raises(client.ApiException) as gone:
        get_es(custom, namespace, "fin")
    assert gone.value.status == 404


def test_owner_references_garbage_collect_and_orphan(
    custom: client.CustomObjectsApi, core: client.CoreV1Api, namespace: str
) -> None:
    for name in ("owner-a", "owner-b"):
        owner = create_es(custom, namespace, external_secret(name))
        reference = {
            "apiVersion": "external-secrets.io/v1",
            "kind": "ExternalSecret",
            "name": name,
            "uid": owner["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        core.create_namespaced_secret(
            namespace, {"metadata": {"name": f"{name}-secret", "ownerReferences": [reference]}}
        )

    custom.delete_namespaced_custom_object(*ESO, namespace, "externalsecrets", "owner-a")
    with pytest.raises(client.ApiException) as collected:
        core.read_namespaced_secret("owner-a-secret", namespace)
    assert collected.value.status == 404

    custom.delete_namespaced_custom_object(
        *ESO, namespace, "externalsecrets", "owner-b", propagation_policy="Orphan"
    )
    orphan = core.read_namespaced_secret("owner-b-secret", namespace)
    assert not orphan.metadata.owner_references


def test_custom_resource_label_selector_and_watchable_list(
    custom: client.CustomObjectsApi, namespace: str
) -> None:
    for name, team in (("a", "red"), ("b", "blue")):
        body = external_secret(name)
        body["metadata"]["labels"] = {"team": team}
        create_es(custom, namespace, body)
    listed = custom.list_namespaced_custom_object(
        *ESO, namespace, "externalsecrets", label_selector="team=blue"
    )
    assert [i["metadata"]["name"] for i in listed["items"]] == ["b"]
    every = custom.list_cluster_custom_object(
        *ESO, "externalsecrets", field_selector=f"metadata.namespace={namespace}"
    )
    assert len(every["items"]) == 2
