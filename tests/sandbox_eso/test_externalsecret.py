"""ExternalSecrets reconciled against a real OpenBao whose policy for ESO's role is enforced.

Everything is observed as a pipeline would: the Secret through the
``kubernetes`` client, the ExternalSecret's status and events.
"""

from __future__ import annotations

import time

import pytest
from kubernetes.client.exceptions import ApiException

from tests.sandbox_eso.conftest import EsoStack, external_secret
from vaultflow.sandbox.eso.gohash import data_hash, owner_label, resource_version
from vaultflow.sandbox.observe import wait_for

ES = "ExternalSecret"


def write(eso: EsoStack, path: str, **values: object) -> None:
    eso.vault.secrets.kv.v2.create_or_update_secret(path, secret=values, mount_point="secret")


@pytest.mark.parametrize("style", ["prod/{x}", "secret/prod/{x}", "secret/data/prod/{x}"])
def test_each_key_style_reads_the_same_kv2_path(eso: EsoStack, namespace: str, style: str) -> None:
    """With ``path: secret`` and ``version: v2`` the three spellings all read secret/data/prod/<x>."""
    leaf = namespace  # unique per test
    write(eso, f"prod/{leaf}", password="abc")
    key = style.format(x=leaf)
    eso.create(
        namespace,
        external_secret("db", data=[{"secretKey": "pw", "remoteRef": {"key": key, "property": "password"}}]),
    )
    eso.wait_ready(namespace, ES, "db")
    assert eso.secret_data(namespace, "db") == {"pw": b"abc"}


def test_property_versus_extract_and_the_managed_secret(
    eso: EsoStack, namespace: str, vault_path: str
) -> None:
    write(eso, vault_path, username="app", password="abc")
    eso.create(
        namespace,
        external_secret(
            "one-key",
            target={"name": "only-password"},
            data=[{"secretKey": "password", "remoteRef": {"key": vault_path, "property": "password"}}],
        ),
    )
    eso.create(
        namespace,
        external_secret(
            "all-keys", target={"name": "everything"}, dataFrom=[{"extract": {"key": vault_path}}]
        ),
    )
    es = eso.wait_ready(namespace, ES, "one-key")
    eso.wait_ready(namespace, ES, "all-keys")

    assert eso.secret_data(namespace, "only-password") == {"password": b"abc"}
    assert eso.secret_data(namespace, "everything") == {"username": b"app", "password": b"abc"}

    secret = eso.core.read_namespaced_secret("only-password", namespace)
    assert secret.metadata.annotations["reconcile.external-secrets.io/data-hash"] == data_hash(
        {"password": b"abc"}
    )
    assert secret.metadata.labels["reconcile.external-secrets.io/managed"] == "true"
    assert secret.metadata.labels["reconcile.external-secrets.io/created-by"] == owner_label(
        namespace, "one-key"
    )
    assert secret.type == "Opaque"
    [owner] = secret.metadata.owner_references
    assert (owner.kind, owner.name, owner.uid, owner.controller) == (
        ES,
        "one-key",
        es["metadata"]["uid"],
        True,
    )

    status = es["status"]
    [condition] = status["conditions"]
    assert (condition["reason"], condition["message"]) == ("SecretSynced", "secret synced")
    assert status["refreshTime"]
    assert status["syncedResourceVersion"] == resource_version(es["metadata"])
    assert status["binding"] == {"name": "only-password"}
    assert "externalsecrets.external-secrets.io/externalsecret-cleanup" in es["metadata"]["finalizers"]


