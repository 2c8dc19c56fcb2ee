"""PushSecrets writing to AWS (moto), GCP and Azure through their real SDKs, as ESO does.

Each cloud is read back with its own real client: boto3, google-cloud-secret-manager
(REST), azure-keyvault-secrets.
"""

from __future__ import annotations

import uuid
from typing import Any

from azure.keyvault.secrets import SecretClient

from tests.sandbox_eso.conftest import AZURE_VAULT, EsoStack
from vaultflow.sandbox.observe import wait_for

PS = "PushSecret"
PROJECT = "eso-push-tests"


def stores(eso: EsoStack, namespace: str) -> None:
    """A SecretStore per cloud, credentials in Secrets, as ESO users set them up outside the clouds."""
    eso.core.create_namespaced_secret(
        namespace,
        {
            "metadata": {"name": "clouds"},
            "stringData": {"id": "AKIDSANDBOX", "key": "sandbox", "sa": '{"type": "service_account"}'},
        },
    )
    ref = {"name": "clouds"}
    for name, provider in (
        (
            "aws",
            {
                "aws": {
                    "service": "SecretsManager",
                    "region": "eu-west-1",
                    "auth": {
                        "secretRef": {
                            "accessKeyIDSecretRef": {**ref, "key": "id"},
                            "secretAccessKeySecretRef": {**ref, "key": "key"},
                        }
                    },
                }
            },
        ),
        (
            "gcp",
            {
                "gcpsm": {
                    "projectID": PROJECT,
                    "auth": {"secretRef": {"secretAccessKeySecretRef": {**ref, "key": "sa"}}},
                }
            },
        ),
        (
            "azure",
            {
                "azurekv": {
                    "vaultUrl": f"https://{AZURE_VAULT}.vault.azure.net",
                    "tenantId": "00000000-0000-4000-8000-000000000000",
                    "authType": "ServicePrincipal",
                    "authSecretRef": {
                        "clientId": {**ref, "key": "id"},
                        "clientSecret": {**ref, "key": "key"},
                    },
                }
            },
        ),
    ):
        eso.create(
            namespace,
            {
                "apiVersion": "external-secrets.io/v1",
                "kind": "SecretStore",
                "metadata": {"name": name},
                "spec": {"provider": provider},
            },
        )
        eso.wait_ready(namespace, "SecretStore", name)


def push_secret(
    name: str, source: str, store: str, remote_key: str, key: str = "password", **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "external-secrets.io/v1alpha1",
        "kind": "PushSecret",
        "metadata": {"name": name},
        "spec": {
            "refreshInterval": "1h",
            "secretStoreRefs": [{"name": store, "kind": "SecretStore"}],
            "selector": {"secret": {"name": source}},
            "data": [{"match": {"secretKey": key, "remoteRef": {"remoteKey": remote_key}}}],
            **spec,
        },
    }


def source(eso: EsoStack, namespace: str, name: str, **values: str) -> None:
    eso.core.create_namespaced_secret(namespace, {"metadata": {"name": name}, "stringData": values})


def update_source(eso: EsoStack, namespace: str, name: str, **values: str) -> None:
    eso.core.patch_namespaced_secret(name, namespace, {"stringData": values})


def aws_value(aws: Any, name: str) -> bytes | None:
    try:
        found = aws.get_secret_value(SecretId=name)
    except aws.exceptions.ResourceNotFoundException:
        return None
    return bytes(found["SecretBinary"]) if "SecretBinary" in found else found["SecretString"].encode()


def gcp_value(gcp: Any, key: str) -> bytes | None:
    from google.api_core import exceptions

    try:
        return bytes(
            gcp.access_secret_version(name=f"projects/{PROJECT}/secrets/{key}/versions/latest").payload.data
        )
    except exceptions.NotFound:
        return None


def azure_value(azure: SecretClient, name: str) -> str | None:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return azure.get_secret(name).value
    except ResourceNotFoundError:
        return None


