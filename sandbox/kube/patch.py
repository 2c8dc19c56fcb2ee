"""The three PATCH flavours kube-apiserver accepts for JSON bodies.

* ``application/merge-patch+json``: RFC 7386 (null deletes, objects merge, lists replace).
* ``application/json-patch+json``: RFC 6902 operations on JSON pointers.
* ``application/strategic-merge-patch+json``: Kubernetes' strategic merge, for
  built-in kinds only. Lists that Kubernetes merges by key (containers by
  ``name``, ``env`` by ``name``, ``ownerReferences`` by ``uid``, ...) merge by
  that key; ``finalizers`` merge as a set; ``$patch: replace|delete`` and
  ``$deleteFromPrimitiveList/<field>`` are honoured. The merge keys come from a
  table of the fields that matter for workloads and metadata rather than from
  the full OpenAPI schema (documented in docs/sandbox.md).

Every function returns a new document and never mutates its inputs (the
result may share untouched sub-objects with the target, so the store patches a
private copy); an inapplicable patch raises ``PatchError`` (the API answers 422).
"""

from __future__ import annotations

import copy
from typing import Any


class PatchError(ValueError):
    """The patch cannot be applied to the document."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# ---------------------------------------------------------------- JSON patch


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"JSON pointer must start with '/': {path!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _index(container: list[Any], token: str, *, for_insert: bool) -> int:
    if token == "-" and for_insert:
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise PatchError(f"invalid array index {token!r}")
    index = int(token)
    limit = len(container) if for_insert else len(container) - 1
    if index > limit:
        raise PatchError(f"array index {index} out of bounds")
    return index


def _parent(doc: Any, tokens: list[str], path: str) -> Any:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict):
            if token not in node:
                raise PatchError(f"doc is missing path: {path}")
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, for_insert=False)]
        else:
            raise PatchError(f"doc is missing path: {path}")
    return node


def _get(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return doc
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"doc is missing path: {path}")
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, for_insert=False)]
    raise PatchError(f"doc is missing path: {path}")


def _add(doc: Any, path: str, value: Any) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return value
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, for_insert=True), value)
    else:
        raise PatchError(f"doc is missing path: {path}")
    return doc


def _remove(doc: Any, path: str) -> Any:
    tokens = _pointer(path)
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"remove operation does not apply: doc is missing path: {path}")
        del parent[last]
    elif isinstance(parent, list):
        del parent[_index(parent, last, for_insert=False)]
    else:
        raise PatchError(f"doc is missing path: {path}")
    return doc


def _op_add(doc: Any, operation: dict[str, Any]) -> Any:
    return _add(doc, operation["path"], copy.deepcopy(operation["value"]))


def _op_remove(doc: Any, operation: dict[str, Any]) -> Any:
    return _remove(doc, operation["path"])


def _op_replace(doc: Any, operation: dict[str, Any]) -> Any:
    path = operation["path"]
    _get(doc, path)  # must exist
    if not path:
        return copy.deepcopy(operation["value"])
    return _add(_remove(doc, path), path, copy.deepcopy(operation["value"]))


def _op_move_or_copy(doc: Any, operation: dict[str, Any]) -> Any:
    if "from" not in operation:
        raise PatchError(f"{operation['op']} operation at {operation['path']} has no 'from'")
    value = copy.deepcopy(_get(doc, operation["from"]))
    if operation["op"] == "move":
        doc = _remove(doc, operation["from"])
    return _add(doc, operation["path"], value)


def _op_test(doc: Any, operation: dict[str, Any]) -> Any:
    if _get(doc, operation["path"]) != operation["value"]:
        raise PatchError(f"testing value {operation['path']} failed: test failed")
    return doc


_OPERATIONS = {
    "add": _op_add,
    "remove": _op_remove,
    "replace": _op_replace,
    "move": _op_move_or_copy,
    "copy": _op_move_or_copy,
    "test": _op_test,
}


def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902 JSON patch; the whole patch applies or nothing does."""
    if not isinstance(operations, list):
        raise PatchError("a JSON patch must be a list of operations")
    doc = copy.deepcopy(target)
    for number, operation in enumerate(operations):
        if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
            raise PatchError(f"operation {number} must be an object with 'op' and 'path'")
        apply = _OPERATIONS.get(operation["op"])
        if apply is None:
            raise PatchError(f"unknown JSON patch operation {operation['op']!r}")
        if operation["op"] in ("add", "replace", "test") and "value" not in operation:
            raise PatchError(f"{operation['op']} operation at {operation['path']} has no 'value'")
        doc = apply(doc, operation)
    return doc


