"""ClusterSecretStores whose credentials depend on the consumer, and who may use a ClusterSecretStore.

Upstream (ESO 2.9.0): ``pkg/controllers/secretstore/common.go`` ``validateStore`` (a ``Validate``
result is only looked at when it comes with an error), the providers' ``Validate`` and
``isReferentSpec`` (``providers/v1/vault/validate.go``, ``provider.go``: ``ValidationResultUnknown``
and no error for a referent ClusterSecretStore, ``tokenSecretRef`` without a namespace included),
and ``pkg/controllers/secretstore/client_manager.go`` ``shouldProcessSecret`` (``namespaces`` by
the ``kubernetes.io/metadata.name`` label, ``namespaceSelector`` through
``LabelSelectorAsSelector``, ``namespaceRegexes`` with ``regexp.MatchString``).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.sandbox_eso.conftest import MOUNT, POLICY, STORE, VAULT_ADDRESS, EsoStack, external_secret
from vaultflow.sandbox.eso.controller import store_refresh_interval
from vaultflow.sandbox.observe import wait_for

ES = "ExternalSecret"
GROUP, VERSION, PLURAL = "external-secrets.io", "v1", "clustersecretstores"


@pytest.fixture
def cluster_stores(eso: EsoStack) -> Iterator[list[str]]:
    """Names of the ClusterSecretStores a test creates; deleted after it."""
    created: list[str] = []
    yield created
    for name in created:
        eso.custom.delete_cluster_custom_object(GROUP, VERSION, PLURAL, name)


def create_store(eso: EsoStack, created: list[str], spec: dict[str, Any]) -> str:
    name = f"store-{uuid.uuid4().hex[:8]}"
    eso.custom.create_cluster_custom_object(
        GROUP,
        VERSION,
        PLURAL,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ClusterSecretStore",
            "metadata": {"name": name},
            "spec": spec,
        },
    )
    created.append(name)
    return name


def vault_spec(auth: dict[str, Any]) -> dict[str, Any]:
    return {"provider": {"vault": {"server": VAULT_ADDRESS, "path": "secret", "version": "v2", "auth": auth}}}


def ready_condition(eso: EsoStack, name: str) -> dict[str, Any] | None:
    store = eso.custom.get_cluster_custom_object(GROUP, VERSION, PLURAL, name)
    return next(
        (c for c in (store.get("status") or {}).get("conditions") or [] if c["type"] == "Ready"), None
    )


def store_events(eso: EsoStack, name: str) -> list[Any]:
    return [e for e in eso.core.list_namespaced_event("default").items if e.involved_object.name == name]


def write(eso: EsoStack, path: str, **values: object) -> None:
    eso.vault.secrets.kv.v2.create_or_update_secret(path, secret=values, mount_point="secret")


# ------------------------------------------------------------------ referent credentials


def test_a_cluster_store_with_a_referent_service_account_is_valid_without_a_login(
    eso: EsoStack, namespace: str, vault_path: str, cluster_stores: list[str]
) -> None:
    """No account of that name exists anywhere yet: ESO cannot log in, and does not try."""
    account = f"reader-{uuid.uuid4().hex[:6]}"
    auth = {"kubernetes": {"mountPath": MOUNT, "role": account, "serviceAccountRef": {"name": account}}}
    store = create_store(eso, cluster_stores, vault_spec(auth))
    condition = wait_for(lambda: ready_condition(eso, store), what="the store's Ready condition")
    assert (condition["status"], condition["reason"], condition["message"]) == (
        "True",
        "Valid",
        "store validated",
    )
    assert [e.reason for e in store_events(eso, store)] == ["Valid"]

    # an ExternalSecret logs in with the account of its own namespace
    eso.core.create_namespaced_service_account(namespace, {"metadata": {"name": account}})
    eso.vault.write_data(
        f"auth/{MOUNT}/role/{account}",
        data={
            "bound_service_account_names": [account],
            "bound_service_account_namespaces": [namespace],
            "token_policies": [POLICY],
            "token_ttl": "1h",
        },
    )
    write(eso, vault_path, password="per-namespace")
    body = external_secret("referent", dataFrom=[{"extract": {"key": vault_path}}])
    body["spec"]["secretStoreRef"]["name"] = store
    eso.create(namespace, body)
    eso.wait_ready(namespace, ES, "referent")
    assert eso.secret_data(namespace, "referent") == {"password": b"per-namespace"}
    eso.vault.delete(f"auth/{MOUNT}/role/{account}")


def test_a_token_secret_ref_without_a_namespace_is_referent(
    eso: EsoStack, namespace: str, vault_path: str, cluster_stores: list[str]
) -> None:
    """The token Secret is read in the consumer's namespace; the store itself has none to read."""
    store = create_store(
        eso, cluster_stores, vault_spec({"tokenSecretRef": {"name": "vault-token", "key": "t"}})
    )
    condition = wait_for(lambda: ready_condition(eso, store), what="the store's Ready condition")
    assert (condition["status"], condition["reason"]) == ("True", "Valid")

    token = eso.vault.auth.token.create(policies=[POLICY], ttl="10m")["auth"]["client_token"]
    eso.core.create_namespaced_secret(
        namespace,
        {"metadata": {"name": "vault-token"}, "data": {"t": base64.b64encode(token.encode()).decode()}},
    )
    write(eso, vault_path, password="from-token")
    body = external_secret("by-token", dataFrom=[{"extract": {"key": vault_path}}])
    body["spec"]["secretStoreRef"]["name"] = store
    eso.create(namespace, body)
    eso.wait_ready(namespace, ES, "by-token")
    assert eso.secret_data(namespace, "by-token") == {"password": b"from-token"}
    eso.vault.auth.token.revoke(token)