def test_a_push_secret_lands_in_every_cloud_and_follows_the_source(
    eso: EsoStack, namespace: str, aws: Any, gcp: Any, azure: SecretClient
) -> None:
    stores(eso, namespace)
    source(eso, namespace, "db", password="first", username="app")
    key = f"db-{namespace}"
    eso.create(namespace, push_secret("to-aws", "db", "aws", f"/{namespace}/db/password"))
    eso.create(namespace, push_secret("to-gcp", "db", "gcp", key))
    eso.create(namespace, push_secret("to-azure", "db", "azure", key))
    for name in ("to-aws", "to-gcp", "to-azure"):
        eso.wait_ready(namespace, PS, name)

    assert aws_value(aws, f"/{namespace}/db/password") == b"first"
    assert gcp_value(gcp, key) == b"first"
    assert azure_value(azure, key) == "first"

    # what ESO leaves behind: its ownership marks, and the status of what it pushed
    described = aws.describe_secret(SecretId=f"/{namespace}/db/password")
    assert {"Key": "managed-by", "Value": "external-secrets"} in described["Tags"]
    assert gcp.get_secret(name=f"projects/{PROJECT}/secrets/{key}").labels["managed-by"] == "external-secrets"
    assert azure.get_secret(key).properties.tags == {"managed-by": "external-secrets"}
    to_gcp = eso.get(namespace, PS, "to-gcp")
    pushed = to_gcp["status"]
    # the spec's entry as stored (with the CRD's defaults, when the API server applies them)
    assert pushed["syncedPushSecrets"] == {"SecretStore/gcp": {key: to_gcp["spec"]["data"][0]}}
    assert to_gcp["spec"]["data"][0]["match"] == {"secretKey": "password", "remoteRef": {"remoteKey": key}}
    assert pushed["conditions"][0]["reason"] == "Synced"
    assert pushed["conditions"][0]["message"] == "PushSecret synced successfully"

    # a PushSecret does not watch its source: the change goes out on force-sync (or at refreshInterval)
    update_source(eso, namespace, "db", password="second")
    for name in ("to-aws", "to-gcp", "to-azure"):
        eso.force_sync(namespace, PS, name)
    wait_for(lambda: aws_value(aws, f"/{namespace}/db/password") == b"second", what="AWS to follow")
    wait_for(lambda: gcp_value(gcp, key) == b"second", what="GCP to follow")
    wait_for(lambda: azure_value(azure, key) == "second", what="Azure to follow")
    assert len(list(gcp.list_secret_versions(parent=f"projects/{PROJECT}/secrets/{key}"))) == 2
    assert len(list(azure.list_properties_of_secret_versions(key))) == 2


def test_a_short_refresh_interval_follows_the_source_on_its_own(
    eso: EsoStack, namespace: str, aws: Any
) -> None:
    stores(eso, namespace)
    source(eso, namespace, "token", password="t1")
    remote = f"/{namespace}/token"
    eso.create(namespace, push_secret("periodic", "token", "aws", remote, refreshInterval="1s"))
    eso.wait_ready(namespace, PS, "periodic")
    update_source(eso, namespace, "token", password="t2")
    wait_for(lambda: aws_value(aws, remote) == b"t2", what="the next periodic push")


def test_the_whole_secret_is_pushed_as_json_without_a_secret_key(
    eso: EsoStack, namespace: str, aws: Any
) -> None:
    stores(eso, namespace)
    source(eso, namespace, "creds", username="app", password="p&<")
    body = push_secret("whole", "creds", "aws", f"/{namespace}/creds")
    body["spec"]["data"] = [{"match": {"remoteRef": {"remoteKey": f"/{namespace}/creds"}}}]
    eso.create(namespace, body)
    eso.wait_ready(namespace, PS, "whole")
    assert aws_value(aws, f"/{namespace}/creds") == b'{"password":"p&<","username":"app"}'


def test_if_not_exists_leaves_an_existing_remote_secret_alone(
    eso: EsoStack, namespace: str, gcp: Any
) -> None:
    stores(eso, namespace)
    source(eso, namespace, "seed", password="initial")
    key = f"seeded-{namespace}"
    eso.create(namespace, push_secret("once", "seed", "gcp", key, updatePolicy="IfNotExists"))
    ready = eso.wait_ready(namespace, PS, "once")
    assert ready["status"]["conditions"][0]["message"].endswith("Existing secrets in providers unchanged.")
    assert gcp_value(gcp, key) == b"initial"
    update_source(eso, namespace, "seed", password="changed")
    eso.force_sync(namespace, PS, "once")
    wait_for(
        lambda: (
            eso.get(namespace, PS, "once")["status"]["refreshTime"] != ready["status"]["refreshTime"]
            or eso.get(namespace, PS, "once")["status"]["syncedResourceVersion"]
            != ready["status"]["syncedResourceVersion"]
        ),
        what="the forced reconcile",
    )
    assert gcp_value(gcp, key) == b"initial"


