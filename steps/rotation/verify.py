"""Prove that every Kubernetes Secret built from a rotated path holds the new version's value.

ESO records no version of what it fetched, so the proof is the content: the
step reads the expected data from Vault by version (values never pass between
steps), builds the Secret data ESO would write from it, and compares digests
inside the step. A target counts as verified when

* its Secret holds exactly the expected keys and values (for ``Merge`` targets:
  the keys this ExternalSecret owns), and, for an ``Owner`` target that reads
  nothing else, ESO's ``reconcile.external-secrets.io/data-hash`` is the hash of
  the expected data, and
* its ExternalSecret is Ready and refreshed (``status.refreshTime``) at or
  after the Vault write.

A target whose content is not the Vault value (``target.template``, a
conversion or decoding strategy, a rewrite) is verified *indirectly*: Ready,
refreshed after the write, and its data-hash changed from the one before the
write. An ``immutable`` target that still holds the old value is a failure.

Each poll round lists, per cluster, each consuming namespace's Secrets and
ExternalSecrets once: the cost of a round does not grow with the number of
targets in a namespace.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel

from vaultflow.base.errors import OperationError
from vaultflow.base.retry import poll_until
from vaultflow.base.times import parse_time
from vaultflow.steps.kube.errors import kube_errors
from vaultflow.steps.rotation.discover import ESO_GROUP, ConsumingExternalSecret

DATA_HASH = "reconcile.external-secrets.io/data-hash"
Phase = Literal["Verified", "Failed", "TimedOut"]
TargetKind = Literal["KubernetesSecret", "AwsSecretsManager", "GcpSecretManager", "AzureKeyVault"]


class TargetResult(BaseModel):
    """One target's outcome, as the rotation report shows it (no value, no digest of one)."""

    kind: TargetKind
    cluster: str | None
    namespace: str | None
    name: str
    cloud: str | None
    source: Literal["catalog", "discovered"]
    phase: Phase
    seconds: float | None  # from the Vault write to verified
    indirect: bool
    message: str


def go_byte_map(data: Mapping[str, bytes]) -> str:
    """Go's ``fmt.Sprintf("%+v", m)`` of a ``map[string][]byte``: sorted keys, bytes as decimals."""
    return "map[" + " ".join(f"{key}:[{' '.join(str(b) for b in data[key])}]" for key in sorted(data)) + "]"


def eso_data_hash(data: Mapping[str, bytes]) -> str:
    """ESO's data-hash of a Secret's data: hex SHA3-224 of the Go rendering (pkg/utils ObjectHash)."""
    return hashlib.sha3_224(go_byte_map(data).encode()).hexdigest()


def eso_value(value: Any) -> bytes:
    """How ESO's Vault provider turns a property into Secret bytes: strings as they are, the rest as JSON."""
    if isinstance(value, str):
        return value.encode()
    return json.dumps(value, separators=(",", ":")).encode()


def expected_data(consumer: ConsumingExternalSecret, vault_data: Mapping[str, Any]) -> dict[str, bytes]:
    """The keys and bytes ESO writes into ``consumer``'s Secret from one version of the path."""
    expected: dict[str, bytes] = {}
    if consumer.extract:
        expected.update({key: eso_value(value) for key, value in vault_data.items()})
    for mapping in consumer.keys:
        if mapping.property is None:
            expected[mapping.secret_key] = eso_value(dict(vault_data))
        elif mapping.property in vault_data:
            expected[mapping.secret_key] = eso_value(vault_data[mapping.property])
    return expected


@dataclass
class Observation:
    """What one poll round saw of one target: verified, or why not (never a value)."""

    verified: bool
    message: str
    failed: bool = False  # it cannot converge any more (immutable): stop waiting for it


def observe_target(
    consumer: ConsumingExternalSecret,
    *,
    external_secret: Mapping[str, Any] | None,
    secret: Mapping[str, Any] | None,
    expected: Mapping[str, bytes],
    written_at: datetime,
    hash_before: str | None,
) -> Observation:
    """One look at one target (pure: the objects are what the round's LISTs returned)."""
    waiting = _not_refreshed(consumer, external_secret, written_at)
    if waiting is not None:
        return Observation(False, waiting)
    if secret is None:
        return Observation(False, f"Secret {consumer.namespace}/{consumer.secret_name} does not exist")
    return _content(consumer, secret, expected, hash_before)


