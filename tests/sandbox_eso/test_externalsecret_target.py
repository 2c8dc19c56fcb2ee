"""What an ExternalSecret makes of its target Secret and of the provider's keys and values, as ESO does.

Upstream: ``pkg/controllers/externalsecret/externalsecret_controller.go`` (``mutationFunc``: an
existing Secret of an ``immutable`` target is left alone; ``getManagedDataKeys``),
``externalsecret_controller_template.go`` (``setMetadata``: labels and annotations the field
manager owns are removed before the ExternalSecret's are copied), ``externalsecret_controller_secret.go``
(``handleExtractSecrets``: convert keys, validate them, decode), ``runtime/esutils/utils.go``
(``ConvertKeys``, ``ValidateKeys``), ``runtime/decoding/decoding.go`` (Go's ``encoding/base64``).
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.sandbox_eso.conftest import EsoStack, external_secret
from vaultflow.sandbox.eso import transform
from vaultflow.sandbox.eso.gohash import resource_version
from vaultflow.sandbox.eso.kube import FieldOwners
from vaultflow.sandbox.observe import wait_for

ES = "ExternalSecret"


def write(eso: EsoStack, path: str, **values: object) -> None:
    eso.vault.secrets.kv.v2.create_or_update_secret(path, secret=values, mount_point="secret")


def refreshed(eso: EsoStack, namespace: str, name: str) -> dict[str, Any] | None:
    """The ExternalSecret once its status records a sync of its current labels and annotations."""
    es = eso.get(namespace, ES, name)
    return (
        es
        if (es.get("status") or {}).get("syncedResourceVersion") == resource_version(es["metadata"])
        else None
    )


def patch_es(eso: EsoStack, namespace: str, name: str, body: dict[str, Any]) -> None:
    eso.custom.patch_namespaced_custom_object(
        "external-secrets.io", "v1", namespace, "externalsecrets", name, body
    )


def test_an_existing_immutable_target_is_left_alone_and_reported_synced(
    eso: EsoStack, namespace: str, vault_path: str
) -> None:
    write(eso, vault_path, password="first")
    eso.create(
        namespace,
        external_secret("frozen", target={"immutable": True}, dataFrom=[{"extract": {"key": vault_path}}]),
    )
    eso.wait_ready(namespace, ES, "frozen")
    assert eso.core.read_namespaced_secret("frozen", namespace).immutable is True

    write(eso, vault_path, password="rotated")
    eso.force_sync(namespace, ES, "frozen")
    es = wait_for(lambda: refreshed(eso, namespace, "frozen"), what="the refresh")
    ready = next(c for c in es["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == ("True", "SecretSynced", "secret synced")
    assert eso.secret_data(namespace, "frozen") == {"password": b"first"}  # ESO does not touch it
    assert not [e for e in eso.events(namespace, "frozen") if e.reason == "UpdateFailed"]


def test_labels_and_annotations_it_no_longer_has_are_removed_others_kept(
    eso: EsoStack, namespace: str, vault_path: str
) -> None:
    write(eso, vault_path, password="x")
    body = external_secret("labelled", dataFrom=[{"extract": {"key": vault_path}}])
    body["metadata"].update(labels={"team": "a", "tier": "gold"}, annotations={"note": "from-es"})
    eso.create(namespace, body)
    eso.wait_ready(namespace, ES, "labelled")
    eso.core.patch_namespaced_secret(
        "labelled",
        namespace,
        {"metadata": {"labels": {"added-by": "someone"}, "annotations": {"theirs": "1"}}},
    )

    patch_es(
        eso, namespace, "labelled", {"metadata": {"labels": {"tier": None}, "annotations": {"note": None}}}
    )
    wait_for(lambda: refreshed(eso, namespace, "labelled"), what="the refresh")
    metadata = eso.core.read_namespaced_secret("labelled", namespace).metadata
    assert "tier" not in metadata.labels and "note" not in (metadata.annotations or {})
    assert metadata.labels["team"] == "a"
    assert metadata.labels["added-by"] == "someone" and metadata.annotations["theirs"] == "1"  # not ESO's
    assert metadata.labels["reconcile.external-secrets.io/managed"] == "true"


def test_merge_removes_the_keys_it_wrote_earlier_and_keeps_the_others(
    eso: EsoStack, namespace: str, vault_path: str
) -> None:
    eso.core.create_namespaced_secret(
        namespace, {"metadata": {"name": "shared"}, "stringData": {"own": "mine"}}
    )
    write(eso, vault_path, a="1", b="2")
    eso.create(
        namespace,
        external_secret(
            "merger",
            target={"name": "shared", "creationPolicy": "Merge"},
            dataFrom=[{"extract": {"key": vault_path}}],
        ),
    )
    wait_for(
        lambda: eso.secret_data(namespace, "shared") == {"own": b"mine", "a": b"1", "b": b"2"}, what="merge"
    )

    write(eso, vault_path, a="1")
    eso.force_sync(namespace, ES, "merger")
    wait_for(lambda: refreshed(eso, namespace, "merger"), what="the refresh")
    assert eso.secret_data(namespace, "shared") == {"own": b"mine", "a": b"1"}


def test_extract_keys_are_converted_and_empty_keys_dropped(
    eso: EsoStack, namespace: str, vault_path: str
) -> None:
    eso.vault.secrets.kv.v2.create_or_update_secret(
        vault_path, secret={"db/pass word": "x", "": "gone", "ok-key.1": "y"}, mount_point="secret"
    )
    eso.create(namespace, external_secret("converted", dataFrom=[{"extract": {"key": vault_path}}]))
    eso.wait_ready(namespace, ES, "converted")
    assert eso.secret_data(namespace, "converted") == {"db_pass_word": b"x", "ok-key.1": b"y"}

    eso.create(
        namespace,
        external_secret(
            "unicode",
            dataFrom=[{"extract": {"key": vault_path, "conversionStrategy": "Unicode"}}],
        ),
    )
    eso.wait_ready(namespace, ES, "unicode")
    assert eso.secret_data(namespace, "unicode") == {"db_U002f_pass_U0020_word": b"x", "ok-key.1": b"y"}


def test_keys_that_convert_to_the_same_key_are_an_error(
    eso: EsoStack, namespace: str, vault_path: str
) -> None:
    eso.vault.secrets.kv.v2.create_or_update_secret(
        vault_path, secret={"a/b": "1", "a b": "2"}, mount_point="secret"
    )
    eso.create(namespace, external_secret("collides", dataFrom=[{"extract": {"key": vault_path}}]))
    wait_for(lambda: eso.condition(namespace, ES, "collides").get("status") == "False", what="the error")
    assert (
        "error processing spec.dataFrom[0].extract, err: error applying conversion strategy Default to keys: "
        "secret name collision during conversion: a_b"
    ) in [e.message for e in eso.events(namespace, "collides")]


def test_decoding_strategies_decode_as_go_does(eso: EsoStack, namespace: str, vault_path: str) -> None:
    write(eso, vault_path, wrapped="cGFz\r\nc3dv\ncmQ=", std="cGFzc3dvcmQ=", url="-_8=", plain="not base64!")

    def entry(secret_key: str, prop: str, strategy: str) -> dict[str, Any]:
        return {
            "secretKey": secret_key,
            "remoteRef": {"key": vault_path, "property": prop, "decodingStrategy": strategy},
        }

    eso.create(
        namespace,
        external_secret(
            "decoded",
            data=[
                entry("wrapped", "wrapped", "Base64"),
                entry("auto-std", "std", "Auto"),
                entry("auto-url", "url", "Auto"),
                entry("auto-plain", "plain", "Auto"),
            ],
        ),
    )
    eso.wait_ready(namespace, ES, "decoded")
    assert eso.secret_data(namespace, "decoded") == {
        "wrapped": b"password",  # \r and \n are skipped
        "auto-std": b"password",
        "auto-url": b"\xfb\xff",  # not Base64, but Base64URL
        "auto-plain": b"not base64!",  # neither: kept
    }


def test_base64url_needs_its_padding(eso: EsoStack, namespace: str, vault_path: str) -> None:
    write(eso, vault_path, unpadded="cGFzc3dvcmQ")
    eso.create(
        namespace,
        external_secret(
            "unpadded",
            data=[
                {
                    "secretKey": "v",
                    "remoteRef": {"key": vault_path, "property": "unpadded", "decodingStrategy": "Base64URL"},
                }
            ],
        ),
    )
    wait_for(lambda: eso.condition(namespace, ES, "unpadded").get("status") == "False", what="the error")
    assert (
        f"error processing spec.data[0] (key: {vault_path}), err: error applying decoding strategy Base64URL "
        "to data: illegal base64 data at input byte 8"
    ) in [e.message for e in eso.events(namespace, "unpadded")]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("YQ=", "illegal base64 data at input byte 3"),  # "==" expected
        ("abc", "illegal base64 data at input byte 0"),  # not a whole quantum
        ("Y===", "illegal base64 data at input byte 1"),  # padding too early
        ("YQ==x", "illegal base64 data at input byte 4"),  # data after the padding
        ("a$bc", "illegal base64 data at input byte 1"),
    ],
)
def test_go_base64_errors_name_the_byte(text: str, error: str) -> None:
    with pytest.raises(transform.DecodeError, match=f"^{error}$"):
        transform.go_base64_decode(text.encode())


def test_go_base64_agrees_with_python_on_valid_input() -> None:
    for size in range(40):
        value = bytes(range(256))[size : size * 2 + 3]
        assert transform.go_base64_decode(base64.b64encode(value)) == value
        assert transform.go_base64_decode(base64.urlsafe_b64encode(value), url=True) == value


def test_field_ownership_follows_the_api_servers_update_rules() -> None:
    """structured-merge-diff ``Updater.Update``: a writer owns what it adds or changes; others lose it."""
    owners = FieldOwners()

    def secret(labels: dict[str, str], data: dict[str, str]) -> dict[str, Any]:
        return {"metadata": {"uid": "u1", "labels": labels}, "data": data}

    created = secret({"a": "1"}, {"k": "djE="})
    with owners.writing("eso"):
        owners.observe(None, created)
    assert owners.owned("u1", "eso") == {("labels", "a"), ("data", "k")}

    relabelled = secret({"a": "2", "b": "x"}, {"k": "djE="})  # someone else changes a and adds b
    owners.observe(created, relabelled)
    assert owners.owned("u1", "eso") == {("data", "k")}

    with owners.writing("eso"):
        owners.observe(relabelled, secret({"a": "2", "b": "x"}, {"k": "djE=", "n": "bg=="}))  # a, b unchanged
    assert owners.owned("u1", "eso") == {("data", "k"), ("data", "n")}

    owners.observe(relabelled, None)
    assert owners.owned("u1", "eso") == set()
