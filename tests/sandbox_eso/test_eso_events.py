"""Events as ESO's controllers record them: the reporting component, and ESO's exact messages.

Upstream (ESO 2.9.0): the recorders in ``pkg/controllers/externalsecret/externalsecret_controller.go``
(``external-secrets``), ``pkg/controllers/pushsecret/pushsecret_controller.go`` (``pushsecret``),
``pkg/controllers/secretstore/secretstore_controller.go`` (``secret-store``) and
``clustersecretstore_controller.go`` (``cluster-secret-store``);
``externalsecret_controller_secret.go`` (``eventMissingProviderSecretKey``, which says
``spec.dataFrom[i] (key=...)`` for ``spec.data`` entries too); ``externalsecret_controller.go``
(``msgErrorDeleteOrphaned``); ``providers/v1/vault/auth_kubernetes.go`` with the Vault client's
``api.Auth.Login`` and ``api/auth/kubernetes`` wrapping a failed login.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.sandbox_eso.conftest import MOUNT, VAULT_ADDRESS, EsoStack, external_secret, vault_store
from vaultflow.sandbox.eso import gohash
from vaultflow.sandbox.kube.errors import ApiError
from vaultflow.sandbox.kube.store import ObjectStore
from vaultflow.sandbox.observe import wait_for

ES = "ExternalSecret"


def write(eso: EsoStack, path: str, **values: object) -> None:
    eso.vault.secrets.kv.v2.create_or_update_secret(path, secret=values, mount_point="secret")


def events_of(eso: EsoStack, namespace: str, name: str) -> list[Any]:
    return [e for e in eso.core.list_namespaced_event(namespace).items if e.involved_object.name == name]


def test_each_controller_reports_under_its_own_name(eso: EsoStack, namespace: str, vault_path: str) -> None:
    write(eso, vault_path, password="x")
    eso.create(namespace, external_secret("sourced", dataFrom=[{"extract": {"key": vault_path}}]))
    eso.wait_ready(namespace, ES, "sourced")
    eso.create(
        namespace,
        {
            "apiVersion": "external-secrets.io/v1",
            "kind": "SecretStore",
            "metadata": {"name": "local"},
            "spec": {
                "provider": {
                    "vault": {
                        "server": VAULT_ADDRESS,
                        "auth": {"tokenSecretRef": {"name": "no-such-secret", "key": "token"}},
                    }
                }
            },
        },
    )
    eso.create(
        namespace,
        {
            "apiVersion": "external-secrets.io/v1alpha1",
            "kind": "PushSecret",
            "metadata": {"name": "pusher"},
            "spec": {
                "secretStoreRefs": [{"name": "local", "kind": "SecretStore"}],
                "selector": {"secret": {"name": "absent"}},
                "data": [{"match": {"secretKey": "k", "remoteRef": {"remoteKey": "r"}}}],
            },
        },
    )
    wait_for(
        lambda: events_of(eso, namespace, "local") and events_of(eso, namespace, "pusher"), what="events"
    )
    sources = {
        name: {(e.source.component, e.reporting_component) for e in events_of(eso, namespace, name)}
        for name in ("sourced", "local", "pusher")
    }
    assert sources == {
        "sourced": {("external-secrets", "external-secrets")},
        "local": {("secret-store", "secret-store")},
        "pusher": {("pushsecret", "pushsecret")},
    }
    cluster_store_events = [
        e
        for e in eso.core.list_namespaced_event("default").items
        if e.involved_object.kind == "ClusterSecretStore"
    ]
    assert cluster_store_events
    assert {e.source.component for e in cluster_store_events} == {"cluster-secret-store"}


def test_a_missing_data_entry_is_reported_as_dataFrom_with_its_key(eso: EsoStack, namespace: str) -> None:
    key = f"prod/never-{uuid.uuid4().hex[:6]}"
    eso.create(
        namespace,
        external_secret(
            "gone",
            target={"deletionPolicy": "Delete"},
            data=[{"secretKey": "a", "remoteRef": {"key": key, "property": "a"}}],
        ),
    )
    eso.wait_ready(namespace, ES, "gone")
    messages = [e.message for e in events_of(eso, namespace, "gone") if e.reason == "MissingProviderSecret"]
    assert messages == [f"secret does not exist at provider using spec.dataFrom[0] (key={key})"]


def test_an_orphan_that_cannot_be_deleted_fails_the_sync(
    eso: EsoStack, namespace: str, vault_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API server refuses to delete the Secret left behind by a renamed target."""
    write(eso, vault_path, password="x")
    eso.create(namespace, external_secret("renamed", dataFrom=[{"extract": {"key": vault_path}}]))
    eso.wait_ready(namespace, ES, "renamed")

    real_delete = ObjectStore.delete

    def refuse_the_orphan(self: ObjectStore, rtype: Any, ns: str, name: str, **kwargs: Any) -> Any:
        if ns == namespace and name == "renamed" and rtype.kind == "Secret":
            raise ApiError(500, "InternalError", "etcdserver: request timed out")
        return real_delete(self, rtype, ns, name, **kwargs)

    monkeypatch.setattr(ObjectStore, "delete", refuse_the_orphan)
    eso.custom.patch_namespaced_custom_object(
        "external-secrets.io",
        "v1",
        namespace,
        "externalsecrets",
        "renamed",
        {"spec": {"target": {"name": "new-name"}}},
    )

    def failed() -> bool:
        condition = eso.condition(namespace, ES, "renamed")
        return (condition.get("status"), condition.get("message")) == (
            "False",
            "could not delete orphaned secrets",
        )

    wait_for(failed, what="the failed orphan deletion")
    assert "etcdserver: request timed out" in [
        e.message for e in events_of(eso, namespace, "renamed") if e.reason == "UpdateFailed"
    ]
    assert eso.secret_data(namespace, "new-name") is None  # ESO stops before writing the new target

    monkeypatch.undo()
    eso.force_sync(namespace, ES, "renamed")
    wait_for(lambda: eso.secret_data(namespace, "new-name") == {"password": b"x"}, what="the retry")
    wait_for(lambda: eso.secret_data(namespace, "renamed") is None, what="the orphan's deletion")
    labels = eso.core.read_namespaced_secret("new-name", namespace).metadata.labels
    assert labels["reconcile.external-secrets.io/created-by"] == gohash.owner_label(namespace, "renamed")