def test_values_that_are_not_strings_are_json_encoded(eso: EsoStack, namespace: str, vault_path: str) -> None:
    write(eso, vault_path, port=5432, ratio=0.25, enabled=True, nested={"b": "<x>", "a": 1}, tags=["x", "y"])
    eso.create(namespace, external_secret("typed", dataFrom=[{"extract": {"key": vault_path}}]))
    eso.create(
        namespace,
        external_secret(
            "one-port",
            target={"name": "port-only"},
            data=[{"secretKey": "port", "remoteRef": {"key": vault_path, "property": "port"}}],
        ),
    )
    eso.wait_ready(namespace, ES, "typed")
    eso.wait_ready(namespace, ES, "one-port")
    assert eso.secret_data(namespace, "typed") == {
        "port": b"5432",
        "ratio": b"0.25",
        "enabled": b"true",
        "nested": b'{"a":1,"b":"\\u003cx\\u003e"}',
        "tags": b'["x","y"]',
    }
    assert eso.secret_data(namespace, "port-only") == {"port": b"5432"}


def test_owner_versus_merge(eso: EsoStack, namespace: str, vault_path: str) -> None:
    write(eso, vault_path, password="from-vault")
    eso.core.create_namespaced_secret(
        namespace,
        {"metadata": {"name": "helm-managed"}, "stringData": {"admin.user": "admin", "password": "old"}},
    )
    merge = [{"secretKey": "password", "remoteRef": {"key": vault_path, "property": "password"}}]
    eso.create(
        namespace,
        external_secret("merge", target={"name": "helm-managed", "creationPolicy": "Merge"}, data=merge),
    )
    eso.create(
        namespace,
        external_secret("merge-missing", target={"name": "absent", "creationPolicy": "Merge"}, data=merge),
    )
    eso.create(namespace, external_secret("owner", target={"name": "owned"}, data=merge))
    eso.wait_ready(namespace, ES, "merge")
    eso.wait_ready(namespace, ES, "owner")

    assert eso.secret_data(namespace, "helm-managed") == {"admin.user": b"admin", "password": b"from-vault"}
    merged = eso.core.read_namespaced_secret("helm-managed", namespace)
    assert not merged.metadata.owner_references
    assert "reconcile.external-secrets.io/created-by" not in merged.metadata.labels

    missing = eso.wait_ready(namespace, ES, "merge-missing")
    assert missing["status"]["conditions"][0]["reason"] == "SecretMissing"
    assert eso.secret_data(namespace, "absent") is None  # Merge never creates

    # the garbage collector removes an owned Secret with its ExternalSecret, never a merged one
    eso.custom.delete_namespaced_custom_object(
        "external-secrets.io", "v1", namespace, "externalsecrets", "owner"
    )
    eso.custom.delete_namespaced_custom_object(
        "external-secrets.io", "v1", namespace, "externalsecrets", "merge"
    )
    wait_for(lambda: eso.secret_data(namespace, "owned") is None, what="the owned Secret to be collected")
    assert eso.secret_data(namespace, "helm-managed") is not None


def test_force_sync_refreshes_at_once_despite_an_hour_interval(
    eso: EsoStack, namespace: str, vault_path: str
) -> None:
    write(eso, vault_path, password="v1")
    eso.create(
        namespace,
        external_secret("rotating", refreshInterval="1h", dataFrom=[{"extract": {"key": vault_path}}]),
    )
    first = eso.wait_ready(namespace, ES, "rotating")
    write(eso, vault_path, password="v2")
    eso.annotate(namespace, ES, "rotating", {"unrelated": "x"})  # a change reconciles, but ...
    wait_for(
        lambda: (
            eso.get(namespace, ES, "rotating")["status"]["syncedResourceVersion"]
            != first["status"]["syncedResourceVersion"]
        ),
        what="the annotation to be reconciled",
    )  # ... any label or annotation change counts as a change, force-sync is the convention
    assert eso.secret_data(namespace, "rotating") == {"password": b"v2"}

    write(eso, vault_path, password="v3")
    stamp = str(time.time())
    eso.annotate(namespace, ES, "rotating", {"force-sync": stamp})
    wait_for(
        lambda: eso.secret_data(namespace, "rotating") == {"password": b"v3"}, what="the force-sync refresh"
    )
    # ESO writes the Secret, then the ExternalSecret's status: the status is awaited, not read at once.
    wait_for(
        lambda: (
            (es := eso.get(namespace, ES, "rotating"))["status"]["syncedResourceVersion"]
            == resource_version(es["metadata"])
        ),
        what="the status to record the force-synced resourceVersion",
    )
    secret = eso.core.read_namespaced_secret("rotating", namespace)
    assert secret.metadata.annotations["force-sync"] == stamp  # ESO copies the ExternalSecret's annotations
    assert secret.metadata.annotations["reconcile.external-secrets.io/data-hash"] == data_hash(
        {"password": b"v3"}
    )


