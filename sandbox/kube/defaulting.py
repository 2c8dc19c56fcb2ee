"""Defaulting of custom resources from their CRD's structural schema, as kube-apiserver does it.

kube-apiserver fills a custom resource's ``default``s from the ``openAPIV3Schema``
of the object's version whenever it decodes one: the body of a create, update
or patch (and of a ``/status`` write), and an object read from etcd, so an
object stored before its CRD gained a default is served with it. The rules
(``k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting``):

* first ``PruneNonNullableNullsWithoutDefaults`` (``prunenulls.go``): a ``null``
  where the schema is not ``nullable`` and has no ``default`` is dropped;
* then ``Default`` (``algorithm.go``): a property whose schema has a ``default``
  gets a copy of it when the property is absent, or ``null`` and not
  ``nullable``; then every value is defaulted by its own schema (``properties``,
  ``additionalProperties``, ``items``), defaults just filled in included. A
  ``null`` item or map value that is not ``nullable`` becomes its schema's default.

Defaults live only in ``properties``/``items``/``additionalProperties`` of a
structural schema (never under ``allOf``/``anyOf``/``oneOf``/``not``), so those
are the only places looked at. ``customresource_handler.go`` runs both steps in
its decoders (``schemaCoercingDecoder``, then the codec's ``unstructuredDefaulter``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

JsonObject = dict[str, Any]
Schema = Mapping[str, Any]


def _child_schema(schema: Schema | None, field: str) -> Schema | None:
    """``getSchemaForField``: the schema of a property, else of ``additionalProperties``."""
    if schema is None:
        return None
    properties = schema.get("properties") or {}
    if field in properties:
        found: Schema = properties[field]
        return found
    return _additional(schema)


def _additional(schema: Schema) -> Schema | None:
    additional = schema.get("additionalProperties")
    return additional if isinstance(additional, Mapping) else None


def _items(schema: Schema | None) -> Schema | None:
    items = None if schema is None else schema.get("items")
    return items if isinstance(items, Mapping) else None


def _default_of(schema: Schema | None) -> Any:
    return None if schema is None else schema.get("default")


def _non_nullable_null(value: Any, schema: Schema | None) -> bool:
    """``isNonNullableNull``: ``null`` where the schema does not allow it."""
    return value is None and schema is not None and not schema.get("nullable", False)


def prune_non_nullable_nulls(value: Any, schema: Schema | None) -> None:
    """Drop (in place) ``null`` map values whose schema is neither nullable nor defaulted."""
    if isinstance(value, dict):
        for key in list(value):
            child = _child_schema(schema, key)
            if _non_nullable_null(value[key], child) and _default_of(child) is None:
                del value[key]
            else:
                prune_non_nullable_nulls(value[key], child)
    elif isinstance(value, list):
        items = _items(schema)
        for item in value:
            prune_non_nullable_nulls(item, items)


def apply_defaults(value: Any, schema: Schema | None) -> None:
    """Fill (in place) the schema's defaults into ``value``; defaults are deep-copied."""
    if schema is None:
        return
    if isinstance(value, dict):
        _default_map(value, schema)
    elif isinstance(value, list):
        items = _items(schema)
        if items is None:
            return
        for index, item in enumerate(value):
            if _non_nullable_null(item, items):
                value[index] = copy.deepcopy(items.get("default"))
            apply_defaults(value[index], items)


def _default_map(value: JsonObject, schema: Schema) -> None:
    """Missing (or disallowed ``null``) properties first, then every value by its own schema."""
    properties: Mapping[str, Schema] = schema.get("properties") or {}
    for name, prop in properties.items():
        default = prop.get("default")
        if default is not None and (name not in value or _non_nullable_null(value[name], prop)):
            value[name] = copy.deepcopy(default)
    additional = _additional(schema)
    for key in value:
        if key in properties:
            apply_defaults(value[key], properties[key])
        elif additional is not None:
            if _non_nullable_null(value[key], additional):
                value[key] = copy.deepcopy(additional.get("default"))
            apply_defaults(value[key], additional)


def default_object(obj: JsonObject, schema: Schema) -> None:
    """What decoding does to a custom resource: prune disallowed nulls, then apply defaults."""
    prune_non_nullable_nulls(obj, schema)
    apply_defaults(obj, schema)


class CrdDefaults:
    """The structural schemas of the registered CRDs' served versions, by (apiVersion, kind).

    The schemas are the CRD documents' own (shared, never mutated) objects.
    """

    def __init__(self) -> None:
        self._by_crd: dict[str, dict[tuple[str, str], Schema]] = {}
        self._schemas: dict[tuple[str, str], Schema] = {}

    def set(self, crd: JsonObject) -> None:
        spec = crd.get("spec") or {}
        group, kind = spec.get("group", ""), (spec.get("names") or {}).get("kind", "")
        schemas: dict[tuple[str, str], Schema] = {}
        for version in spec.get("versions") or []:
            schema = (version.get("schema") or {}).get("openAPIV3Schema")
            if version.get("served") and isinstance(schema, Mapping):
                schemas[(f"{group}/{version.get('name')}", kind)] = schema
        self._by_crd[crd["metadata"]["name"]] = schemas
        self._rebuild()

    def remove(self, crd_name: str) -> None:
        self._by_crd.pop(crd_name, None)
        self._rebuild()

    def _rebuild(self) -> None:
        self._schemas = {key: schema for schemas in self._by_crd.values() for key, schema in schemas.items()}

    def default(self, obj: JsonObject) -> None:
        """Default ``obj`` (in place) by the schema of its ``apiVersion``; unknown versions are left alone."""
        schema = self._schemas.get((str(obj.get("apiVersion", "")), str(obj.get("kind", ""))))
        if schema is not None:
            default_object(obj, schema)
