"""The three PATCH flavours kube-apiserver accepts for JSON bodies.

* ``application/merge-patch+json``: RFC 7386 (null deletes, objects merge, lists replace).
* ``application/json-patch+json``: RFC 6902 operations on JSON pointers, applied by
  the ``jsonpatch`` library; only the failures are shaped here, as kube-apiserver
  reports them.
* ``application/strategic-merge-patch+json``: Kubernetes' strategic merge, for
  built-in kinds only. Lists that Kubernetes merges by key (containers by
  ``name``, ``env`` by ``name``, ``ownerReferences`` by ``uid``, ...) merge by
  that key; ``finalizers`` merge as a set; ``$patch: replace|delete`` and
  ``$deleteFromPrimitiveList/<field>`` are honoured. The merge keys come from a
  table of the fields that matter for workloads and metadata rather than from
  the full OpenAPI schema (documented in docs/sandbox.md).

Every function returns a new document and never mutates its inputs (the
result may share untouched sub-objects with the target, so the store patches a
private copy); an inapplicable patch raises ``PatchError``, whose
``api_error()`` is the Status kube-apiserver answers.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import jsonpointer

from vaultflow.sandbox.kube.errors import ApiError

# What kube-apiserver's errors.NewGenericServerResponse says for a 422 whose cause it does not
# pass on (handlers/patch.go answers a JSON patch that does not apply with it, isUnexpectedResponse
# false): the operation's own message stays on the server.
_NOT_APPLIED = "the server rejected our request due to an error in our request"


class PatchError(ValueError):
    """The patch cannot be applied to the document; ``code`` is the HTTP status kube-apiserver answers.

    400: the body does not decode as that kind of patch; 413: too many
    operations; 422: a JSON patch operation does not apply; 500: a strategic
    merge patch the merge code refuses (kube-apiserver passes those errors on
    unwrapped, handlers/patch.go ``interpretStrategicMergePatchError``).
    """

    def __init__(self, message: str, *, code: int = 422) -> None:
        super().__init__(message)
        self.code = code

    def api_error(self) -> ApiError:
        """The Status body of the answer (the 422's message is kube-apiserver's generic one)."""
        if self.code == 400:
            return ApiError(400, "BadRequest", str(self))
        if self.code == 413:
            return ApiError(413, "RequestEntityTooLarge", f"Request entity too large: {self}")
        if self.code == 500:
            return ApiError(500, "", str(self))  # ErrorToAPIStatus: a plain error has no reason
        return ApiError(422, "Invalid", _NOT_APPLIED)


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

# kube-apiserver refuses a JSON patch with more operations than this with a 413
# (staging/src/k8s.io/apiserver/pkg/endpoints/handlers/patch.go, maxJSONPatchOperations).
MAX_JSON_PATCH_OPERATIONS = 10000


def _invalid_operation(operation: dict[str, Any], op: str) -> str:
    """What is missing from an operation the library refused to build."""
    if op not in jsonpatch.JsonPatch.operations:
        return f"Unexpected kind: {op}"
    if "path" not in operation:
        return "operation missing path field: missing value"
    if op in ("move", "copy") and "from" not in operation:
        return "operation, missing from field: missing value"
    return f"{op} operation at {operation['path']} has no 'value'"


def _operation_failure(operation: dict[str, Any], error: Exception) -> PatchError:
    """Why one operation did not apply, worded like evanphx/json-patch (v4), which kube-apiserver runs.

    The message names the operation and its pointers only, never a value: the
    library's own messages quote the document (which may be a Secret's data).
    """
    op = operation.get("op") if isinstance(operation.get("op"), str) else "unknown"
    path = operation.get("path")
    if isinstance(error, jsonpatch.JsonPatchTestFailed):
        return PatchError(f"testing value {path} failed: test failed")
    if isinstance(error, jsonpatch.InvalidJsonPatch):
        return PatchError(_invalid_operation(operation, str(op)))
    source = f" (from {operation['from']})" if op in ("move", "copy") else ""
    if isinstance(error, jsonpatch.JsonPatchConflict) and not isinstance(
        error, jsonpatch.JsonPatchPathNotFound
    ):
        return PatchError(f"{op} operation does not apply: {path}{source}: invalid index or target")
    return PatchError(f"{op} operation does not apply: doc is missing path: {path}{source}: missing value")


def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902 JSON patch through the ``jsonpatch`` library; the whole patch applies or nothing does.

    As in kube-apiserver (handlers/patch.go, ``applyJSPatch``): a body that is
    not a list of objects does not decode (400), more than
    ``MAX_JSON_PATCH_OPERATIONS`` is a 413, and an operation that does not apply
    is a 422. Operations run one by one on a private copy so the failure names
    the operation that failed.
    """
    if not isinstance(operations, list) or not all(isinstance(op, dict) for op in operations):
        raise PatchError(
            "json: cannot unmarshal the body into Go value of type jsonpatch.Patch "
            "(a JSON patch is a list of operation objects)",
            code=400,
        )
    if len(operations) > MAX_JSON_PATCH_OPERATIONS:
        raise PatchError(
            f"The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, "
            f"got {len(operations)}",
            code=413,
        )
    doc = copy.deepcopy(target)
    for operation in operations:
        try:
            doc = jsonpatch.JsonPatch([operation]).apply(doc, in_place=True)
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as error:
            raise _operation_failure(operation, error) from None
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
            raise PatchError(
                f"{field}: expected a map with merge key {key!r}, but got {type(item).__name__}", code=500
            )
        directive = item.get(_DIRECTIVE)
        if directive == "replace":
            return [{k: v for k, v in i.items() if k != _DIRECTIVE} for i in patch]
        if key not in item:
            raise PatchError(f"{field}: an element does not contain declared merge key: {key}", code=500)
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
        raise PatchError("a strategic merge patch must be a JSON object", code=400)
    return _strategic(target, patch)
