"""Prove that every cloud secret pushed from a rotated Secret holds the new value.

A PushSecret copies keys of a Kubernetes Secret into a cloud secret manager;
once that Secret is verified and the PushSecret annotated, each remote secret's
*current* version must hold what ESO pushes: AWS Secrets Manager's
``AWSCURRENT``, GCP Secret Manager's ``latest``, Azure Key Vault's latest
version. What ESO pushes (pkg/controllers/pushsecret and each provider's
PushSecret): one key's bytes, or, without ``secretKey``, the whole Secret as a
JSON object of strings; with ``remoteRef.property`` the value sits under that
property of a JSON document. Comparison is by digest inside the step, and a
whole-Secret JSON is compared as parsed JSON, so formatting does not matter.
"""

from __future__ import annotations

import hmac
import json
import random
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from vaultflow.base.errors import OperationError
from vaultflow.steps.rotation.discover import CloudStore, ConsumingPushSecret, PushedKey
from vaultflow.steps.rotation.verify import Phase, TargetKind, TargetResult


def pushed_value(key: PushedKey, source: Mapping[str, bytes]) -> bytes | None:
    """What ESO writes to the remote secret for ``key``, from the source Secret's data (None: key absent)."""
    if key.secret_key is None:
        return json.dumps({k: v.decode() for k, v in sorted(source.items())}).encode()
    return source.get(key.secret_key)


def holds(remote: bytes, expected: bytes, key: PushedKey) -> bool:
    """Whether the remote secret's current value carries ``expected`` where ESO puts it."""
    if key.property is not None:
        try:
            document = json.loads(remote)
        except ValueError:
            return False
        value = document.get(key.property) if isinstance(document, dict) else None
        actual = value.encode() if isinstance(value, str) else json.dumps(value).encode()
        return hmac.compare_digest(actual, expected)
    if key.secret_key is None:
        try:
            return bool(json.loads(remote) == json.loads(expected))
        except ValueError:
            return False
    return hmac.compare_digest(remote, expected)


@dataclass
class CloudReaders:
    """Reads a remote secret's current value, one SDK client per cloud location, built on first use.

    The SDKs take their endpoints and credentials from the environment as in a
    pod (AWS_ENDPOINT_URL, workload identity, ...); tests and the sandbox pass
    ready clients instead, built against the emulators.
    """

    aws: Callable[[str], Any] | None = None  # region -> boto3 secretsmanager client
    gcp: Callable[[str], Any] | None = None  # project -> SecretManagerServiceClient
    azure: Callable[[str], Any] | None = None  # vault URL -> SecretClient
    _made: dict[tuple[str, str], Any] = field(default_factory=dict)

    def current(self, store: CloudStore, remote_key: str) -> bytes | None:
        """The current value of ``remote_key`` in ``store``'s cloud, None when it has none."""
        client = self._client(store)
        where = f"{store.provider} secret {remote_key!r} ({store.location})"
        try:
            if store.provider == "aws":
                return _aws_current(client, remote_key)
            if store.provider == "gcp":
                return _gcp_current(client, store.location, remote_key)
            return _azure_current(client, remote_key)
        except OperationError:
            raise
        except Exception as error:  # each SDK has its own error tree; the message is what matters here
            raise OperationError(f"{where}: cannot read it ({type(error).__name__}: {error})") from None

    def _client(self, store: CloudStore) -> Any:
        key = (store.provider, store.location)
        if key not in self._made:
            factory = {
                "aws": self.aws or _aws_client,
                "gcp": self.gcp or _gcp_client,
                "azure": self.azure or _azure_client,
            }
            self._made[key] = factory[store.provider](store.location)
        return self._made[key]


def _aws_client(region: str) -> Any:
    from vaultflow.steps.cloud_clients import aws_secrets_manager

    return aws_secrets_manager(region or None)


def _gcp_client(project: str) -> Any:
    from vaultflow.steps.cloud_clients import gcp_secret_manager

    return gcp_secret_manager()  # one client serves every project


def _azure_client(vault_url: str) -> Any:
    from vaultflow.steps.cloud_clients import azure_secret_client

    return azure_secret_client(vault_url)


