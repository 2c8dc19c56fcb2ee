"""The Kubernetes protobuf envelope, decoded far enough for the bodies ``kubectl`` sends as protobuf.

Typed clients (``kubectl auth can-i`` among them) encode built-in kinds as
``application/vnd.kubernetes.protobuf``: the 4-byte magic ``k8s\\0`` and a
``runtime.Unknown`` (``apimachinery/pkg/runtime/generated.proto``: typeMeta = 1
with apiVersion = 1 and kind = 2, raw = 2) whose ``raw`` is the object in the
proto3 wire format of ``k8s.io/api/<group>/<version>/generated.proto``. Only
the fields listed in ``SCHEMAS`` are read; answers are always JSON, which
those clients accept too.
"""

from __future__ import annotations

from typing import Any

from vaultflow.sandbox.kube import errors

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"

# A message schema: field number -> (JSON name, sub-schema for a message, or None for a string).
Schema = dict[int, tuple[str, "Schema | None"]]

_RESOURCE_ATTRIBUTES: Schema = {
    1: ("namespace", None),
    2: ("verb", None),
    3: ("group", None),
    4: ("version", None),
    5: ("resource", None),
    6: ("subresource", None),
    7: ("name", None),
}
_NON_RESOURCE_ATTRIBUTES: Schema = {1: ("path", None), 2: ("verb", None)}
# k8s.io/api/authorization/v1/generated.proto
SCHEMAS: dict[tuple[str, str], Schema] = {
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): {
        2: (
            "spec",
            {
                1: ("resourceAttributes", _RESOURCE_ATTRIBUTES),
                2: ("nonResourceAttributes", _NON_RESOURCE_ATTRIBUTES),
            },
        ),
    },
}


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if position >= len(data):
            raise ValueError("truncated varint")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7


def _fields(data: bytes) -> list[tuple[int, bytes | int]]:
    """(field number, value) of a message: length-delimited fields as bytes, varints as ints."""
    fields: list[tuple[int, bytes | int]] = []
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, position = _varint(data, position)
            fields.append((number, value))
        elif wire_type == 2:
            length, position = _varint(data, position)
            if position + length > len(data):
                raise ValueError("truncated field")
            fields.append((number, data[position : position + length]))
            position += length
        elif wire_type in (1, 5):
            position += 8 if wire_type == 1 else 4
        else:
            raise ValueError(f"unsupported wire type {wire_type}")
    return fields


def _message(data: bytes, schema: Schema) -> dict[str, Any]:
    decoded: dict[str, Any] = {}
    for number, value in _fields(data):
        if number not in schema or not isinstance(value, bytes):
            continue
        name, sub_schema = schema[number]
        decoded[name] = value.decode() if sub_schema is None else _message(value, sub_schema)
    return decoded


def decode(body: bytes) -> dict[str, Any]:
    """The JSON form of a protobuf-encoded object of a kind in ``SCHEMAS`` (400 otherwise)."""
    try:
        if not body.startswith(MAGIC):
            raise ValueError("no k8s protobuf magic")
        unknown = dict(_fields(body[len(MAGIC) :]))
        type_meta = unknown.get(1, b"")
        raw = unknown.get(2, b"")
        if not isinstance(type_meta, bytes) or not isinstance(raw, bytes):
            raise ValueError("malformed envelope")
        meta = _message(type_meta, {1: ("apiVersion", None), 2: ("kind", None)})
        schema = SCHEMAS.get((meta.get("apiVersion", ""), meta.get("kind", "")))
        if schema is None:
            raise ValueError(f"{meta.get('kind')} is not decoded from protobuf by the vaultflow sandbox")
        return {**meta, **_message(raw, schema)}
    except (ValueError, UnicodeDecodeError) as error:
        raise errors.bad_request(f"the protobuf body cannot be decoded: {error}") from None
