"""Kubernetes API errors as the real API server reports them: ``Status`` objects.

Clients branch on ``reason`` and ``code`` (the ``kubernetes`` client raises
``ApiException`` with ``status`` = code and the Status JSON as body), so every
failure the emulator returns is a ``metav1.Status`` with the same reason,
code and message wording as kube-apiserver.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JsonObject = dict[str, Any]


@dataclass
class FieldCause:
    """One invalid field, as listed in ``details.causes`` of a 422 Status."""

    field: str
    message: str
    reason: str = "FieldValueInvalid"

    def to_json(self) -> JsonObject:
        return {"reason": self.reason, "message": self.message, "field": self.field}


@dataclass
class ApiError(Exception):
    """A failed API call; ``status()`` is the body kube-apiserver would send."""

    code: int
    reason: str
    message: str
    name: str = ""
    group: str = ""
    kind: str = ""
    causes: list[FieldCause] = field(default_factory=list)

    def __str__(self) -> str:
        return self.message

    def status(self) -> JsonObject:
        details: JsonObject = {}
        if self.name:
            details["name"] = self.name
        if self.group:
            details["group"] = self.group
        if self.kind:
            details["kind"] = self.kind
        if self.causes:
            details["causes"] = [cause.to_json() for cause in self.causes]
        status: JsonObject = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if details:
            status["details"] = details
        return status


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, name: str, group: str = "") -> ApiError:
    return ApiError(
        404, "NotFound", f'{_qualified(resource, group)} "{name}" not found', name, group, resource
    )


def already_exists(resource: str, name: str, group: str = "") -> ApiError:
    qualified = _qualified(resource, group)
    return ApiError(409, "AlreadyExists", f'{qualified} "{name}" already exists', name, group, resource)


def conflict(resource: str, name: str, group: str = "", why: str = "") -> ApiError:
    why = why or "the object has been modified; please apply your changes to the latest version and try again"
    message = f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {why}'
    return ApiError(409, "Conflict", message, name, group, resource)


def invalid(kind: str, name: str, causes: list[FieldCause], group: str = "") -> ApiError:
    """422 Invalid: ``Kind.group "name" is invalid: field: message[, ...]``."""
    listed = [f"{cause.field}: {cause.message}" for cause in causes]
    summary = listed[0] if len(listed) == 1 else "[" + ", ".join(listed) + "]"
    message = f'{_qualified(kind, group)} "{name}" is invalid: {summary}'
    return ApiError(422, "Invalid", message, name, group, kind, causes)


def namespace_terminating(resource: str, name: str, group: str, namespace: str) -> ApiError:
    """403 from the NamespaceLifecycle admission plugin: no new content in a terminating namespace."""
    message = (
        f'{_qualified(resource, group)} "{name}" is forbidden: unable to create new content in namespace '
        f"{namespace} because it is being terminated"
    )
    cause = FieldCause(
        "metadata.namespace", f"namespace {namespace} is being terminated", "NamespaceTerminating"
    )
    return ApiError(403, "Forbidden", message, name, group, resource, [cause])


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def method_not_allowed(
    message: str = "the server does not allow this method on the requested resource",
) -> ApiError:
    return ApiError(405, "MethodNotAllowed", message)


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(
        415, "UnsupportedMediaType", f"the body of the request was in an unknown format: {content_type}"
    )


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def gone(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def unprocessable(message: str) -> ApiError:
    """422 without field causes: a patch that cannot be applied."""
    return ApiError(422, "UnprocessableEntity", message)
