"""sjson's ``SetBytes`` and gjson's ``Get``, as ESO's PushSecret ``remoteRef.property`` uses them.

ESO merges a pushed value into the remote secret's JSON with
``sjson.SetBytes(document, property, value)`` (tidwall/sjson v1.2.5, ``sjson.go``:
``set``, ``appendRawPaths``, ``appendBuild``, ``appendStringify``), which edits the
text rather than re-encoding it. Re-encoding (``json.dumps``) would change a
formatted document on every push, and so add a version ESO does not add. What
sjson does, reproduced here on the bytes:

* an existing key: only its value is replaced; key order, whitespace and
  every other key are kept byte for byte;
* a missing key is appended before the object's last ``}`` as ``,"key":value``
  (no comma in an empty object) without whitespace; what stood before the first
  ``{`` and after the last ``}`` is dropped;
* a dotted path (``db.password``) walks into existing values; missing levels
  are built (``{"password":...}``; a numeric part builds an array padded with
  ``null``); a scalar on the way is replaced by a new object; on an array a
  numeric part indexes (past the end it pads with ``null``), ``-1`` appends,
  any other part is sjson's error ``cannot set array element for non-numeric
  key 'x'``; ``\\`` escapes a dot, a leading ``:`` makes a part an object key;
* a document that is blank or not an object or array (a JSON string, a number,
  plain text) becomes a new object (an array when the first part is numeric);
* the value is a JSON string: quoted as it is when plain ASCII without ``"``
  or ``\\`` (so ``<`` stays), else Go's ``json.Marshal`` (HTML characters
  escaped, invalid UTF-8 as ``\\ufffd``).

``get`` is gjson v1.18.0's ``Get(document, path).String()`` (``gjson.go``: key
lookup, ``unescape``, ``Result.String``), which ESO's GCP provider uses to decide
whether a push changes the property. ``valid`` is ``gjson.Valid``, which agrees
with Go's ``json.Valid`` (neither checks UTF-8).

Not emulated (``NotEmulated``): gjson path syntax beyond keys and indexes
(``|``, ``#``, ``@``, ``*``, ``?`` anywhere, a part starting with ``[``, ``{``
or ``!``), and setting into text that is not JSON but holds ``{`` or ``[`` (what
sjson makes of it depends on its scanner). A JSON string value that holds
``{`` is a scalar here, where gjson's scanner could look inside it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from vaultflow.sandbox.eso.gojson import format_float_fixed, marshal

_WS = frozenset(b" \t\n\r")
_NUMBER = re.compile(rb"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_INTEGER = re.compile(rb"-?[0-9]*")
_HEX = frozenset(b"0123456789abcdefABCDEF")
_ESCAPES = {
    ord("\\"): b"\\",
    ord("/"): b"/",
    ord('"'): b'"',
    ord("b"): b"\b",
    ord("f"): b"\f",
    ord("n"): b"\n",
    ord("r"): b"\r",
    ord("t"): b"\t",
}
_COMPLEX = frozenset("|#@*?")
_MAX_INDEX = 100_000  # sjson pads an array with one null per missing index; Go would allocate them all


class SjsonError(Exception):
    """An error sjson returns (the message is sjson's); ESO's AWS provider drops it, GCP returns it."""


class NotEmulated(Exception):
    """A path or document whose handling by sjson/gjson the sandbox does not reproduce."""


class _Invalid(Exception):
    pass


@dataclass(frozen=True)
class _Part:
    """One part of a path: the key with escapes removed, whether it had any, sjson's ``:`` force."""

    text: bytes
    escaped: bool = False
    force: bool = False

    def index(self) -> int | None:
        """sjson's ``atoui``: the part as an array index (an empty part is 0), unless forced."""
        if self.force or (self.text and not self.text.isdigit()):
            return None
        return int(self.text or b"0")


# ---------------------------------------------------------------- paths


def _split(path: str) -> list[str]:
    """The raw parts of a path, split at the dots no ``\\`` escapes (sjson's and gjson's path parsers)."""
    if path.startswith("..") or any(char in _COMPLEX for char in path):
        raise NotEmulated(f"property {path!r}: gjson path syntax beyond keys and indexes is not emulated")
    parts, current, escaped = [], [], False
    for char in path:
        current.append(char)
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ".":
            current.pop()
            parts.append("".join(current))
            current = []
    parts.append("".join(current))
    if any(part[:1] in ("[", "{", "!") for part in parts):  # gjson's sub-selectors, pipes and literals
        raise NotEmulated(f"property {path!r}: gjson path syntax beyond keys and indexes is not emulated")
    return parts


def _part(raw: str, *, sjson: bool) -> _Part:
    force = sjson and raw.startswith(":")
    if force:
        raw = raw[1:]
    text, escaped, pending = [], "\\" in raw, False
    for char in raw:
        if pending or char != "\\":
            text.append(char)
            pending = False
        else:
            pending = True  # a trailing lone backslash is dropped, as both parsers drop it
    return _Part("".join(text).encode(), escaped, force)


def _parts(path: str, *, sjson: bool) -> list[_Part]:
    return [_part(raw, sjson=sjson) for raw in _split(path)]


# ---------------------------------------------------------------- scanning (valid JSON)


def _skip(doc: bytes, i: int) -> int:
    while i < len(doc) and doc[i] in _WS:
        i += 1
    return i


def _string_end(doc: bytes, i: int) -> int:
    """The index after the string that opens at ``doc[i]``."""
    i += 1
    while i < len(doc):
        char = doc[i]
        if char < 0x20:
            raise _Invalid
        if char == 0x22:
            return i + 1
        if char == 0x5C:
            i += 1
            if i >= len(doc):
                raise _Invalid
            if doc[i] == ord("u"):
                if not all(c in _HEX for c in doc[i + 1 : i + 5]) or i + 5 > len(doc):
                    raise _Invalid
                i += 4
            elif doc[i] not in _ESCAPES:
                raise _Invalid
        i += 1
    raise _Invalid


def _value_end(doc: bytes, i: int) -> int:
    """The index after the JSON value that starts at ``doc[i]``; ``_Invalid`` if it is not one."""
    if i >= len(doc):
        raise _Invalid
    char = doc[i]
    if char in b"{[":
        return _container_end(doc, i)
    if char == 0x22:
        return _string_end(doc, i)
    for literal in (b"true", b"false", b"null"):
        if doc.startswith(literal, i):
            return i + len(literal)
    number = _NUMBER.match(doc, i)
    if number is None:
        raise _Invalid
    return number.end()


def _container_end(doc: bytes, i: int) -> int:
    """``_members`` stops at the closing bracket, which follows the last member (or the opening one)."""
    end = i + 1
    for _key, _start, value_end in _members(doc, i):
        end = value_end
    return _skip(doc, end) + 1


def _members(doc: bytes, i: int) -> Iterator[tuple[bytes | None, int, int]]:
    """Each member of the object or array at ``doc[i]``: its raw key (objects), value start and end."""
    is_object = doc[i] == ord("{")
    close = ord("}") if is_object else ord("]")
    j = _skip(doc, i + 1)
    if j < len(doc) and doc[j] == close:
        return
    while True:
        key = None
        if is_object:
            if j >= len(doc) or doc[j] != 0x22:
                raise _Invalid
            key_end = _string_end(doc, j)
            key = doc[j + 1 : key_end - 1]
            j = _skip(doc, key_end)
            if j >= len(doc) or doc[j] != ord(":"):
                raise _Invalid
            j = _skip(doc, j + 1)
        end = _value_end(doc, j)
        yield key, j, end
        j = _skip(doc, end)
        if j < len(doc) and doc[j] == close:
            return
        if j >= len(doc) or doc[j] != ord(","):
            raise _Invalid
        j = _skip(doc, j + 1)


def valid(document: bytes) -> bool:
    """``gjson.Valid`` (and Go's ``json.Valid``): one JSON value, whitespace around it."""
    try:
        start = _skip(document, 0)
        return _skip(document, _value_end(document, start)) == len(document)
    except _Invalid:
        return False
    except RecursionError:
        raise NotEmulated("a JSON document nested deeper than the sandbox's parser goes") from None


# ---------------------------------------------------------------- gjson


def _unescape(raw: bytes) -> bytes:
    """gjson's ``unescape``: JSON escapes decoded; a bad surrogate becomes U+FFFD; stops at a bad escape."""
    out, i = bytearray(), 0
    while i < len(raw) and raw[i] >= 0x20:
        if raw[i] != 0x5C:
            out.append(raw[i])
            i += 1
            continue
        i += 1
        if i < len(raw) and raw[i] in _ESCAPES:
            out += _ESCAPES[raw[i]]
            i += 1
            continue
        if i >= len(raw) or raw[i] != ord("u") or i + 5 > len(raw):
            break
        rune, i = _hex4(raw[i + 1 : i + 5]), i + 5
        if 0xD800 <= rune < 0xE000 and raw[i : i + 2] == b"\\u" and len(raw) - i >= 6:
            low, i = _hex4(raw[i + 2 : i + 6]), i + 6
            pair = rune < 0xDC00 and 0xDC00 <= low < 0xE000
            rune = 0x10000 + ((rune - 0xD800) << 10) + (low - 0xDC00) if pair else 0xFFFD
        out += chr(0xFFFD if 0xD800 <= rune < 0xE000 else rune).encode()
    return bytes(out)


def _hex4(digits: bytes) -> int:
    """``strconv.ParseUint(s, 16, 64)`` with its error ignored, as gjson's ``runeit``."""
    return int(digits, 16) if digits and all(c in _HEX for c in digits) else 0


def _key(raw: bytes) -> bytes:
    return _unescape(raw) if b"\\" in raw else raw


def _find(doc: bytes, start: int, parts: Sequence[_Part]) -> tuple[int, int] | None:
    """Where gjson finds ``parts`` in the value at ``doc[start]``: the value's start and end."""
    if start >= len(doc) or doc[start] not in b"{[":
        return None
    return (_find_in_array if doc[start] == ord("[") else _find_in_object)(doc, start, parts)


def _find_in_array(doc: bytes, start: int, parts: Sequence[_Part]) -> tuple[int, int] | None:
    part, rest = parts[0], parts[1:]
    if part.escaped or not part.text.isdigit():
        return None  # gjson's array paths know no escapes: only plain digits index
    wanted = int(part.text)
    for index, (_key_raw, value_start, value_end) in enumerate(_members(doc, start)):
        if index == wanted:
            return _find(doc, value_start, rest) if rest else (value_start, value_end)
    return None


def _find_in_object(doc: bytes, start: int, parts: Sequence[_Part]) -> tuple[int, int] | None:
    part, rest = parts[0], parts[1:]
    for key_raw, value_start, value_end in _members(doc, start):
        if key_raw is None or _key(key_raw) != part.text:
            continue
        if not rest:
            return value_start, value_end
        found = _find(doc, value_start, rest)
        if found is not None:
            return found  # otherwise gjson goes on to the next key of the same name
    return None


_LITERALS = {b"true": b"true", b"false": b"false", b"null": b""}


def _result_string(raw: bytes) -> bytes:
    """gjson's ``Result.String`` of a found value: strings unescaped, objects and arrays raw, null empty."""
    first = raw[:1]
    if first == b'"':
        return _key(raw[1:-1])
    if first in (b"{", b"["):
        return raw
    if raw in _LITERALS:
        return _LITERALS[raw]
    return raw if _INTEGER.fullmatch(raw) else _float_string(float(raw))


def _float_string(number: float) -> bytes:
    """``strconv.FormatFloat(f, 'f', -1, 64)``, also for what ``ParseFloat`` overflows to and ``-0``."""
    if number in (float("inf"), float("-inf")):
        return b"+Inf" if number > 0 else b"-Inf"
    if number == 0 and str(number).startswith("-"):
        return b"-0"
    return format_float_fixed(number).encode()


def get(document: bytes, path: str) -> bytes | None:
    """``gjson.Get(document, path)``: its ``String()``, or None when it does not ``Exists()``."""
    parts = _parts(path, sjson=False)
    if not valid(document):
        raise NotEmulated("gjson on a document that is not JSON")
    found = _find(document, _skip(document, 0), parts)
    return None if found is None else _result_string(document[found[0] : found[1]])


# ---------------------------------------------------------------- sjson


def _stringify(text: bytes) -> bytes:
    """sjson's ``appendStringify``: quoted as is when plain, else Go's ``json.Marshal`` of the string."""
    if not any(c < 0x20 or c > 0x7F or c in b'"\\' for c in text):
        return b'"' + text + b'"'
    out, i = ['"'], 0
    while i < len(text):
        try:
            out.append(marshal(text[i:].decode())[1:-1])
            break
        except UnicodeDecodeError as error:
            out.append(marshal(text[i : i + error.start].decode())[1:-1])
            out.append("\\ufffd" * (error.end - error.start))  # Go: one per byte that is not UTF-8
            i += error.end
    out.append('"')
    return "".join(out).encode()


def _build(parts: Sequence[_Part], raw: bytes, *, in_array: bool) -> bytes:
    """sjson's ``appendBuild``: the missing levels of a path, down to the value."""
    out = b"" if in_array else _stringify(parts[0].text) + b":"
    if len(parts) == 1:
        return out + raw
    following = parts[1]
    index = following.index()
    if index is not None or (not following.force and following.text == b"-1"):
        return out + b"[" + b"null," * _bounded(index or 0) + _build(parts[1:], raw, in_array=True) + b"]"
    return out + b"{" + _build(parts[1:], raw, in_array=False) + b"}"


def _bounded(count: int) -> int:
    if count > _MAX_INDEX:
        raise NotEmulated(f"an array index above {_MAX_INDEX}")
    return count


def _set(doc: bytes, parts: Sequence[_Part], raw: bytes) -> bytes:
    """sjson's ``appendRawPaths``: replace where the first part is found, else append to the container."""
    found = _find(doc, _skip(doc, 0), parts[:1])
    if found is not None:
        start, end = found
        inner = _set(doc[start:end], parts[1:], raw) if len(parts) > 1 else raw
        return doc[:start] + inner + doc[end:]
    index = parts[0].index()
    first = next((i for i, c in enumerate(doc) if c > 0x20), None)
    if first is None or doc[first] not in b"{[":
        doc, first = (b"[]" if index is not None else b"{}"), 0
    container = doc[first:]
    comma = container[1:].lstrip(bytes(range(0x21)))[:1] not in (b"}", b"]", b"")
    if container[:1] == b"{":
        body = container[: container.rindex(b"}")]
        return body + (b"," if comma else b"") + _build(parts, raw, in_array=False) + b"}"
    return _set_in_array(container, parts, raw, comma=comma)


def _set_in_array(container: bytes, parts: Sequence[_Part], raw: bytes, *, comma: bool) -> bytes:
    part, index = parts[0], parts[0].index()
    built = _build(parts, raw, in_array=True)
    if index is None:
        if part.force or part.text != b"-1":
            key = part.text.decode(errors="replace")
            raise SjsonError(f"cannot set array element for non-numeric key '{key}'")
        body = container.strip(bytes(range(0x21)))
        body = body[:-1] if body.endswith(b"]") else body
        return body + (b"," if comma else b"") + built + b"]"
    elements = [container[start:end] for _key_raw, start, end in _members(container, 0)]
    if not elements:
        return b"[" + b"null," * _bounded(index) + built + b"]"
    padding = b",null" * _bounded(index - len(elements))
    return b"[" + b",".join(elements) + padding + b"," + built + b"]"


def set_bytes(document: bytes, path: str, value: bytes) -> bytes:
    """``sjson.SetBytes(document, path, value)`` with a ``[]byte`` value (set as a JSON string).

    Raises ``SjsonError`` where sjson returns an error (the document is then
    unchanged), ``NotEmulated`` for what the module docstring lists.
    """
    if not path:
        raise SjsonError("path cannot be empty")
    parts = _parts(path, sjson=True)
    blank = all(c <= 0x20 for c in document)
    if not blank and not valid(document) and (b"{" in document or b"[" in document):
        raise NotEmulated("sjson on a document that is not JSON but holds '{' or '['")
    try:
        return _set(document, parts, _stringify(value))
    except RecursionError:
        raise NotEmulated("a JSON document nested deeper than the sandbox's parser goes") from None
