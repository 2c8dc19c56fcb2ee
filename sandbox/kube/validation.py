"""Object metadata validation with kube-apiserver's field paths and wording.

Only what a client can trip over is checked: names, labels, annotation keys.
Kind-specific rules live in ``strategies``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from vaultflow.sandbox.kube.errors import FieldCause

JsonObject = dict[str, Any]

_DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = rf"{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*"
_QUALIFIED_NAME = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"
_CONFIG_KEY = "[-._a-zA-Z0-9]+"

NameValidator = Callable[[str], str | None]


def _quoted(value: str) -> str:
    return '"' + value.replace('"', '\\"') + '"'


def dns1123_subdomain(name: str) -> str | None:
    """None when ``name`` is valid, else the API server's explanation."""
    if len(name) > 253:
        return "must be no more than 253 characters"
    if not re.fullmatch(_DNS1123_SUBDOMAIN, name):
        return (
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
            "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
            f"validation is '{_DNS1123_SUBDOMAIN}')"
        )
    return None


def dns1123_label(name: str) -> str | None:
    if len(name) > 63:
        return "must be no more than 63 characters"
    if not re.fullmatch(_DNS1123_LABEL, name):
        return (
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
            f"start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
            f"validation is '{_DNS1123_LABEL}')"
        )
    return None


def path_segment_name(name: str) -> str | None:
    """Custom resources only need a name that is a valid URL path segment."""
    if name in (".", ".."):
        return f"may not be '{name}'"
    for forbidden in ("/", "%"):
        if forbidden in name:
            return f"may not contain '{forbidden}'"
    return None


def config_key(key: str) -> str | None:
    """Keys of Secret and ConfigMap data."""
    if len(key) > 253:
        return "must be no more than 253 characters"
    if not re.fullmatch(_CONFIG_KEY, key):
        return (
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  "
            f"or 'KEY_NAME',  or 'key-name', regex used for validation is '{_CONFIG_KEY}')"
        )
    return None


def _qualified_name(key: str) -> str | None:
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or dns1123_subdomain(prefix)):
        return "prefix part must be a lowercase RFC 1123 subdomain"
    if not name or len(name) > 63 or not re.fullmatch(_QUALIFIED_NAME, name):
        return (
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
            "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
            f"validation is '{_QUALIFIED_NAME}')"
        )
    return None


def validate_metadata(obj: JsonObject, name_validator: NameValidator) -> list[FieldCause]:
    """Name, labels and annotation keys of any object."""
    causes: list[FieldCause] = []
    metadata = obj.get("metadata") or {}
    name = metadata.get("name", "")
    if not name:
        causes.append(
            FieldCause(
                "metadata.name", "Required value: name or generateName is required", "FieldValueRequired"
            )
        )
    elif (problem := name_validator(name)) is not None:
        causes.append(FieldCause("metadata.name", f"Invalid value: {_quoted(name)}: {problem}"))
    labels = metadata.get("labels") or {}
    if not isinstance(labels, dict):
        causes.append(FieldCause("metadata.labels", "Invalid value: must be a map of strings"))
        labels = {}
    for key, value in labels.items():
        if (problem := _qualified_name(key)) is not None:
            causes.append(FieldCause("metadata.labels", f"Invalid value: {_quoted(key)}: {problem}"))
        if not isinstance(value, str) or len(value) > 63 or not re.fullmatch(_LABEL_VALUE, value):
            message = (
                f"Invalid value: {_quoted(str(value))}: a valid label must be an empty string or consist of "
                "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
                f"character (regex used for validation is '{_LABEL_VALUE}')"
            )
            causes.append(FieldCause("metadata.labels", message))
    annotations = metadata.get("annotations") or {}
    if not isinstance(annotations, dict):
        causes.append(FieldCause("metadata.annotations", "Invalid value: must be a map of strings"))
        annotations = {}
    for key, value in annotations.items():
        if (problem := _qualified_name(key)) is not None:
            causes.append(FieldCause("metadata.annotations", f"Invalid value: {_quoted(key)}: {problem}"))
        if not isinstance(value, str):
            causes.append(FieldCause(f"metadata.annotations[{key}]", "Invalid value: must be a string"))
    return causes