def test_without_a_trigger_the_hour_interval_holds(eso: EsoStack, namespace: str, vault_path: str) -> None:
    write(eso, vault_path, password="v1")
    eso.create(
        namespace,
        external_secret("steady", refreshInterval="1h", dataFrom=[{"extract": {"key": vault_path}}]),
    )
    ready = eso.wait_ready(namespace, ES, "steady")
    write(eso, vault_path, password="v2")
    reconciles = eso.controller.reconciles
    # an unrelated object in the namespace makes the controller busy, not this ExternalSecret stale
    eso.create(namespace, external_secret("other", dataFrom=[{"extract": {"key": vault_path}}]))
    eso.wait_ready(namespace, ES, "other")
    assert eso.controller.reconciles > reconciles
    assert eso.secret_data(namespace, "steady") == {"password": b"v1"}
    assert eso.get(namespace, ES, "steady")["status"]["refreshTime"] == ready["status"]["refreshTime"]


def test_a_path_the_policy_denies_is_a_sync_error(eso: EsoStack, namespace: str) -> None:
    eso.vault.secrets.kv.v2.create_or_update_secret(
        "admin/root", secret={"password": "x"}, mount_point="secret"
    )
    eso.create(namespace, external_secret("denied", dataFrom=[{"extract": {"key": "admin/root"}}]))

    condition = wait_for(
        lambda: (c := eso.condition(namespace, ES, "denied")) and c["status"] == "False" and c,
        what="SecretSyncedError",
    )
    assert condition["reason"] == "SecretSyncedError"
    assert condition["message"] == "could not get secret data from provider"
    assert eso.secret_data(namespace, "denied") is None
    messages = [e.message for e in eso.events(namespace, "denied") if e.reason == "UpdateFailed"]
    assert messages and "permission denied" in messages[0] and "secret/data/admin/root" in messages[0]


def test_a_changed_secret_is_repaired(eso: EsoStack, namespace: str, vault_path: str) -> None:
    write(eso, vault_path, password="right")
    eso.create(namespace, external_secret("guarded", dataFrom=[{"extract": {"key": vault_path}}]))
    eso.wait_ready(namespace, ES, "guarded")
    eso.core.patch_namespaced_secret("guarded", namespace, {"stringData": {"password": "tampered"}})
    wait_for(lambda: eso.secret_data(namespace, "guarded") == {"password": b"right"}, what="the drift repair")
    eso.core.delete_namespaced_secret("guarded", namespace)
    wait_for(
        lambda: eso.secret_data(namespace, "guarded") == {"password": b"right"}, what="the Secret recreated"
    )


def test_deletion_policy_delete_removes_the_secret_when_vault_has_nothing(
    eso: EsoStack, namespace: str, vault_path: str
) -> None:
    write(eso, vault_path, password="short-lived")
    eso.create(
        namespace,
        external_secret(
            "ephemeral", target={"deletionPolicy": "Delete"}, dataFrom=[{"extract": {"key": vault_path}}]
        ),
    )
    eso.wait_ready(namespace, ES, "ephemeral")
    eso.vault.secrets.kv.v2.delete_metadata_and_all_versions(vault_path, mount_point="secret")
    eso.force_sync(namespace, ES, "ephemeral")
    wait_for(lambda: eso.secret_data(namespace, "ephemeral") is None, what="the Secret to be deleted")
    assert eso.condition(namespace, ES, "ephemeral")["reason"] == "SecretDeleted"