def test_a_remote_secret_not_managed_by_eso_is_refused(eso: EsoStack, namespace: str, aws: Any) -> None:
    stores(eso, namespace)
    remote = f"/{namespace}/foreign"
    aws.create_secret(Name=remote, SecretString="someone-else's")
    source(eso, namespace, "mine", password="ours")
    eso.create(namespace, push_secret("clash", "mine", "aws", remote))
    condition = wait_for(
        lambda: (c := eso.condition(namespace, PS, "clash")) and c["status"] == "False" and c,
        what="the push to fail",
    )
    assert condition["reason"] == "Errored"
    assert condition["message"].startswith(
        "set secret failed: could not write remote ref password to target secretstore aws"
    )
    assert "secret not managed by external-secrets" in condition["message"]
    assert aws_value(aws, remote) == b"someone-else's"


def test_deletion_policy_delete_removes_what_was_pushed(
    eso: EsoStack, namespace: str, azure: SecretClient
) -> None:
    stores(eso, namespace)
    source(eso, namespace, "temp", password="p", other="o")
    first, second = f"first-{namespace}", f"second-{namespace}"
    body = push_secret("cleanup", "temp", "azure", first, deletionPolicy="Delete")
    body["spec"]["data"].append({"match": {"secretKey": "other", "remoteRef": {"remoteKey": second}}})
    eso.create(namespace, body)
    eso.wait_ready(namespace, PS, "cleanup")
    assert (azure_value(azure, first), azure_value(azure, second)) == ("p", "o")
    assert (
        "pushsecret.externalsecrets.io/finalizer"
        in eso.get(namespace, PS, "cleanup")["metadata"]["finalizers"]
    )

    eso.custom.patch_namespaced_custom_object(
        "external-secrets.io",
        "v1alpha1",
        namespace,
        "pushsecrets",
        "cleanup",
        {"spec": {"data": [{"match": {"secretKey": "password", "remoteRef": {"remoteKey": first}}}]}},
    )
    wait_for(lambda: azure_value(azure, second) is None, what="the dropped entry to be deleted")
    assert [s.name for s in azure.list_deleted_secrets()].count(
        second
    ) == 1  # soft-deleted, as Key Vault does

    eso.custom.delete_namespaced_custom_object(
        "external-secrets.io", "v1alpha1", namespace, "pushsecrets", "cleanup"
    )
    wait_for(lambda: azure_value(azure, first) is None, what="the PushSecret's deletion to delete remotely")


def test_a_missing_source_secret_is_an_error(eso: EsoStack, namespace: str) -> None:
    stores(eso, namespace)
    eso.create(namespace, push_secret("orphan", "does-not-exist", "aws", f"/{namespace}/x"))
    condition = wait_for(
        lambda: (c := eso.condition(namespace, PS, "orphan")) and c["status"] == "False" and c,
        what="the error",
    )
    assert condition["message"] == "could not get source secret"


def test_pushing_to_a_key_vault_the_sandbox_does_not_host_fails_like_dns(
    eso: EsoStack, namespace: str
) -> None:
    eso.core.create_namespaced_secret(
        namespace, {"metadata": {"name": "sp"}, "stringData": {"id": "i", "key": "k"}}
    )
    missing = f"nope{uuid.uuid4().hex[:6]}"
    eso.create(
        namespace,
        {
            "apiVersion": "external-secrets.io/v1",
            "kind": "SecretStore",
            "metadata": {"name": "elsewhere"},
            "spec": {
                "provider": {
                    "azurekv": {
                        "vaultUrl": f"https://{missing}.vault.azure.net",
                        "authSecretRef": {
                            "clientId": {"name": "sp", "key": "id"},
                            "clientSecret": {"name": "sp", "key": "key"},
                        },
                    }
                }
            },
        },
    )
    condition = wait_for(
        lambda: (c := eso.condition(namespace, "SecretStore", "elsewhere")) and c["status"] == "False" and c,
        what="the store to be invalid",
    )
    assert condition["reason"] == "InvalidProviderConfig"
    assert any(
        f"lookup {missing}.vault.azure.net: no such host" in e.message
        for e in eso.events(namespace, "elsewhere")
    )
