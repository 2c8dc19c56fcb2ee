"""``metadataPolicy: Fetch``: ESO's Vault provider reads KV v2 metadata, not the secret's data.

Upstream: ESO 2.9.0 ``providers/v1/vault/client_get.go`` (``GetSecret`` with
``ExternalSecretMetadataPolicyFetch``, ``readSecretMetadata``: ``created_time``,
``current_version``, ``delete_version_after`` and ``custom_metadata``; ``buildMetadataPath``;
``errUnsupportedMetadataKvVersion``, ``errNotFound``). The stores here log in with a role whose
policy also grants ``secret/metadata/prod/*``, as a real deployment must for this to work.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.sandbox_eso.conftest import (
    ESO_ACCOUNT,
    ESO_NAMESPACE,
    ESO_POLICY,
    MOUNT,
    EsoStack,
    external_secret,
    vault_store,
)
from vaultflow.sandbox.observe import is_ready, wait_for

ES = "ExternalSecret"


@pytest.fixture(scope="module")
def metadata_store(eso: EsoStack) -> Iterator[str]:
    """A ClusterSecretStore whose role may read ``secret/metadata/prod/*`` too."""
    suffix = uuid.uuid4().hex[:6]
    policy, role, name = f"eso-meta-{suffix}", f"eso-meta-{suffix}", f"vault-meta-{suffix}"
    eso.vault.sys.create_or_update_policy(
        policy, ESO_POLICY + 'path "secret/metadata/prod/*" {\n  capabilities = ["read"]\n}\n'
    )
    eso.vault.write_data(
        f"auth/{MOUNT}/role/{role}",
        data={
            "bound_service_account_names": [ESO_ACCOUNT],
            "bound_service_account_namespaces": [ESO_NAMESPACE],
            "token_policies": [policy],
            "token_ttl": "1h",
        },
    )
    vault_store(eso.custom, name, role=role)
    wait_for(
        lambda: is_ready(
            eso.custom.get_cluster_custom_object("external-secrets.io", "v1", "clustersecretstores", name)
        ),
        what="the metadata ClusterSecretStore to be Ready",
    )
    yield name
    eso.custom.delete_cluster_custom_object("external-secrets.io", "v1", "clustersecretstores", name)


def fetch(key: str, prop: str = "") -> dict[str, Any]:
    remote = {"key": key, "metadataPolicy": "Fetch"}
    return {**remote, "property": prop} if prop else remote


def store_ref(name: str) -> dict[str, str]:
    return {"name": name, "kind": "ClusterSecretStore"}


def event_messages(eso: EsoStack, namespace: str, name: str) -> list[str]:
    return [e.message for e in eso.events(namespace, name) if e.reason == "UpdateFailed"]


def test_fetch_reads_custom_metadata_and_the_version_keys_not_the_data(
    eso: EsoStack, namespace: str, vault_path: str, metadata_store: str
) -> None:
    kv = eso.vault.secrets.kv.v2
    kv.create_or_update_secret(vault_path, secret={"password": "never-read"}, mount_point="secret")
    kv.create_or_update_secret(vault_path, secret={"password": "rotated"}, mount_point="secret")
    kv.update_metadata(
        vault_path, custom_metadata={"owner": "team-a", "rotated-by": "vaultflow"}, mount_point="secret"
    )
    eso.create(
        namespace,
        external_secret(
            "meta",
            secretStoreRef=store_ref(metadata_store),
            data=[
                {"secretKey": "owner", "remoteRef": fetch(vault_path, "owner")},
                {"secretKey": "version", "remoteRef": fetch(vault_path, "current_version")},
            ],
        ),
    )
    eso.wait_ready(namespace, ES, "meta")
    assert eso.secret_data(namespace, "meta") == {"owner": b"team-a", "version": b"2"}

    eso.create(
        namespace,
        external_secret(
            "meta-all", secretStoreRef=store_ref(metadata_store), dataFrom=[{"extract": fetch(vault_path)}]
        ),
    )
    eso.wait_ready(namespace, ES, "meta-all")
    data = eso.secret_data(namespace, "meta-all") or {}
    assert set(data) == {"created_time", "current_version", "delete_version_after", "owner", "rotated-by"}
    assert (data["current_version"], data["delete_version_after"], data["owner"]) == (b"2", b"0s", b"team-a")
    assert b"rotated" not in data.values() and "password" not in data


def test_fetch_without_a_policy_for_metadata_is_a_permission_error(
    eso: EsoStack, namespace: str, vault_path: str
) -> None:
    """The default store's role may read ``secret/data/prod/*`` only: the metadata read is denied."""
    eso.vault.secrets.kv.v2.create_or_update_secret(vault_path, secret={"a": "1"}, mount_point="secret")
    eso.create(
        namespace, external_secret("denied", data=[{"secretKey": "a", "remoteRef": fetch(vault_path)}])
    )
    wait_for(lambda: eso.condition(namespace, ES, "denied").get("status") == "False", what="the error")
    [message] = set(event_messages(eso, namespace, "denied"))
    assert message.startswith(
        f"error processing spec.data[0] (key: {vault_path}), err: cannot read secret data from Vault: "
        f"Error making API request.\n\nURL: GET "
    )
    assert f"/v1/secret/metadata/{vault_path}\nCode: 403." in message and "permission denied" in message


def test_missing_metadata_is_secret_not_found_and_not_a_missing_provider_secret(
    eso: EsoStack, namespace: str, metadata_store: str
) -> None:
    key = f"prod/absent-{uuid.uuid4().hex[:6]}"
    eso.create(
        namespace,
        external_secret(
            "absent",
            secretStoreRef=store_ref(metadata_store),
            target={"deletionPolicy": "Delete"},
            data=[{"secretKey": "a", "remoteRef": fetch(key, "owner")}],
        ),
    )
    expected = f"error processing spec.data[0] (key: {key}), err: secret not found"
    wait_for(lambda: expected in event_messages(eso, namespace, "absent"), what="the error")
    assert not [e for e in eso.events(namespace, "absent") if e.reason == "MissingProviderSecret"]


def test_the_metadata_path_keeps_a_key_that_repeats_the_mount(
    eso: EsoStack, namespace: str, vault_path: str, metadata_store: str
) -> None:
    """``buildMetadataPath`` does not cut the mount from the key as ``buildPath`` does for data."""
    eso.vault.secrets.kv.v2.create_or_update_secret(vault_path, secret={"a": "1"}, mount_point="secret")
    eso.create(
        namespace,
        external_secret(
            "repeated",
            secretStoreRef=store_ref(metadata_store),
            data=[{"secretKey": "a", "remoteRef": fetch(f"secret/{vault_path}")}],
        ),
    )
    wait_for(lambda: event_messages(eso, namespace, "repeated"), what="the error")
    assert f"/v1/secret/metadata/secret/{vault_path}\n" in event_messages(eso, namespace, "repeated")[0]


def test_kv_v1_refuses_to_fetch_metadata(eso: EsoStack, namespace: str, vault_path: str) -> None:
    name = f"vault-v1-{uuid.uuid4().hex[:6]}"
    vault_store(eso.custom, name)
    store = eso.custom.get_cluster_custom_object("external-secrets.io", "v1", "clustersecretstores", name)
    store["spec"]["provider"]["vault"]["version"] = "v1"
    eso.custom.replace_cluster_custom_object("external-secrets.io", "v1", "clustersecretstores", name, store)
    try:
        eso.create(
            namespace,
            external_secret(
                "v1",
                secretStoreRef=store_ref(name),
                data=[{"secretKey": "a", "remoteRef": fetch(vault_path)}],
            ),
        )
        expected = (
            f"error processing spec.data[0] (key: {vault_path}), err: "
            "cannot perform metadata fetch operations with kv version v1"
        )
        wait_for(lambda: expected in event_messages(eso, namespace, "v1"), timeout=30, what="the refusal")
    finally:
        eso.custom.delete_cluster_custom_object("external-secrets.io", "v1", "clustersecretstores", name)
