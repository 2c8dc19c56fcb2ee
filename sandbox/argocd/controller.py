"""The Argo CD application controller emulator: Applications in the management cluster, synced from Git.

For each ``argoproj.io/v1alpha1`` Application (any namespace of the management
cluster) it does what Argo CD's controller does, at the level a pipeline
observes:

* **refresh**: resolve ``targetRevision`` in the ``file://`` repository (or a
  routed URL, see ``vaultflow.sandbox.routes``), build the path's manifests (Kustomize
  or Directory) and compare them with the destination cluster: ``status.sync``
  (``Synced``/``OutOfSync`` at ``revision``), ``status.resources``,
  ``status.health`` (the worst resource health), ``status.sourceType``,
  ``reconciledAt``; a source that cannot be read is a ``ComparisonError``
  condition and sync status ``Unknown``. When the repository is read again
  follows controller/appcontroller.go (``needRefreshAppStatus``): at once
  for the ``argocd.argoproj.io/refresh`` annotation (removed once the status
  is written, with ``refresh-timestamp`` as ``handleRefreshAnnotation`` does),
  a changed ``spec.source`` or destination, and after a sync completes;
  otherwise only when ``reconciledAt`` is older than
  ``reconciliation_timeout`` (argocd-cm ``timeout.reconciliation``, 120 s),
  checked at every resync (each ``reconciliation_timeout``, every Application
  after a random delay of up to ``reconciliation_jitter``, argocd-cm
  ``timeout.reconciliation.jitter``, 60 s). Any other look (a change of the
  Application or of a resource it manages, a sync in progress) compares
  with the revision of the last comparison (``CompareWithRecent``) and does
  not move ``reconciledAt``: a push nobody announces waits minutes, as it
  does on Argo CD;
* **sync** (automated when ``syncPolicy.automated`` is set and the app is
  OutOfSync at a revision not yet synced, or at any revision with
  ``selfHeal``; manual through the ``operation`` field, as ``argocd app sync``
  sets it): waves in ``argocd.argoproj.io/sync-wave`` order, each applied and
  then awaited until its resources are healthy before the next (a Degraded
  resource fails the sync, as in Argo CD); the last wave succeeds once
  applied. ``status.operationState`` reports phase, message, ``startedAt``,
  ``finishedAt`` and ``syncResult`` (revision, per-resource results); a
  failed sync is retried with the operation's retry strategy (an automated
  sync takes ``syncPolicy.retry``, or ``limit: 5`` without one, as
  ``autoSync`` in controller/appcontroller.go does; a requested one its own
  ``operation.retry``); an automated sync never tries again a revision whose
  sync failed (``Skipping auto-sync: failed previous sync attempt``): a
  requested ``operation`` does; ``operationState.phase: Terminating`` (what
  ``argocd app terminate-op`` sets) ends the running operation ``Failed``,
  ``Operation terminated``, without retrying; a successful sync is added to
  ``status.history``;
* **prune** (``automated.prune`` or ``operation.sync.prune``): objects the app
  applied earlier (its tracking annotation names them) that the source no
  longer has are deleted after the last wave (Argo CD's ``PruneLast``);
* **deletion**: an Application with the ``resources-finalizer.argocd.argoproj.io``
  finalizer deletes its resources before it goes.

Destinations are matched to sandbox clusters by server URL or name through
``Routes`` (``https://kubernetes.default.svc`` is the management cluster
unless routed elsewhere). Not emulated: Helm and plugin sources, multiple
sources, hooks (``PreSync``/``PostSync``), sync windows, projects' policy
checks, ignoreDifferences, server-side apply.
"""

from __future__ import annotations

import copy
import datetime
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from vaultflow.base.durations import parse_go_duration
from vaultflow.sandbox.argocd import apply as applying
from vaultflow.sandbox.argocd.apply import DesiredError, DesiredObject, ResourceKey
from vaultflow.sandbox.argocd.health import DEGRADED, HEALTHY, resource_health, worst
from vaultflow.sandbox.argocd.manifests import ManifestError, load
from vaultflow.sandbox.argocd.reconciliation import (
    DEFAULT_RECONCILIATION_JITTER,
    DEFAULT_RECONCILIATION_TIMEOUT,
)
from vaultflow.sandbox.argocd.repo import GitRepository, RepoError, repo_path
from vaultflow.sandbox.kube import KubeCluster
from vaultflow.sandbox.kube.errors import ApiError
from vaultflow.sandbox.kube.store import Event, ObjectStore
from vaultflow.sandbox.kube.strategies import now_rfc3339
from vaultflow.sandbox.routes import RouteMissing, Routes
from vaultflow.sandbox.workqueue import DONE, Result, Workers, WorkQueue

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]
AppKey = tuple[str, str]