def test_a_failed_kubernetes_login_is_worded_as_the_vault_client_words_it(eso: EsoStack) -> None:
    name = f"bad-role-{uuid.uuid4().hex[:6]}"
    vault_store(eso.custom, name, role="no-such-role")
    try:

        def login_failure() -> str | None:
            events = [
                e for e in eso.core.list_namespaced_event("default").items if e.involved_object.name == name
            ]
            return next((e.message for e in events if e.reason == "InvalidProviderConfig"), None)

        message = wait_for(login_failure, what="the store's login failure")
        assert message.startswith(
            "unable to log in to auth method: unable to log in with Kubernetes auth: "
            f"Error making API request.\n\nURL: PUT {VAULT_ADDRESS}/v1/auth/{MOUNT}/login\n"
            "Code: 400. Errors:\n\n* "
        )
        assert "no-such-role" in message
    finally:
        eso.custom.delete_cluster_custom_object("external-secrets.io", "v1", "clustersecretstores", name)


def test_null_byte_policy_fail_refuses_a_value_with_nul(
    eso: EsoStack, namespace: str, vault_path: str
) -> None:
    """``externalsecret_controller_secret.go`` ``validateFetchedSecretValue``, after decoding."""
    write(eso, vault_path, blob="AGJpbg==")  # base64 of b"\0bin"
    remote = {"key": vault_path, "property": "blob", "decodingStrategy": "Base64", "nullBytePolicy": "Fail"}
    eso.create(namespace, external_secret("nul", data=[{"secretKey": "blob", "remoteRef": remote}]))
    expected = (
        f"error processing spec.data[0] (key: {vault_path}), err: fetched secret value for key "
        '"blob" contains null bytes; use a text-safe format such as PEM/base64 or leave '
        "nullBytePolicy unset for intentional binary data"
    )
    wait_for(
        lambda: (
            expected in [e.message for e in events_of(eso, namespace, "nul") if e.reason == "UpdateFailed"]
        ),
        what="the refusal",
    )
    remote.pop("nullBytePolicy")
    eso.create(namespace, external_secret("nul-ok", data=[{"secretKey": "blob", "remoteRef": remote}]))
    eso.wait_ready(namespace, ES, "nul-ok")
    assert eso.secret_data(namespace, "nul-ok") == {"blob": b"\0bin"}


def test_sync_windows_are_refused_by_name(eso: EsoStack, namespace: str, vault_path: str) -> None:
    """ESO 2.9's ``spec.syncWindows`` would hold refreshes back; the sandbox says it does not emulate them."""
    body = external_secret("windowed", dataFrom=[{"extract": {"key": vault_path}}])
    body["spec"]["syncWindows"] = {"kind": "allow", "windows": [{"schedule": "0 2 * * *", "duration": "1h"}]}
    eso.create(namespace, body)
    expected = "spec.syncWindows: not emulated by the sandbox's ESO"
    wait_for(
        lambda: (
            expected
            in [e.message for e in events_of(eso, namespace, "windowed") if e.reason == "UpdateFailed"]
        ),
        what="the refusal",
    )
