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

Each poll round lists, per cluster, the ExternalSecrets it waits for once, and
each consuming namespace's Secrets once when an ExternalSecret there has
refreshed since the write (until then its Secret cannot be verified): the
number of requests of a round does not grow with the number of targets. The
LISTs ask only for the objects the round waits for, by label, where the labels
say which they are: ``vaultflow.io/secret`` (rendered on every catalog
ExternalSecret, seen at discovery; one LIST across namespaces, which the
discovery's ClusterRole already allows) and ESO's
``reconcile.external-secrets.io/created-by`` (on every Secret an ``Owner``
ExternalSecret writes; one LIST per namespace, the only place the rotation may
read Secrets). An ExternalSecret without the label (written by hand) is looked
for in a LIST of its whole namespace. A narrowed LIST that misses an object it
should hold is repeated in full for that namespace, which is listed in full from
then on: a label changed by hand never hides a target.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel

from vaultflow.base.errors import OperationError
from vaultflow.base.times import parse_time
from vaultflow.steps.kube.errors import kube_errors
from vaultflow.steps.rotation.discover import ESO_GROUP, SECRET_LABEL, ConsumingExternalSecret

DATA_HASH = "reconcile.external-secrets.io/data-hash"
OWNER_LABEL = "reconcile.external-secrets.io/created-by"
MAX_SELECTOR_VALUES = 100  # more targets than this in one namespace: the whole namespace is asked for
POLL_INITIAL, POLL_MAXIMUM = 0.2, 1.0  # seconds between rounds (see poll_rounds)
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


def eso_owner_label(namespace: str, name: str) -> str:
    """ESO's ``created-by`` label on the Secret of an ``Owner`` ExternalSecret: ObjectHash("<ns>/<name>")
    (hex SHA3-224 of the string; ``applyOwnership`` in pkg/controllers/externalsecret)."""
    return hashlib.sha3_224(f"{namespace}/{name}".encode()).hexdigest()


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
    listers = {cluster: ClusterLister(api_client, cluster) for cluster, api_client in clients.items()}

    def round_() -> int:
        open_ = [p for p in pending if p.result is None]
        for cluster, in_cluster in _by_cluster(open_).items():
            lister = listers[cluster]
            try:
                external_secrets = lister.external_secrets([item.consumer for item in in_cluster])
            except OperationError as error:  # a cluster down or a 403: named per target, polled again
                for item in in_cluster:
                    item.seen = str(error)
                continue
            for namespace, group in _by_namespace(in_cluster).items():
                # A Secret is looked at only once its ExternalSecret refreshed after the write.
                refreshed = [
                    item.consumer
                    for item in group
                    if _not_refreshed(
                        item.consumer,
                        external_secrets.get((namespace, item.consumer.name)),
                        item.target.written_at,
                    )
                    is None
                ]
                try:
                    secrets = lister.secrets(namespace, refreshed) if refreshed else {}
                except OperationError as error:
                    for item in group:
                        item.seen = str(error)
                    continue
                for item in group:
                    _settle(
                        item, external_secrets.get((namespace, item.consumer.name)), secrets, now, on_verified
                    )
        return sum(1 for p in pending if p.result is None)

    poll_rounds(round_, timeout=timeout)  # on timeout the targets still open are named below
    return [
        p.result or _result(p.consumer, "TimedOut", None, f"not verified within {timeout:g}s: {p.seen}")
        for p in pending
    ]


def _settle(
    item: _Pending,
    external_secret: Mapping[str, Any] | None,
    secrets: Mapping[str, Any],
    now: Callable[[], datetime],
    on_verified: Callable[[ConsumingExternalSecret], None],
) -> None:
    """One look at one target with what the round listed; its result once verified or failed."""
    consumer = item.consumer
    seen = observe_target(
        consumer,
        external_secret=external_secret,
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


def poll_rounds(
    round_: Callable[[], int], *, timeout: float, initial: float = POLL_INITIAL, maximum: float = POLL_MAXIMUM
) -> None:
    """Run ``round_`` (it returns how many targets are still open) until none is, or ``timeout`` passes.

    Between rounds the wait doubles, from ``initial`` up to ``maximum`` (each drawn from the upper half
    of its step, so that parallel steps do not poll in lockstep), after each round that settles
    nothing, and stays as it is after one that settles a target. The last wait is cut short at the
    deadline, so that a final round is made when it passes.
    """
    deadline = time.monotonic() + timeout
    wait = initial
    still_open = round_()
    while still_open and (left := deadline - time.monotonic()) > 0:
        time.sleep(min(random.uniform(wait / 2, wait), left))
        before, still_open = still_open, round_()
        if still_open == before:
            wait = min(maximum, wait * 2)


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
    listers: dict[str, ClusterLister] = {}
    for cluster, namespace in dict.fromkeys((c.cluster, c.namespace) for c in wanted):
        here = [c for c in wanted if (c.cluster, c.namespace) == (cluster, namespace)]
        lister = listers.setdefault(cluster, ClusterLister(clients[cluster], cluster))
        secrets = lister.secrets(namespace, here)
        for consumer in here:
            secret = secrets.get(consumer.secret_name) or {}
            hashes[target_key(consumer)] = ((secret.get("metadata") or {}).get("annotations") or {}).get(
                DATA_HASH
            )
    return hashes


def target_key(consumer: ConsumingExternalSecret) -> str:
    """``cluster/namespace/ExternalSecret name``: one consuming ExternalSecret, everywhere."""
    return f"{consumer.cluster}/{consumer.namespace}/{consumer.name}"


def _by_cluster(items: Iterable[_Pending]) -> dict[str, list[_Pending]]:
    grouped: dict[str, list[_Pending]] = {}
    for item in items:
        grouped.setdefault(item.consumer.cluster, []).append(item)
    return grouped


def _by_namespace(items: Iterable[_Pending]) -> dict[str, list[_Pending]]:
    grouped: dict[str, list[_Pending]] = {}
    for item in items:
        grouped.setdefault(item.consumer.namespace, []).append(item)
    return grouped


def external_secret_selectors(consumers: Iterable[ConsumingExternalSecret]) -> list[str]:
    """Label selectors for exactly these ExternalSecrets' ``vaultflow.io/secret`` labels (all of them must
    have one), at most ``MAX_SELECTOR_VALUES`` values each."""
    values = sorted({c.secret_label for c in consumers if c.secret_label})
    return [
        f"{SECRET_LABEL} in ({','.join(values[i : i + MAX_SELECTOR_VALUES])})"
        for i in range(0, len(values), MAX_SELECTOR_VALUES)
    ]


def secret_selector(consumers: Iterable[ConsumingExternalSecret]) -> str | None:
    """A label selector for the Secrets ESO wrote for these ``Owner`` ExternalSecrets (its ``created-by``
    label), or None when one is not ``Owner`` (ESO labels only those) or there are too many to name."""
    listed = list(consumers)
    if not listed or any(c.creation_policy != "Owner" for c in listed):
        return None
    values = sorted({eso_owner_label(c.namespace, c.name) for c in listed})
    if len(values) > MAX_SELECTOR_VALUES:
        return None
    return f"{OWNER_LABEL} in ({','.join(values)})"


@dataclass
class ClusterLister:
    """What a round waits for in one cluster, as plain JSON objects, narrowed by label while the labels
    hold (see the module's docstring): ExternalSecrets by (namespace, name), Secrets by name."""

    api_client: Any
    cluster: str
    whole_namespaces: set[str] = field(default_factory=set)  # ExternalSecrets listed whole here
    whole_secrets: set[str] = field(default_factory=set)  # Secrets listed whole here

    def external_secrets(self, consumers: Iterable[ConsumingExternalSecret]) -> dict[tuple[str, str], Any]:
        wanted = list(consumers)
        whole = {c.namespace for c in wanted if not c.secret_label or c.namespace in self.whole_namespaces}
        labelled = [c for c in wanted if c.namespace not in whole]
        found: dict[tuple[str, str], Any] = {}
        for selector in external_secret_selectors(labelled):
            found.update(self._external_secrets(None, selector))
        # A label changed, or the object is gone: from now on its namespace is asked for whole.
        missed = {c.namespace for c in labelled if (c.namespace, c.name) not in found}
        self.whole_namespaces |= missed
        for namespace in sorted(whole | missed):
            found.update(self._external_secrets(namespace, None))
        return found

    def secrets(self, namespace: str, consumers: Iterable[ConsumingExternalSecret]) -> dict[str, Any]:
        wanted = list(consumers)
        selector = secret_selector(wanted) if namespace not in self.whole_secrets else None
        listed = list_namespaced(self.api_client, self.cluster, namespace, "secrets", selector)
        found = {item["metadata"]["name"]: item for item in listed}
        if selector is not None and any(c.secret_name not in found for c in wanted):
            self.whole_secrets.add(namespace)
            listed = list_namespaced(self.api_client, self.cluster, namespace, "secrets", None)
            found = {item["metadata"]["name"]: item for item in listed}
        return found

    def _external_secrets(self, namespace: str | None, selector: str | None) -> dict[tuple[str, str], Any]:
        listed = list_namespaced(self.api_client, self.cluster, namespace, "externalsecrets", selector)
        return {(item["metadata"].get("namespace", ""), item["metadata"]["name"]): item for item in listed}


def list_namespaced(
    api_client: Any,
    cluster: str,
    namespace: str | None,
    plural: Literal["secrets", "externalsecrets"],
    selector: str | None,
) -> list[dict[str, Any]]:
    """One LIST of Secrets or ExternalSecrets (those ``selector`` matches) in ``namespace``, or of
    ExternalSecrets across namespaces (``None``), as plain JSON."""
    from kubernetes import client

    what = "Secrets" if plural == "secrets" else "ExternalSecrets"
    where = f"in namespace {namespace}" if namespace is not None else "across namespaces"
    with kube_errors(f"cluster {cluster}", f"list {what} {where}"):
        if plural == "secrets":
            assert namespace is not None  # the rotation may read Secrets only where they are consumed
            listed = client.CoreV1Api(api_client).list_namespaced_secret(
                namespace, label_selector=selector, _preload_content=False
            )
        elif namespace is None:
            listed = client.CustomObjectsApi(api_client).list_cluster_custom_object(
                ESO_GROUP, "v1", plural, label_selector=selector, _preload_content=False
            )
        else:
            listed = client.CustomObjectsApi(api_client).list_namespaced_custom_object(
                ESO_GROUP, "v1", namespace, plural, label_selector=selector, _preload_content=False
            )
    items: list[dict[str, Any]] = json.loads(listed.data).get("items") or []
    return items
