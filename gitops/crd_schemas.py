"""Validate Kubernetes objects against the ``openAPIV3Schema`` of upstream CRDs.

The upstream CustomResourceDefinitions of ESO, Argo CD and Argo Workflows are
the contract every manifest vaultflow renders must meet. This module loads
CRD files from a directory and validates an object against the schema of the
*served* version named by its ``apiVersion``, the way an API server with
strict field validation (``kubectl apply --validate=strict``) would:

* structural-schema extensions are translated into JSON Schema
  (``x-kubernetes-int-or-string``, ``nullable``, ``x-kubernetes-preserve-unknown-fields``);
* unknown fields are errors (an object schema that lists ``properties`` and
  does not preserve unknown fields gets ``additionalProperties: false``), so
  a typo in a rendered manifest cannot slip through as a silently pruned field.

CEL rules (``x-kubernetes-validations``) are not evaluated: there is no CEL
interpreter here. That is the one known gap against a real API server.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from vaultflow.base.errors import InputError

JsonObject = dict[str, Any]
_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class CrdVersion:
    """One served version of a CRD, with its schema translated to JSON Schema."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    schema: JsonObject
    has_status_subresource: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"


def _translate(node: Any) -> Any:
    """Translate a structural OpenAPI v3 schema node into strict JSON Schema."""
    if isinstance(node, list):
        return [_translate(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: JsonObject = {}
    for key, value in node.items():
        if key in ("properties", "patternProperties", "definitions"):
            out[key] = {name: _translate(sub) for name, sub in value.items()}
        elif key == "x-kubernetes-validations":
            continue  # CEL: not evaluated, see module docstring
        else:
            out[key] = _translate(value)
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        int_or_string: list[JsonObject] = [{"type": "integer"}, {"type": "string"}]
        out.setdefault("anyOf", int_or_string)
    if out.pop("nullable", False) and "type" in out:
        kind = out["type"]
        out["type"] = [*kind, "null"] if isinstance(kind, list) else [kind, "null"]
    preserve = out.pop("x-kubernetes-preserve-unknown-fields", False)
    if "properties" in out and not preserve and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def _strip_metadata(schema: JsonObject) -> JsonObject:
    """Let ``metadata`` be any object (the API server validates it separately), and always allow
    ``apiVersion`` and ``kind`` at the root, as an API server does even when a CRD omits them."""
    schema = copy.copy(schema)
    properties = dict(schema.get("properties", {}))
    properties["metadata"] = {"type": "object"}
    properties.setdefault("apiVersion", {"type": "string"})
    properties.setdefault("kind", {"type": "string"})
    schema["properties"] = properties
    return schema


def _versions_of(crd: Mapping[str, Any], source: Path) -> Iterable[CrdVersion]:
    try:
        spec = crd["spec"]
        names = spec["names"]
        for version in spec["versions"]:
            if not version.get("served", False):
                continue
            raw = version.get("schema", {}).get("openAPIV3Schema", {"type": "object"})
            yield CrdVersion(
                group=spec["group"],
                version=version["name"],
                kind=names["kind"],
                plural=names["plural"],
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                schema=_strip_metadata(_translate(raw)),
                has_status_subresource="status" in version.get("subresources", {}),
            )
    except (KeyError, TypeError) as error:
        raise InputError(f"{source}: not a valid CustomResourceDefinition (missing {error})") from None


class CrdRegistry:
    """The served versions of a set of CRDs, keyed by (apiVersion, kind)."""

    def __init__(self, versions: Iterable[CrdVersion] = ()) -> None:
        self._by_key: dict[tuple[str, str], CrdVersion] = {}
        for version in versions:
            self.add(version)

    def add(self, version: CrdVersion) -> None:
        self._by_key[(version.api_version, version.kind)] = version

    @classmethod
    def from_directory(cls, directory: Path) -> CrdRegistry:
        """Load every CRD in ``directory`` (recursively, ``*.yaml``/``*.yml``)."""
        if not directory.is_dir():
            raise InputError(f"{directory}: CRD schema directory does not exist")
        registry = cls()
        files = sorted([*directory.rglob("*.yaml"), *directory.rglob("*.yml")])
        for path in files:
            # libyaml's loader: the Argo Workflows CRDs are megabytes of YAML
            for crd in yaml.load_all(path.read_text(), Loader=_YamlLoader):
                if isinstance(crd, dict) and crd.get("kind") == "CustomResourceDefinition":
                    for version in _versions_of(crd, path):
                        registry.add(version)
        if not registry._by_key:
            raise InputError(f"{directory}: no CustomResourceDefinition found")
        return registry

    @classmethod
    def from_crds(cls, crds: Iterable[Mapping[str, Any]]) -> CrdRegistry:
        registry = cls()
        for crd in crds:
            for version in _versions_of(crd, Path("<crd>")):
                registry.add(version)
        return registry

    def lookup(self, api_version: str, kind: str) -> CrdVersion | None:
        return self._by_key.get((api_version, kind))

    def kinds(self) -> list[tuple[str, str]]:
        return sorted(self._by_key)

    def validate(self, obj: Mapping[str, Any]) -> list[str]:
        """Return the schema violations of ``obj``, each naming its field path.

        An object whose (apiVersion, kind) has no served version here is a
        violation too: the API server would answer 404 for it.
        """
        import jsonschema  # imported lazily: the CLI starts without it

        api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
        crd = self.lookup(api_version, kind)
        if crd is None:
            return [f"no served CRD version for apiVersion={api_version!r} kind={kind!r}"]
        validator = jsonschema.Draft7Validator(crd.schema)
        errors = sorted(validator.iter_errors(dict(obj)), key=lambda e: list(map(str, e.absolute_path)))
        return [f"{_field_path(error.absolute_path)}: {error.message}" for error in errors]


def _field_path(parts: Iterable[Any]) -> str:
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "<root>"
