"""GitHub's client errors, shaped as its REST API answers them (``docs.github.com/rest`` "client errors").

``{"message": ..., "documentation_url": ...}``, plus ``errors`` (each with
``resource``, ``field``, ``code`` and, for ``custom``, a ``message``) on a 422
"Validation Failed". PyGithub turns them into its exceptions by status and
message: 401 "Bad credentials" -> ``BadCredentialsException``, a 404 whose
message says "not found" -> ``UnknownObjectException``, anything else ->
``GithubException`` carrying the body.
"""

from __future__ import annotations

from typing import Any

DOCS = "https://docs.github.com/rest"


class GitHubError(Exception):
    """An answer other than success: raised by the emulator's logic, turned into the response by the API."""

    def __init__(self, status: int, message: str, documentation_url: str = DOCS, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"message": message, **extra, "documentation_url": documentation_url}


def not_found(documentation_url: str, message: str = "Not Found") -> GitHubError:
    return GitHubError(404, message, documentation_url)


def validation_failed(documentation_url: str, *errors: dict[str, str]) -> GitHubError:
    return GitHubError(422, "Validation Failed", documentation_url, errors=list(errors))


def invalid_field(resource: str, field: str, documentation_url: str) -> GitHubError:
    return validation_failed(documentation_url, {"resource": resource, "field": field, "code": "invalid"})


def missing_field(resource: str, field: str, documentation_url: str) -> GitHubError:
    return validation_failed(
        documentation_url, {"resource": resource, "field": field, "code": "missing_field"}
    )


def custom(resource: str, message: str, documentation_url: str, field: str | None = None) -> GitHubError:
    error = {"resource": resource, "code": "custom", "message": message}
    if field is not None:
        error["field"] = field
    return validation_failed(documentation_url, error)
