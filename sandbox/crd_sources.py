"""Which CustomResourceDefinitions the sandbox registers in its clusters.

The upstream CRDs (External Secrets Operator, Argo CD, Argo Workflows) are the
contract rendered manifests must meet, so they are preferred: from ``--crds DIR``,
else ``$VAULTFLOW_SCHEMAS``, else ``../shared/schemas`` beside the checkout.
Without any of them the sandbox falls back to the minimal CRDs in
``sandbox/crds/`` (same kinds, free-form schemas).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from vaultflow.base.errors import InputError

BUILTIN_CRD_DIR = Path(__file__).resolve().parent / "crds"
_CHECKOUT_SCHEMAS = Path(__file__).resolve().parent.parent.parent / "shared" / "schemas"
_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SANDBOX_GROUPS = ("external-secrets.io", "argoproj.io")

JsonObject = dict[str, Any]


@dataclass(frozen=True)
class CrdSource:
    """Where the CRDs come from; ``upstream`` is False for the built-in fallback."""

    directory: Path
    upstream: bool

    def describe(self) -> str:
        return f"upstream CRDs from {self.directory}" if self.upstream else "minimal built-in CRDs"


def resolve_crd_source(explicit: Path | None = None, *, builtin: bool = False) -> CrdSource:
    """Pick the CRD directory; an explicit directory that does not exist is an ``InputError``."""
    if builtin:
        return CrdSource(BUILTIN_CRD_DIR, upstream=False)
    if explicit is not None:
        if not explicit.is_dir():
            raise InputError(f"--crds {explicit}: directory does not exist")
        return CrdSource(explicit.resolve(), upstream=True)
    from_env = os.environ.get("VAULTFLOW_SCHEMAS")
    for candidate in (Path(from_env) if from_env else None, _CHECKOUT_SCHEMAS):
        if candidate is not None and candidate.is_dir():
            return CrdSource(candidate.resolve(), upstream=True)
    return CrdSource(BUILTIN_CRD_DIR, upstream=False)


def default_cache_dir() -> Path:
    """``$VAULTFLOW_CACHE_DIR``, else ``$XDG_CACHE_HOME/vaultflow`` (``~/.cache/vaultflow``)."""
    explicit = os.environ.get("VAULTFLOW_CACHE_DIR")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vaultflow"


def load_crds(source: CrdSource, cache_dir: Path | None = None) -> list[JsonObject]:
    """Every CRD of the sandbox's groups found in the source directory (recursively).

    The upstream CRDs are 13 MB of YAML (3-4 s to parse); the parsed result is
    cached as JSON (0.2 s to read) under ``cache_dir``, keyed by a digest of the
    files' contents, so a changed CRD is never served from a stale cache.
    """
    files = sorted([*source.directory.rglob("*.yaml"), *source.directory.rglob("*.yml")])
    digest = hashlib.sha256(f"v1 {SANDBOX_GROUPS}".encode())  # what is kept is part of the key
    for path in files:
        digest.update(str(path.relative_to(source.directory)).encode() + b"\0" + path.read_bytes())
    cache = (cache_dir or default_cache_dir()) / f"crds-{digest.hexdigest()[:32]}.json"
    with contextlib.suppress(OSError, ValueError):
        cached: list[JsonObject] = json.loads(cache.read_text())
        return cached
    crds = _parse(source, files)
    with contextlib.suppress(OSError):
        cache.parent.mkdir(parents=True, exist_ok=True)
        temporary = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
        temporary.write_text(json.dumps(crds, separators=(",", ":")))
        temporary.replace(cache)
    return crds


def _parse(source: CrdSource, files: list[Path]) -> list[JsonObject]:
    crds: list[JsonObject] = []
    for path in files:
        try:
            documents = list(yaml.load_all(path.read_text(), Loader=_YamlLoader))
        except yaml.YAMLError as error:
            raise InputError(f"{path}: not valid YAML ({error})") from None
        for document in documents:
            if (
                isinstance(document, dict)
                and document.get("kind") == "CustomResourceDefinition"
                and (document.get("spec") or {}).get("group") in SANDBOX_GROUPS
            ):
                crds.append(document)
    if not crds:
        raise InputError(
            f"{source.directory}: no external-secrets.io or argoproj.io CustomResourceDefinition found"
        )
    return crds