def test_retain_keeps_the_secret_but_reports_the_missing_path(
    eso: EsoStack, namespace: str, vault_path: str
) -> None:
    write(eso, vault_path, password="kept")
    eso.create(namespace, external_secret("retained", dataFrom=[{"extract": {"key": vault_path}}]))
    eso.wait_ready(namespace, ES, "retained")
    eso.vault.secrets.kv.v2.delete_metadata_and_all_versions(vault_path, mount_point="secret")
    eso.force_sync(namespace, ES, "retained")
    wait_for(lambda: eso.condition(namespace, ES, "retained").get("status") == "False", what="the sync error")
    assert eso.secret_data(namespace, "retained") == {"password": b"kept"}
    messages = [e.message for e in eso.events(namespace, "retained") if e.reason == "UpdateFailed"]
    assert any("Secret does not exist" in m for m in messages)


def test_a_missing_store_and_an_unusable_store(eso: EsoStack, namespace: str, vault_path: str) -> None:
    write(eso, vault_path, password="x")
    eso.create(
        namespace,
        external_secret(
            "no-store",
            secretStoreRef={"name": "nope", "kind": "ClusterSecretStore"},
            dataFrom=[{"extract": {"key": vault_path}}],
        ),
    )
    wait_for(
        lambda: eso.condition(namespace, ES, "no-store").get("reason") == "SecretSyncedError",
        what="the error",
    )
    assert any(
        'could not get ClusterSecretStore "nope"' in e.message for e in eso.events(namespace, "no-store")
    )

    eso.custom.create_cluster_custom_object(
        "external-secrets.io",
        "v1",
        "clustersecretstores",
        {
            "apiVersion": "external-secrets.io/v1",
            "kind": "ClusterSecretStore",
            "metadata": {"name": f"wrong-role-{namespace}"},
            "spec": {
                "provider": {
                    "vault": {
                        "server": "https://vault.vault-system.svc:8200",
                        "path": "secret",
                        "auth": {
                            "kubernetes": {
                                "mountPath": "kubernetes-eso",
                                "role": "no-such-role",
                                "serviceAccountRef": {
                                    "name": "external-secrets",
                                    "namespace": "external-secrets-system",
                                },
                            }
                        },
                    }
                }
            },
        },
    )

    def invalid() -> dict[str, object] | None:
        store = eso.custom.get_cluster_custom_object(
            "external-secrets.io", "v1", "clustersecretstores", f"wrong-role-{namespace}"
        )
        conditions = (store.get("status") or {}).get("conditions") or []
        return conditions[0] if conditions and conditions[0]["status"] == "False" else None

    condition = wait_for(invalid, what="the store to be marked invalid")
    assert (condition["reason"], condition["message"]) == ("InvalidProviderConfig", "unable to create client")
    eso.custom.delete_cluster_custom_object(
        "external-secrets.io", "v1", "clustersecretstores", f"wrong-role-{namespace}"
    )


def test_the_cluster_secret_store_is_validated(eso: EsoStack) -> None:
    store = eso.custom.get_cluster_custom_object(
        "external-secrets.io", "v1", "clustersecretstores", "vault-backend"
    )
    [condition] = store["status"]["conditions"]
    assert (condition["type"], condition["status"], condition["reason"], condition["message"]) == (
        "Ready",
        "True",
        "Valid",
        "store validated",
    )
    assert store["status"]["capabilities"] == "ReadWrite"


def test_an_invalid_manifest_is_refused_by_the_crd(eso: EsoStack, namespace: str) -> None:
    body = external_secret("typo", dataFrom=[{"extract": {"kee": "prod/x"}}])
    with pytest.raises(ApiException) as refused:
        eso.create(namespace, body)
    assert refused.value.status == 422
