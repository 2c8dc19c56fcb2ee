"""The Vault token's life as ESO lives it, against the real OpenBao.

Upstream: ``providers/v1/vault/provider.go`` (``getVaultClient``: a new client per reconcile, the
token cache keyed by store and ``resourceVersion``), ``auth.go`` (``setAuth``, ``checkToken``: a
lookup first, a login when it fails or under 60 s are left; ``revokeTokenIfValid``), ``client.go``
(``Close`` revokes unless the cache is on or the token came from ``tokenSecretRef``) and
``pkg/controllers/secretstore/client_manager.go`` (one manager per reconcile, closed at its end).

Tokens are observed as an operator would: OpenBao's accessor list, each looked up by root.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3

from tests.sandbox_eso.conftest import (
    ESO_ACCOUNT,
    ESO_NAMESPACE,
    MOUNT,
    POLICY,
    EsoStack,
    external_secret,
    vault_store,
)
from vaultflow.sandbox.eso.providers.base import RemoteRef
from vaultflow.sandbox.eso.stores import StoreResolver
from vaultflow.sandbox.observe import wait_for

ES = "ExternalSecret"
EXTRA_POLICY = f"eso-extra-{uuid.uuid4().hex[:6]}"


def write(eso: EsoStack, path: str, **values: object) -> None:
    eso.vault.secrets.kv.v2.create_or_update_secret(path, secret=values, mount_point="secret")


def set_role(eso: EsoStack, role: str, policies: list[str], ttl: str = "1h") -> None:
    eso.vault.write_data(
        f"auth/{MOUNT}/role/{role}",
        data={
            "bound_service_account_names": [ESO_ACCOUNT],
            "bound_service_account_namespaces": [ESO_NAMESPACE],
            "token_policies": policies,
            "token_ttl": ttl,
        },
    )


def live_tokens(eso: EsoStack, role: str) -> set[str]:
    """Accessors of the unexpired, unrevoked tokens the Kubernetes login of ``role`` issued."""
    accessors = eso.vault.auth.token.list_accessors()["data"]["keys"]
    found = set()
    for accessor in accessors:
        data = eso.vault.auth.token.lookup_accessor(accessor)["data"]
        if data.get("path") == f"auth/{MOUNT}/login" and (data.get("meta") or {}).get("role") == role:
            found.add(accessor)
    return found


@pytest.fixture
def role_store(eso: EsoStack) -> Iterator[tuple[str, str]]:
    """A role of its own (the shared read policy) and a ClusterSecretStore logging in with it."""
    role = store = f"tokens-{uuid.uuid4().hex[:8]}"
    set_role(eso, role, [POLICY])
    vault_store(eso.custom, store, role)
    wait_for(lambda: _store_ready(eso, store), what="the store to be Ready")
    yield role, store
    eso.custom.delete_cluster_custom_object("external-secrets.io", "v1", "clustersecretstores", store)
    eso.vault.delete(f"auth/{MOUNT}/role/{role}")


def _store_ready(eso: EsoStack, name: str) -> bool:
    store = eso.custom.get_cluster_custom_object("external-secrets.io", "v1", "clustersecretstores", name)
    conditions = (store.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _store_object(eso: EsoStack, name: str) -> dict[str, Any]:
    found: dict[str, Any] = eso.custom.get_cluster_custom_object(
        "external-secrets.io", "v1", "clustersecretstores", name
    )
    return found


def test_a_changed_role_policy_applies_at_the_next_refresh(
    eso: EsoStack, namespace: str, role_store: tuple[str, str]
) -> None:
    """Every refresh logs in anew, so the role's new policy is the one the next read has."""
    role, store = role_store
    path = f"extra/{uuid.uuid4().hex[:8]}"
    write(eso, path, password="granted-later")
    eso.vault.sys.create_or_update_policy(
        EXTRA_POLICY, 'path "secret/data/extra/*" {\n  capabilities = ["read"]\n}\n'
    )
    body = external_secret("extra", dataFrom=[{"extract": {"key": path}}])
    body["spec"]["secretStoreRef"]["name"] = store
    eso.create(namespace, body)
    wait_for(lambda: eso.condition(namespace, ES, "extra").get("status") == "False", what="the denial")
    assert any("permission denied" in e.message for e in eso.events(namespace, "extra"))

    set_role(eso, role, [POLICY, EXTRA_POLICY])
    eso.force_sync(namespace, ES, "extra")
    eso.wait_ready(namespace, ES, "extra")
    assert eso.secret_data(namespace, "extra") == {"password": b"granted-later"}


