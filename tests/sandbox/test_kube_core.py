"""Contract tests of the Kubernetes API emulator: core resources through the real client."""

from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.request
from typing import Any

import pytest
from kubernetes import client, dynamic, watch

from vaultflow.sandbox.kube import KubeCluster


def status_of(error: client.ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(error.body)
    return body


def test_secret_crud_sets_server_managed_metadata(core: client.CoreV1Api, namespace: str) -> None:
    created = core.create_namespaced_secret(
        namespace, {"metadata": {"name": "db"}, "stringData": {"password": "s3cret"}}
    )
    assert created.metadata.uid
    assert created.metadata.creation_timestamp is not None
    assert created.type == "Opaque"
    assert created.string_data is None  # write-only: merged into data
    assert base64.b64decode(created.data["password"]) == b"s3cret"

    fetched = core.read_namespaced_secret("db", namespace)
    assert fetched.metadata.resource_version == created.metadata.resource_version

    fetched.data["user"] = base64.b64encode(b"app").decode()
    replaced = core.replace_namespaced_secret("db", namespace, fetched)
    assert int(replaced.metadata.resource_version) > int(created.metadata.resource_version)
    assert replaced.metadata.uid == created.metadata.uid
    assert replaced.metadata.creation_timestamp == created.metadata.creation_timestamp

    core.delete_namespaced_secret("db", namespace)
    with pytest.raises(client.ApiException) as missing:
        core.read_namespaced_secret("db", namespace)
    assert missing.value.status == 404
    status = status_of(missing.value)
    assert status["kind"] == "Status" and status["reason"] == "NotFound"
    assert status["message"] == 'secrets "db" not found'


def test_create_twice_is_409_already_exists(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "settings"}, "data": {"a": "1"}})
    with pytest.raises(client.ApiException) as duplicate:
        core.create_namespaced_config_map(namespace, {"metadata": {"name": "settings"}})
    assert duplicate.value.status == 409
    status = status_of(duplicate.value)
    assert status["reason"] == "AlreadyExists"
    assert status["details"] == {"name": "settings", "kind": "configmaps"}


def test_update_with_stale_resource_version_is_409_conflict(core: client.CoreV1Api, namespace: str) -> None:
    first = core.create_namespaced_config_map(namespace, {"metadata": {"name": "c"}, "data": {"v": "1"}})
    second = core.read_namespaced_config_map("c", namespace)
    second.data = {"v": "2"}
    core.replace_namespaced_config_map("c", namespace, second)

    first.data = {"v": "stale"}
    with pytest.raises(client.ApiException) as stale:
        core.replace_namespaced_config_map("c", namespace, first)
    assert stale.value.status == 409
    assert status_of(stale.value)["reason"] == "Conflict"
    assert "the object has been modified" in status_of(stale.value)["message"]
    assert core.read_namespaced_config_map("c", namespace).data == {"v": "2"}


def test_stale_resource_version_in_a_patch_is_a_precondition(core: client.CoreV1Api, namespace: str) -> None:
    created = core.create_namespaced_config_map(namespace, {"metadata": {"name": "c"}, "data": {"v": "1"}})
    core.patch_namespaced_config_map("c", namespace, {"data": {"v": "2"}})
    with pytest.raises(client.ApiException) as stale:
        core.patch_namespaced_config_map(
            "c",
            namespace,
            {"metadata": {"resourceVersion": created.metadata.resource_version}, "data": {"v": "3"}},
        )
    assert stale.value.status == 409


def test_an_update_that_changes_nothing_keeps_the_resource_version(
    core: client.CoreV1Api, namespace: str
) -> None:
    created = core.create_namespaced_config_map(namespace, {"metadata": {"name": "c"}, "data": {"v": "1"}})
    again = core.replace_namespaced_config_map("c", namespace, created)
    assert again.metadata.resource_version == created.metadata.resource_version


def test_objects_need_an_existing_namespace(core: client.CoreV1Api) -> None:
    with pytest.raises(client.ApiException) as missing:
        core.create_namespaced_secret("no-such-namespace", {"metadata": {"name": "x"}})
    assert missing.value.status == 404
    assert status_of(missing.value)["message"] == 'namespaces "no-such-namespace" not found'


def test_invalid_names_and_data_keys_are_422_naming_the_field(core: client.CoreV1Api, namespace: str) -> None:
    with pytest.raises(client.ApiException) as bad_name:
        core.create_namespaced_secret(namespace, {"metadata": {"name": "Not_Valid"}})
    assert bad_name.value.status == 422
    assert status_of(bad_name.value)["details"]["causes"][0]["field"] == "metadata.name"

    with pytest.raises(client.ApiException) as bad_key:
        core.create_namespaced_secret(namespace, {"metadata": {"name": "ok"}, "stringData": {"bad key": "v"}})
    assert bad_key.value.status == 422
    assert "data[bad key]" in status_of(bad_key.value)["message"]