RESOURCES_FINALIZER = "resources-finalizer.argocd.argoproj.io"
REFRESH_ANNOTATION = "argocd.argoproj.io/refresh"
REFRESH_TIMESTAMP_ANNOTATION = "argocd.argoproj.io/refresh-timestamp"
CONTROLLER_NAMESPACE = "argocd"
_OPERATION_TICK = 0.1
_COMPARISON_RETRY = 1.0  # a sync under way whose source cannot be read right now
_HISTORY_LIMIT = 10
TERMINATING = "Terminating"
# autoSync's retry strategy when syncPolicy.retry is absent (controller/appcontroller.go)
_AUTOMATED_RETRY: JsonObject = {"limit": 5}


def parse_rfc3339(text: Any) -> float | None:
    try:
        moment = datetime.datetime.strptime(str(text), "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return None
    return moment.replace(tzinfo=datetime.UTC).timestamp()


@dataclass
class _Target:
    """What one refresh found: the revision, the desired objects, the destination."""

    revision: str
    source: JsonObject
    source_type: str
    cluster: KubeCluster
    desired: list[DesiredObject]
    live: dict[ResourceKey, JsonObject | None]


@dataclass
class _Operation:
    """A running sync: its waves, how far it got, what it did."""

    revision: str
    prune: bool
    automated: bool
    started_at: str
    source: JsonObject
    retry: JsonObject  # the operation's retry strategy (limit, backoff)
    retry_count: int = 0
    wave_index: int = 0
    applied: bool = False
    results: list[JsonObject] = field(default_factory=list)
    retry_at: float | None = None
    last_message: str = ""


@dataclass
class _Run:
    """One sync step's context: the app as read, what its source wants, the operation in progress."""

    key: AppKey
    app: JsonObject
    target: _Target
    operation: _Operation


def _instance_name(app: JsonObject) -> str:
    """Argo CD's tracking name: the app name, ``<namespace>_<name>`` outside the control-plane namespace."""
    namespace, name = app["metadata"].get("namespace", ""), app["metadata"]["name"]
    return name if namespace in ("", CONTROLLER_NAMESPACE) else f"{namespace}_{name}"


def _source_of(app: JsonObject) -> JsonObject:
    spec = app.get("spec") or {}
    if spec.get("source"):
        return dict(spec["source"])
    sources = spec.get("sources") or []
    if len(sources) == 1:
        return dict(sources[0])
    raise ManifestError("the sandbox's Argo CD serves exactly one source per Application")


def _backoff(policy: JsonObject, attempt: int) -> float:
    backoff = (policy.get("backoff") or {}) if policy else {}
    base = parse_go_duration(str(backoff.get("duration") or "5s"))
    factor = float(backoff.get("factor") or 2)
    ceiling = parse_go_duration(str(backoff.get("maxDuration") or "3m"))
    return float(min(base * factor**attempt, ceiling))


def _managing_app(obj: JsonObject, rtype_group: str, kind: str) -> AppKey | None:
    """The Application that manages ``obj``: its tracking id names an app *and* this very object.

    An object whose tracking id names another one (a Secret ESO copied an
    ExternalSecret's annotations onto) is not managed: Argo CD refreshes no
    comparison for it (``ComparisonWithNothing``).
    """
    metadata = obj.get("metadata") or {}
    tracking = str((metadata.get("annotations") or {}).get(applying.TRACKING_ANNOTATION) or "")
    instance, _, rest = tracking.partition(":")
    if not instance or not rest:
        return None
    expected = ResourceKey(rtype_group, kind, str(metadata.get("namespace") or ""), str(metadata.get("name")))
    if expected.tracking_id(instance) != tracking:
        return None
    namespace, _, name = instance.rpartition("_")  # Kubernetes names have no "_": unambiguous
    return (namespace or CONTROLLER_NAMESPACE, name)


def _recent_revision(app: JsonObject) -> str | None:
    """The revision of the app's last comparison (``CompareWithRecent``); None when that comparison
    failed or there is none: then the next look reads Git."""
    status = app.get("status") or {}
    if any(c.get("type") == "ComparisonError" for c in status.get("conditions") or []):
        return None
    sync = status.get("sync") or {}
    revision = str(sync.get("revision") or "")
    return revision if revision and sync.get("status") in ("Synced", "OutOfSync") else None


SYNC_OPTIONS_ANNOTATION = "argocd.argoproj.io/sync-options"


def _kept_on_delete(cluster: KubeCluster, rtype: Any, resource: ResourceKey) -> bool:
    """Whether deleting the Application leaves this live object alone, as Argo CD's
    ``shouldBeDeleted`` (controller/appcontroller.go) decides: a CRD, or an object annotated
    ``argocd.argoproj.io/sync-options: Delete=false`` or ``helm.sh/resource-policy: keep``."""
    try:
        live = cluster.store.get(rtype, resource.namespace, resource.name).obj
    except ApiError:
        return False  # gone already, or unreadable: the prune that follows says which
    annotations = (live.get("metadata") or {}).get("annotations") or {}
    options = {o.strip() for o in str(annotations.get(SYNC_OPTIONS_ANNOTATION, "")).split(",")}
    keep = {p.strip() for p in str(annotations.get("helm.sh/resource-policy", "")).split(",")}
    return live.get("kind") == "CustomResourceDefinition" or "Delete=false" in options or "keep" in keep


class ArgoCdController:
    """Reconciles the Applications of ``management`` into ``clusters`` (name -> cluster).

    ``reconciliation_timeout`` and ``reconciliation_jitter`` are argocd-cm's
    ``timeout.reconciliation`` and ``timeout.reconciliation.jitter`` in seconds
    (0 turns polling off, as ``timeout.reconciliation: 0s`` does); tests of the
    emulator itself pass short ones.
    """

    def __init__(
        self,
        management: KubeCluster,
        clusters: dict[str, KubeCluster],
        routes: Routes,
        *,
        reconciliation_timeout: float = DEFAULT_RECONCILIATION_TIMEOUT,
        reconciliation_jitter: float = DEFAULT_RECONCILIATION_JITTER,
        workers: int = 2,
    ) -> None:
        if reconciliation_timeout < 0 or reconciliation_jitter < 0:
            raise ValueError("the reconciliation timeout and jitter cannot be negative")
        self.management = management
        self.clusters = clusters
        self.routes = routes
        self.reconciliation_timeout = reconciliation_timeout
        self.reconciliation_jitter = reconciliation_jitter
        self.queue: WorkQueue[AppKey] = WorkQueue()
        self._workers = Workers("argocd", self.queue, self._reconcile, count=workers)
        self._operations: dict[AppKey, _Operation] = {}
        self._repositories: dict[str, GitRepository] = {}
        self._refresh_requested: set[AppKey] = set()  # the controller's own requests (after a sync)
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="argocd-poll", daemon=True)
        self._apps = management.type_of("argoproj.io/v1alpha1", "Application")

    # ------------------------------------------------------------ lifecycle

    def start(self) -> ArgoCdController:
        self.management.store.add_hook(self._on_event)
        for cluster in {id(c): c for c in [self.management, *self.clusters.values()]}.values():
            cluster.store.add_hook(self._on_managed_event)
        self._workers.start()
        for key in self._app_keys():  # the informer's first list: every Application is looked at once
            self.queue.add(key)
        if self.reconciliation_timeout > 0:
            self._poller.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._workers.stop()
        if self._poller.is_alive():
            self._poller.join(timeout=5)

    @property
    def reconciles(self) -> int:
        return self._workers.reconciles

    def _app_keys(self) -> list[AppKey]:
        return [
            (entry.obj["metadata"].get("namespace", ""), entry.obj["metadata"]["name"])
            for entry in self.management.store.list(self._apps, None).entries
        ]

    def _on_event(self, _: ObjectStore, event: Event) -> None:
        """Runs under the store's lock: only enqueue. Status-only writes (our own) do not requeue."""
        if event.rtype.storage_key != self._apps.storage_key:
            return
        if event.type == "MODIFIED" and event.previous is not None:
            old = {k: v for k, v in event.previous.items() if k not in ("status",)}
            new = {k: v for k, v in event.entry.obj.items() if k not in ("status",)}
            old["metadata"] = {k: v for k, v in old["metadata"].items() if k != "resourceVersion"}
            new["metadata"] = {k: v for k, v in new["metadata"].items() if k != "resourceVersion"}
            if old == new:
                return
        metadata = event.entry.obj["metadata"]
        self.queue.add((metadata.get("namespace", ""), metadata["name"]))

    def _on_managed_event(self, _: ObjectStore, event: Event) -> None:
        """A resource an Application manages changed: compare that app again, with the revision it last
        compared (``CompareWithRecent``: its health and sync status follow the cluster, Git is not read).

        controller/appcontroller.go ``handleObjectUpdated``; the Application itself is not refreshed by
        its own change this way. Runs under the store's lock: only enqueue.
        """
        obj = event.entry.obj
        key = _managing_app(obj, event.rtype.group, str(obj.get("kind") or event.rtype.kind))
        if key is None:
            return
        if event.rtype.storage_key == self._apps.storage_key:
            metadata = obj.get("metadata") or {}
            if (str(metadata.get("namespace") or ""), str(metadata.get("name"))) == key:
                return
        self.queue.add(key)

    def _poll(self) -> None:
        """The informer's resync: every ``reconciliation_timeout``, each Application is looked at after a
        random delay of up to ``reconciliation_jitter`` (the ``UpdateFunc`` of an unchanged
        ``resourceVersion``); whether that look reads Git is ``_needs_refresh``'s question."""
        while not self._stopped.wait(self.reconciliation_timeout):
            for key in self._app_keys():
                delay = random.uniform(0.0, self.reconciliation_jitter) if self.reconciliation_jitter else 0.0
                self.queue.add_after(key, delay)

    def _request_refresh(self, key: AppKey) -> None:
        """The controller's own ``requestAppRefresh``: compare ``key`` with Git again, now."""
        with self._lock:
            self._refresh_requested.add(key)
        self.queue.add(key)

    # ------------------------------------------------------------ reconcile

    def _needs_refresh(self, key: AppKey, app: JsonObject) -> bool:
        """Whether this look compares with Git (resolving ``targetRevision`` again) or with the revision
        of the last comparison: controller/appcontroller.go ``needRefreshAppStatus``."""
        with self._lock:
            requested = key in self._refresh_requested
            self._refresh_requested.discard(key)
        if requested or REFRESH_ANNOTATION in (app["metadata"].get("annotations") or {}):
            return True
        status = app.get("status") or {}
        reconciled = parse_rfc3339(status.get("reconciledAt"))
        compared = (status.get("sync") or {}).get("comparedTo") or {}
        try:
            source = _source_of(app)
        except ManifestError:
            return True
        destination = (app.get("spec") or {}).get("destination") or {}
        moved = compared.get("source") != source or compared.get("destination") != destination
        if reconciled is None or moved:
            return True
        # comparisonExpiry: expired once reconciledAt + timeout is before now (0: never)
        expired = self.reconciliation_timeout > 0 and reconciled + self.reconciliation_timeout < time.time()
        return expired or _recent_revision(app) is None

    def _reconcile(self, key: AppKey) -> Result:
        try:
            app = self.management.store.get(self._apps, *key).copy()
        except ApiError as error:
            if error.code == 404:
                self._operations.pop(key, None)
                return DONE
            raise
        if app["metadata"].get("deletionTimestamp"):
            return self._finalize(key, app)
        if ((app.get("status") or {}).get("operationState") or {}).get("phase") == TERMINATING:
            self._terminate(key, app)  # then on as usual: an automated sync does not retry the revision
        refresh = self._needs_refresh(key, app)
        try:
            target = self._target(app, None if refresh else _recent_revision(app))
        except (RepoError, ManifestError, RouteMissing, DesiredError) as error:
            return self._comparison_failed(key, app, str(error))
        operation = self._operations.get(key)
        if operation is None:
            operation = self._maybe_start(key, app, target)
        if operation is not None:
            self._advance(_Run(key, app, target, operation))
        self._write_status(key, target, reconciled=refresh)
        self._consume_refresh_annotation(key, app)
        running = self._operations.get(key)
        if running is None:
            return DONE  # the resync, a refresh request or a change brings it back
        if running.retry_at is not None:
            return Result(requeue_after=max(running.retry_at - time.monotonic(), _OPERATION_TICK))
        return Result(requeue_after=_OPERATION_TICK)

    def _comparison_failed(self, key: AppKey, app: JsonObject, message: str) -> Result:
        """A ``ComparisonError``: the next resync, refresh request or change of the app looks again; a
        sync under way is looked at again soon, so that it does not stall."""
        self._write_comparison_error(key, message)
        self._consume_refresh_annotation(key, app)
        return Result(requeue_after=_COMPARISON_RETRY) if key in self._operations else DONE

    def _consume_refresh_annotation(self, key: AppKey, seen: JsonObject) -> None:
        """Remove the refresh annotation this look honoured, after the status is written.

        As ``handleRefreshAnnotation`` does: with a ``refresh-timestamp`` annotation, both go only
        while that timestamp is the one seen (a newer request stays, and is honoured next).
        """
        annotations = seen["metadata"].get("annotations") or {}
        if REFRESH_ANNOTATION not in annotations:
            return
        stamp = annotations.get(REFRESH_TIMESTAMP_ANNOTATION)

        def remove(doc: JsonObject) -> None:
            current = doc["metadata"].get("annotations") or {}
            if stamp is not None and current.get(REFRESH_TIMESTAMP_ANNOTATION) != stamp:
                return
            current.pop(REFRESH_ANNOTATION, None)
            current.pop(REFRESH_TIMESTAMP_ANNOTATION, None)

        self._patch(key, remove)

    def _repository(self, url: str) -> GitRepository:
        path = repo_path(self.routes.resolve_git(url))
        with self._lock:
            repository = self._repositories.get(str(path))
            if repository is None:
                repository = self._repositories[str(path)] = GitRepository(path)
            return repository

    def _target(self, app: JsonObject, revision: str | None = None) -> _Target:
        """What the source wants at ``revision``, or at what ``targetRevision`` names now (None)."""
        source = _source_of(app)
        destination = (app.get("spec") or {}).get("destination") or {}
        cluster_name = self.routes.resolve_cluster(
            server=str(destination.get("server") or ""), name=str(destination.get("name") or "")
        )
        cluster = self.clusters[cluster_name]
        repository = self._repository(str(source.get("repoURL", "")))
        if revision is None:
            revision = repository.resolve(str(source.get("targetRevision") or "HEAD"))
        files = repository.files(revision, str(source.get("path") or ""))

        def namespaced(api_version: str, kind: str) -> bool:
            rtype = cluster.catalog.by_kind(api_version, kind)
            return rtype is None or rtype.namespaced

        manifests = load(files, source.get("directory") or {}, namespaced)
        instance = _instance_name(app)
        default_namespace = str(destination.get("namespace") or "default")
        desired = sorted(
            (applying.desired_object(obj, cluster, instance, default_namespace) for obj in manifests.objects),
            key=lambda d: d.order,
        )
        live = {d.key: applying.get_live(cluster, d) for d in desired}
        return _Target(revision, source, manifests.source_type, cluster, desired, live)

    # ------------------------------------------------------------ comparing

    def _prune_candidates(self, app: JsonObject, target: _Target) -> list[tuple[JsonObject, ResourceKey]]:
        """Resources this app reported before that the source no longer has, still tracked by it."""
        desired_keys = {d.key for d in target.desired}
        instance = _instance_name(app)
        candidates = []
        for entry in (app.get("status") or {}).get("resources") or []:
            key = ResourceKey(
                entry.get("group", ""), entry["kind"], entry.get("namespace", ""), entry["name"]
            )
            if key in desired_keys:
                continue
            api_version = (
                f"{key.group}/{entry.get('version', 'v1')}" if key.group else entry.get("version", "v1")
            )
            rtype = target.cluster.catalog.by_kind(api_version, key.kind)
            if rtype is None:
                continue
            try:
                live = target.cluster.store.get(rtype, key.namespace, key.name).obj
            except ApiError:
                continue
            if applying.tracked_by(live, instance, key):
                candidates.append((entry, key))
        return candidates

    def _is_synced(self, app: JsonObject, target: _Target) -> bool:
        in_sync = all(applying.is_synced(d, target.live[d.key]) for d in target.desired)
        return in_sync and not self._prune_candidates(app, target)

    # ------------------------------------------------------------ syncing

    def _maybe_start(self, key: AppKey, app: JsonObject, target: _Target) -> _Operation | None:
        requested = app.get("operation")
        policy = (app.get("spec") or {}).get("syncPolicy") or {}
        automated = policy.get("automated")
        stored = (app.get("status") or {}).get("operationState") or {}
        if stored.get("phase") == "Running":
            operation = self._resumed(stored, target)
        elif requested:
            sync = requested.get("sync") or {}
            # a sync resolves its revision itself (controller/sync.go: the operation's, else the
            # source's targetRevision, without the revision cache): not the last comparison's
            repository = self._repository(str(target.source.get("repoURL", "")))
            wanted = sync.get("revision") or target.source.get("targetRevision") or "HEAD"
            revision = repository.resolve(str(wanted))
            self._patch(key, lambda doc: doc.pop("operation", None))
            retry = dict(requested.get("retry") or {})  # the API server fills it from syncPolicy.retry
            operation = _Operation(
                revision, bool(sync.get("prune")), False, now_rfc3339(), target.source, retry
            )
        elif automated is not None and not self._is_synced(app, target):
            last = (app.get("status") or {}).get("operationState") or {}
            last_revision = (last.get("syncResult") or {}).get("revision")
            already_tried = last_revision == target.revision
            if already_tried and (last.get("phase") != "Succeeded" or not automated.get("selfHeal")):
                return None  # Argo CD: one automated attempt per revision, unless self-healing a success
            strategy = policy.get("retry")
            operation = _Operation(
                target.revision,
                bool(automated.get("prune")),
                True,
                now_rfc3339(),
                target.source,
                dict(strategy) if strategy is not None else dict(_AUTOMATED_RETRY),
            )
        else:
            return None
        self._operations[key] = operation
        log.info("argocd: syncing %s/%s to %s", key[0], key[1], operation.revision[:12])
        return operation

    def _resumed(self, stored: JsonObject, target: _Target) -> _Operation:
        """The operation recorded as in progress, taken up again (the sandbox was restarted during it).

        Argo CD resumes an operation whose phase is not completed, one waiting for
        its next retry at ``finishedAt`` plus the backoff included
        (controller/appcontroller.go ``processRequestedAppOperation``); the sandbox
        starts its waves again, which applies nothing that is already in place.
        """
        spec = stored.get("operation") or {}
        sync, result = spec.get("sync") or {}, stored.get("syncResult") or {}
        operation = _Operation(
            str(sync.get("revision") or result.get("revision") or target.revision),
            bool(sync.get("prune")),
            bool((spec.get("initiatedBy") or {}).get("automated")),
            str(stored.get("startedAt") or now_rfc3339()),
            dict(result.get("source") or target.source),
            dict(spec.get("retry") or {}),
            retry_count=int(stored.get("retryCount", 0)),
        )
        failed_at = parse_rfc3339(stored.get("finishedAt"))
        if failed_at is not None:
            due = failed_at + _backoff(operation.retry, max(operation.retry_count - 1, 0))
            operation.retry_at = time.monotonic() + max(due - time.time(), 0.0)
        return operation

    def _advance(self, run: _Run) -> None:
        """Move the sync forward as far as it can go now (apply waves while the previous ones are healthy)."""
        operation = run.operation
        if operation.retry_at is not None:
            if time.monotonic() < operation.retry_at:
                return
            operation.retry_at, operation.wave_index, operation.applied = None, 0, False
            operation.results = []
        if operation.revision != run.target.revision:
            run.target = self._target_at(run.app, operation.revision) or run.target
        waves = sorted({d.wave for d in run.target.desired})
        while operation.wave_index < len(waves) and self._step(run, waves):
            operation.wave_index += 1
            operation.applied = False
        if operation.wave_index >= len(waves):
            self._finish(run, "successfully synced (all tasks run)")

    def _step(self, run: _Run, waves: list[int]) -> bool:
        """Apply the current wave, or check it; True when the next wave may start."""
        operation = run.operation
        tasks = [d for d in run.target.desired if d.wave == waves[operation.wave_index]]
        if not operation.applied:
            if not self._apply_wave(run.target, operation, tasks):
                self._fail(run, "one or more objects failed to apply")
                return False
            operation.applied = True
            if operation.wave_index == len(waves) - 1:
                return True  # the last wave succeeds once applied, even if it degrades later
            self._write_running(run.key, operation, "one or more tasks are running")
            return False
        healths = {d.key: resource_health(applying.get_live(run.target.cluster, d)) for d in tasks}
        if any(h is not None and h.status == DEGRADED for h in healths.values()):
            self._fail(run, "one or more synchronization tasks completed unsuccessfully")
            return False
        waiting = [k for k, h in healths.items() if h is not None and h.status != HEALTHY]
        if waiting:
            message = f"waiting for healthy state of {waiting[0].describe()}"
            if len(waiting) > 1:
                message += f" and {len(waiting) - 1} more resources"
            self._write_running(run.key, operation, message)
            return False
        return True

    def _target_at(self, app: JsonObject, revision: str) -> _Target | None:
        """The target of a sync to another revision than the one tracked now."""
        pinned = copy.deepcopy(app)
        source = _source_of(pinned)
        source["targetRevision"] = revision
        pinned["spec"]["source"] = source
        pinned["spec"].pop("sources", None)
        try:
            return self._target(pinned)
        except (RepoError, ManifestError, RouteMissing, DesiredError):
            return None

    def _apply_wave(self, target: _Target, operation: _Operation, tasks: list[DesiredObject]) -> bool:
        succeeded = True
        for desired in tasks:
            entry = {**desired.status_entry(), "syncPhase": "Sync"}
            try:
                message = applying.apply(target.cluster, desired)
            except ApiError as error:
                entry.update(status="SyncFailed", message=error.message, hookPhase="Failed")
                succeeded = False
            else:
                entry.update(status="Synced", message=message, hookPhase="Running")
            operation.results.append(entry)
        return succeeded

    def _prune(self, run: _Run) -> bool:
        succeeded = True
        instance = _instance_name(run.app)
        for entry, key in self._prune_candidates(run.app, run.target):
            version = str(entry.get("version", "v1"))
            rtype = run.target.cluster.catalog.by_kind(
                f"{key.group}/{version}" if key.group else version, key.kind
            )
            if rtype is None:
                continue
            result: JsonObject = {
                "group": key.group,
                "version": version,
                "kind": key.kind,
                "namespace": key.namespace,
                "name": key.name,
                "syncPhase": "Sync",
            }
            try:
                message = applying.prune(run.target.cluster, rtype, key, instance)
            except ApiError as error:
                result.update(status="SyncFailed", message=error.message, hookPhase="Failed")
                succeeded = False
            else:
                if message is None:
                    continue
                result.update(status="Pruned", message=message, hookPhase="Succeeded")
            run.operation.results.append(result)
        return succeeded

    def _finish(self, run: _Run, message: str) -> None:
        operation = run.operation
        if operation.prune and not self._prune(run):
            self._fail(run, "one or more objects failed to apply")
            return
        for result in operation.results:
            if result.get("hookPhase") == "Running":
                result["hookPhase"] = "Succeeded"
        self._operations.pop(run.key, None)
        finished = now_rfc3339()
        state = self._operation_state(operation, "Succeeded", message, finished_at=finished)

        def record(doc: JsonObject) -> None:
            doc.pop("operation", None)  # a completed operation clears the field (setOperationState)
            status = doc.setdefault("status", {})
            status["operationState"] = state
            history = list(status.get("history") or [])
            next_id = max((int(h.get("id", 0)) for h in history), default=-1) + 1
            history.append(
                {
                    "id": next_id,
                    "revision": operation.revision,
                    "deployedAt": finished,
                    "deployStartedAt": operation.started_at,
                    "source": operation.source,
                    "initiatedBy": {"automated": True} if operation.automated else {"username": "admin"},
                }
            )
            status["history"] = history[-_HISTORY_LIMIT:]

        self._patch(run.key, record)
        self._request_refresh(run.key)  # a completed operation is compared again at once (with Git)
        log.info("argocd: %s/%s synced to %s", run.key[0], run.key[1], operation.revision[:12])

    def _terminate(self, key: AppKey, app: JsonObject) -> None:
        """End the operation ``Failed``, ``Operation terminated``, without retrying it.

        ``argocd app terminate-op`` sets ``operationState.phase: Terminating``;
        the controller resumes the operation in that phase (also one waiting for
        its next retry), gitops-engine's ``Terminate`` fails it, and no retry
        follows (controller/appcontroller.go ``processRequestedAppOperation``,
        gitops-engine pkg/sync/sync_context.go). An operation this emulator no
        longer runs (the sandbox was restarted) ends the same way.
        """
        operation = self._operations.pop(key, None)
        finished = now_rfc3339()
        if operation is not None:
            state = self._operation_state(operation, "Failed", "Operation terminated", finished_at=finished)
        else:
            stored = (app.get("status") or {}).get("operationState") or {}
            state = {**copy.deepcopy(stored), "phase": "Failed", "message": "Operation terminated"}
            state["finishedAt"] = finished
        retries = int(state.get("retryCount", 0))
        if retries:
            state["message"] += f" (retried {retries} times)."

        def record(doc: JsonObject) -> None:
            doc.setdefault("status", {})["operationState"] = state
            doc.pop("operation", None)  # a completed operation clears the field

        self._patch(key, record)
        self._request_refresh(key)
        log.info("argocd: operation of %s/%s terminated", key[0], key[1])

    def _fail(self, run: _Run, message: str) -> None:
        operation = run.operation
        policy = operation.retry
        limit = int(policy.get("limit", 0)) if policy else 0
        if operation.retry_count < limit or limit < 0:
            delay = _backoff(policy, operation.retry_count)
            operation.retry_count += 1
            operation.retry_at = time.monotonic() + delay
            retry_at = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=delay)
            self._write_running(
                run.key,
                operation,
                f"{message}. Retrying attempt #{operation.retry_count} at {retry_at:%H:%M:%S}.",
                finished_at=now_rfc3339(),  # Argo CD: Running with finishedAt is waiting for a retry
            )
            return
        self._operations.pop(run.key, None)
        if operation.retry_count:
            message = f"{message} (retried {operation.retry_count} times)."
        state = self._operation_state(operation, "Failed", message, finished_at=now_rfc3339())

        def record(doc: JsonObject) -> None:
            doc.pop("operation", None)  # a completed operation clears the field (setOperationState)
            doc.setdefault("status", {})["operationState"] = state

        self._patch(run.key, record)
        self._request_refresh(run.key)
        log.info("argocd: sync of %s/%s failed: %s", run.key[0], run.key[1], message)

    # ------------------------------------------------------------ status

    def _operation_state(
        self, operation: _Operation, phase: str, message: str, *, finished_at: str = ""
    ) -> JsonObject:
        initiated = {"automated": True} if operation.automated else {"username": "admin"}
        state: JsonObject = {
            "operation": {
                "sync": {
                    "revision": operation.revision,
                    "prune": operation.prune,
                    "syncStrategy": {"hook": {}},
                },
                "initiatedBy": initiated,
                "retry": copy.deepcopy(operation.retry),
            },
            "phase": phase,
            "message": message,
            "startedAt": operation.started_at,
            "syncResult": {
                "revision": operation.revision,
                "source": operation.source,
                "resources": copy.deepcopy(operation.results),
            },
        }
        if operation.retry_count:
            state["retryCount"] = operation.retry_count
        if finished_at:
            state["finishedAt"] = finished_at
        return state

    def _write_running(
        self, key: AppKey, operation: _Operation, message: str, *, finished_at: str = ""
    ) -> None:
        if message == operation.last_message:
            return
        operation.last_message = message
        state = self._operation_state(operation, "Running", message, finished_at=finished_at)

        def record(doc: JsonObject) -> None:
            status = doc.setdefault("status", {})
            if (status.get("operationState") or {}).get("phase") != TERMINATING:
                status["operationState"] = state  # Argo CD does not clobber a Terminating with Running

        self._patch(key, record)

    def _write_status(self, key: AppKey, target: _Target, *, reconciled: bool) -> None:
        """The comparison's result; ``reconciled``: it read Git (``CompareWithLatest``), the only kind
        of comparison that moves ``reconciledAt`` (controller/appcontroller.go)."""
        try:
            app = self.management.store.get(self._apps, *key).copy()
        except ApiError:
            return
        live = {d.key: applying.get_live(target.cluster, d) for d in target.desired}
        resources: list[JsonObject] = []
        healths: list[str] = []
        for desired in target.desired:
            entry = desired.status_entry()
            entry["status"] = "Synced" if applying.is_synced(desired, live[desired.key]) else "OutOfSync"
            health = resource_health(live[desired.key])
            if health is not None:
                entry["health"] = health.to_json()
                healths.append(health.status)
            entry["syncWave"] = desired.wave
            resources.append(entry)
        target.live = live
        for entry, _ in self._prune_candidates(app, target):
            resources.append(
                {
                    **{k: entry[k] for k in ("group", "version", "kind", "namespace", "name") if k in entry},
                    "status": "OutOfSync",
                    "requiresPruning": True,
                }
            )
        synced = all(r["status"] == "Synced" for r in resources)
        app_health = worst(healths) if healths else HEALTHY
        destination = (app.get("spec") or {}).get("destination") or {}

        def update(doc: JsonObject) -> None:
            status = doc.setdefault("status", {})
            status["sync"] = {
                "status": "Synced" if synced else "OutOfSync",
                "revision": target.revision,
                "comparedTo": {"source": target.source, "destination": destination},
            }
            status["health"] = {"status": app_health}
            status["resources"] = resources
            status["sourceType"] = target.source_type
            status["summary"] = status.get("summary") or {}
            status["controllerNamespace"] = CONTROLLER_NAMESPACE
            status.pop("conditions", None)
            if reconciled or not status.get("reconciledAt"):
                status["reconciledAt"] = now_rfc3339()

        self._patch(key, update)

    def _write_comparison_error(self, key: AppKey, message: str) -> None:
        def update(doc: JsonObject) -> None:
            status = doc.setdefault("status", {})
            sync = status.setdefault("sync", {})
            sync["status"] = "Unknown"
            status["conditions"] = [
                {
                    "type": "ComparisonError",
                    "message": f"Failed to load target state: {message}",
                    "lastTransitionTime": now_rfc3339(),
                }
            ]
            status["reconciledAt"] = now_rfc3339()

        self._patch(key, update)

    def _patch(self, key: AppKey, change: Any) -> None:
        """Read-modify-write of the Application under the store's lock (``change`` mutates the copy)."""

        def apply_change(document: JsonObject) -> JsonObject:
            change(document)
            return document

        try:
            self.management.store.patch(self._apps, key[0], key[1], apply_change)
        except ApiError as error:
            if error.code != 404:
                raise

    # ------------------------------------------------------------ deletion

    def _finalize(self, key: AppKey, app: JsonObject) -> Result:
        """Delete the app's resources, then let it go; wait while any of them still exists."""
        if RESOURCES_FINALIZER not in (app["metadata"].get("finalizers") or []):
            return DONE
        self._operations.pop(key, None)
        instance = _instance_name(app)
        destination = (app.get("spec") or {}).get("destination") or {}
        try:
            cluster_name = self.routes.resolve_cluster(
                server=str(destination.get("server") or ""), name=str(destination.get("name") or "")
            )
        except RouteMissing:
            cluster_name = ""
        cluster = self.clusters.get(cluster_name)
        pending = 0
        for entry in (app.get("status") or {}).get("resources") or [] if cluster is not None else []:
            assert cluster is not None
            group = entry.get("group", "")
            api_version = f"{group}/{entry.get('version', 'v1')}" if group else entry.get("version", "v1")
            rtype = cluster.catalog.by_kind(api_version, entry["kind"])
            if rtype is None:
                continue
            resource = ResourceKey(group, entry["kind"], entry.get("namespace", ""), entry["name"])
            if _kept_on_delete(cluster, rtype, resource):
                continue
            if applying.prune(cluster, rtype, resource, instance) is not None:
                pending += 1
        if pending:
            return Result(requeue_after=_OPERATION_TICK)  # deleted objects may wait on their finalizers

        def release(doc: JsonObject) -> None:
            finalizers = [f for f in doc["metadata"].get("finalizers") or [] if f != RESOURCES_FINALIZER]
            doc["metadata"]["finalizers"] = finalizers

        self._patch(key, release)
        return DONE
