"""Read argocd-apps/ the way Argo CD's repo-server reads a directory source.

An app-of-apps is only as good as the set of files its root actually picks up,
so this module reproduces the repo-server's directory rules instead of
assuming them: ``.yaml``/``.yml``/``.json`` files, subdirectories only with
``recurse``, and ``include``/``exclude`` globs matched against the path
relative to the source path with gobwas/glob semantics (``{a,b}`` alternatives,
and ``*`` crossing ``/`` because Argo CD compiles them without separators).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ARGO_GROUP = "argoproj.io"
ARGO_CD_KINDS = frozenset({"Application", "AppProject", "ApplicationSet"})
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
_BRACES = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True)
class Document:
    """One YAML document of a manifest file, with where it came from."""

    path: Path
    index: int
    obj: Mapping[str, Any]

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind", ""))

    @property
    def name(self) -> str:
        return str(self.obj.get("metadata", {}).get("name", ""))

    @property
    def is_argo_cd(self) -> bool:
        api_version = str(self.obj.get("apiVersion", ""))
        return api_version.split("/", maxsplit=1)[0] == ARGO_GROUP and self.kind in ARGO_CD_KINDS

    def where(self, root: Path) -> str:
        return f"{self.path.relative_to(root)}#{self.index}"


def load_documents(path: Path) -> list[Document]:
    """Every non-empty YAML document of ``path``; a parse error names the file."""
    try:
        loaded = list(yaml.safe_load_all(path.read_text()))
    except yaml.YAMLError as error:
        raise AssertionError(f"{path}: not valid YAML: {error}") from None
    documents = []
    for index, obj in enumerate(loaded):
        if obj is None:
            continue
        if not isinstance(obj, dict):
            raise AssertionError(f"{path}#{index}: a manifest must be a mapping, got {type(obj).__name__}")
        documents.append(Document(path, index, obj))
    return documents


def manifest_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix in MANIFEST_SUFFIXES)


def _expand_braces(pattern: str) -> Iterator[str]:
    match = _BRACES.search(pattern)
    if match is None:
        yield pattern
        return
    head, tail = pattern[: match.start()], pattern[match.end() :]
    for alternative in match.group(1).split(","):
        yield from _expand_braces(head + alternative + tail)


def argo_glob_match(pattern: str, text: str) -> bool:
    """gobwas/glob without separators: what Argo CD uses for include/exclude."""
    return any(fnmatch.fnmatchcase(text, alternative) for alternative in _expand_braces(pattern))


def directory_source_files(source_dir: Path, directory: Mapping[str, Any] | None) -> list[Path]:
    """The files a ``directory`` source at ``source_dir`` renders, in walk order."""
    options = directory or {}
    recurse = bool(options.get("recurse", False))
    include = str(options.get("include", ""))
    exclude = str(options.get("exclude", ""))
    selected = []
    for path in manifest_files(source_dir):
        relative = path.relative_to(source_dir).as_posix()
        if not recurse and "/" in relative:
            continue
        if exclude and argo_glob_match(exclude, relative):
            continue
        if include and not argo_glob_match(include, relative):
            continue
        selected.append(path)
    return selected


def annotation(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get("metadata", {}).get("annotations", {}).get(key)
    return None if value is None else str(value)


def sync_options(obj: Mapping[str, Any]) -> set[str]:
    """The ``argocd.argoproj.io/sync-options`` of an object, split on commas."""
    raw = annotation(obj, "argocd.argoproj.io/sync-options") or ""
    return {option.strip() for option in raw.split(",") if option.strip()}


def sync_wave(obj: Mapping[str, Any]) -> int:
    return int(annotation(obj, "argocd.argoproj.io/sync-wave") or "0")
