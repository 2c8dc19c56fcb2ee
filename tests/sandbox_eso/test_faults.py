"""Injected provider faults show up where a pipeline looks, and the system recovers when they are lifted."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from tests.sandbox_eso.conftest import EsoStack, external_secret
from tests.sandbox_eso.test_pushsecret import aws_value, gcp_value, push_secret, source, stores, update_source
from vaultflow.sandbox.faults import Fault, FaultInjector, InjectedFault
from vaultflow.sandbox.observe import wait_for


def failed(eso: EsoStack, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
    condition = eso.condition(namespace, kind, name)
    return condition if condition.get("status") == "False" else None


def test_vault_down_is_a_sync_error_until_it_is_back(eso: EsoStack, namespace: str, vault_path: str) -> None:
    eso.vault.secrets.kv.v2.create_or_update_secret(
        vault_path, secret={"password": "v1"}, mount_point="secret"
    )
    eso.create(namespace, external_secret("resilient", dataFrom=[{"extract": {"key": vault_path}}]))
    eso.wait_ready(namespace, "ExternalSecret", "resilient")

    eso.faults.set("vault", Fault(down=True))
    eso.vault.secrets.kv.v2.create_or_update_secret(
        vault_path, secret={"password": "v2"}, mount_point="secret"
    )
    eso.force_sync(namespace, "ExternalSecret", "resilient")
    condition = wait_for(
        lambda: failed(eso, namespace, "ExternalSecret", "resilient"), what="SecretSyncedError"
    )
    assert condition["reason"] == "SecretSyncedError"
    assert any("vault is down, injected" in e.message for e in eso.events(namespace, "resilient"))
    assert eso.secret_data(namespace, "resilient") == {"password": b"v1"}  # the last good value stays

    eso.faults.clear("vault")
    eso.force_sync(namespace, "ExternalSecret", "resilient")
    wait_for(lambda: eso.ready(namespace, "ExternalSecret", "resilient"), what="Ready again")
    assert eso.secret_data(namespace, "resilient") == {"password": b"v2"}


@pytest.mark.parametrize(("provider", "store"), [("gcp", "gcp"), ("aws", "aws")])
def test_an_erroring_cloud_fails_the_push_until_it_recovers(
    eso: EsoStack, namespace: str, provider: str, store: str
) -> None:
    stores(eso, namespace)
    source(eso, namespace, "src", password="before")
    remote = f"faulty-{namespace}" if provider == "gcp" else f"/{namespace}/faulty"
    eso.create(namespace, push_secret("pusher", "src", store, remote))
    eso.wait_ready(namespace, "PushSecret", "pusher")

    eso.faults.set(provider, Fault(error_rate=1.0))
    update_source(eso, namespace, "src", password="after")
    eso.force_sync(namespace, "PushSecret", "pusher")
    condition = wait_for(lambda: failed(eso, namespace, "PushSecret", "pusher"), what="the failed push")
    assert condition["reason"] == "Errored"
    assert condition["message"].startswith("set secret failed:")
    assert f"injected {provider} error" in condition["message"]

    eso.faults.clear(provider)
    eso.force_sync(namespace, "PushSecret", "pusher")
    wait_for(lambda: eso.ready(namespace, "PushSecret", "pusher"), what="the push to recover")
    if provider == "gcp":
        assert gcp_value(_gcp(eso), remote) == b"after"
    else:
        assert aws_value(_aws(eso), remote) == b"after"


def _aws(eso: EsoStack) -> Any:
    return boto3.client(
        "secretsmanager",
        region_name="eu-west-1",
        endpoint_url=eso.aws_endpoint,
        aws_access_key_id="sandbox",
        aws_secret_access_key="sandbox",
    )


def _gcp(eso: EsoStack) -> Any:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import secretmanager

    return secretmanager.SecretManagerServiceClient(
        transport="rest", client_options={"api_endpoint": eso.gcp.url}, credentials=AnonymousCredentials()
    )


def test_the_fault_injector_itself() -> None:
    injector = FaultInjector(seed=1)
    injector.before_call("aws", "http://x")  # no fault: nothing happens
    injector.set("aws", Fault(error_rate=0.5))
    outcomes = []
    for _ in range(200):
        try:
            injector.before_call("aws", "http://x")
            outcomes.append(True)
        except InjectedFault:
            outcomes.append(False)
    assert 60 < outcomes.count(False) < 140  # about half fail
    injector.set("aws", Fault())  # an inactive fault clears
    assert injector.snapshot() == {}
    with pytest.raises(ValueError, match="error_rate must be between 0 and 1"):
        Fault(error_rate=2)
    with pytest.raises(ValueError, match="unknown provider"):
        injector.set("ibm", Fault(down=True))
    with pytest.raises(ValueError, match="unknown fault fields: colour"):
        Fault.from_json({"down": True, "colour": "red"})