def _aws_current(client: Any, name: str) -> bytes | None:
    from botocore.exceptions import ClientError

    try:
        value = client.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")
    except ClientError as error:
        if error.response["Error"]["Code"] == "ResourceNotFoundException":
            return None
        raise
    if "SecretString" in value:
        return str(value["SecretString"]).encode()
    return bytes(value.get("SecretBinary") or b"")


def _gcp_current(client: Any, project: str, name: str) -> bytes | None:
    from google.api_core import exceptions

    try:
        response = client.access_secret_version(name=f"projects/{project}/secrets/{name}/versions/latest")
    except exceptions.NotFound:
        return None
    return bytes(response.payload.data)


def _azure_current(client: Any, name: str) -> bytes | None:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        secret = client.get_secret(name)
    except ResourceNotFoundError:
        return None
    return str(secret.value or "").encode()


_KIND: dict[str, TargetKind] = {
    "aws": "AwsSecretsManager",
    "gcp": "GcpSecretManager",
    "azure": "AzureKeyVault",
}


@dataclass(frozen=True)
class CloudTarget:
    """A PushSecret whose source Secret was verified, that source's data, and when Vault was written."""

    push: ConsumingPushSecret
    source: Mapping[str, bytes]
    written_at: datetime


@dataclass
class _Remote:
    push: ConsumingPushSecret
    store: CloudStore
    key: PushedKey
    expected: bytes | None
    written_at: datetime
    deadline: float  # time.monotonic() after which it is not read again
    seen: str = "not looked at yet"
    result: TargetResult | None = None
    next_read: float = 0.0
    wait: float = 0.0
    cued: bool = False  # a cue came since its last read began: read again at once