# ------------------------------------------------------ strategic merge patch

# Lists Kubernetes merges by a key (patchStrategy=merge, patchMergeKey=...).
_MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "ownerReferences": "uid",
    "hostAliases": "ip",
    "conditions": "type",
}
# Lists of scalars Kubernetes merges as sets.
_PRIMITIVE_MERGE = frozenset({"finalizers"})
_DIRECTIVE = "$patch"
_DELETE_FROM = "$deleteFromPrimitiveList/"
_IGNORED_PREFIXES = ("$setElementOrder/", "$retainKeys")


def _merge_key(field: str, parent_field: str) -> str | None:
    if field == "ports":
        return (
            "containerPort"
            if parent_field in ("containers", "initContainers", "ephemeralContainers")
            else "port"
        )
    return _MERGE_KEYS.get(field)


def _merge_keyed_list(original: list[Any], patch: list[Any], key: str, field: str) -> list[Any]:
    result = [copy.deepcopy(item) for item in original]
    for item in patch:
        if not isinstance(item, dict):
            raise PatchError(f"{field}: elements must be objects with merge key {key!r}")
        directive = item.get(_DIRECTIVE)
        if directive == "replace":
            return [{k: v for k, v in i.items() if k != _DIRECTIVE} for i in patch]
        if key not in item:
            raise PatchError(f"{field}: element {item} has no merge key {key!r}")
        position = next(
            (n for n, old in enumerate(result) if isinstance(old, dict) and old.get(key) == item[key]), None
        )
        if directive == "delete":
            if position is not None:
                del result[position]
        elif position is None:
            result.append(_strategic(None, item, field))
        else:
            result[position] = _strategic(result[position], item, field)
    return result


def _strategic(original: Any, patch: Any, parent_field: str = "") -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    directive = patch.get(_DIRECTIVE)
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != _DIRECTIVE}
    if directive == "delete":
        return None
    result = dict(original) if isinstance(original, dict) else {}
    for key, value in patch.items():
        if key == _DIRECTIVE or key.startswith(_IGNORED_PREFIXES):
            continue
        if key.startswith(_DELETE_FROM):
            field = key[len(_DELETE_FROM) :]
            removed = set(value or [])
            result[field] = [item for item in result.get(field) or [] if item not in removed]
        elif value is None:
            result.pop(key, None)
        else:
            merged = _strategic_field(result.get(key), key, value, parent_field)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
    return result


def _strategic_field(current: Any, key: str, value: Any, parent_field: str) -> Any:
    """The merged value of one field (None: remove it); ``parent_field`` names the enclosing list."""
    merge_key = _merge_key(key, parent_field)
    if isinstance(value, list) and merge_key is not None:
        return _merge_keyed_list(current if isinstance(current, list) else [], value, merge_key, key)
    if isinstance(value, list) and key in _PRIMITIVE_MERGE:
        merged = list(current) if isinstance(current, list) else []
        return merged + [item for item in value if item not in merged]
    if isinstance(value, dict):
        return _strategic(current, value, key)
    return copy.deepcopy(value)


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """Kubernetes strategic merge patch (see module docstring for the supported subset)."""
    if not isinstance(patch, dict):
        raise PatchError("a strategic merge patch must be a JSON object")
    return _strategic(target, patch)
