"""The state of one emulated Azure Key Vault: secrets, their versions, soft-deleted secrets, the API's errors.

What a client can observe of the real service, kept here:

* every ``set`` creates a new version (32 hex characters); reading without a
  version reads the newest; a disabled version answers 403 on read;
* soft delete (what every vault has since 2025): a deleted secret moves to
  ``deletedsecrets`` with ``recoveryId``, ``deletedDate`` and a
  ``scheduledPurgeDate`` 90 days on; its name cannot be reused (409) until it
  is purged or recovered;
* names of 1-127 letters, digits and dashes; at most 15 tags;
* errors as ``{"error": {"code", "message"}}`` with the service's codes
  (``SecretNotFound``, ``Forbidden``, ``Conflict``, ``BadParameter``).
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

JsonObject = dict[str, Any]

RECOVERABLE_DAYS = 90
_NAME = re.compile(r"^[0-9A-Za-z-]{1,127}$")
_NOT_FOUND_HINT = (
    "If you recently deleted this secret you may be able to recover it using the correct recovery command. "
    "For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
)


class AzureError(Exception):
    """An error the API answers: HTTP status, error code, message."""

    def __init__(self, status: int, code: str, message: str, inner: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.inner = inner

    def body(self) -> JsonObject:
        error: JsonObject = {"code": self.code, "message": self.message}
        if self.inner:
            error["innererror"] = {"code": self.inner}
        return {"error": error}


def _secret_not_found(name: str, version: str = "") -> AzureError:
    shown = f"{name}/{version}" if version else name
    return AzureError(
        404,
        "SecretNotFound",
        f"A secret with (name/id) {shown} was not found in this key vault. {_NOT_FOUND_HINT}",
    )


def bad_parameter(message: str) -> AzureError:
    return AzureError(400, "BadParameter", message)


def check_name(name: str) -> None:
    if not _NAME.match(name):
        raise bad_parameter(
            f"The request URI contains an invalid name: {name}. "
            "Secret names are 1-127 letters, digits and dashes."
        )


@dataclass
class _Version:
    version: str
    value: str
    content_type: str | None
    tags: dict[str, str] | None
    enabled: bool
    not_before: int | None
    expires: int | None
    created: int
    updated: int


@dataclass
class _Secret:
    name: str
    versions: list[_Version] = field(default_factory=list)  # oldest first

    @property
    def current(self) -> _Version:
        return self.versions[-1]


@dataclass
class _Deleted:
    secret: _Secret
    deleted: int

    @property
    def scheduled_purge(self) -> int:
        return self.deleted + RECOVERABLE_DAYS * 86_400


def _attributes(version: _Version) -> JsonObject:
    attributes: JsonObject = {
        "enabled": version.enabled,
        "created": version.created,
        "updated": version.updated,
        "recoveryLevel": "Recoverable+Purgeable",
        "recoverableDays": RECOVERABLE_DAYS,
    }
    if version.not_before is not None:
        attributes["nbf"] = version.not_before
    if version.expires is not None:
        attributes["exp"] = version.expires
    return attributes


def _tags(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise bad_parameter("Tags must be a map of strings.")
    if len(value) > 15:
        raise bad_parameter("A secret can have at most 15 tags.")
    return dict(value)


def _optional_int(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise bad_parameter(f"Attribute {what} must be a number of seconds since the epoch.")
    return value


class KeyVaultStore:
    """One vault's secrets, thread-safe. ``base_url`` is what ids start with (the vault's URL)."""

    def __init__(self, base_url: str = "") -> None:
        self.base_url = base_url.rstrip("/")
        self._lock = threading.Lock()
        self._secrets: dict[str, _Secret] = {}
        self._deleted: dict[str, _Deleted] = {}

    def snapshot(self) -> JsonObject:
        """Every secret (with its versions) and every soft-deleted one, as JSON: what a restart restores."""
        with self._lock:
            return {
                "secrets": [asdict(secret) for secret in self._secrets.values()],
                "deleted": [asdict(deleted) for deleted in self._deleted.values()],
            }

    def restore(self, saved: JsonObject) -> None:
        """Replace the vault's content with what ``snapshot`` returned."""

        def secret(item: JsonObject) -> _Secret:
            return _Secret(item["name"], [_Version(**version) for version in item["versions"]])

        secrets = {item["name"]: secret(item) for item in saved["secrets"]}
        deleted = {
            item["secret"]["name"]: _Deleted(secret(item["secret"]), item["deleted"])
            for item in saved["deleted"]
        }
        with self._lock:
            self._secrets, self._deleted = secrets, deleted

    # ------------------------------------------------------------ shapes

    def _id(self, name: str, version: str = "") -> str:
        return f"{self.base_url}/secrets/{name}" + (f"/{version}" if version else "")

    def _bundle(self, name: str, version: _Version, *, with_value: bool = True) -> JsonObject:
        bundle: JsonObject = {"id": self._id(name, version.version), "attributes": _attributes(version)}
        if with_value:
            bundle["value"] = version.value
        if version.content_type is not None:
            bundle["contentType"] = version.content_type
        if version.tags is not None:
            bundle["tags"] = dict(version.tags)
        return bundle

    def _item(self, name: str, version: _Version, *, with_version: bool) -> JsonObject:
        item = self._bundle(name, version, with_value=False)
        if not with_version:
            item["id"] = self._id(name)
        return item

    def _deleted_bundle(self, deleted: _Deleted, *, item: bool = False) -> JsonObject:
        name = deleted.secret.name
        bundle = (
            self._item(name, deleted.secret.current, with_version=False)
            if item
            else self._bundle(name, deleted.secret.current, with_value=False)
        )
        bundle.update(
            recoveryId=f"{self.base_url}/deletedsecrets/{name}",
            deletedDate=deleted.deleted,
            scheduledPurgeDate=deleted.scheduled_purge,
        )
        return bundle

    # ------------------------------------------------------------ secrets

    def set_secret(self, name: str, body: JsonObject) -> JsonObject:
        check_name(name)
        value = body.get("value")
        if not isinstance(value, str):
            raise bad_parameter("The parameter value is required and must be a string.")
        attributes = body.get("attributes") or {}
        now = int(time.time())
        version = _Version(
            version=uuid.uuid4().hex,
            value=value,
            content_type=body.get("contentType"),
            tags=_tags(body.get("tags")),
            enabled=bool(attributes.get("enabled", True)),
            not_before=_optional_int(attributes.get("nbf"), "nbf"),
            expires=_optional_int(attributes.get("exp"), "exp"),
            created=now,
            updated=now,
        )
        with self._lock:
            if name in self._deleted:
                raise AzureError(
                    409,
                    "Conflict",
                    f"Secret {name} is currently in a deleted but recoverable state, and its name cannot be "
                    "reused; in this state, the secret can only be recovered or purged.",
                )
            self._secrets.setdefault(name, _Secret(name)).versions.append(version)
            return self._bundle(name, version)

    def _find(self, name: str, version: str) -> _Version:
        secret = self._secrets.get(name)
        if secret is None:
            raise _secret_not_found(name, version)
        if not version:
            return secret.current
        for candidate in secret.versions:
            if candidate.version == version:
                return candidate
        raise _secret_not_found(name, version)

    def get_secret(self, name: str, version: str = "") -> JsonObject:
        with self._lock:
            found = self._find(name, version)
            if not found.enabled:
                raise AzureError(
                    403,
                    "Forbidden",
                    "Operation get is not allowed on a disabled secret.",
                    inner="SecretDisabled",
                )
            return self._bundle(name, found)

    def update_secret(self, name: str, version: str, body: JsonObject) -> JsonObject:
        """PATCH: attributes, contentType and tags of one version; the value never changes."""
        with self._lock:
            found = self._find(name, version)
            attributes = body.get("attributes") or {}
            if "enabled" in attributes:
                found.enabled = bool(attributes["enabled"])
            if "nbf" in attributes:
                found.not_before = _optional_int(attributes["nbf"], "nbf")
            if "exp" in attributes:
                found.expires = _optional_int(attributes["exp"], "exp")
            if "contentType" in body:
                found.content_type = body["contentType"]
            if "tags" in body:
                found.tags = _tags(body["tags"])
            found.updated = int(time.time())
            return self._bundle(name, found, with_value=False)

    def list_secrets(self) -> list[JsonObject]:
        with self._lock:
            return [
                self._item(name, secret.current, with_version=False)
                for name, secret in sorted(self._secrets.items())
            ]

    def list_versions(self, name: str) -> list[JsonObject]:
        with self._lock:
            secret = self._secrets.get(name)
            if secret is None:
                raise _secret_not_found(name)
            return [self._item(name, version, with_version=True) for version in secret.versions]

    # ------------------------------------------------------------ soft delete

    def delete_secret(self, name: str) -> JsonObject:
        with self._lock:
            secret = self._secrets.pop(name, None)
            if secret is None:
                raise _secret_not_found(name)
            deleted = _Deleted(secret, int(time.time()))
            self._deleted[name] = deleted
            return self._deleted_bundle(deleted)

    def _find_deleted(self, name: str) -> _Deleted:
        deleted = self._deleted.get(name)
        if deleted is None:
            raise AzureError(404, "SecretNotFound", f"Deleted Secret not found: {name}")
        return deleted

    def get_deleted_secret(self, name: str) -> JsonObject:
        with self._lock:
            return self._deleted_bundle(self._find_deleted(name))

    def list_deleted_secrets(self) -> list[JsonObject]:
        with self._lock:
            return [self._deleted_bundle(d, item=True) for _, d in sorted(self._deleted.items())]

    def purge_deleted_secret(self, name: str) -> None:
        with self._lock:
            self._find_deleted(name)
            del self._deleted[name]

    def recover_deleted_secret(self, name: str) -> JsonObject:
        with self._lock:
            deleted = self._find_deleted(name)
            del self._deleted[name]
            self._secrets[name] = deleted.secret
            return self._bundle(name, deleted.secret.current, with_value=False)
