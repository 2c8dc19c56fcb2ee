"""Durations as Argo reads them: Go duration strings (``1m30s``, ``500ms``) or whole seconds."""

from __future__ import annotations

import re

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_GO_DURATION = re.compile(rf"(?:{_PART.pattern})+")


def parse_duration(value: str | int) -> float:
    """Seconds in ``value``; raise ``ValueError`` naming the value when it is not a duration."""
    if isinstance(value, int):
        return float(value)
    text = value.strip()
    if re.fullmatch(r"\d+", text):
        return float(text)
    if not _GO_DURATION.fullmatch(text):
        raise ValueError(f"{value!r} is not a duration (examples: 30s, 1m30s, 500ms, or whole seconds)")
    return sum(float(number) * _UNITS[unit] for number, unit in _PART.findall(text))
