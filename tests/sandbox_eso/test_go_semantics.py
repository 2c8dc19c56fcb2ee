"""ESO's Go-side computations, reproduced bit for bit: hashes, path building, value encoding."""

from __future__ import annotations

import hashlib

import pytest

from vaultflow.sandbox.eso import gohash
from vaultflow.sandbox.eso.gojson import (
    KeyNotFound,
    byte_value,
    format_float_fixed,
    loads_float64,
    loads_with_numbers,
    marshal,
    property_value,
)
from vaultflow.sandbox.eso.providers.vault import build_path


def test_data_hash_test_vector() -> None:
    assert gohash.format_byte_map({"password": b"abc"}) == "map[password:[97 98 99]]"
    assert gohash.data_hash({"password": b"abc"}) == hashlib.sha3_224(b"map[password:[97 98 99]]").hexdigest()


def test_data_hash_sorts_keys_and_prints_empty_values() -> None:
    printed = gohash.format_byte_map({"user": b"a", "empty": b"", "Zeta": b"\x00\xff"})
    assert printed == "map[Zeta:[0 255] empty:[] user:[97]]"
    assert gohash.format_byte_map({}) == "map[]"


def test_synced_resource_version_hashes_labels_and_annotations() -> None:
    metadata = {"generation": 3, "labels": {"b": "2", "a": "1"}, "annotations": {"force-sync": "123"}}
    printed = "{annotations:map[force-sync:123] labels:map[a:1 b:2]}"
    assert gohash.resource_version(metadata) == f"3-{hashlib.sha3_224(printed.encode()).hexdigest()}"
    bare = hashlib.sha3_224(b"{annotations:map[] labels:map[]}").hexdigest()
    assert gohash.resource_version({"generation": 1}) == f"1-{bare}"
    assert gohash.resource_version(metadata) != gohash.resource_version(
        {**metadata, "annotations": {"force-sync": "124"}}
    )


def test_owner_label_is_the_hash_of_namespace_and_name() -> None:
    assert gohash.owner_label("production", "db") == hashlib.sha3_224(b"production/db").hexdigest()


# ESO's buildPath documentation, case by case
@pytest.mark.parametrize(
    ("key", "mount", "version", "expected"),
    [
        ("prod/db", "secret", "v2", "secret/data/prod/db"),
        ("secret/prod/db", "secret", "v2", "secret/data/prod/db"),
        ("secret/data/prod/db", "secret", "v2", "secret/data/prod/db"),
        ("foo", "secret/path", "v2", "secret/path/data/foo"),
        ("secret/path/foo", "secret/path", "v2", "secret/path/data/foo"),
        ("secret/path/data/foo", "secret/path", "v2", "secret/path/data/foo"),
        ("foo", "secret/path", "v1", "secret/path/foo"),
        ("secret/path/foo", "secret/path", "v1", "secret/path/foo"),
        ("secret/path/foo", None, "v2", "secret/data/path/foo"),
        ("secret/path/data/foo", None, "v2", "secret/path/data/foo"),
        ("secret/path/foo", None, "v1", "secret/path/foo"),
    ],
)
def test_vault_path_building(key: str, mount: str | None, version: str, expected: str) -> None:
    assert build_path(key, mount, version) == expected


def test_byte_values_of_every_json_type() -> None:
    data = loads_with_numbers(
        '{"s": "x<y", "i": 42, "f": 1.50, "t": true, "n": null, "o": {"b": 1, "a": "<"}, "l": [1, "&"]}'
    )
    assert {k: byte_value(v) for k, v in data.items()} == {
        "s": b"x<y",  # strings as they are
        "i": b"42",  # numbers keep their literal text (json.Number)
        "f": b"1.50",
        "t": b"true",
        "n": b"",
        "o": b'{"a":"\\u003c","b":1}',  # objects: Go's json.Marshal, sorted keys, HTML escaped
        "l": b'[1,"\\u0026"]',
    }


def test_extract_decodes_numbers_as_float64() -> None:
    decoded = loads_float64('{"big": 1e21, "small": 0.0000001, "n": 5, "x": 1.50}')
    assert {k: byte_value(v) for k, v in decoded.items()} == {
        "big": b"1000000000000000000000",
        "small": b"0.0000001",
        "n": b"5",
        "x": b"1.5",
    }
    assert marshal({"v": 1e21, "w": 1.5e-7}) == '{"v":1e+21,"w":1.5e-7}'
    assert format_float_fixed(123.0) == "123"


def test_property_falls_back_to_a_gjson_path() -> None:
    data = loads_with_numbers('{"a.b": "literal", "a": {"b": "nested", "c": [10, {"d": true}]}}')
    assert property_value(data, "a.b") == b"literal"  # an exact key wins
    assert property_value(data, "a.c.1.d") == b"true"
    assert property_value(data, "a.c") == b'[10,{"d":true}]'
    with pytest.raises(KeyNotFound, match=r'cannot find secret data for key: "a\.missing"'):
        property_value(data, "a.missing")
