"""How ESO turns provider JSON into Secret bytes: Go's ``encoding/json`` and ESO's value rules.

The bytes ESO writes into a Secret (and so its data hash) depend on Go details
a Python ``json.dumps`` does not share, so they are reproduced here:

* the Vault client decodes with ``UseNumber``: a number keeps its literal text
  (``GoNumber``); ``dataFrom.extract`` re-decodes into ``float64``, so there a
  number prints as Go's ``strconv.FormatFloat(f, 'f', -1, 64)``;
* ``GetByteValue``: strings as they are, numbers as text, booleans as
  ``true``/``false``, ``null`` as empty, objects and arrays JSON-encoded;
* Go's ``json.Marshal``: compact, map keys sorted, ``<``, ``>``, ``&``,
  U+2028 and U+2029 escaped (``SetEscapeHTML(false)`` encoders keep the first three);
* ``property`` falls back to a gjson path (``a.b``, ``list.0``) when no key has
  that exact name.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any


class GoNumber(str):
    """A JSON number kept as its literal text, as Go's ``json.Number`` keeps it."""

    __slots__ = ()


class KeyNotFound(Exception):
    """``cannot find secret data for key: "<property>"`` (ESO's wording)."""

    def __init__(self, prop: str) -> None:
        super().__init__(f"cannot find secret data for key: {json.dumps(prop)}")


def loads_with_numbers(text: str | bytes) -> Any:
    """JSON with numbers as ``GoNumber`` (what the Vault client hands ESO)."""
    return json.loads(text, parse_int=GoNumber, parse_float=GoNumber)


def loads_float64(text: str | bytes) -> Any:
    """JSON with every number a float, as ``json.Unmarshal`` into ``map[string]any`` decodes it."""
    return json.loads(text, parse_int=float, parse_float=float)


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
_HTML = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}


def _string(text: str, escape_html: bool) -> str:
    out = ['"']
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif char < " ":
            out.append(f"\\u{ord(char):04x}")
        elif escape_html and char in _HTML:
            out.append(_HTML[char])
        elif char in "\u2028\u2029":
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def format_float_fixed(value: float) -> str:
    """``strconv.FormatFloat(value, 'f', -1, 64)``: the shortest digits, never an exponent."""
    if value == 0:
        return "0"
    text = format(Decimal(repr(value)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _float_json(value: float) -> str:
    """How ``json.Marshal`` writes a float64: fixed, or exponent form outside [1e-6, 1e21)."""
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"json: unsupported value: {value}")
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        text = repr(value)  # shortest digits with a two-digit exponent, as strconv's 'e' format
        mantissa, _, exponent = text.partition("e")
        if exponent.startswith("-0"):
            exponent = "-" + exponent[2:]  # Go cleans e-07 up to e-7
        return f"{mantissa}e{exponent}"
    return format_float_fixed(value)


def marshal(value: Any, *, escape_html: bool = True) -> str:
    """Go's ``json.Marshal`` of a decoded JSON value (``escape_html=False``: ESO's ``JSONMarshal``)."""
    if isinstance(value, Mapping):
        items = ",".join(
            f"{_string(str(key), escape_html)}:{marshal(value[key], escape_html=escape_html)}"
            for key in sorted(value)
        )
        return "{" + items + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(marshal(item, escape_html=escape_html) for item in value) + "]"
    return _scalar(value, escape_html)


def _scalar(value: Any, escape_html: bool) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, GoNumber):
        return str(value)
    if isinstance(value, str):
        return _string(value, escape_html)
    if isinstance(value, float):
        return _float_json(value)
    if isinstance(value, int):
        return str(value)
    raise TypeError(f"json: unsupported type: {type(value).__name__}")


def byte_value(value: Any) -> bytes:
    """``esutils.GetByteValue``."""
    if isinstance(value, GoNumber):
        return str(value).encode()
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if isinstance(value, float):
        return format_float_fixed(value).encode()
    if value is None:
        return b""
    if isinstance(value, Mapping | list):
        return marshal(value).encode()
    raise TypeError(f"secret type {type(value).__name__} is not supported")


def _path_parts(path: str) -> list[str]:
    parts, current, escaped = [], [], False
    for char in path:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ".":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def property_value(data: Mapping[str, Any], prop: str) -> bytes:
    """ESO's ``getSecretValue`` with a property: the exact key first, then a gjson path."""
    if prop in data:
        return byte_value(data[prop])
    node: Any = data
    for part in _path_parts(prop):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise KeyNotFound(prop)
    if node is None:
        return b""
    if isinstance(node, GoNumber | str | bool):
        return byte_value(node)
    return marshal(node).encode()
