"""CRD defaulting: the emulated API server fills in the ``default``s of the upstream CRD schemas.

kube-apiserver defaults custom resources whenever it decodes one (create, update,
patch, ``/status``) and when it reads one from storage; a ``null`` that is not
``nullable`` is pruned or defaulted (``apiextensions-apiserver``'s
``schema/defaulting``). Everything goes through the real ``kubernetes`` client.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from vaultflow.sandbox.crd_sources import BUILTIN_CRD_DIR, CrdSource, load_crds
from vaultflow.sandbox.kube import KubeCluster
from vaultflow.sandbox.kube.persistence import load_cluster, save_cluster
from vaultflow.sandbox.kubeconfig import ClusterAccess, write_kubeconfig

ESO = ("external-secrets.io", "v1")
PUSH = ("external-secrets.io", "v1alpha1")
ARGO = ("argoproj.io", "v1alpha1")
ESO_TARGET_DEFAULT = {"creationPolicy": "Owner", "deletionPolicy": "Retain"}  # the CRD's spec.target default


def _external_secret(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": name},
        "spec": {"secretStoreRef": {"name": "vault-backend", "kind": "ClusterSecretStore"}, **spec},
    }


def _create(custom: client.CustomObjectsApi, ns: str, plural: str, body: dict[str, Any]) -> dict[str, Any]:
    group, version = body["apiVersion"].split("/")
    created: dict[str, Any] = custom.create_namespaced_custom_object(group, version, ns, plural, body)
    return created


def _get(custom: client.CustomObjectsApi, ns: str, api: tuple[str, str], plural: str, name: str) -> Any:
    return custom.get_namespaced_custom_object(*api, ns, plural, name)


def test_an_external_secret_is_created_with_esos_defaults(
    custom: client.CustomObjectsApi, namespace: str
) -> None:
    body = _external_secret("plain", dataFrom=[{"extract": {"key": "prod/db"}}])
    created = _create(custom, namespace, "externalsecrets", body)
    read = _get(custom, namespace, ESO, "externalsecrets", "plain")
    for obj in (created, read):
        assert obj["spec"]["refreshInterval"] == "1h0m0s"
        assert obj["spec"]["target"] == ESO_TARGET_DEFAULT
        assert obj["spec"]["dataFrom"] == [{"extract": {"key": "prod/db"}}]  # no default in v1's extract
    named = _create(custom, namespace, "externalsecrets", _external_secret("named", target={"name": "db"}))
    assert named["spec"]["target"] == {"name": "db", **ESO_TARGET_DEFAULT}  # defaults inside a given object
    kept = _external_secret("kept", refreshInterval="0", target={"creationPolicy": "Merge"})
    assert _create(custom, namespace, "externalsecrets", kept)["spec"]["refreshInterval"] == "0"
    assert _get(custom, namespace, ESO, "externalsecrets", "kept")["spec"]["target"] == {
        "creationPolicy": "Merge",
        "deletionPolicy": "Retain",
    }


def test_an_update_or_patch_that_drops_a_defaulted_field_gets_it_back(
    custom: client.CustomObjectsApi, namespace: str
) -> None:
    _create(custom, namespace, "externalsecrets", _external_secret("es", refreshInterval="5m"))
    patched = custom.patch_namespaced_custom_object(
        *ESO, namespace, "externalsecrets", "es", {"spec": {"refreshInterval": None, "target": None}}
    )
    assert patched["spec"]["refreshInterval"] == "1h0m0s" and patched["spec"]["target"] == ESO_TARGET_DEFAULT
    assert patched["metadata"]["generation"] == 2

    body = _get(custom, namespace, ESO, "externalsecrets", "es")
    del body["spec"]["refreshInterval"], body["spec"]["target"]["deletionPolicy"]
    replaced = custom.replace_namespaced_custom_object(*ESO, namespace, "externalsecrets", "es", body)
    assert replaced["spec"]["refreshInterval"] == "1h0m0s"
    assert replaced["spec"]["target"] == ESO_TARGET_DEFAULT
    assert replaced["metadata"]["resourceVersion"] == body["metadata"]["resourceVersion"]  # nothing changed
    assert replaced["metadata"]["generation"] == 2


def test_a_null_is_defaulted_or_pruned_not_rejected(custom: client.CustomObjectsApi, namespace: str) -> None:
    body = _external_secret("nulls", refreshInterval=None, target={"name": None, "creationPolicy": None})
    created = _create(custom, namespace, "externalsecrets", body)
    assert created["spec"]["refreshInterval"] == "1h0m0s"
    assert created["spec"]["target"] == ESO_TARGET_DEFAULT  # name: null has no default: pruned


def test_defaults_inside_arrays_of_objects(custom: client.CustomObjectsApi, namespace: str) -> None:
    es = _external_secret(
        "rewrite",
        dataFrom=[
            {
                "extract": {"key": "prod/db"},
                "rewrite": [{"merge": {}}, {"regexp": {"source": "a", "target": "b"}}],
            }
        ],
    )
    rewrite = _create(custom, namespace, "externalsecrets", es)["spec"]["dataFrom"][0]["rewrite"]
    assert rewrite == [
        {"merge": {"conflictPolicy": "Error", "into": "", "priorityPolicy": "Strict", "strategy": "Extract"}},
        {"regexp": {"source": "a", "target": "b"}},
    ]
    push = {
        "apiVersion": "external-secrets.io/v1alpha1",
        "kind": "PushSecret",
        "metadata": {"name": "push"},
        "spec": {
            "secretStoreRefs": [{"name": "vault-backend"}, {"name": "aws", "kind": "ClusterSecretStore"}],
            "selector": {"secret": {"name": "db"}},
            "data": [{"match": {"secretKey": "password", "remoteRef": {"remoteKey": "prod/db"}}}],
        },
    }
    spec = _create(custom, namespace, "pushsecrets", push)["spec"]
    assert spec["secretStoreRefs"] == [
        {"name": "vault-backend", "kind": "SecretStore"},
        {"name": "aws", "kind": "ClusterSecretStore"},
    ]
    assert spec["data"][0]["conversionStrategy"] == "None"
    assert (spec["refreshInterval"], spec["deletionPolicy"], spec["updatePolicy"]) == (
        "1h0m0s",
        "None",
        "Replace",
    )


def test_a_status_write_is_defaulted_in_maps_of_maps(custom: client.CustomObjectsApi, namespace: str) -> None:
    push = {
        "apiVersion": "external-secrets.io/v1alpha1",
        "kind": "PushSecret",
        "metadata": {"name": "synced"},
        "spec": {"secretStoreRefs": [{"name": "vault-backend"}], "selector": {"secret": {"name": "db"}}},
    }
    _create(custom, namespace, "pushsecrets", push)
    synced = {"SecretStore/vault-backend": {"prod/db": {"match": {"remoteRef": {"remoteKey": "prod/db"}}}}}
    written = custom.patch_namespaced_custom_object_status(
        *PUSH, namespace, "pushsecrets", "synced", {"status": {"syncedPushSecrets": synced}}
    )
    entry = written["status"]["syncedPushSecrets"]["SecretStore/vault-backend"]["prod/db"]
    assert entry["conversionStrategy"] == "None"  # status.syncedPushSecrets{*}{*}.conversionStrategy


def test_an_argo_workflow_gets_its_crds_defaults(custom: client.CustomObjectsApi, namespace: str) -> None:
    workflow = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": "serve"},
        "spec": {
            "entrypoint": "main",
            "imagePullSecrets": [{}],
            "templates": [
                {
                    "name": "main",
                    "container": {
                        "image": "busybox",
                        "ports": [{"containerPort": 8080}],
                        "env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"key": "token"}}}],
                    },
                }
            ],
        },
    }
    created = _create(custom, namespace, "workflows", workflow)
    container = created["spec"]["templates"][0]["container"]
    assert container["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    assert container["env"][0]["valueFrom"]["secretKeyRef"] == {"key": "token", "name": ""}
    assert created["spec"]["imagePullSecrets"] == [{"name": ""}]


@pytest.fixture
def gadgets(api_client: client.ApiClient) -> Iterator[tuple[str, client.ApiextensionsV1Api]]:
    """A CRD of this test's own, deleted afterwards: ``gadgets.<random>.example.org``."""
    group = f"g{uuid.uuid4().hex[:8]}.example.org"
    extensions = client.ApiextensionsV1Api(api_client)
    spec_schema = {
        "type": "object",
        "properties": {
            "mode": {"type": "string", "default": "fast"},
            "note": {"type": "string", "nullable": True, "default": "none"},
            "parts": {
                "type": "array",
                "items": {
                    "type": "object",
                    "default": {"kind": "bolt"},
                    "properties": {"kind": {"type": "string"}, "count": {"type": "integer", "default": 1}},
                },
            },
            "labels": {
                "type": "object",
                "additionalProperties": {"type": "string", "default": "unset"},
            },
        },
    }
    extensions.create_custom_resource_definition(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"gadgets.{group}"},
            "spec": {
                "group": group,
                "scope": "Namespaced",
                "names": {
                    "kind": "Gadget",
                    "plural": "gadgets",
                    "singular": "gadget",
                    "listKind": "GadgetList",
                },
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "schema": {
                            "openAPIV3Schema": {"type": "object", "properties": {"spec": spec_schema}}
                        },
                    }
                ],
            },
        }
    )
    yield group, extensions
    extensions.delete_custom_resource_definition(f"gadgets.{group}")