def test_a_cluster_store_naming_the_namespace_is_validated_for_real(
    eso: EsoStack, cluster_stores: list[str]
) -> None:
    """With a namespace the credentials are fixed: the store controller reads them, and fails here."""
    auth = {"tokenSecretRef": {"name": "absent", "key": "t", "namespace": "kube-system"}}
    store = create_store(eso, cluster_stores, vault_spec(auth))
    wait_for(lambda: (ready_condition(eso, store) or {}).get("status") == "False", what="the invalid store")
    assert (ready_condition(eso, store) or {}).get("message") == "unable to create client"
    assert 'cannot get Kubernetes secret "absent"' in next(e.message for e in store_events(eso, store))


# ------------------------------------------------------------------ spec.conditions


def default_store_spec(eso: EsoStack) -> dict[str, Any]:
    spec: dict[str, Any] = eso.custom.get_cluster_custom_object(GROUP, VERSION, PLURAL, STORE)["spec"]
    return spec


def sync_result(eso: EsoStack, namespace: str, store: str, vault_path: str, name: str) -> str:
    """``ready`` once the ExternalSecret synced through ``store``, else the error event's message."""
    body = external_secret(name, dataFrom=[{"extract": {"key": vault_path}}])
    body["spec"]["secretStoreRef"]["name"] = store
    eso.create(namespace, body)

    def outcome() -> str | None:
        condition = eso.condition(namespace, ES, name)
        if condition.get("status") == "True":
            return "ready"
        failures = [e.message for e in eso.events(namespace, name) if e.reason == "UpdateFailed"]
        return failures[0] if failures else None

    return wait_for(outcome, what=f"{name} to sync or fail")


@pytest.mark.parametrize("label_tier", ["gold", "bronze"])
def test_a_namespace_selector_takes_match_expressions(
    eso: EsoStack, namespace: str, vault_path: str, cluster_stores: list[str], label_tier: str
) -> None:
    eso.core.patch_namespace(namespace, {"metadata": {"labels": {"tier": label_tier}}})
    write(eso, vault_path, password="x")
    selector = {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["gold", "silver"]}]}
    store = create_store(
        eso, cluster_stores, {**default_store_spec(eso), "conditions": [{"namespaceSelector": selector}]}
    )
    wait_for(lambda: (ready_condition(eso, store) or {}).get("status") == "True", what="the store")
    result = sync_result(eso, namespace, store, vault_path, "selected")
    if label_tier == "gold":
        assert result == "ready"
    else:
        assert result.endswith(
            f'using cluster store "{store}" is not allowed from namespace "{namespace}": '
            "denied by spec.condition"
        )


def test_namespace_regexes_match_anywhere_in_the_name(
    eso: EsoStack, namespace: str, vault_path: str, cluster_stores: list[str]
) -> None:
    """Go's ``regexp.MatchString`` is unanchored: a part of the name is enough."""
    write(eso, vault_path, password="x")
    part = namespace[2:6]  # the namespaces are t-<hex>
    conditions = [{"namespaces": ["somewhere-else"]}, {"namespaceRegexes": [part]}]
    store = create_store(eso, cluster_stores, {**default_store_spec(eso), "conditions": conditions})
    wait_for(lambda: (ready_condition(eso, store) or {}).get("status") == "True", what="the store")
    assert sync_result(eso, namespace, store, vault_path, "by-regex") == "ready"


def test_listed_namespaces_and_a_bad_selector(
    eso: EsoStack, namespace: str, vault_path: str, cluster_stores: list[str]
) -> None:
    write(eso, vault_path, password="x")
    listed = create_store(
        eso, cluster_stores, {**default_store_spec(eso), "conditions": [{"namespaces": [namespace]}]}
    )
    bad_selector = {"matchExpressions": [{"key": "tier", "operator": "Bogus"}]}
    bad = create_store(
        eso, cluster_stores, {**default_store_spec(eso), "conditions": [{"namespaceSelector": bad_selector}]}
    )
    for store in (listed, bad):
        wait_for(
            lambda store=store: (ready_condition(eso, store) or {}).get("status") == "True", what="the store"
        )
    assert sync_result(eso, namespace, listed, vault_path, "listed") == "ready"
    assert sync_result(eso, namespace, bad, vault_path, "bad-selector").endswith(
        "failed to convert label selector into selector &LabelSelector{MatchLabels:map[string]string{},"
        "MatchExpressions:[]LabelSelectorRequirement{LabelSelectorRequirement{Key:tier,Operator:Bogus,"
        'Values:[],},},}: "Bogus" is not a valid label selector operator'
    )


# ------------------------------------------------------------------ spec.refreshInterval


@pytest.mark.parametrize(
    ("value", "seconds"), [(None, 0.0), (0, 0.0), (90, 90.0), ("10m", 600.0), ("1h30m", 5400.0)]
)
def test_a_store_refresh_interval_is_seconds_or_a_go_duration(value: Any, seconds: float) -> None:
    """``SecretStoreSpec.GetRefreshInterval`` (``secretstore_types.go``): an int-or-string field."""
    assert store_refresh_interval({"spec": {"refreshInterval": value}}) == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (-5, "invalid refreshInterval: invalid refreshInterval -5: must not be negative"),
        ("10", 'invalid refreshInterval: invalid refreshInterval "10": time: missing unit in duration "10"'),
        ("soon", 'invalid refreshInterval: invalid refreshInterval "soon": time: invalid duration "soon"'),
    ],
)
def test_a_bad_store_refresh_interval_fails_the_reconcile(value: Any, message: str) -> None:
    with pytest.raises(RuntimeError) as raised:
        store_refresh_interval({"spec": {"refreshInterval": value}})
    assert str(raised.value) == message
