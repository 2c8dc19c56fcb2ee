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

The ExternalSecrets are watched, as a controller would: per cluster, one LIST of
those the verification waits for, then one WATCH from that LIST's
resourceVersion (``steps/kube/reflector.py``: bookmarks, a new watch when the
server ends one, a new LIST after a 410; LISTs with backoff where the watch is
not granted). A round runs when the watch reports a change (after
``COALESCE`` seconds, so that ESO's next changes are looked at with it), and
lists a consuming namespace's Secrets once an ExternalSecret there refreshed
since the write and changed since its Secret was last looked at: until then its
Secret cannot be verified, and the number of requests does not grow with the
number of targets. The requests ask only for the objects the verification waits
for, by label, where the labels say which they are: ``vaultflow.io/secret``
(rendered on every catalog ExternalSecret, seen at discovery; watched across
namespaces, which the discovery's ClusterRole allows) and ESO's
``reconcile.external-secrets.io/created-by`` (on every Secret an ``Owner``
ExternalSecret writes; one LIST per namespace, the only place the rotation may
read Secrets). An ExternalSecret without the label (written by hand) is watched
in its whole namespace. A narrowed LIST that misses an object it should hold is
repeated in full for that namespace, which is listed (or watched) in full from
then on: a label changed by hand never hides a target. What makes a target
verified is decided only from the objects' content (``observe_target``), never
from the fact that an event arrived: an event from before the write (a
``refreshTime`` before it) counts for nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel

from vaultflow.base.errors import OperationError
from vaultflow.base.times import parse_time
from vaultflow.steps.kube.errors import kube_errors
from vaultflow.steps.kube.reflector import Collection, Reflector
from vaultflow.steps.rotation.discover import ESO_GROUP, SECRET_LABEL, ConsumingExternalSecret

DATA_HASH = "reconcile.external-secrets.io/data-hash"
OWNER_LABEL = "reconcile.external-secrets.io/created-by"
MAX_SELECTOR_VALUES = 100  # more targets than this in one namespace: the whole namespace is asked for
COALESCE = 0.2  # seconds a round waits after a change for the ones ESO makes next (watch_rounds)
RECHECK_INITIAL, RECHECK_MAXIMUM = 0.2, 1.0  # a refreshed target's Secret looked at again, backing off
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
    # The ExternalSecret's resourceVersion when its Secret was last looked at, and when to look again
    # without a new one (ESO writes the Secret before the status, so this is seldom needed).
    checked_version: str | None = None
    recheck_at: float = 0.0
    recheck_wait: float = RECHECK_INITIAL

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

    The ExternalSecrets are watched (``ClusterConsumers``); a round runs when one of them
    changed, and lists the Secrets of each namespace where one refreshed since the write. ``on_verified``
    is called once per target as it is verified (the PushSecrets that read it are annotated then).
    Latency is wall-clock time since the target's write: the write may have happened in another step,
    in another pod. Returns one result per target, in order.
    """
    pending = [_Pending(target) for target in targets]
    changed = threading.Event()
    watched = {
        cluster: ClusterConsumers(clients[cluster], cluster, [p.consumer for p in in_cluster], changed.set)
        for cluster, in_cluster in _by_cluster(pending).items()
    }
    listers = {cluster: ClusterLister(clients[cluster], cluster) for cluster in watched}

    def round_() -> int:
        for cluster, in_cluster in _by_cluster(p for p in pending if p.result is None).items():
            external_secrets = watched[cluster]
            for namespace, group in _by_namespace(in_cluster).items():
                _round_in_namespace(
                    external_secrets, listers[cluster], namespace, group, now=now, on_verified=on_verified
                )
        return sum(1 for p in pending if p.result is None)

    def next_recheck() -> float | None:
        waiting = [p.recheck_at for p in pending if p.result is None and p.checked_version is not None]
        return min(waiting, default=None)

    try:
        for external_secrets in watched.values():
            external_secrets.start()
        watch_rounds(round_, timeout=timeout, changed=changed, next_recheck=next_recheck)
    finally:
        for external_secrets in watched.values():
            external_secrets.stop()
    return [
        p.result or _result(p.consumer, "TimedOut", None, f"not verified within {timeout:g}s: {p.seen}")
        for p in pending
    ]


def _round_in_namespace(
    external_secrets: ClusterConsumers,
    lister: ClusterLister,
    namespace: str,
    group: list[_Pending],
    *,
    now: Callable[[], datetime],
    on_verified: Callable[[ConsumingExternalSecret], None],
) -> None:
    """One look at the open targets of one namespace: their Secrets are listed (once) only when an
    ExternalSecret refreshed after the write, changed since its Secret was last looked at (or its
    recheck is due): before that the Secret cannot be verified, and after it nothing new is to be seen."""
    clock = time.monotonic()
    looked_at: list[tuple[_Pending, Mapping[str, Any]]] = []
    refreshed: list[_Pending] = []
    for item in group:
        external_secret, unknown = external_secrets.get(item.consumer)
        if unknown is not None:  # not listed yet, or its LIST failed: named as what was last seen
            item.seen = unknown
            continue
        waiting = _not_refreshed(item.consumer, external_secret, item.target.written_at)
        if waiting is not None or external_secret is None:  # (gone: _not_refreshed says so)
            item.seen = waiting or item.seen
            continue
        refreshed.append(item)
        looked_at.append((item, external_secret))
    due = [
        item
        for item, refreshed_object in looked_at
        if item.checked_version != _version(refreshed_object) or clock >= item.recheck_at
    ]
    if not due:
        return
    try:
        secrets = lister.secrets(namespace, [item.consumer for item in refreshed])
    except OperationError as error:  # a 403, a cluster down: named per target, looked at again later
        for item in refreshed:
            item.seen = str(error)
            _recheck_later(item, None, clock)
        return
    for item, refreshed_object in looked_at:
        _settle(item, refreshed_object, secrets, now, on_verified)
        if item.result is None:
            _recheck_later(item, _version(refreshed_object), clock)


def _recheck_later(item: _Pending, version: str | None, clock: float) -> None:
    """Refreshed, but its Secret is not (yet) right: look again at the next change, or after a backoff."""
    if version is None or item.checked_version == version:
        item.recheck_wait = min(RECHECK_MAXIMUM, item.recheck_wait * 2)
    item.checked_version = version if version is not None else ""
    item.recheck_at = clock + item.recheck_wait


def _version(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))


def _settle(
    item: _Pending,
    external_secret: Mapping[str, Any] | None,
    secrets: Mapping[str, Any],
    now: Callable[[], datetime],
    on_verified: Callable[[ConsumingExternalSecret], None],
) -> None:
    """One look at one target with what was listed; its result once verified or failed."""
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


def watch_rounds(
    round_: Callable[[], int],
    *,
    timeout: float,
    changed: threading.Event,
    next_recheck: Callable[[], float | None] = lambda: None,
) -> None:
    """Run ``round_`` (it returns how many targets are still open) until none is, or ``timeout`` passes.

    A round runs when ``changed`` is set (a watched object changed), after ``COALESCE`` seconds more, so
    that the changes ESO makes one after another are looked at together (one LIST of a namespace's
    Secrets for several); or when ``next_recheck`` (a ``time.monotonic()`` moment) comes. A final round
    is made when the time is up.
    """
    deadline = time.monotonic() + timeout
    still_open = round_()
    while still_open and (left := deadline - time.monotonic()) > 0:
        recheck = next_recheck()
        wait = left if recheck is None else max(0.0, min(left, recheck - time.monotonic()))
        if changed.wait(wait):
            time.sleep(min(COALESCE, max(0.0, deadline - time.monotonic())))
        changed.clear()  # what changes from here on wakes the next wait
        still_open = round_()


class WatchedConsumer(Protocol):
    """What ``ClusterConsumers`` needs of an ExternalSecret or PushSecret it watches."""

    @property
    def namespace(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def secret_label(self) -> str | None: ...


# kind -> (API version, plural, how messages name them); both in external-secrets.io
WATCHED_KINDS = {
    "ExternalSecret": ("v1", "externalsecrets", "ExternalSecrets"),
    "PushSecret": ("v1alpha1", "pushsecrets", "PushSecrets"),
}


class ClusterConsumers:
    """The ExternalSecrets (or PushSecrets) a verification waits for in one cluster, watched
    (``steps/kube/reflector.py``).

    One reflector across namespaces per ``vaultflow.io/secret`` selector (one for up to
    ``MAX_SELECTOR_VALUES`` secrets: a batch's verification makes one LIST and one WATCH per
    cluster), and one per namespace holding a consumer without the label. When the labelled
    copy, once listed, lacks a consumer it should hold (a label changed by hand, the object
    deleted), its namespace is watched whole from then on: a label never hides a target.
    """

    def __init__(
        self,
        api_client: Any,
        cluster: str,
        consumers: Iterable[WatchedConsumer],
        on_change: Callable[[], None],
        *,
        kind: Literal["ExternalSecret", "PushSecret"] = "ExternalSecret",
    ) -> None:
        self._api_client, self.cluster, self._on_change = api_client, cluster, on_change
        self._version, self._plural, self._kind_plural = WATCHED_KINDS[kind]
        wanted = list(consumers)
        whole = sorted({c.namespace for c in wanted if not c.secret_label})
        self._whole = {namespace: self._reflector(namespace, None) for namespace in whole}
        labelled = [c for c in wanted if c.secret_label and c.namespace not in self._whole]
        labels = sorted({c.secret_label for c in labelled if c.secret_label})
        self._by_label: dict[str, Reflector] = {}
        for selector, chunk in zip(label_selectors(labelled), _chunks(labels), strict=True):
            reflector = self._reflector(None, selector)
            self._by_label.update(dict.fromkeys(chunk, reflector))
        self._started = False

    def start(self) -> None:
        self._started = True
        for reflector in self.reflectors():
            reflector.start()

    def stop(self) -> None:
        for reflector in self.reflectors():
            reflector.stop()

    def reflectors(self) -> list[Reflector]:
        return [*dict.fromkeys(self._by_label.values()), *self._whole.values()]

    def get(self, consumer: WatchedConsumer) -> tuple[dict[str, Any] | None, str | None]:
        """(the object as last seen, or None when it does not exist; None), or (None, why it cannot be
        known now: not listed yet, or its LIST or WATCH is failing, a copy that may be stale)."""
        key = (consumer.namespace, consumer.name)
        whole = self._whole.get(consumer.namespace)
        if whole is None and consumer.secret_label:
            labelled = self._by_label[consumer.secret_label]
            if not labelled.synced or labelled.error:
                return None, labelled.error or f"waiting for the first LIST of {self._kind_plural}"
            found = labelled.get(key)
            if found is not None:
                return found, None
            whole = self._watch_whole(consumer.namespace)  # missing by label: its namespace, whole
        if whole is None:  # unlabelled consumers' namespaces are watched whole from the start
            whole = self._watch_whole(consumer.namespace)
        if not whole.synced or whole.error:
            return None, whole.error or f"waiting for the LIST of {self._kind_plural} in {consumer.namespace}"
        return whole.get(key), None

    def _watch_whole(self, namespace: str) -> Reflector:
        reflector = self._whole.get(namespace)
        if reflector is None:
            reflector = self._whole[namespace] = self._reflector(namespace, None)
            if self._started:
                reflector.start()
        return reflector

    def _reflector(self, namespace: str | None, selector: str | None) -> Reflector:
        collection = Collection(
            ESO_GROUP, self._version, self._plural, self._kind_plural, namespace, selector
        )
        return Reflector(self._api_client, self.cluster, collection, self._on_change)


def _chunks(values: list[str]) -> list[list[str]]:
    return [values[i : i + MAX_SELECTOR_VALUES] for i in range(0, len(values), MAX_SELECTOR_VALUES)]


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


def label_selectors(consumers: Iterable[WatchedConsumer]) -> list[str]:
    """Label selectors for exactly these consumers' ``vaultflow.io/secret`` labels (all of them must have
    one), at most ``MAX_SELECTOR_VALUES`` values each."""
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
    """The Secrets a round looks at in one cluster's namespaces, as plain JSON objects by name, narrowed
    by ESO's ``created-by`` label while it holds (see the module's docstring)."""

    api_client: Any
    cluster: str
    whole_secrets: set[str] = field(default_factory=set)  # Secrets listed whole here

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
