"""PushSecret ``remoteRef.property``: the value merged into the remote secret's JSON, as ESO v2.9.0 does it.

AWS (``secretsmanager.go`` ``getNewSecretValue``) and GCP (``push_secret.go``
``propertyPSBuilder``) set the property with sjson, which edits the document's
text: formatting and other keys stay. AWS then compares the whole new
document with the current one; GCP compares only the property as gjson reads
it. Azure's provider does not use ``property`` at all. Each cloud is read
back with its own SDK.
"""

from __future__ import annotations

from typing import Any

from azure.keyvault.secrets import SecretClient

from tests.sandbox_eso.conftest import EsoStack
from tests.sandbox_eso.test_pushsecret import (
    PROJECT,
    PS,
    aws_value,
    azure_value,
    gcp_value,
    push_secret,
    source,
    stores,
    update_source,
)
from vaultflow.sandbox.observe import wait_for

MANAGED = [{"Key": "managed-by", "Value": "external-secrets"}]


def by_property(
    name: str, secret: str, store: str, remote_key: str, *properties: str, **spec: Any
) -> dict[str, Any]:
    """A PushSecret pushing each source key ``p`` to ``remote_key`` at property ``p``."""
    body = push_secret(name, secret, store, remote_key, **spec)
    body["spec"]["data"] = [
        {"match": {"secretKey": prop, "remoteRef": {"remoteKey": remote_key, "property": prop}}}
        for prop in properties
    ]
    return body


def resync(eso: EsoStack, namespace: str, name: str) -> None:
    """Force a reconcile and wait until it has finished (the status records the new resource version)."""
    before = eso.get(namespace, PS, name)["status"]["syncedResourceVersion"]
    eso.force_sync(namespace, PS, name)
    wait_for(
        lambda: eso.get(namespace, PS, name)["status"].get("syncedResourceVersion") != before,
        what=f"{name} to be pushed again",
    )


def failure(eso: EsoStack, namespace: str, name: str) -> str:
    condition = wait_for(
        lambda: (c := eso.condition(namespace, PS, name)) and c["status"] == "False" and c,
        what=f"{name} to fail",
    )
    return str(condition["message"])


def aws_versions(aws: Any, name: str) -> int:
    return len(aws.list_secret_version_ids(SecretId=name)["Versions"])


def gcp_secret(gcp: Any, key: str, payload: bytes) -> str:
    """A GCP secret made outside ESO (no ``managed-by`` label) with one version; its resource name."""
    secret = gcp.create_secret(
        parent=f"projects/{PROJECT}", secret_id=key, secret={"replication": {"automatic": {}}}
    )
    gcp.add_secret_version(parent=secret.name, payload={"data": payload})
    return str(secret.name)


def gcp_versions(gcp: Any, name: str) -> int:
    return len(list(gcp.list_secret_versions(parent=name)))


def test_aws_keeps_the_documents_formatting_and_other_keys(eso: EsoStack, namespace: str, aws: Any) -> None:
    stores(eso, namespace)
    remote = f"/{namespace}/db"
    aws.create_secret(Name=remote, SecretString='{\n  "user": "app",\n  "password": "old"\n}\n', Tags=MANAGED)
    source(eso, namespace, "db", password="new", host="db.internal")
    eso.create(namespace, by_property("merge", "db", "aws", remote, "password", "host"))
    ready = eso.wait_ready(namespace, PS, "merge")

    # the existing key replaced where it stood, the new one appended as sjson appends
    assert aws_value(aws, remote) == b'{\n  "user": "app",\n  "password": "new"\n,"host":"db.internal"}'
    assert aws_versions(aws, remote) == 3  # one per property that changed the document
    assert set(ready["status"]["syncedPushSecrets"]["SecretStore/aws"]) == {
        f"{remote}/password",
        f"{remote}/host",
    }


def test_aws_puts_no_version_when_the_property_is_unchanged(eso: EsoStack, namespace: str, aws: Any) -> None:
    stores(eso, namespace)
    remote = f"/{namespace}/same"
    document = '{\n  "user": "app",\n  "password": "same"\n}'
    aws.create_secret(Name=remote, SecretString=document, Tags=MANAGED)
    source(eso, namespace, "db", password="same")
    eso.create(namespace, by_property("same", "db", "aws", remote, "password"))
    eso.wait_ready(namespace, PS, "same")

    assert aws_versions(aws, remote) == 1
    assert aws.get_secret_value(SecretId=remote)["SecretString"] == document


def test_aws_compares_the_whole_document_so_a_number_becomes_a_string(
    eso: EsoStack, namespace: str, aws: Any
) -> None:
    stores(eso, namespace)
    remote = f"/{namespace}/port"
    aws.create_secret(Name=remote, SecretString='{"port": 5432}', Tags=MANAGED)
    source(eso, namespace, "db", port="5432")
    eso.create(namespace, by_property("port", "db", "aws", remote, "port"))
    eso.wait_ready(namespace, PS, "port")

    assert aws_value(aws, remote) == b'{"port": "5432"}'
    assert aws_versions(aws, remote) == 2