def test_nullable_items_and_map_values(
    gadgets: tuple[str, client.ApiextensionsV1Api], custom: client.CustomObjectsApi, namespace: str
) -> None:
    group, _ = gadgets
    body = {
        "apiVersion": f"{group}/v1",
        "kind": "Gadget",
        "metadata": {"name": "g"},
        "spec": {
            "mode": None,
            "note": None,
            "parts": [None, {"kind": "nut"}],
            "labels": {"a": None, "b": "x"},
        },
    }
    spec = custom.create_namespaced_custom_object(group, "v1", namespace, "gadgets", body)["spec"]
    assert spec["mode"] == "fast"  # null, not nullable: defaulted
    assert spec["note"] is None  # nullable: the null is kept
    assert spec["parts"] == [{"kind": "bolt", "count": 1}, {"kind": "nut", "count": 1}]  # items' default
    assert spec["labels"] == {"a": "unset", "b": "x"}  # additionalProperties' default


def test_a_new_default_is_served_for_stored_objects_without_a_write(
    gadgets: tuple[str, client.ApiextensionsV1Api], custom: client.CustomObjectsApi, namespace: str
) -> None:
    group, extensions = gadgets
    body = {"apiVersion": f"{group}/v1", "kind": "Gadget", "metadata": {"name": "old"}, "spec": {}}
    before = custom.create_namespaced_custom_object(group, "v1", namespace, "gadgets", body)
    assert "size" not in before["spec"]

    path = "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/size"
    new_field = [{"op": "add", "path": path, "value": {"type": "integer", "default": 3}}]
    assert extensions.patch_custom_resource_definition(f"gadgets.{group}", new_field).metadata.generation == 2

    after = custom.get_namespaced_custom_object(group, "v1", namespace, "gadgets", "old")
    assert after["spec"]["size"] == 3
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    listed = custom.list_namespaced_custom_object(group, "v1", namespace, "gadgets")["items"]
    assert [item["spec"]["size"] for item in listed] == [3]


