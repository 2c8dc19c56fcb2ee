"""What the demo's recovery (``vaultflow.sandbox.recovery``) asks of ESO once a fault is gone: validate
again the stores it found invalid before then, reconcile the objects whose sync failed before then."""

from __future__ import annotations

import time
from typing import Any

from tests.sandbox_eso.conftest import VAULT_ADDRESS, EsoStack, external_secret
from vaultflow.sandbox.observe import wait_for
from vaultflow.sandbox.recovery import (
    REVALIDATE_ANNOTATION,
    StoreRef,
    force_sync_failed,
    revalidate_stores,
    wait_for_stores,
)

TOKEN_SECRET = "vault-token"


def token_store(name: str) -> dict[str, Any]:
    """A SecretStore that logs in with a token from a Secret: invalid until that Secret exists."""
    return {
        "apiVersion": "external-secrets.io/v1",
        "kind": "SecretStore",
        "metadata": {"name": name},
        "spec": {
            "provider": {
                "vault": {
                    "server": VAULT_ADDRESS,
                    "path": "secret",
                    "version": "v2",
                    "auth": {"tokenSecretRef": {"name": TOKEN_SECRET, "key": "token"}},
                }
            }
        },
    }


def test_a_store_invalid_before_the_moment_is_annotated_and_validated_again(
    eso: EsoStack, namespace: str
) -> None:
    eso.create(namespace, token_store("needs-token"))
    condition = wait_for(
        lambda: eso.condition(namespace, "SecretStore", "needs-token") or None, what="the store's verdict"
    )
    assert (condition["status"], condition["reason"]) == ("False", "InvalidProviderConfig")
    ref = StoreRef("SecretStore", namespace, "needs-token")

    # invalid only since after the moment given: the fault is still in force, nothing is asked for
    assert ref not in [found for found, _ in revalidate_stores(eso.api, "t1", before=0.0)]
    annotated = dict(revalidate_stores(eso.api, "t2", before=time.time()))
    assert annotated[ref] == "unable to create client"
    store = eso.get(namespace, "SecretStore", "needs-token")
    assert store["metadata"]["annotations"][REVALIDATE_ANNOTATION] == "t2"

    # once the cause is gone the store is validated again (at once when annotated; ESO's own retry
    # may come first, and then there is nothing left to annotate)
    eso.core.create_namespaced_secret(
        namespace, {"metadata": {"name": TOKEN_SECRET}, "stringData": {"token": str(eso.vault.token)}}
    )
    revalidate_stores(eso.api, "t3", before=time.time())
    assert wait_for_stores(eso.api, [ref], timeout=20) == []
    assert eso.condition(namespace, "SecretStore", "needs-token")["reason"] == "Valid"


def test_an_external_secret_failing_before_the_moment_is_force_synced(eso: EsoStack, namespace: str) -> None:
    body = external_secret("orphan", data=[{"secretKey": "k", "remoteRef": {"key": "prod/none"}}])
    body["spec"]["secretStoreRef"] = {"kind": "SecretStore", "name": "no-such-store"}
    eso.create(namespace, body)
    condition = wait_for(
        lambda: eso.condition(namespace, "ExternalSecret", "orphan") or None, what="the sync's verdict"
    )
    assert condition["status"] == "False"

    assert not [line for line in force_sync_failed(eso.api, "eso", "t1", before=0.0) if "orphan" in line]
    lines = force_sync_failed(eso.api, "eso", "t2", before=time.time())
    assert f"ExternalSecret {namespace}/orphan ({condition['message']})" in lines
    assert eso.get(namespace, "ExternalSecret", "orphan")["metadata"]["annotations"]["force-sync"] == "t2"
