"""A small, fast, deterministic YAML emitter for Kubernetes manifests.

PyYAML's representer is pure Python and dominated the time of rendering large
catalogs (30,000 manifests: most of the render). Manifests are simple data
(mappings, lists, strings, numbers, booleans), so this emitter writes block
YAML directly. Strings are written plain only when they are unambiguous to
every YAML 1.1 and 1.2 reader (Go's yaml included, which reads ``y``/``n`` as
booleans); anything else is double-quoted, JSON-style, which YAML reads back
exactly. Floats are spelled so that YAML 1.1 (PyYAML) and 1.2 readers both
resolve them as floats: JSON's ``1e+20``, ``Infinity`` and ``NaN`` are strings
to PyYAML. The round trip ``safe_load(emit(x)) == x`` is property-tested
(strings, floats with NaN and infinities, nested data).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

_PLAIN = re.compile(r"[A-Za-z_/][A-Za-z0-9_./:@+=-]*")
# Words some YAML reader resolves to a boolean or null instead of a string.
_RESERVED = frozenset(["y", "n", "yes", "no", "true", "false", "on", "off", "null", "~"])


# Characters YAML does not allow raw (or folds as line breaks) inside a quoted scalar;
# json.dumps has already escaped the C0 controls, quotes and backslashes.
_NOT_PRINTABLE = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff\ufffe\uffff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02X}" if code < 0x100 else f"\\u{code:04X}"


def emit_yaml(document: dict[str, Any]) -> str:
    """Block-style YAML of ``document``, keys in insertion order."""
    lines: list[str] = []
    _mapping(document, 0, lines)
    return "\n".join(lines) + "\n" if lines else "{}\n"


def scalar(value: Any) -> str:
    """One scalar (or an empty mapping or list) as YAML flow text."""
    if isinstance(value, str):
        if _PLAIN.fullmatch(value) and not value.endswith(":") and value.lower() not in _RESERVED:
            return value
        return _NOT_PRINTABLE.sub(_escape, json.dumps(value, ensure_ascii=False))
    if isinstance(value, float):
        return _float(value)
    if value is None or isinstance(value, bool | int) or value in ({}, []):
        return json.dumps(value)  # null, true, false, integers, {} and [] are spelled alike in JSON
    raise TypeError(f"cannot emit {type(value).__name__} as YAML")


def _float(value: float) -> str:
    """A float as YAML 1.1's float pattern wants it: a dot in the mantissa, a signed exponent.

    ``repr`` is the shortest text that reads back as the same double and always
    signs its exponent; ``1e+20`` only lacks the dot PyYAML's resolver requires.
    """
    if math.isnan(value):
        return ".nan"
    if math.isinf(value):
        return ".inf" if value > 0 else "-.inf"
    text = repr(value)
    mantissa, exponent_mark, exponent = text.partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    return f"{mantissa}{exponent_mark}{exponent}"


def _mapping(mapping: dict[str, Any], indent: int, lines: list[str]) -> None:
    pad = " " * indent
    for key, value in mapping.items():
        if isinstance(value, dict) and value:
            lines.append(f"{pad}{scalar(key)}:")
            _mapping(value, indent + 2, lines)
        elif isinstance(value, list) and value:
            lines.append(f"{pad}{scalar(key)}:")
            _sequence(value, indent, lines)
        else:
            lines.append(f"{pad}{scalar(key)}: {scalar(value)}")


def _sequence(items: list[Any], indent: int, lines: list[str]) -> None:
    pad = " " * indent
    for item in items:
        if isinstance(item, dict | list) and item:
            nested: list[str] = []
            if isinstance(item, dict):
                _mapping(item, indent + 2, nested)
            else:
                _sequence(item, indent + 2, nested)
            nested[0] = f"{pad}- {nested[0][indent + 2 :]}"
            lines.extend(nested)
        else:
            lines.append(f"{pad}- {scalar(item)}")
