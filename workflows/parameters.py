"""``-p key=value`` arguments, as ``argo submit`` takes them."""

from __future__ import annotations

from collections.abc import Iterable

from vaultflow.base.errors import InputError


def parse_assignments(assignments: Iterable[str]) -> dict[str, str]:
    """``["a=1", "b=x=y"]`` -> ``{"a": "1", "b": "x=y"}``; a malformed or repeated key is bad input."""
    parameters: dict[str, str] = {}
    for assignment in assignments:
        key, separator, value = assignment.partition("=")
        key = key.strip()
        if not separator or not key:
            raise InputError(f"parameter {assignment!r} must be given as key=value")
        if key in parameters:
            raise InputError(f"parameter {key!r} is given twice")
        parameters[key] = value
    return parameters