def test_new_namespaces_get_a_default_service_account(core: client.CoreV1Api, namespace: str) -> None:
    accounts = core.list_namespaced_service_account(namespace).items
    assert [a.metadata.name for a in accounts] == ["default"]
    labels = core.read_namespace(namespace).metadata.labels
    assert labels["kubernetes.io/metadata.name"] == namespace


def test_deleting_a_namespace_deletes_its_content(core: client.CoreV1Api) -> None:
    core.create_namespace({"metadata": {"name": "doomed"}})
    core.create_namespaced_secret("doomed", {"metadata": {"name": "s"}})
    core.delete_namespace("doomed")
    with pytest.raises(client.ApiException):
        core.read_namespace("doomed")
    assert core.list_secret_for_all_namespaces(field_selector="metadata.namespace=doomed").items == []


def test_a_namespace_with_finalizers_is_terminating_and_emptied_until_they_go(core: client.CoreV1Api) -> None:
    """The namespace controller deletes the content at once; the namespace waits for its finalizers."""
    core.create_namespace({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}})
    core.create_namespaced_secret("held", {"metadata": {"name": "s"}})
    core.delete_namespace("held")
    terminating = core.read_namespace("held")
    assert terminating.status.phase == "Terminating" and terminating.metadata.deletion_timestamp
    assert core.list_namespaced_secret("held").items == []
    with pytest.raises(client.ApiException) as refused:
        core.create_namespaced_config_map("held", {"metadata": {"name": "late"}})
    assert refused.value.status == 403
    assert json.loads(refused.value.body)["message"] == (
        'configmaps "late" is forbidden: unable to create new content in namespace held '
        "because it is being terminated"
    )
    core.patch_namespace("held", {"metadata": {"finalizers": None}})
    with pytest.raises(client.ApiException) as gone:
        core.read_namespace("held")
    assert gone.value.status == 404


def test_label_selectors(core: client.CoreV1Api, namespace: str) -> None:
    for name, labels in {
        "a": {"app": "web", "tier": "front"},
        "b": {"app": "web", "tier": "back"},
        "c": {"app": "db"},
        "d": {},
    }.items():
        core.create_namespaced_config_map(namespace, {"metadata": {"name": name, "labels": labels}})

    def names(selector: str) -> list[str]:
        return [
            i.metadata.name for i in core.list_namespaced_config_map(namespace, label_selector=selector).items
        ]

    assert names("app=web") == ["a", "b"]
    assert names("app==web,tier=back") == ["b"]
    assert names("app!=web") == ["c", "d"]
    assert names("tier in (front, back)") == ["a", "b"]
    assert names("app notin (web)") == ["c", "d"]
    assert names("tier") == ["a", "b"]
    assert names("!tier") == ["c", "d"]