def test_a_restored_cluster_serves_stored_objects_with_their_defaults(
    tmp_path: Path, upstream_crd_documents: list[dict[str, Any]]
) -> None:
    """A saved object without a defaulted field (an older sandbox saved it) is read back with it."""
    saved = KubeCluster("defaults-restart").start()
    saved.register_crds(
        d for d in upstream_crd_documents if d["metadata"]["name"].startswith("externalsecrets.")
    )
    es_type = saved.type_of("external-secrets.io/v1", "ExternalSecret")
    written = saved.store.create(es_type, "default", _external_secret("old")).obj
    path = tmp_path / "cluster.json"
    save_cluster(saved, path)
    saved.stop()
    state = json.loads(path.read_text())
    stored = next(o["object"] for o in state["objects"] if o["object"]["metadata"]["name"] == "old")
    del stored["spec"]["refreshInterval"], stored["spec"]["target"]
    path.write_text(json.dumps(state))

    restored = load_cluster(path, port=0).start()
    try:
        kubeconfig = write_kubeconfig(
            tmp_path / "kubeconfig", [ClusterAccess(restored.name, restored.url, restored.admin_token)]
        )
        with config.new_client_from_config(config_file=str(kubeconfig), context=restored.name) as api:
            read = client.CustomObjectsApi(api).get_namespaced_custom_object(
                *ESO, "default", "externalsecrets", "old"
            )
    finally:
        restored.stop()
    assert read["spec"]["refreshInterval"] == "1h0m0s" and read["spec"]["target"] == ESO_TARGET_DEFAULT
    assert read["metadata"]["resourceVersion"] == written["metadata"]["resourceVersion"]


def _defaults(node: Any, path: str = "") -> dict[str, Any]:
    """Every ``default`` of a structural schema by its path (``[]`` items, ``{}`` map values)."""
    if not isinstance(node, dict):
        return {}
    found = {path: node["default"]} if "default" in node else {}
    for name, sub in (node.get("properties") or {}).items():
        found.update(_defaults(sub, f"{path}.{name}"))
    for key, suffix in (("items", "[]"), ("additionalProperties", "{}")):
        found.update(_defaults(node.get(key), path + suffix))
    return found


def _served_defaults(crds: list[dict[str, Any]]) -> dict[tuple[str, str, str], Any]:
    return {
        (crd["metadata"]["name"], version["name"], path): value
        for crd in crds
        for version in crd["spec"]["versions"]
        if version.get("served")
        for path, value in _defaults(version["schema"]["openAPIV3Schema"]).items()
    }


def test_the_fallback_crds_carry_upstream_defaults_only(upstream_crd_documents: list[dict[str, Any]]) -> None:
    """The built-in CRDs (no upstream ones at hand) default what the emulators read, as upstream does."""
    fallback = _served_defaults(load_crds(CrdSource(BUILTIN_CRD_DIR, upstream=False)))
    upstream = _served_defaults(upstream_crd_documents)
    assert {key: upstream.get(key, "<not an upstream default>") for key in fallback} == fallback
    expected = ("ExternalSecret", "ClusterExternalSecret", "PushSecret", "SecretStore", "ClusterSecretStore")
    assert {key[0].split(".")[0] for key in fallback} >= {f"{kind.lower()}s" for kind in expected}

    cluster = KubeCluster("fallback-defaults")
    cluster.register_crds(load_crds(CrdSource(BUILTIN_CRD_DIR, upstream=False)))
    es_type = cluster.type_of("external-secrets.io/v1", "ExternalSecret")
    spec = cluster.store.create(es_type, "default", _external_secret("es")).obj["spec"]
    assert spec["refreshInterval"] == "1h0m0s" and spec["target"] == ESO_TARGET_DEFAULT