def _not_refreshed(
    consumer: ConsumingExternalSecret, external_secret: Mapping[str, Any] | None, written_at: datetime
) -> str | None:
    """Why the ExternalSecret has not yet synced since the write (ESO's own words), or None."""
    where = f"ExternalSecret {consumer.namespace}/{consumer.name} in cluster {consumer.cluster}"
    if external_secret is None:
        return f"{where} is gone"
    status = external_secret.get("status") or {}
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    if ready is None or ready.get("status") != "True":
        reason = (
            f"{ready.get('reason', '')}: {ready.get('message', '')}" if ready else "no Ready condition yet"
        )
        return f"{where} is not Ready ({reason})"
    refreshed = status.get("refreshTime")
    # refreshTime has whole seconds: a refresh in the write's second counts.
    if not refreshed or parse_time(refreshed) < written_at.replace(microsecond=0):
        return f"{where} has not refreshed since the write (refreshTime {refreshed or 'none'})"
    return None


def _content(
    consumer: ConsumingExternalSecret,
    secret: Mapping[str, Any],
    expected: Mapping[str, bytes],
    hash_before: str | None,
) -> Observation:
    name = f"Secret {consumer.namespace}/{consumer.secret_name}"
    current_hash = ((secret.get("metadata") or {}).get("annotations") or {}).get(DATA_HASH)
    if consumer.templated or consumer.converted:
        if current_hash and current_hash != hash_before:
            return Observation(True, "Ready, refreshed after the write, content changed (indirect)")
        return Observation(False, f"{name} did not change")
    if not _holds(secret, expected):
        if consumer.immutable:
            return Observation(False, f"{name} is immutable: ESO cannot update it", failed=True)
        return Observation(False, f"{name} still holds another value")
    owned_whole = consumer.creation_policy == "Owner" and not consumer.reads_other_paths
    if owned_whole and current_hash != eso_data_hash(expected):
        return Observation(False, f"{name}: ESO's data-hash does not match the new version yet")
    return Observation(True, "holds the new version")


def _holds(secret: Mapping[str, Any], expected: Mapping[str, bytes]) -> bool:
    data = secret.get("data") or {}
    for key, value in expected.items():
        if key not in data or not hmac.compare_digest(base64.b64decode(data[key]), value):
            return False
    return True


@dataclass(frozen=True)
class KubeTarget:
    """A consuming ExternalSecret, the data its Secret must hold, and what is known from before the write.

    ``hash_before`` is the Secret's data-hash before the write (for indirect
    verification); ``written_at`` is when the Vault write happened: a refresh
    must follow it, and the latency is counted from it.
    """

    consumer: ConsumingExternalSecret
    expected: dict[str, bytes]
    hash_before: str | None
    written_at: datetime


@dataclass
class _Pending:
    target: KubeTarget
    seen: str = "not looked at yet"
    result: TargetResult | None = field(default=None)

    @property
    def consumer(self) -> ConsumingExternalSecret:
        return self.target.consumer


