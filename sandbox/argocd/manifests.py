"""Turn the files of an Application's path into the objects Argo CD would apply.

Two source types, chosen as Argo CD chooses them:

* **Kustomize** when the path holds ``kustomization.yaml`` (``.yml``,
  ``Kustomization``): its ``resources`` (files, or directories with their own
  kustomization, recursively), then the ``namespace``, ``commonLabels``,
  ``labels`` and ``commonAnnotations`` transformers. Other kustomize features
  (patches, generators, remote bases, ...) are refused with a message naming
  them: the sandbox does not pretend to build what it cannot;
* **Directory** otherwise: the ``*.yaml``, ``*.yml`` and ``*.json`` files at the
  top of the path (all levels with ``directory.recurse``), honouring
  ``directory.include`` / ``exclude`` globs; ``kind: List`` documents are expanded.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, ClassVar

import yaml

JsonObject = dict[str, Any]
IsNamespaced = Callable[[str, str], bool]

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
_SUPPORTED_KUSTOMIZE = {
    "apiVersion",
    "kind",
    "resources",
    "namespace",
    "commonLabels",
    "labels",
    "commonAnnotations",
}
_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[misc,valid-type]
    """YAML as Kubernetes reads it (sigs.k8s.io/yaml): timestamps stay strings."""

    yaml_implicit_resolvers: ClassVar[dict[Any, Any]] = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
    }


class ManifestError(Exception):
    """The path cannot be turned into manifests (the message names the file and the problem)."""


@dataclass(frozen=True)
class Manifests:
    source_type: str  # "Kustomize" or "Directory"
    objects: list[JsonObject]


def _documents(name: str, content: bytes) -> list[JsonObject]:
    try:
        text = content.decode()
        documents = (
            [json.loads(text)] if name.endswith(".json") else list(yaml.load_all(text, Loader=_Loader))
        )
    except (UnicodeDecodeError, ValueError, yaml.YAMLError) as error:
        raise ManifestError(f"{name}: cannot parse: {error}") from None
    objects: list[JsonObject] = []
    for document in documents:
        if document is None:
            continue
        if not isinstance(document, dict):
            raise ManifestError(f"{name}: a document is not a Kubernetes object")
        if document.get("kind") == "List" and isinstance(document.get("items"), list):
            objects.extend(item for item in document["items"] if isinstance(item, dict))
            continue
        if not document.get("apiVersion") or not document.get("kind"):
            raise ManifestError(f"{name}: Object 'Kind' is missing in {json.dumps(document)[:120]}")
        objects.append(document)
    return objects


def _kustomization_in(files: Mapping[str, bytes], directory: str) -> str | None:
    for candidate in KUSTOMIZATION_FILES:
        path = f"{directory}/{candidate}" if directory else candidate
        if path in files:
            return path
    return None


def load(
    files: Mapping[str, bytes], directory_options: Mapping[str, Any], namespaced: IsNamespaced
) -> Manifests:
    """The objects of a source path (``files``: path relative to the app path -> content)."""
    kustomization = _kustomization_in(files, "")
    if kustomization is not None:
        return Manifests("Kustomize", _kustomize(files, "", namespaced, seen=()))
    return Manifests("Directory", _directory(files, directory_options))


def _directory(files: Mapping[str, bytes], options: Mapping[str, Any]) -> list[JsonObject]:
    recurse = bool(options.get("recurse"))
    include = str(options.get("include") or "")
    exclude = str(options.get("exclude") or "")
    objects: list[JsonObject] = []
    for name in sorted(files):
        if not name.endswith((".yaml", ".yml", ".json")):
            continue
        if "/" in name and not recurse:
            continue
        if include and not _glob_match(name, include):
            continue
        if exclude and _glob_match(name, exclude):
            continue
        objects.extend(_documents(name, files[name]))
    return objects


def _glob_match(name: str, patterns: str) -> bool:
    """Argo CD's include/exclude: a glob, or ``{a,b}`` alternatives, matched against the file's path."""
    stripped = patterns.strip()
    options = stripped[1:-1].split(",") if stripped.startswith("{") and stripped.endswith("}") else [stripped]
    return any(
        fnmatch.fnmatch(name, option.strip()) or fnmatch.fnmatch(PurePosixPath(name).name, option.strip())
        for option in options
    )


def _kustomize(
    files: Mapping[str, bytes], directory: str, namespaced: IsNamespaced, *, seen: tuple[str, ...]
) -> list[JsonObject]:
    path = _kustomization_in(files, directory)
    if path is None:
        raise ManifestError(f"{directory or '.'}: no kustomization.yaml in a directory listed as a resource")
    if directory in seen:
        raise ManifestError(f"{path}: cycle in kustomization resources")
    try:
        kustomization = yaml.load(files[path].decode(), Loader=_Loader) or {}  # noqa: S506 (SafeLoader)
    except (UnicodeDecodeError, yaml.YAMLError) as error:
        raise ManifestError(f"{path}: cannot parse: {error}") from None
    if not isinstance(kustomization, dict):
        raise ManifestError(f"{path}: a kustomization is a mapping")
    unsupported = sorted(set(kustomization) - _SUPPORTED_KUSTOMIZE)
    if unsupported:
        raise ManifestError(
            f"{path}: kustomize fields {', '.join(unsupported)} are not supported by the sandbox's Argo CD "
            f"(supported: {', '.join(sorted(_SUPPORTED_KUSTOMIZE))})"
        )
    objects: list[JsonObject] = []
    for resource in kustomization.get("resources") or []:
        if not isinstance(resource, str) or "://" in resource or resource.startswith(("github.com/", "git@")):
            raise ManifestError(
                f"{path}: resource {resource!r}: remote resources are not supported by the sandbox"
            )
        target = str(PurePosixPath(directory, resource)) if directory else str(PurePosixPath(resource))
        target = target.removeprefix("./")
        if target.startswith("../") or "/../" in target:
            raise ManifestError(f"{path}: resource {resource!r} is outside the application's path")
        if target in files:
            objects.extend(_documents(target, files[target]))
        elif any(name.startswith(f"{target}/") for name in files):
            objects.extend(_kustomize(files, target, namespaced, seen=(*seen, directory)))
        else:
            raise ManifestError(f"{path}: resource {resource!r}: no such file or directory")
    _transform(objects, kustomization, namespaced)
    return objects


def _transform(objects: list[JsonObject], kustomization: Mapping[str, Any], namespaced: IsNamespaced) -> None:
    namespace = kustomization.get("namespace")
    labels: dict[str, str] = dict(kustomization.get("commonLabels") or {})
    for entry in kustomization.get("labels") or []:
        labels.update((entry or {}).get("pairs") or {})
    annotations: dict[str, str] = dict(kustomization.get("commonAnnotations") or {})
    for obj in objects:
        metadata = obj.setdefault("metadata", {})
        if namespace and namespaced(str(obj.get("apiVersion")), str(obj.get("kind"))):
            metadata["namespace"] = namespace
        if labels:
            metadata["labels"] = {**(metadata.get("labels") or {}), **labels}
        if annotations:
            metadata["annotations"] = {**(metadata.get("annotations") or {}), **annotations}