class CloudVerification:
    """Verifies pushed cloud secrets in a thread of its own, each from the moment it is ``add``-ed.

    The rotation adds a PushSecret as soon as its source Secret is verified and
    the PushSecret annotated, while the other Secrets are still being verified:
    a cloud secret's wait does not include the slowest Secret's. Each remote
    secret is read on its own schedule, backing off (``initial`` doubling to
    ``maximum`` seconds, with jitter) while it does not hold the new value, until
    it does, or ``timeout`` seconds after the verification started (at least one
    second after it was added); the last read is made at that deadline.

    A cloud has no watch, but ESO's PushSecret status says when a push happened:
    given ``first_read`` (seconds after ``add``), a caller that watches the
    PushSecrets ``cue``-s each one whose status changes (ESO pushed, or failed
    to), which reads its secrets at once and backs off from ``initial`` again
    (a cloud may serve the previous version for a moment after a write). The
    schedule alone, with a longer ``maximum``, then only covers a missed cue.
    Every cloud read is a request to the provider (and, in the sandbox, CPU taken
    from ESO): reading each pushed secret every second until ESO's queue reached
    it cost about eight reads per secret (docs/rotation.md, Performance).

    ``with CloudVerification(readers, timeout=...) as cloud: cloud.add(...)``;
    leaving the block waits until every remote secret added is settled.
    """

    def __init__(
        self,
        readers: CloudReaders,
        *,
        timeout: float,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        initial: float = 0.25,  # ESO's PushSecret controller needs a moment after the annotation
        maximum: float = 1.0,
        first_read: float | None = None,  # seconds after ``add``; None: ``initial``
    ) -> None:
        self._readers, self._timeout, self._now = readers, timeout, now
        self._initial, self._maximum = initial, maximum
        self._first_read = initial if first_read is None else first_read
        self._deadline = time.monotonic() + timeout
        self._added: list[list[_Remote]] = []
        self._closed = self._abandoned = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="verify-clouds", daemon=True)

    def __enter__(self) -> CloudVerification:
        self._thread.start()
        return self

    def __exit__(self, error_type: type[BaseException] | None, *_: object) -> None:
        with self._changed:
            self._closed = True
            self._abandoned = error_type is not None  # the step is failing: do not wait for the clouds
            self._changed.notify()
        self._thread.join()

    def add(self, target: CloudTarget) -> int:
        """Start verifying the remote secrets of one PushSecret; the index for ``results``."""
        at = time.monotonic()
        remotes = [
            _Remote(
                target.push,
                store,
                key,
                pushed_value(key, target.source),
                target.written_at,
                deadline=max(self._deadline, at + 1.0),
                next_read=at + self._first_read,
                wait=self._first_read,
            )
            for store in target.push.stores
            for key in target.push.keys
        ]
        with self._changed:
            self._added.append(remotes)
            self._changed.notify()
            return len(self._added) - 1

    def cue(self, index: int) -> None:
        """The PushSecret of one ``add`` reported a push (or a failure): read its secrets now, then back
        off from ``initial`` again. Called from a watch's thread: it does not block."""
        moment = time.monotonic()
        with self._changed:
            for remote in self._added[index]:
                if remote.result is None:
                    remote.cued, remote.next_read = True, min(moment, remote.deadline)
            self._changed.notify()

    def results(self, index: int) -> list[TargetResult]:
        """The results of one ``add``, one per store and key, in that order (after the ``with`` block)."""
        return [r.result or self._timed_out(r) for r in self._added[index]]

    def _timed_out(self, remote: _Remote) -> TargetResult:
        return _cloud_result(
            remote, "TimedOut", None, f"not verified within {self._timeout:g}s: {remote.seen}"
        )

    def _run(self) -> None:
        while True:
            with self._changed:
                open_ = [r for remotes in self._added for r in remotes if r.result is None]
                if (not open_ and self._closed) or self._abandoned:
                    return
                moment = time.monotonic()
                due = [r for r in open_ if r.next_read <= moment or r.deadline <= moment]
                if not due:
                    upcoming = [min(r.next_read, r.deadline) for r in open_]
                    self._changed.wait(timeout=min(upcoming) - moment if upcoming else None)
                    continue
                cued = {id(r) for r in due if r.cued}
                for remote in due:
                    remote.cued = False
            for remote in due:
                self._read(remote, cued=id(remote) in cued)

    def _read(self, remote: _Remote, *, cued: bool = False) -> None:
        if remote.expected is None:
            remote.result = _cloud_result(
                remote, "Failed", None, f"source Secret has no key {remote.key.secret_key!r}"
            )
            return
        try:
            current = self._readers.current(remote.store, remote.key.remote_key)
        except OperationError as error:
            remote.seen = str(error)
        else:
            if current is not None and holds(current, remote.expected, remote.key):
                seconds = (self._now() - remote.written_at).total_seconds()
                remote.result = _cloud_result(
                    remote, "Verified", seconds, "current version holds the new value"
                )
                return
            remote.seen = "no current version" if current is None else "current version holds another value"
        moment = time.monotonic()
        if moment >= remote.deadline:  # that was the last read
            remote.result = self._timed_out(remote)
            return
        with self._changed:
            if remote.cued:  # ESO reported again while this read was under way: it may have missed it
                remote.next_read = moment
                return
            # after a cue, the backoff starts again from ``initial``
            remote.wait = min(self._initial if cued else remote.wait * 2, self._maximum)
            remote.next_read = min(moment + random.uniform(remote.wait / 2, remote.wait), remote.deadline)


def verify_cloud_targets(
    pushes: Iterable[CloudTarget],
    readers: CloudReaders,
    *,
    timeout: float,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> list[TargetResult]:
    """Wait until every remote secret of ``pushes`` holds what ESO pushes from its (verified) source data.

    One result per PushSecret, store and key, in that order.
    """
    with CloudVerification(readers, timeout=timeout, now=now) as cloud:
        added = [cloud.add(target) for target in pushes]
    return [result for index in added for result in cloud.results(index)]


def _cloud_result(remote: _Remote, phase: Phase, seconds: float | None, message: str) -> TargetResult:
    return TargetResult(
        kind=_KIND[remote.store.provider],
        cluster=remote.push.cluster,
        namespace=remote.push.namespace,
        name=remote.key.remote_key,
        cloud=f"{remote.store.provider}:{remote.store.location}",
        source=remote.push.source,
        phase=phase,
        seconds=None if seconds is None else round(seconds, 3),
        indirect=False,
        message=f"PushSecret {remote.push.namespace}/{remote.push.name}: {message}",
    )


def unverified_pushes(push: ConsumingPushSecret, why: str) -> list[TargetResult]:
    """The cloud targets of a PushSecret whose source never held the new value: failed, and why."""
    return [
        _cloud_result(_Remote(push, store, key, None, datetime.now(UTC), deadline=0.0), "Failed", None, why)
        for store in push.stores
        for key in push.keys
    ]