def test_aws_refuses_a_current_value_that_is_not_json_and_drops_sjsons_error(
    eso: EsoStack, namespace: str, aws: Any
) -> None:
    stores(eso, namespace)
    text, array = f"/{namespace}/text", f"/{namespace}/array"
    aws.create_secret(Name=text, SecretString="not json", Tags=MANAGED)
    aws.create_secret(Name=array, SecretString='["a", "b"]', Tags=MANAGED)
    source(eso, namespace, "db", password="p")
    eso.create(namespace, by_property("text", "db", "aws", text, "password"))
    eso.create(namespace, by_property("array", "db", "aws", array, "password"))

    assert failure(eso, namespace, "text").endswith(
        "PushSecret for aws secrets manager with a pushSecretData property requires a json secret"
    )
    # sjson cannot set a key in an array; ESO ignores its error and finds the document unchanged
    eso.wait_ready(namespace, PS, "array")
    assert aws_value(aws, array) == b'["a", "b"]'
    assert aws_versions(aws, array) == 1


def test_gcp_adds_a_version_only_when_the_property_changes(eso: EsoStack, namespace: str, gcp: Any) -> None:
    stores(eso, namespace)
    key = f"db-{namespace}"
    name = gcp_secret(gcp, key, b'{\n  "password": "same",\n  "port": 5432\n}')
    source(eso, namespace, "db", password="same", port="5432")
    eso.create(namespace, by_property("props", "db", "gcp", key, "password", "port"))
    eso.wait_ready(namespace, PS, "props")

    # the first push finds both properties as they are (5432 reads "5432"): no version
    assert gcp_versions(gcp, name) == 1
    # a property push labels the secret ESO's without asking whose it was
    assert gcp.get_secret(name=name).labels["managed-by"] == "external-secrets"

    update_source(eso, namespace, "db", password="changed")
    resync(eso, namespace, "props")
    assert gcp_versions(gcp, name) == 2  # exactly one: the port still reads the same
    assert gcp_value(gcp, key) == b'{\n  "password": "changed",\n  "port": 5432\n}'

    resync(eso, namespace, "props")
    assert gcp_versions(gcp, name) == 2


def test_gcp_reads_a_dotted_property_as_one_key_first(eso: EsoStack, namespace: str, gcp: Any) -> None:
    stores(eso, namespace)
    key = f"dotted-{namespace}"
    name = gcp_secret(gcp, key, b'{"db.password": "p"}')
    eso.core.create_namespaced_secret(namespace, {"metadata": {"name": "db"}, "stringData": {"pw": "p"}})
    body = push_secret("dotted", "db", "gcp", key)
    body["spec"]["data"] = [
        {"match": {"secretKey": "pw", "remoteRef": {"remoteKey": key, "property": "db.password"}}}
    ]
    eso.create(namespace, body)
    eso.wait_ready(namespace, PS, "dotted")
    assert gcp_versions(gcp, name) == 1  # getDataByProperty found the flat key "db.password"

    eso.core.patch_namespaced_secret("db", namespace, {"stringData": {"pw": "q"}})
    resync(eso, namespace, "dotted")
    # ...but sjson writes the dotted path: the flat key stays, a nested one is added
    assert gcp_value(gcp, key) == b'{"db.password": "p","db":{"password":"q"}}'


def test_gcp_returns_sjsons_error(eso: EsoStack, namespace: str, gcp: Any) -> None:
    stores(eso, namespace)
    key = f"array-{namespace}"
    name = gcp_secret(gcp, key, b'["a", "b"]')
    source(eso, namespace, "db", password="p")
    eso.create(namespace, by_property("array", "db", "gcp", key, "password"))
    message = failure(eso, namespace, "array")
    assert message.endswith("cannot set array element for non-numeric key 'password'")
    assert gcp_versions(gcp, name) == 1


def test_azure_pushes_the_bare_value_whatever_the_property(
    eso: EsoStack, namespace: str, azure: SecretClient
) -> None:
    stores(eso, namespace)
    key = f"prop-{namespace}"
    source(eso, namespace, "db", password="p")
    eso.create(namespace, by_property("azure", "db", "azure", key, "password"))
    ready = eso.wait_ready(namespace, PS, "azure")
    assert azure_value(azure, key) == "p"
    assert set(ready["status"]["syncedPushSecrets"]["SecretStore/azure"]) == {f"{key}/password"}


def test_gcp_always_adds_a_version_over_an_empty_payload(eso: EsoStack, namespace: str, gcp: Any) -> None:
    """protobuf hands ESO an empty payload as nil, and ``needUpdate(nil)`` is true: the same value again."""
    stores(eso, namespace)
    key = f"empty-{namespace}"
    source(eso, namespace, "db", password="")
    eso.create(namespace, push_secret("empty", "db", "gcp", key))
    eso.wait_ready(namespace, PS, "empty")
    name = f"projects/{PROJECT}/secrets/{key}"
    assert gcp_versions(gcp, name) == 1
    resync(eso, namespace, "empty")
    assert gcp_versions(gcp, name) == 2


def test_gcp_refuses_metadata_with_a_property_after_creating_the_secret(
    eso: EsoStack, namespace: str, gcp: Any
) -> None:
    """``newPushSecretBuilder`` refuses the pair only once ``PushSecret`` has created a missing secret."""
    stores(eso, namespace)
    key = f"meta-{namespace}"
    source(eso, namespace, "db", password="p")
    body = by_property("meta", "db", "gcp", key, "password")
    body["spec"]["data"][0]["metadata"] = {
        "apiVersion": "kubernetes.external-secrets.io/v1alpha1",
        "kind": "PushSecretMetadata",
        "spec": {"labels": {"team": "a"}},
    }
    eso.create(namespace, body)
    assert failure(eso, namespace, "meta").endswith("cannot specify metadata and property at the same time")
    name = f"projects/{PROJECT}/secrets/{key}"
    assert gcp.get_secret(name=name).labels["managed-by"] == "external-secrets"
    assert gcp_versions(gcp, name) == 0
