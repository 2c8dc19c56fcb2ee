"""A PushSecret's life as ESO's ``pkg/controllers/pushsecret/pushsecret_controller.go`` leads it.

The source Secret going away (``handleSourceSecretDeleted``), stores that are not Ready (no flood
gate: ``NewManager(..., false)``), ``shouldRefresh`` (the resource-version check first),
``GetSecretStores`` (``labelSelector``) and the AWS provider's deletion options
(``providers/v1/aws/secretsmanager/secretsmanager.go`` ``DeleteSecret``,
``providers/v1/aws/util/validation.go``), observed through the clouds' real SDKs.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from tests.sandbox_eso.conftest import EsoStack
from tests.sandbox_eso.test_pushsecret import aws_value, gcp_value, push_secret, source, stores, update_source
from vaultflow.sandbox.observe import wait_for

PS = "PushSecret"


def aws_store(eso: EsoStack, namespace: str, name: str, secrets_manager: dict[str, Any]) -> None:
    """An AWS SecretStore with ``secretsManager`` deletion settings (credentials from ``stores``)."""
    ref = {"name": "clouds"}
    eso.create(
        namespace,
        {
            "apiVersion": "external-secrets.io/v1",
            "kind": "SecretStore",
            "metadata": {"name": name},
            "spec": {
                "provider": {
                    "aws": {
                        "service": "SecretsManager",
                        "region": "eu-west-1",
                        "secretsManager": secrets_manager,
                        "auth": {
                            "secretRef": {
                                "accessKeyIDSecretRef": {**ref, "key": "id"},
                                "secretAccessKeySecretRef": {**ref, "key": "key"},
                            }
                        },
                    }
                }
            },
        },
    )
    eso.wait_ready(namespace, "SecretStore", name)


def delete_push_secret(eso: EsoStack, namespace: str, name: str) -> None:
    eso.custom.delete_namespaced_custom_object(
        "external-secrets.io", "v1alpha1", namespace, "pushsecrets", name
    )


def gone(eso: EsoStack, namespace: str, name: str) -> bool:
    return not [
        item
        for item in eso.custom.list_namespaced_custom_object(
            "external-secrets.io", "v1alpha1", namespace, "pushsecrets"
        )["items"]
        if item["metadata"]["name"] == name
    ]


def failed(eso: EsoStack, namespace: str, name: str) -> dict[str, Any] | None:
    condition = eso.condition(namespace, PS, name)
    return condition if condition.get("status") == "False" else None


def test_a_deleted_source_deletes_what_was_pushed_and_says_source_deleted(
    eso: EsoStack, namespace: str, gcp: Any
) -> None:
    stores(eso, namespace)
    source(eso, namespace, "src", password="p")
    remote = f"src-gone-{namespace}"
    eso.create(namespace, push_secret("follows", "src", "gcp", remote, deletionPolicy="Delete"))
    eso.wait_ready(namespace, PS, "follows")
    assert gcp_value(gcp, remote) == b"p"

    eso.core.delete_namespaced_secret("src", namespace)
    eso.force_sync(namespace, PS, "follows")  # a PushSecret does not watch its source
    condition = wait_for(lambda: failed(eso, namespace, "follows"), what="the source to be missed")
    assert (condition["reason"], condition["message"]) == (
        "SourceDeleted",
        "source secret deleted; provider secrets cleaned up",
    )
    assert gcp_value(gcp, remote) is None
    assert "syncedPushSecrets" not in eso.get(namespace, PS, "follows")["status"]
    events = [(e.type, e.reason, e.message) for e in eso.events(namespace, "follows")]
    assert ("Normal", "SourceDeleted", "source secret deleted; provider secrets cleaned up") in events


def test_without_deletion_policy_a_deleted_source_is_only_an_error(
    eso: EsoStack, namespace: str, gcp: Any
) -> None:
    stores(eso, namespace)
    source(eso, namespace, "src", password="p")
    remote = f"src-kept-{namespace}"
    eso.create(namespace, push_secret("keeps", "src", "gcp", remote))
    eso.wait_ready(namespace, PS, "keeps")
    eso.core.delete_namespaced_secret("src", namespace)
    eso.force_sync(namespace, PS, "keeps")
    condition = wait_for(lambda: failed(eso, namespace, "keeps"), what="the error")
    assert (condition["reason"], condition["message"]) == ("Errored", "could not get source secret")
    assert gcp_value(gcp, remote) == b"p"  # left alone
    messages = [e.message for e in eso.events(namespace, "keeps") if e.reason == "Errored"]
    assert messages == ["could not get source secret"]  # ESO's event says no more


def test_a_push_secret_does_not_wait_for_its_store_to_be_ready(
    eso: EsoStack, namespace: str, aws: Any
) -> None:
    stores(eso, namespace)
    eso.custom.patch_namespaced_custom_object_status(
        "external-secrets.io",
        "v1",
        namespace,
        "secretstores",
        "aws",
        {
            "status": {
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "False",
                        "reason": "InvalidProviderConfig",
                        "message": "unable to validate store",
                        "lastTransitionTime": "2026-01-01T00:00:00Z",
                    }
                ]
            }
        },
    )
    assert eso.condition(namespace, "SecretStore", "aws")["status"] == "False"
    source(eso, namespace, "src", password="anyway")
    remote = f"/{namespace}/unready"
    eso.create(namespace, push_secret("pusher", "src", "aws", remote))
    eso.wait_ready(namespace, PS, "pusher")
    assert aws_value(aws, remote) == b"anyway"


def test_refresh_interval_zero_still_refreshes_when_the_push_secret_changes(
    eso: EsoStack, namespace: str, aws: Any
) -> None:
    stores(eso, namespace)
    source(eso, namespace, "src", password="one")
    remote = f"/{namespace}/once"
    eso.create(namespace, push_secret("once", "src", "aws", remote, refreshInterval="0s"))
    eso.wait_ready(namespace, PS, "once")
    assert aws_value(aws, remote) == b"one"
    result = eso.controller.push_secrets.reconcile(namespace, "once")  # ESO: 0 - since last refresh + 5 s
    assert result.requeue_after is not None and result.requeue_after <= 5  # no periodic refresh

    update_source(eso, namespace, "src", password="two")
    eso.force_sync(namespace, PS, "once")
    wait_for(lambda: aws_value(aws, remote) == b"two", what="the push after the annotation change")


def test_store_refs_by_label_selector(eso: EsoStack, namespace: str, aws: Any, gcp: Any) -> None:
    stores(eso, namespace)
    for name in ("aws", "gcp"):
        eso.custom.patch_namespaced_custom_object(
            "external-secrets.io",
            "v1",
            namespace,
            "secretstores",
            name,
            {"metadata": {"labels": {"push": "yes"}}},
        )
    source(eso, namespace, "src", password="everywhere")
    remote = f"selected-{namespace}"
    body = push_secret("selected", "src", "unused", remote)
    body["spec"]["secretStoreRefs"] = [
        {"kind": "SecretStore", "labelSelector": {"matchLabels": {"push": "yes"}}}
    ]
    eso.create(namespace, body)
    ready = eso.wait_ready(namespace, PS, "selected")
    assert sorted(ready["status"]["syncedPushSecrets"]) == ["SecretStore/aws", "SecretStore/gcp"]
    assert aws_value(aws, remote) == gcp_value(gcp, remote) == b"everywhere"


def test_aws_deletion_waits_30_days_and_the_scheduled_secret_blocks_a_new_push(
    eso: EsoStack, namespace: str, aws: Any
) -> None:
    stores(eso, namespace)
    source(eso, namespace, "src", password="p")
    remote = f"/{namespace}/scheduled"
    eso.create(namespace, push_secret("first", "src", "aws", remote, deletionPolicy="Delete"))
    eso.wait_ready(namespace, PS, "first")
    delete_push_secret(eso, namespace, "first")
    wait_for(lambda: gone(eso, namespace, "first"), what="the PushSecret to go")
    deleted = aws.describe_secret(SecretId=remote)["DeletedDate"]
    days = (deleted - datetime.datetime.now(datetime.UTC)).total_seconds() / 86400
    assert 29.9 < days <= 30  # AWS's default recovery window

    eso.create(namespace, push_secret("again", "src", "aws", remote))
    condition = wait_for(lambda: failed(eso, namespace, "again"), what="the refused push")
    assert condition["message"].startswith("set secret failed: could not write remote ref password")
    assert "(InvalidRequestException) when calling the GetSecretValue operation" in condition["message"]


def test_aws_force_delete_without_recovery_lets_a_new_push_create_it_again(
    eso: EsoStack, namespace: str, aws: Any
) -> None:
    stores(eso, namespace)
    aws_store(eso, namespace, "aws-force", {"forceDeleteWithoutRecovery": True})
    source(eso, namespace, "src", password="p")
    remote = f"/{namespace}/forced"
    eso.create(namespace, push_secret("first", "src", "aws-force", remote, deletionPolicy="Delete"))
    eso.wait_ready(namespace, PS, "first")
    delete_push_secret(eso, namespace, "first")
    wait_for(lambda: gone(eso, namespace, "first"), what="the PushSecret to go")
    with pytest.raises(aws.exceptions.ResourceNotFoundException):
        aws.describe_secret(SecretId=remote)

    eso.create(namespace, push_secret("again", "src", "aws-force", remote))
    eso.wait_ready(namespace, PS, "again")
    assert aws_value(aws, remote) == b"p"


def test_aws_recovery_window_in_days_is_validated_and_used(eso: EsoStack, namespace: str, aws: Any) -> None:
    stores(eso, namespace)
    aws_store(eso, namespace, "aws-window", {"recoveryWindowInDays": 3})
    source(eso, namespace, "src", password="p")
    remote = f"/{namespace}/window"
    eso.create(namespace, push_secret("windowed", "src", "aws-window", remote, deletionPolicy="Delete"))
    eso.wait_ready(namespace, PS, "windowed")
    delete_push_secret(eso, namespace, "windowed")
    condition = wait_for(lambda: failed(eso, namespace, "windowed"), what="the refused deletion")
    assert condition["message"] == (
        "Failed to Delete Secrets from Provider: "
        "invalid DeleteSecretInput: RecoveryWindowInDays must be between 7 and 30 days"
    )
    assert aws_value(aws, remote) == b"p" and not gone(eso, namespace, "windowed")  # the finalizer holds it

    eso.custom.patch_namespaced_custom_object(
        "external-secrets.io",
        "v1",
        namespace,
        "secretstores",
        "aws-window",
        {"spec": {"provider": {"aws": {"secretsManager": {"recoveryWindowInDays": 7}}}}},
    )
    wait_for(lambda: gone(eso, namespace, "windowed"), timeout=30, what="the retried deletion")
    deleted = aws.describe_secret(SecretId=remote)["DeletedDate"]
    days = (deleted - datetime.datetime.now(datetime.UTC)).total_seconds() / 86400
    assert 6.9 < days <= 7
