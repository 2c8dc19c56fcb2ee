"""The state of the emulated GCP Secret Manager: secrets, their versions, and the API's errors.

What a client can observe of the real service, kept here:

* resource names carry the project **number** (``projects/483920193847/...``),
  whatever the request used; requests may name a project by id or number;
* versions are numbered from 1 per secret; ``latest`` is the most recently
  created version whatever its state, so accessing it when it is disabled
  fails (clients that want "the newest enabled" list versions, as ESO does);
* states ENABLED, DISABLED, DESTROYED: a destroyed version has no payload and
  cannot be enabled or disabled again;
* errors with the service's HTTP code, gRPC status name and message:
  404 NOT_FOUND, 409 ALREADY_EXISTS, 400 FAILED_PRECONDITION, 400 INVALID_ARGUMENT,
  409 ABORTED for a stale etag.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from vaultflow.sandbox.gcp.crc32c import crc32c

JsonObject = dict[str, Any]

_SECRET_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_MAX_PAYLOAD = 64 * 1024
_MAX_PAGE = 25_000


class GcpError(Exception):
    """An error the API answers: HTTP code, gRPC status name, message."""

    def __init__(self, code: int, status: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message

    def body(self) -> JsonObject:
        return {"error": {"code": self.code, "message": self.message, "status": self.status}}


def not_found(message: str) -> GcpError:
    return GcpError(404, "NOT_FOUND", message)


def invalid(message: str) -> GcpError:
    return GcpError(400, "INVALID_ARGUMENT", message)


def failed_precondition(message: str) -> GcpError:
    return GcpError(400, "FAILED_PRECONDITION", message)


def project_number(project: str) -> str:
    """The stable 12-digit number the sandbox gives a project id (a number stays itself)."""
    if project.isdigit():
        return project
    digest = int(hashlib.sha256(project.encode()).hexdigest(), 16)
    return str(100_000_000_000 + digest % 900_000_000_000)


def _timestamp(seconds: float) -> str:
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _etag() -> str:
    return f'"{time.time_ns() // 1000:x}"'


@dataclass
class _Version:
    number: int
    payload: bytes | None
    create_time: float
    etag: str
    state: str = "ENABLED"
    destroy_time: float | None = None


@dataclass
class _Secret:
    name: str
    create_time: float
    replication: JsonObject | None
    labels: dict[str, str]
    annotations: dict[str, str]
    etag: str
    topics: list[JsonObject] = field(default_factory=list)
    versions: list[_Version] = field(default_factory=list)


@dataclass(frozen=True)
class SecretPath:
    """Which secret a request names: project (id or number), optional location, secret id."""

    project: str
    secret_id: str
    location: str | None = None

    @property
    def parent(self) -> str:
        base = f"projects/{project_number(self.project)}"
        return f"{base}/locations/{self.location}" if self.location else base

    @property
    def name(self) -> str:
        return f"{self.parent}/secrets/{self.secret_id}"


def _version_json(secret: _Secret, version: _Version) -> JsonObject:
    result: JsonObject = {
        "name": f"{secret.name}/versions/{version.number}",
        "createTime": _timestamp(version.create_time),
        "state": version.state,
        "etag": version.etag,
        "clientSpecifiedPayloadChecksum": True,
    }
    if secret.replication is not None:
        result["replicationStatus"] = (
            {"automatic": {}}
            if "automatic" in secret.replication
            else {
                "userManaged": {
                    "replicas": [
                        {"location": replica.get("location", "")}
                        for replica in secret.replication.get("userManaged", {}).get("replicas", [])
                    ]
                }
            }
        )
    if version.destroy_time is not None:
        result["destroyTime"] = _timestamp(version.destroy_time)
    return result


def _secret_json(secret: _Secret) -> JsonObject:
    result: JsonObject = {
        "name": secret.name,
        "createTime": _timestamp(secret.create_time),
        "etag": secret.etag,
    }
    if secret.replication is not None:
        result["replication"] = secret.replication
    if secret.labels:
        result["labels"] = dict(secret.labels)
    if secret.annotations:
        result["annotations"] = dict(secret.annotations)
    if secret.topics:
        result["topics"] = list(secret.topics)
    return result


def _check_labels(labels: Any) -> dict[str, str]:
    if labels is None:
        return {}
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise invalid("labels must be a map of strings")
    for key in labels:
        if not _LABEL_KEY.match(key):
            raise invalid(f"Invalid label key: {key!r}")
    return dict(labels)


def _page(items: list[JsonObject], page_size: int, page_token: str) -> tuple[list[JsonObject], str]:
    try:
        start = int(base64.urlsafe_b64decode(page_token.encode()).decode()) if page_token else 0
    except ValueError:
        raise invalid(f"Invalid page token {page_token!r}") from None
    size = min(page_size, _MAX_PAGE) if page_size > 0 else _MAX_PAGE
    page = items[start : start + size]
    end = start + len(page)
    token = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(items) else ""
    return page, token


def _label_equals(key: str, value: str) -> Callable[[_Secret], bool]:
    return lambda secret: secret.labels.get(key) == value


def _label_present(key: str) -> Callable[[_Secret], bool]:
    return lambda secret: key in secret.labels


def _name_contains(text: str) -> Callable[[_Secret], bool]:
    return lambda secret: text in secret.name.rsplit("/", 1)[1]


def _filter(expression: str) -> Callable[[_Secret], bool]:
    """The subset of the list filter language clients use: ``labels.K=V``, ``labels.K:*``, ``name:TEXT``."""
    checks: list[Callable[[_Secret], bool]] = []
    for term in expression.replace(" AND ", " ").split():
        if term.startswith("labels.") and "=" in term:
            key, _, value = term.removeprefix("labels.").partition("=")
            checks.append(_label_equals(key, value.strip('"')))
        elif term.startswith("labels.") and ":" in term:
            checks.append(_label_present(term.removeprefix("labels.").split(":", 1)[0]))
        elif term.startswith("name:"):
            checks.append(_name_contains(term.removeprefix("name:").strip('"')))
        else:
            raise invalid(
                f"Invalid filter {expression!r}: the sandbox supports labels.K=V, labels.K:* and name:TEXT"
            )
    return lambda secret: all(check(secret) for check in checks)


def _dump_version(version: _Version) -> JsonObject:
    payload = version.payload
    return {**asdict(version), "payload": None if payload is None else base64.b64encode(payload).decode()}


def _load_version(item: JsonObject) -> _Version:
    payload = item["payload"]
    return _Version(**{**item, "payload": None if payload is None else base64.b64decode(payload)})


class SecretManagerStore:
    """Every project's secrets, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._secrets: dict[str, _Secret] = {}

    def snapshot(self) -> list[JsonObject]:
        """Every secret with its versions as JSON (payloads base64): what a sandbox restart restores."""
        with self._lock:
            return [
                {**asdict(secret), "versions": [_dump_version(v) for v in secret.versions]}
                for secret in self._secrets.values()
            ]

    def restore(self, secrets: list[JsonObject]) -> None:
        """Replace every secret with those ``snapshot`` returned (what the cloud kept meanwhile)."""
        loaded = {
            item["name"]: _Secret(**{**item, "versions": [_load_version(v) for v in item["versions"]]})
            for item in secrets
        }
        with self._lock:
            self._secrets = loaded

    # ------------------------------------------------------------ secrets

    def _secret(self, path: SecretPath) -> _Secret:
        secret = self._secrets.get(path.name)
        if secret is None:
            raise not_found(f"Secret [{path.name}] not found.")
        return secret

    def create_secret(self, path: SecretPath, body: JsonObject) -> JsonObject:
        if not _SECRET_ID.match(path.secret_id):
            raise invalid(
                f"Secret ID [{path.secret_id}] is invalid: use at most 255 letters, digits, '_' and '-'."
            )
        replication = body.get("replication")
        if path.location is None and not replication:
            raise invalid("Secret.replication is required.")
        if path.location is not None and replication:
            raise invalid("Secret.replication must not be set for a regional secret.")
        with self._lock:
            if path.name in self._secrets:
                raise GcpError(409, "ALREADY_EXISTS", f"Secret [{path.name}] already exists.")
            secret = _Secret(
                name=path.name,
                create_time=time.time(),
                replication=replication,
                labels=_check_labels(body.get("labels")),
                annotations=dict(body.get("annotations") or {}),
                etag=_etag(),
                topics=list(body.get("topics") or []),
            )
            self._secrets[path.name] = secret
            return _secret_json(secret)

    def get_secret(self, path: SecretPath) -> JsonObject:
        with self._lock:
            return _secret_json(self._secret(path))

    def update_secret(self, path: SecretPath, body: JsonObject, update_mask: list[str]) -> JsonObject:
        if not update_mask:
            raise invalid("update_mask is required.")
        with self._lock:
            secret = self._secret(path)
            etag = body.get("etag")
            if etag and etag != secret.etag:
                raise GcpError(409, "ABORTED", f"The etag provided for [{path.name}] does not match.")
            for field_name in update_mask:
                if field_name == "labels":
                    secret.labels = _check_labels(body.get("labels"))
                elif field_name == "annotations":
                    secret.annotations = dict(body.get("annotations") or {})
                elif field_name == "topics":
                    secret.topics = list(body.get("topics") or [])
                else:
                    raise invalid(f"update_mask path {field_name!r} is not updatable in the sandbox")
            secret.etag = _etag()
            return _secret_json(secret)

    def delete_secret(self, path: SecretPath, etag: str) -> None:
        with self._lock:
            secret = self._secret(path)
            if etag and etag != secret.etag:
                raise GcpError(409, "ABORTED", f"The etag provided for [{path.name}] does not match.")
            del self._secrets[path.name]

    def list_secrets(
        self, project: str, location: str | None, page_size: int, page_token: str, filter_expression: str
    ) -> JsonObject:
        prefix = SecretPath(project, "x", location).parent + "/secrets/"
        matches = _filter(filter_expression)
        with self._lock:
            items = [
                _secret_json(s)
                for name, s in sorted(self._secrets.items())
                if name.startswith(prefix) and "/" not in name[len(prefix) :] and matches(s)
            ]
        page, token = _page(items, page_size, page_token)
        result: JsonObject = {"totalSize": len(items)}
        if page:
            result["secrets"] = page
        if token:
            result["nextPageToken"] = token
        return result

    # ------------------------------------------------------------ versions

    def add_version(self, path: SecretPath, body: JsonObject) -> JsonObject:
        payload = body.get("payload") or {}
        try:
            data = base64.b64decode(payload.get("data") or "", validate=True)
        except ValueError:
            raise invalid("payload.data is not valid base64.") from None
        if len(data) > _MAX_PAYLOAD:
            raise invalid(f"Secret payload is larger than {_MAX_PAYLOAD} bytes.")
        checksum = payload.get("dataCrc32c")
        if checksum is not None and int(checksum) != crc32c(data):
            raise invalid("Data integrity check failed: the payload's CRC32C checksum does not match.")
        with self._lock:
            secret = self._secret(path)
            number = secret.versions[-1].number + 1 if secret.versions else 1
            version = _Version(number=number, payload=data, create_time=time.time(), etag=_etag())
            secret.versions.append(version)
            return _version_json(secret, version)

    def _version(self, path: SecretPath, version_id: str) -> tuple[_Secret, _Version]:
        secret = self._secrets.get(path.name)
        if version_id == "latest":
            if secret is None or not secret.versions:
                raise not_found(f"Secret [{path.name}] not found or has no versions.")
            return secret, secret.versions[-1]
        missing = not_found(f"Secret Version [{path.name}/versions/{version_id}] not found.")
        if secret is None:
            raise missing
        if not version_id.isdigit():
            raise invalid(f"Invalid version id [{version_id}]: use a number or 'latest'.")
        for version in secret.versions:
            if version.number == int(version_id):
                return secret, version
        raise missing

    def get_version(self, path: SecretPath, version_id: str) -> JsonObject:
        with self._lock:
            secret, version = self._version(path, version_id)
            return _version_json(secret, version)

    def access_version(self, path: SecretPath, version_id: str) -> JsonObject:
        with self._lock:
            secret, version = self._version(path, version_id)
            name = f"{secret.name}/versions/{version.number}"
            if version.state != "ENABLED" or version.payload is None:
                raise failed_precondition(f"Secret Version [{name}] is in {version.state} state.")
            data = version.payload
        return {
            "name": name,
            "payload": {"data": base64.b64encode(data).decode(), "dataCrc32c": str(crc32c(data))},
        }

    def set_version_state(self, path: SecretPath, version_id: str, action: str, etag: str) -> JsonObject:
        """``action`` is enable, disable or destroy."""
        with self._lock:
            secret, version = self._version(path, version_id)
            name = f"{secret.name}/versions/{version.number}"
            if etag and etag != version.etag:
                raise GcpError(409, "ABORTED", f"The etag provided for [{name}] does not match.")
            if version.state == "DESTROYED":
                raise failed_precondition(f"Secret Version [{name}] is in DESTROYED state.")
            if action == "destroy":
                version.state, version.payload, version.destroy_time = "DESTROYED", None, time.time()
            else:
                version.state = "ENABLED" if action == "enable" else "DISABLED"
            version.etag = _etag()
            return _version_json(secret, version)

    def list_versions(
        self, path: SecretPath, page_size: int, page_token: str, filter_expression: str
    ) -> JsonObject:
        if filter_expression:
            raise invalid("The sandbox does not filter versions.")
        with self._lock:
            secret = self._secret(path)
            items = [_version_json(secret, v) for v in reversed(secret.versions)]  # newest first
        page, token = _page(items, page_size, page_token)
        result: JsonObject = {"totalSize": len(items)}
        if page:
            result["versions"] = page
        if token:
            result["nextPageToken"] = token
        return result
