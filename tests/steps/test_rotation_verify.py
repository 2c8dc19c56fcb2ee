"""The verify step's pure parts: ESO's Secret data and data-hash, and one look at a target."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

import pytest

from vaultflow.sandbox.eso import gohash
from vaultflow.steps.rotation.discover import ConsumingExternalSecret, KeyMapping
from vaultflow.steps.rotation.verify import (
    DATA_HASH,
    KubeTarget,
    eso_data_hash,
    expected_data,
    go_byte_map,
    observe_target,
    verify_kubernetes_targets,
)

WRITTEN = datetime(2026, 12, 1, 3, 0, 0, tzinfo=UTC)


def consumer(**overrides: object) -> ConsumingExternalSecret:
    fields: dict[str, object] = {
        "cluster": "one",
        "namespace": "apps",
        "name": "db",
        "secret_name": "db",
        "source": "catalog",
        "creation_policy": "Owner",
        "immutable": False,
        "templated": False,
        "extract": True,
        "keys": [],
        "converted": False,
        "reads_other_paths": False,
    }
    return ConsumingExternalSecret.model_validate({**fields, **overrides})


def test_go_renders_a_byte_map_with_sorted_keys_and_decimal_bytes() -> None:
    assert go_byte_map({"k2": b"\x04\x05", "k1": b"\x01\x02\x03"}) == "map[k1:[1 2 3] k2:[4 5]]"
    assert go_byte_map({"empty": b""}) == "map[empty:[]]"
    assert go_byte_map({}) == "map[]"
    assert eso_data_hash({}) == hashlib.sha3_224(b"map[]").hexdigest()


@pytest.mark.parametrize(
    "data", [{}, {"a": b"x"}, {"password": b"p@ss", "username": b"app", "z": b"\x00\xff"}]
)
def test_the_hash_agrees_with_the_eso_emulator(data: dict[str, bytes]) -> None:
    """Two implementations written apart (the product's and the emulator's) must agree."""
    assert eso_data_hash(data) == gohash.data_hash(data)


def test_expected_data_is_what_eso_writes() -> None:
    vault = {"username": "app", "port": 5432, "tags": ["a", "b"], "nested": {"k": True}}
    assert expected_data(consumer(), vault) == {
        "username": b"app",
        "port": b"5432",
        "tags": b'["a","b"]',
        "nested": b'{"k":true}',
    }
    one_key = consumer(extract=False, keys=[KeyMapping(secret_key="DB_USER", property="username")])
    assert expected_data(one_key, vault) == {"DB_USER": b"app"}


def observed(
    secret_data: dict[str, bytes], annotations: dict[str, str], **overrides: object
) -> tuple[bool, str]:
    target = consumer(**overrides)
    external_secret = {
        "status": {
            "refreshTime": "2026-12-01T03:00:01Z",
            "conditions": [{"type": "Ready", "status": "True", "reason": "SecretSynced"}],
        }
    }
    secret = {
        "metadata": {"annotations": annotations},
        "data": {k: base64.b64encode(v).decode() for k, v in secret_data.items()},
    }
    seen = observe_target(
        target,
        external_secret=external_secret,
        secret=secret,
        expected={"password": b"new"},
        written_at=WRITTEN,
        hash_before="before",
    )
    return seen.verified, seen.message


def test_a_target_holding_the_new_value_with_esos_hash_is_verified() -> None:
    assert observed({"password": b"new"}, {DATA_HASH: eso_data_hash({"password": b"new"})}) == (
        True,
        "holds the new version",
    )


def test_the_old_value_or_a_stale_hash_is_not_verified() -> None:
    assert observed({"password": b"old"}, {})[0] is False
    verified, message = observed({"password": b"new"}, {DATA_HASH: "stale"})
    assert not verified and "data-hash does not match" in message
    # A Merge target shares its Secret: only its keys count, the hash covers keys of others.
    assert observed({"password": b"new", "other": b"x"}, {DATA_HASH: "whatever"}, creation_policy="Merge")[0]


def test_a_templated_target_is_verified_by_a_changed_hash() -> None:
    assert observed({"dsn": b"..."}, {DATA_HASH: "after"}, templated=True) == (
        True,
        "Ready, refreshed after the write, content changed (indirect)",
    )
    assert observed({"dsn": b"..."}, {DATA_HASH: "before"}, templated=True)[0] is False


def test_an_immutable_target_with_the_old_value_fails_at_once() -> None:
    target = consumer(immutable=True)
    seen = observe_target(
        target,
        external_secret={
            "status": {
                "refreshTime": "2026-12-01T03:00:05Z",
                "conditions": [{"type": "Ready", "status": "True"}],
            }
        },
        secret={"metadata": {}, "data": {"password": base64.b64encode(b"old").decode()}},
        expected={"password": b"new"},
        written_at=WRITTEN,
        hash_before=None,
    )
    assert (seen.verified, seen.failed) == (False, True) and "immutable" in seen.message


def test_a_cluster_that_cannot_be_listed_times_out_named_with_the_cause() -> None:
    """An API failure during a round (a cluster down, a 403) is what the target last saw, not a crash."""
    import socket

    from kubernetes import client

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{port}"
    configuration.retries = 0
    with client.ApiClient(configuration) as api:
        [result] = verify_kubernetes_targets(
            {"one": api}, [KubeTarget(consumer(), {"password": b"new"}, None, WRITTEN)], timeout=1
        )
    assert result.phase == "TimedOut"
    # The ExternalSecrets are listed first (across namespaces, by label when they have the rendered one,
    # else their namespace); their Secrets only once one has refreshed.
    assert "list ExternalSecrets in namespace apps" in result.message and "cluster one" in result.message
