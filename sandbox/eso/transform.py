"""What ESO does to provider data on its way into a Secret: key conversion, key validation, decoding.

Followed from ESO's ``runtime/esutils/utils.go`` (``ConvertKeys``, ``ValidateKeys``) and
``runtime/decoding/decoding.go`` (``Decode``, ``DecodeMap``), which decode with Go's
``encoding/base64``: ``StdEncoding``/``URLEncoding`` are padded (a missing ``=`` is an error),
``\\r`` and ``\\n`` anywhere are skipped, and an error names the offending byte offset
("illegal base64 data at input byte 4"). Python's ``base64`` differs on all three, hence the
decoder here. ``Auto`` tries Base64, then Base64URL, then keeps the value as it is.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping

_STD = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_URL = _STD[:62] + "-_"
_ALPHABETS = {
    name: {ord(c): i for i, c in enumerate(chars)} for name, chars in (("std", _STD), ("url", _URL))
}
_NEWLINES = (ord("\n"), ord("\r"))
_PAD = ord("=")
MAX_KEY_LENGTH = 253


class DecodeError(ValueError):
    """A value (or a key) the strategy cannot apply to; the message is Go's."""


class _CorruptInput(DecodeError):
    def __init__(self, offset: int) -> None:
        super().__init__(f"illegal base64 data at input byte {offset}")


def go_base64_decode(src: bytes, *, url: bool = False) -> bytes:
    """``base64.StdEncoding.DecodeString`` (``URLEncoding`` with ``url``), quantum by quantum as Go does."""
    alphabet = _ALPHABETS["url" if url else "std"]
    out = bytearray()
    position, size = 0, len(src)
    while True:
        sextets = [0, 0, 0, 0]
        count = 0
        padded = False
        while count < 4:
            if position == size:
                if count == 0:
                    return bytes(out)
                raise _CorruptInput(position - count)  # a padded encoding needs whole quanta
            char = src[position]
            position += 1
            if char in alphabet:
                sextets[count] = alphabet[char]
                count += 1
            elif char not in _NEWLINES:
                if char != _PAD or count < 2:
                    raise _CorruptInput(position - 1)
                _check_padding(src, position, count)
                padded = True
                break
        value = sextets[0] << 18 | sextets[1] << 12 | sextets[2] << 6 | sextets[3]
        out += value.to_bytes(3, "big")[: count - 1]
        if padded:
            return bytes(out)


def _check_padding(src: bytes, position: int, count: int) -> None:
    """After the first ``=`` (at ``position - 1``): a second one for two sextets, then only newlines."""
    size = len(src)
    if count == 2:
        while position < size and src[position] in _NEWLINES:
            position += 1
        if position == size:
            raise _CorruptInput(size)
        if src[position] != _PAD:
            raise _CorruptInput(position - 1)
        position += 1
    while position < size and src[position] in _NEWLINES:
        position += 1
    if position < size:
        raise _CorruptInput(position)  # data after the padding


def decode(strategy: str, value: bytes) -> bytes:
    """ESO's ``decoding.Decode``."""
    if strategy in ("None", ""):
        return value
    if strategy == "Base64":
        return go_base64_decode(value)
    if strategy == "Base64URL":
        return go_base64_decode(value, url=True)
    if strategy == "Auto":
        for url in (False, True):
            try:
                return go_base64_decode(value, url=url)
            except DecodeError:
                continue
        return value
    raise DecodeError(f"decoding strategy {strategy} is not supported")


def decode_map(strategy: str, values: Mapping[str, bytes]) -> dict[str, bytes]:
    """``decoding.DecodeMap``; of several bad values the first key in order is named (Go: any one)."""
    out = {}
    for key in sorted(values):
        try:
            out[key] = decode(strategy, values[key])
        except DecodeError as error:
            raise DecodeError(f"failure decoding key {key}: {error}") from None
    return {key: out[key] for key in values}


def _valid_character(char: str) -> bool:
    """Go's ``unicode.IsLetter || unicode.IsNumber`` (general categories L and N), ``-``, ``.``, ``_``."""
    return char in "-._" or unicodedata.category(char)[0] in "LN"


def convert_key(strategy: str, key: str) -> str:
    """``esutils.convert``: a character a Secret key cannot hold becomes ``_`` (``Unicode``: ``_U%04x_``)."""
    if strategy in ("Default", ""):
        return "".join(c if _valid_character(c) else "_" for c in key)
    if strategy == "Unicode":
        return "".join(c if _valid_character(c) else f"_U{ord(c):04x}_" for c in key)
    return key


def convert_keys(strategy: str, values: Mapping[str, bytes]) -> dict[str, bytes]:
    """``esutils.ConvertKeys``: two keys converting to one is an error, not a silent overwrite."""
    out: dict[str, bytes] = {}
    for key, value in values.items():
        converted = convert_key(strategy, key)
        if converted in out:
            raise DecodeError(f"secret name collision during conversion: {converted}")
        out[converted] = value
    return out


def validate_keys(values: dict[str, bytes]) -> None:
    """``esutils.ValidateKeys``: empty keys are dropped (in place); too long or invalid ones are errors."""
    for key in list(values):
        encoded = key.encode()
        if not encoded:
            del values[key]
            continue
        if len(encoded) > MAX_KEY_LENGTH:
            shown = encoded[:MAX_KEY_LENGTH].decode(errors="replace")
            raise DecodeError(
                f"key has length {len(encoded)} but max is 253: (following is truncated): {shown}"
            )
        for char in key:
            if not _valid_character(char):
                allowed = "only alphanumeric, '-', '.' and '_' are allowed"
                raise DecodeError(f"key has invalid character {char}, {allowed}: {key}")
