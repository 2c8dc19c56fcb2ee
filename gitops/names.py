"""Kubernetes names derived from Vault paths: valid, stable and readable.

``prod/database`` becomes ``prod-database``. A name that had to be shortened
gets a hash suffix of the full path, so two long paths never collapse into
the same name and a name never changes between renders.
"""

from __future__ import annotations

import hashlib
import re

_INVALID = re.compile(r"[^a-z0-9-]+")
_DASHES = re.compile(r"-{2,}")
MAX_NAME = 63  # DNS-1123 label: the strictest name rule among the kinds we render


def k8s_name(*parts: str, max_length: int = MAX_NAME) -> str:
    """Join ``parts`` into a DNS-1123 label (lower case, '-' separated, <= ``max_length``)."""
    raw = "-".join(parts)
    name = _DASHES.sub("-", _INVALID.sub("-", raw.lower())).strip("-") or "x"
    if len(name) <= max_length:
        return name
    digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
    return f"{name[: max_length - len(digest) - 1].rstrip('-')}-{digest}"