def test_the_token_of_a_refresh_is_revoked_when_the_refresh_ends(
    eso: EsoStack, namespace: str, role_store: tuple[str, str]
) -> None:
    role, store = role_store
    path = f"prod/{uuid.uuid4().hex[:8]}"
    write(eso, path, password="v1")
    body = external_secret("revoked", dataFrom=[{"extract": {"key": path}}])
    body["spec"]["secretStoreRef"]["name"] = store
    eso.create(namespace, body)
    eso.wait_ready(namespace, ES, "revoked")
    write(eso, path, password="v2")
    eso.force_sync(namespace, ES, "revoked")
    wait_for(lambda: eso.secret_data(namespace, "revoked") == {"password": b"v2"}, what="the refresh")
    # the store's validation and both refreshes logged in; each revoked its token when it was done
    assert live_tokens(eso, role) == set()


def test_a_token_from_token_secret_ref_is_never_revoked(eso: EsoStack, namespace: str) -> None:
    token = eso.vault.auth.token.create(policies=[POLICY], ttl="1h")["auth"]["client_token"]
    eso.core.create_namespaced_secret(
        namespace,
        {"metadata": {"name": "vault-token"}, "data": {"token": base64.b64encode(token.encode()).decode()}},
    )
    eso.create(
        namespace,
        {
            "apiVersion": "external-secrets.io/v1",
            "kind": "SecretStore",
            "metadata": {"name": "static"},
            "spec": {
                "provider": {
                    "vault": {
                        "server": "https://vault.vault-system.svc:8200",
                        "path": "secret",
                        "version": "v2",
                        "auth": {"tokenSecretRef": {"name": "vault-token", "key": "token"}},
                    }
                }
            },
        },
    )
    eso.wait_ready(namespace, "SecretStore", "static")
    path = f"prod/{uuid.uuid4().hex[:8]}"
    write(eso, path, password="static")
    body = external_secret("static", dataFrom=[{"extract": {"key": path}}])
    body["spec"]["secretStoreRef"] = {"name": "static", "kind": "SecretStore"}
    eso.create(namespace, body)
    eso.wait_ready(namespace, ES, "static")
    assert eso.vault.auth.token.lookup(token)["data"]["ttl"] > 0  # still valid
    eso.vault.auth.token.revoke(token)


def test_with_the_token_cache_a_token_is_looked_up_and_reused_until_it_is_revoked(
    eso: EsoStack, namespace: str, role_store: tuple[str, str]
) -> None:
    """``--enable-vault-token-cache``: the same token while lookup-self vouches for it, then a new login."""
    role, store = role_store
    path = f"prod/{uuid.uuid4().hex[:8]}"
    write(eso, path, password="cached")
    controller = eso.controller
    resolver = StoreResolver(
        controller.kube, controller.environment, urllib3.PoolManager(), vault_token_cache=True
    )
    store_object = _store_object(eso, store)

    def read(store_object: dict[str, Any]) -> bytes:
        with resolver.manager(floodgate=True) as manager:
            return manager.get_from_store(store_object, namespace).get_secret(RemoteRef(path, "password"))

    assert read(store_object) == b"cached"
    first = live_tokens(eso, role)
    assert len(first) == 1  # kept when the reconcile ended
    assert read(store_object) == b"cached"
    assert live_tokens(eso, role) == first  # looked up and reused

    eso.vault.auth.token.revoke_accessor(first.pop())
    assert read(store_object) == b"cached"  # the lookup fails: it logs in again
    second = live_tokens(eso, role)
    assert len(second) == 1

    changed = {**store_object, "metadata": {**store_object["metadata"], "resourceVersion": "changed"}}
    assert read(changed) == b"cached"  # a changed store evicts the client and revokes its token
    third = live_tokens(eso, role)
    assert len(third) == 1 and third != second


def test_with_the_token_cache_a_token_with_under_a_minute_left_is_replaced(
    eso: EsoStack, namespace: str, role_store: tuple[str, str]
) -> None:
    role, store = role_store
    set_role(eso, role, [POLICY], ttl="30s")
    path = f"prod/{uuid.uuid4().hex[:8]}"
    write(eso, path, password="short")
    controller = eso.controller
    resolver = StoreResolver(
        controller.kube, controller.environment, urllib3.PoolManager(), vault_token_cache=True
    )
    store_object = _store_object(eso, store)
    for _ in range(2):
        with resolver.manager(floodgate=True) as manager:
            assert manager.get_from_store(store_object, namespace).get_secret(RemoteRef(path, "password"))
    assert len(live_tokens(eso, role)) == 2  # a new login each time; the cache leaves the old one to expire