def verify_kubernetes_targets(
    clients: Mapping[str, Any],
    targets: Iterable[KubeTarget],
    *,
    timeout: float,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    on_verified: Callable[[ConsumingExternalSecret], None] = lambda _: None,
) -> list[TargetResult]:
    """Wait until every target holds its expected data, or ``timeout`` seconds pass.

    ``on_verified`` is called once per target as it is verified (the
    PushSecrets that read it are annotated then). Latency is wall-clock time
    since the target's write: the write may have happened in another step, in
    another pod. Returns one result per target, in order.
    """
    pending = [_Pending(target) for target in targets]

    def round_() -> int:
        open_ = [p for p in pending if p.result is None]
        for (cluster, namespace), group in _by_namespace(open_).items():
            try:
                secrets, external_secrets = _list_namespace(clients[cluster], cluster, namespace)
            except OperationError as error:  # a cluster down or a 403: named per target, polled again
                for item in group:
                    item.seen = str(error)
                continue
            for item in group:
                consumer = item.consumer
                seen = observe_target(
                    consumer,
                    external_secret=external_secrets.get(consumer.name),
                    secret=secrets.get(consumer.secret_name),
                    expected=item.target.expected,
                    written_at=item.target.written_at,
                    hash_before=item.target.hash_before,
                )
                item.seen = seen.message
                if seen.verified or seen.failed:
                    phase: Phase = "Verified" if seen.verified else "Failed"
                    latency = (now() - item.target.written_at).total_seconds() if seen.verified else None
                    item.result = _result(consumer, phase, latency, seen.message)
                    if seen.verified:
                        on_verified(consumer)
        return sum(1 for p in pending if p.result is None)

    # On timeout the targets still open are named below, each with what was last seen.
    with contextlib.suppress(OperationError):
        poll_until(round_, lambda left: left == 0, what="the rotated Secrets", timeout=timeout, describe=str)
    return [
        p.result or _result(p.consumer, "TimedOut", None, f"not verified within {timeout:g}s: {p.seen}")
        for p in pending
    ]


def _result(
    consumer: ConsumingExternalSecret, phase: Phase, seconds: float | None, message: str
) -> TargetResult:
    return TargetResult(
        kind="KubernetesSecret",
        cluster=consumer.cluster,
        namespace=consumer.namespace,
        name=consumer.secret_name,
        cloud=None,
        source=consumer.source,
        phase=phase,
        seconds=None if seconds is None else round(seconds, 3),
        indirect=consumer.templated or consumer.converted,
        message=message,
    )


def data_hashes(
    clients: Mapping[str, Any], consumers: Iterable[ConsumingExternalSecret]
) -> dict[str, str | None]:
    """Each consumer's Secret's ESO data-hash now (None: no Secret or no hash), keyed by ``target_key``.

    Read before the write, for the targets verified indirectly; one LIST per namespace per cluster.
    """
    wanted = list(consumers)
    hashes: dict[str, str | None] = {}
    for cluster, namespace in dict.fromkeys((c.cluster, c.namespace) for c in wanted):
        secrets, _ = _list_namespace(clients[cluster], cluster, namespace)
        for consumer in (c for c in wanted if (c.cluster, c.namespace) == (cluster, namespace)):
            secret = secrets.get(consumer.secret_name) or {}
            hashes[target_key(consumer)] = ((secret.get("metadata") or {}).get("annotations") or {}).get(
                DATA_HASH
            )
    return hashes


def target_key(consumer: ConsumingExternalSecret) -> str:
    """``cluster/namespace/ExternalSecret name``: one consuming ExternalSecret, everywhere."""
    return f"{consumer.cluster}/{consumer.namespace}/{consumer.name}"


def _by_namespace(items: Iterable[_Pending]) -> dict[tuple[str, str], list[_Pending]]:
    grouped: dict[tuple[str, str], list[_Pending]] = {}
    for item in items:
        grouped.setdefault((item.consumer.cluster, item.consumer.namespace), []).append(item)
    return grouped


def _list_namespace(api_client: Any, cluster: str, namespace: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The namespace's Secrets and ExternalSecrets, one LIST each, by name (plain JSON objects)."""
    from kubernetes import client

    core = client.CoreV1Api(api_client)
    custom = client.CustomObjectsApi(api_client)
    with kube_errors(f"cluster {cluster}", f"list Secrets in namespace {namespace}"):
        secrets = core.list_namespaced_secret(namespace, _preload_content=False)
    with kube_errors(f"cluster {cluster}", f"list ExternalSecrets in namespace {namespace}"):
        external_secrets = custom.list_namespaced_custom_object(ESO_GROUP, "v1", namespace, "externalsecrets")
    secret_items = json.loads(secrets.data)["items"]
    return (
        {s["metadata"]["name"]: s for s in secret_items},
        {e["metadata"]["name"]: e for e in external_secrets.get("items", [])},
    )