def test_field_selectors(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_secret(namespace, {"metadata": {"name": "plain"}})
    core.create_namespaced_secret(
        namespace,
        {
            "metadata": {"name": "tls"},
            "type": "kubernetes.io/tls",
            "stringData": {"tls.crt": "c", "tls.key": "k"},
        },
    )

    def names(selector: str) -> list[str]:
        return [
            i.metadata.name for i in core.list_namespaced_secret(namespace, field_selector=selector).items
        ]

    assert names("metadata.name=tls") == ["tls"]
    assert names("type=Opaque") == ["plain"]
    assert names("type!=Opaque,metadata.namespace=" + namespace) == ["tls"]
    with pytest.raises(client.ApiException) as unsupported:
        core.list_namespaced_secret(namespace, field_selector="data.password=x")
    assert unsupported.value.status == 400
    assert "field label not supported: data.password" in status_of(unsupported.value)["message"]


def test_list_pagination_with_limit_and_continue(core: client.CoreV1Api, namespace: str) -> None:
    for index in range(5):
        core.create_namespaced_config_map(namespace, {"metadata": {"name": f"cm-{index}"}})
    first = core.list_namespaced_config_map(namespace, limit=2)
    assert [i.metadata.name for i in first.items] == ["cm-0", "cm-1"]
    assert first.metadata.remaining_item_count == 3
    rest = core.list_namespaced_config_map(namespace, limit=10, _continue=first.metadata._continue)
    assert [i.metadata.name for i in rest.items] == ["cm-2", "cm-3", "cm-4"]
    assert not rest.metadata._continue


def test_generate_name(core: client.CoreV1Api, namespace: str) -> None:
    created = core.create_namespaced_config_map(namespace, {"metadata": {"generateName": "run-"}})
    assert created.metadata.name.startswith("run-") and len(created.metadata.name) == len("run-") + 5


def test_discovery_serves_the_dynamic_client(api_client: client.ApiClient) -> None:
    versions = client.ApisApi(api_client).get_api_versions()
    group_names = {g.name for g in versions.groups}
    assert {
        "apps",
        "apiextensions.k8s.io",
        "authentication.k8s.io",
        "external-secrets.io",
        "argoproj.io",
    } <= group_names
    core_resources = {r.name for r in client.CoreV1Api(api_client).get_api_resources().resources}
    assert {
        "secrets",
        "namespaces",
        "serviceaccounts",
        "serviceaccounts/token",
        "configmaps",
    } <= core_resources

    discovered = dynamic.DynamicClient(api_client)
    external_secrets = discovered.resources.get(api_version="external-secrets.io/v1", kind="ExternalSecret")
    assert external_secrets.namespaced and external_secrets.name == "externalsecrets"
    secrets = discovered.resources.get(api_version="v1", kind="Secret")
    assert secrets.get(namespace="default").kind == "SecretList"


def raw_get(url: str, token: str | None = None) -> tuple[int, dict[str, Any]]:
    """A GET without the kubernetes client: what any HTTP client sees."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 (the emulator on loopback)
    try:
        with urllib.request.urlopen(request) as response:  # noqa: S310
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_version_is_anonymous_but_resources_need_a_token(cluster: KubeCluster) -> None:
    code, version = raw_get(f"{cluster.url}/version")
    assert code == 200 and version["major"] == "1"
    assert raw_get(f"{cluster.url}/api/v1/namespaces")[0] == 401
    code, status = raw_get(f"{cluster.url}/api/v1/namespaces", token="nope")
    assert code == 401 and status["reason"] == "Unauthorized"
    assert raw_get(f"{cluster.url}/api/v1/namespaces", token=cluster.admin_token)[0] == 200


def test_watch_reports_changes_after_a_resource_version(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "before"}})
    start = core.list_namespaced_config_map(namespace).metadata.resource_version
    events: list[tuple[str, str]] = []

    def observe() -> None:
        stream = watch.Watch()
        for event in stream.stream(
            core.list_namespaced_config_map, namespace, resource_version=start, timeout_seconds=10
        ):
            events.append((event["type"], event["object"].metadata.name))
            if event["type"] == "DELETED":
                stream.stop()

    observer = threading.Thread(target=observe)
    observer.start()
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "watched"}})
    core.patch_namespaced_config_map("watched", namespace, {"data": {"k": "v"}})
    core.delete_namespaced_config_map("watched", namespace)
    observer.join(timeout=15)
    assert events == [("ADDED", "watched"), ("MODIFIED", "watched"), ("DELETED", "watched")]


def test_a_watch_without_resource_version_starts_with_the_current_objects(
    core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "existing", "labels": {"w": "1"}}})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "other"}})
    stream = watch.Watch()
    seen = []
    for event in stream.stream(
        core.list_namespaced_config_map, namespace, label_selector="w=1", timeout_seconds=1
    ):
        seen.append((event["type"], event["object"].metadata.name))
    assert seen == [("ADDED", "existing")]


def test_watch_from_a_resource_version_older_than_the_event_log_is_an_error_event_410(
    api_client: client.ApiClient,
) -> None:
    """As kube-apiserver's watch cache answers (newErrWatcher): 200, then one ERROR event holding the
    410 Expired Status; the client raises it as an ApiException with status 410."""
    small = KubeCluster("small-log", event_log_size=10).start()
    try:
        token = small.admin_token
        for index in range(20):
            small.store.create(
                small.type_of("v1", "ConfigMap"), "default", {"metadata": {"name": f"c{index}"}}
            )
        code, event = raw_get(
            f"{small.url}/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=2", token=token
        )
        assert code == 200 and event["type"] == "ERROR"
        assert event["object"]["kind"] == "Status"
        assert (event["object"]["code"], event["object"]["reason"]) == (410, "Expired")
        assert event["object"]["message"].startswith("too old resource version: 2 ")
    finally:
        small.stop()


def test_delete_preconditions_and_dry_run(core: client.CoreV1Api, namespace: str) -> None:
    created = core.create_namespaced_config_map(namespace, {"metadata": {"name": "c"}})
    dry = core.create_namespaced_config_map(namespace, {"metadata": {"name": "dry"}}, dry_run="All")
    assert dry.metadata.name == "dry"
    assert [i.metadata.name for i in core.list_namespaced_config_map(namespace).items] == ["c"]
    with pytest.raises(client.ApiException) as mismatch:
        core.delete_namespaced_config_map("c", namespace, body={"preconditions": {"uid": "not-the-uid"}})
    assert mismatch.value.status == 409 and "Precondition failed" in status_of(mismatch.value)["message"]
    core.delete_namespaced_config_map("c", namespace, body={"preconditions": {"uid": created.metadata.uid}})
    assert core.list_namespaced_config_map(namespace).items == []


def test_immutable_secrets_refuse_data_changes(core: client.CoreV1Api, namespace: str) -> None:
    core.create_namespaced_secret(
        namespace, {"metadata": {"name": "frozen"}, "immutable": True, "stringData": {"k": "v"}}
    )
    with pytest.raises(client.ApiException) as refused:
        core.patch_namespaced_secret("frozen", namespace, {"stringData": {"k": "changed"}})
    assert refused.value.status == 422
    assert status_of(refused.value)["details"]["causes"][0]["field"] == "data"
    relabelled = core.patch_namespaced_secret("frozen", namespace, {"metadata": {"labels": {"ok": "yes"}}})
    assert relabelled.metadata.labels == {"ok": "yes"}
