"""Wait until Argo CD has synced a commit and ESO has acted on it: what ``argocd app wait`` cannot say.

``argocd app wait --sync --health`` returns as soon as an Application is Synced
and Healthy, at whatever revision: right after a push Argo CD has not even
fetched the commit (it polls every 3 minutes unless asked to refresh), the app
is still Synced and Healthy at the previous revision, and the wait returns on
that stale state. Here an Application is done only when, for the awaited commit
(or a later commit of the branch that contains it: another push landed
meanwhile and Argo CD syncs the branch's head):

* ``status.sync.revision`` and ``status.operationState.syncResult.revision``
  are that revision: it compared *and* synced it;
* ``status.operationState.phase`` is ``Succeeded``;
* ``status.reconciledAt`` is not before ``operationState.finishedAt``: a
  comparison ran after the sync finished, so Synced and Healthy describe the
  cluster after the sync, not before it;
* ``status.sync.status`` is ``Synced`` and ``status.health.status`` ``Healthy``.

Then ESO: every rendered ExternalSecret and PushSecret of those Applications is
``Ready``, ESO has processed its current generation (``syncedResourceVersion``
starts with ``metadata.generation``), and an ExternalSecret this delivery added
or changed was refreshed (``refreshTime``) after the sync that applied it
started (the Application's ``status.history``); they are read with one LIST per
kind and namespace per look. Asking Argo CD to refresh
(``argocd.argoproj.io/refresh: normal``) comes first, so nothing waits for its
poll. Nothing here reads a Secret: only the status ESO and Argo CD write.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from vaultflow.base.errors import OperationError
from vaultflow.base.retry import poll_until
from vaultflow.base.times import parse_time
from vaultflow.steps.kube.errors import kube_errors

JsonObject = dict[str, Any]
REFRESH_ANNOTATION = "argocd.argoproj.io/refresh"
ARGO_GROUP, ARGO_VERSION, ARGO_APPLICATIONS = "argoproj.io", "v1alpha1", "applications"
ESO_GROUP = "external-secrets.io"
ESO_KINDS = {"ExternalSecret": ("v1", "externalsecrets"), "PushSecret": ("v1alpha1", "pushsecrets")}
POLL = (0.2, 3.0)  # first and longest wait between two looks, seconds
_UNCHECKED = "not checked: its Application is not done"


# ---------------------------------------------------------------- what to wait for


@dataclass(frozen=True)
class WatchedApplication:
    """An Application that reads a changed path: ``path`` is the source path it must read. A rendered
    one (``rendered``) must be live with that path (the app-of-apps creates and updates it); one
    found live and not rendered is taken as it is."""

    namespace: str
    name: str
    path: str
    rendered: bool = True

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class WatchedObject:
    """A rendered ExternalSecret or PushSecret, where it goes, and the Application that syncs it."""

    kind: Literal["ExternalSecret", "PushSecret"]
    cluster: str
    namespace: str
    name: str
    application: str  # namespace/name of a WatchedApplication
    changed: bool  # added or changed by this delivery: it must be refreshed after the sync

    def describe(self) -> str:
        return f"{self.kind} {self.cluster} {self.namespace}/{self.name}"


def covers(app_path: str, files: Iterable[str]) -> bool:
    """Whether an Application reading ``app_path`` of the repository reads any of ``files``."""
    base = app_path.strip("/")
    if base in ("", "."):
        return True
    prefix = base + "/"
    return any(path.startswith(prefix) for path in files)


def _sources(app: JsonObject) -> list[JsonObject]:
    spec = app.get("spec") or {}
    if spec.get("source"):
        return [dict(spec["source"])]
    return [dict(source) for source in spec.get("sources") or []]


def normal_repo_url(url: str) -> str:
    """A repository URL as GitHub and Argo CD compare them: no trailing ``/`` or ``.git``; hosts and
    GitHub paths case-insensitive (a local ``file://`` path keeps its case)."""
    text = url.strip().rstrip("/").removesuffix(".git")
    return text if text.startswith("file://") else text.lower()


@dataclass(frozen=True)
class Tracking:
    """Which source an Application must have to see a delivery: the repository and the branch."""

    repo_urls: frozenset[str]  # normalised
    branch: str
    default_branch: str | None  # what ``HEAD`` (or no targetRevision) resolves to

    def reads(self, source: JsonObject) -> bool:
        if normal_repo_url(str(source.get("repoURL", ""))) not in self.repo_urls:
            return False
        revision = str(source.get("targetRevision") or "HEAD")
        if revision == "HEAD":
            return self.default_branch == self.branch
        return revision in (self.branch, f"refs/heads/{self.branch}")


def applications_of(
    changed: Collection[str],
    *,
    rendered: Iterable[JsonObject],
    live: Iterable[JsonObject],
    tracking: Tracking,
    owned: str,
    tree_files: Collection[str],
) -> list[WatchedApplication]:
    """The Applications to wait for: paths are the repository's (``<gitops.path>/...``).

    * each rendered Application whose source reads a ``changed`` file (it may not exist yet: the
      app-of-apps creates it);
    * each live Application of the repository and branch that reads a ``changed`` file, or reads a
      path inside ``owned`` (the directory vaultflow writes) that the tree does not have: it can
      never sync, and waiting for it is how that is found out.
    """
    selected: dict[str, WatchedApplication] = {}
    for app in rendered:
        path = str((_sources(app) or [{}])[0].get("path") or "")
        if covers(path, changed):
            metadata = app["metadata"]
            watched = WatchedApplication(
                str(metadata.get("namespace") or ""), metadata["name"], path.strip("/")
            )
            selected[watched.key] = watched
    owned_dir = owned.strip("/")
    for app in live:
        metadata = app["metadata"]
        key = f"{metadata.get('namespace') or ''}/{metadata['name']}"
        if key in selected:
            continue
        for source in _sources(app):
            if not tracking.reads(source):
                continue
            path = str(source.get("path") or "").strip("/")
            inside = path == owned_dir or path.startswith(owned_dir + "/")
            if covers(path, changed) or (inside and not covers(path, tree_files)):
                namespace = str(metadata.get("namespace") or "")
                selected[key] = WatchedApplication(namespace, metadata["name"], path, rendered=False)
                break
    return sorted(selected.values(), key=lambda app: app.key)


# ---------------------------------------------------------------- what was seen


class ApplicationStatus(BaseModel):
    namespace: str
    name: str
    converged: bool
    sync: str
    health: str
    revision: str
    operation: str  # the last operation's phase, "" when none
    message: str  # what is seen, in one line (conditions and the last sync's message included)


class ObjectStatus(BaseModel):
    kind: str
    cluster: str
    namespace: str
    name: str
    converged: bool
    message: str


class WaitReport(BaseModel):
    """The outcome of one wait: every Application and ESO object, done or what it was seen doing."""

    commit: str
    converged: bool
    seconds: float
    applications: list[ApplicationStatus]
    objects: list[ObjectStatus]
    pending: list[str]  # one line per thing not there, for people


def _time(text: Any) -> datetime | None:
    try:
        return parse_time(str(text)) if text else None
    except ValueError:
        return None


@dataclass(frozen=True)
class _AppSeen:
    status: ApplicationStatus
    sync_started: datetime | None  # when the sync that first applied an accepted revision started


def application_status(
    watched: WatchedApplication, app: JsonObject | None, accept: Callable[[str], bool], commit: str
) -> _AppSeen:
    """Whether one Application is done (see the module's docstring), and what it shows."""
    if app is None:
        status = ApplicationStatus(
            namespace=watched.namespace,
            name=watched.name,
            converged=False,
            sync="",
            health="",
            revision="",
            operation="",
            message="does not exist",
        )
        return _AppSeen(status, None)
    status_doc = app.get("status") or {}
    sync = status_doc.get("sync") or {}
    operation = status_doc.get("operationState") or {}
    revision = str(sync.get("revision") or "")
    synced_revision = str((operation.get("syncResult") or {}).get("revision") or "")
    sync_status = str(sync.get("status") or "Unknown")
    health = str((status_doc.get("health") or {}).get("status") or "Unknown")
    phase = str(operation.get("phase") or "")
    finished, reconciled = _time(operation.get("finishedAt")), _time(status_doc.get("reconciledAt"))
    source_path = str((_sources(app) or [{}])[0].get("path") or "")

    waiting: list[str] = []
    if watched.rendered and source_path.strip("/") != watched.path:
        waiting.append(f"reads {source_path or '/'}, the rendered Application {watched.path}")
    if not revision or not accept(revision):
        waiting.append(f"not at {commit[:12]} yet")
    elif synced_revision != revision:
        waiting.append(f"compared {revision[:12]}, last synced {synced_revision[:12] or 'nothing'}")
    if phase != "Succeeded":
        waiting.append(f"last sync {phase or 'none'}")
    elif finished is None or reconciled is None or reconciled < finished:
        waiting.append("not compared since its sync finished")
    if sync_status != "Synced" or health != "Healthy":
        waiting.append(f"{sync_status}, {health}")

    seen = f"{sync_status} at {revision[:12] or '-'}, {health}"
    if phase:
        seen += f", last sync {phase}: {str(operation.get('message') or '').strip()}"
    for condition in status_doc.get("conditions") or []:
        seen += f"; {condition.get('type', 'Condition')}: {str(condition.get('message') or '').strip()}"
    unhealthy = [
        f"{r.get('kind')} {r.get('namespace') or ''}/{r.get('name')} "
        f"{(r.get('health') or {}).get('status')}: {(r.get('health') or {}).get('message') or ''}".strip()
        for r in status_doc.get("resources") or []
        if (r.get("health") or {}).get("status") not in (None, "Healthy")
    ]
    if unhealthy and health != "Healthy":
        seen += (
            " ("
            + "; ".join(unhealthy[:3])
            + (f"; and {len(unhealthy) - 3} more" if len(unhealthy) > 3 else "")
            + ")"
        )
    message = seen if not waiting else f"{'; '.join(waiting)} ({seen})"
    status = ApplicationStatus(
        namespace=watched.namespace,
        name=watched.name,
        converged=not waiting,
        sync=sync_status,
        health=health,
        revision=revision,
        operation=phase,
        message=message,
    )
    return _AppSeen(status, _sync_started(status_doc, operation, accept))


def _sync_started(
    status: JsonObject, operation: JsonObject, accept: Callable[[str], bool]
) -> datetime | None:
    """When the first successful sync of an accepted revision started (Argo CD's ``history``).

    Read from the newest entry back, stopping at the first revision before the commit: the branch
    only moves forward, so nothing older contains it (and each look may cost git a fetch).
    """
    history = sorted(status.get("history") or [], key=lambda entry: int(entry.get("id", 0)))
    earliest: JsonObject | None = None
    for entry in reversed(history):
        if not entry.get("revision") or not accept(str(entry["revision"])):
            break
        earliest = entry
    if earliest is not None:
        return _time(earliest.get("deployStartedAt")) or _time(earliest.get("deployedAt"))
    return _time(operation.get("startedAt"))


def object_status(
    watched: WatchedObject, obj: JsonObject | None, sync_started: datetime | None
) -> ObjectStatus:
    """Whether ESO has acted on one rendered object: Ready, its generation processed, refreshed after
    the sync when this delivery changed it."""

    def seen(converged: bool, message: str) -> ObjectStatus:
        return ObjectStatus(
            kind=watched.kind,
            cluster=watched.cluster,
            namespace=watched.namespace,
            name=watched.name,
            converged=converged,
            message=message,
        )

    if obj is None:
        return seen(False, "does not exist")
    status = obj.get("status") or {}
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    if ready is None or ready.get("status") != "True":
        reason = (ready or {}).get("reason") or "not Ready"
        return seen(
            False, f"{reason}: {str((ready or {}).get('message') or 'no Ready condition yet').strip()}"
        )
    generation = str((obj.get("metadata") or {}).get("generation", ""))
    processed = str(status.get("syncedResourceVersion") or "").split("-", 1)[0]
    if generation and processed != generation:
        return seen(
            False, f"Ready, but ESO has not processed generation {generation} yet (at {processed or '-'})"
        )
    refreshed = _time(status.get("refreshTime"))
    # RFC 3339 times have whole seconds: a refresh in the sync's own second counts as after it
    fresh = sync_started is None or (
        refreshed is not None and refreshed >= sync_started.replace(microsecond=0)
    )
    if watched.changed and watched.kind == "ExternalSecret" and not fresh:
        shown = status.get("refreshTime") or "-"
        return seen(False, f"Ready, not refreshed since the sync (refreshTime {shown})")
    return seen(True, f"Ready: {str(ready.get('message') or '').strip()}")


# ---------------------------------------------------------------- reading and waiting


def request_refresh(argocd_api: Any, apps: Iterable[WatchedApplication]) -> list[str]:
    """Annotate each existing Application ``argocd.argoproj.io/refresh: normal`` (Argo CD compares it
    with Git now instead of at its next poll, then removes the annotation); the ones annotated."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    custom = client.CustomObjectsApi(argocd_api)
    done = []
    for app in apps:
        body = {"metadata": {"annotations": {REFRESH_ANNOTATION: "normal"}}}
        try:
            with kube_errors("Argo CD", f"ask Application {app.key} to refresh"):
                try:
                    custom.patch_namespaced_custom_object(
                        ARGO_GROUP, ARGO_VERSION, app.namespace, ARGO_APPLICATIONS, app.name, body
                    )
                except ApiException as error:
                    if error.status == 404:
                        continue  # not created yet: a new Application is compared at once
                    raise
        except OperationError:
            continue  # a refresh is only a shortcut: the wait below still sees the truth
        done.append(app.key)
    return done


def list_applications(argocd_api: Any, namespace: str) -> list[JsonObject]:
    from kubernetes import client

    with kube_errors("Argo CD", f"list Applications in namespace {namespace}"):
        listed = client.CustomObjectsApi(argocd_api).list_namespaced_custom_object(
            ARGO_GROUP, ARGO_VERSION, namespace, ARGO_APPLICATIONS
        )
    return list(listed.get("items") or [])


def _list_eso(api: Any, cluster: str, kind: str, namespace: str) -> dict[str, JsonObject]:
    """One LIST of ``kind`` in one namespace (what the delivery's RBAC grants there, nothing
    cluster-wide: gitops/delivery_rbac.py), by name."""
    from kubernetes import client

    version, plural = ESO_KINDS[kind]
    with kube_errors(f"cluster {cluster}", f"list {plural} in namespace {namespace}"):
        listed = client.CustomObjectsApi(api).list_namespaced_custom_object(
            ESO_GROUP, version, namespace, plural
        )
    return {str(item["metadata"]["name"]): item for item in listed.get("items") or []}


@dataclass
class _Snapshot:
    applications: list[ApplicationStatus]
    objects: list[ObjectStatus]

    @property
    def converged(self) -> bool:
        return all(a.converged for a in self.applications) and all(o.converged for o in self.objects)

    def pending(self) -> list[str]:
        lines = [
            f"Application {a.namespace}/{a.name}: {a.message}" for a in self.applications if not a.converged
        ]
        unchecked = [o for o in self.objects if o.message == _UNCHECKED]
        lines += [
            f"{o.kind} {o.cluster} {o.namespace}/{o.name}: {o.message}"
            for o in self.objects
            if not o.converged and o.message != _UNCHECKED
        ]
        if unchecked:
            lines.append(
                f"{len(unchecked)} ExternalSecret(s)/PushSecret(s) not checked yet: "
                "their Applications are not done"
            )
        return lines


def wait_for_sync(
    argocd_api: Any,
    applications: list[WatchedApplication],
    objects: list[WatchedObject],
    cluster_apis: Mapping[str, Any],
    *,
    commit: str,
    accept: Callable[[str], bool],
    timeout: float,
) -> WaitReport:
    """Ask each Application to refresh, then wait (at most ``timeout`` seconds) until every one is done
    at ``commit`` (``accept`` says which revisions contain it) and every object Ready after it."""
    started = time.monotonic()
    known: dict[str, bool] = {}

    def accepted(revision: str) -> bool:  # asking git is not free: a commit's answer never changes
        if revision not in known:
            known[revision] = accept(revision)
        return known[revision]

    request_refresh(argocd_api, applications)
    namespaces = sorted({app.namespace for app in applications})
    last: list[_Snapshot] = []
    failures: list[str] = []

    def observe() -> _Snapshot:
        try:
            snapshot = look()
        except OperationError as error:  # the API failed this once: an observation, not the end
            failures[:] = [str(error)]
            raise
        failures.clear()
        last[:] = [snapshot]
        return snapshot

    def look() -> _Snapshot:
        live = {
            f"{item['metadata'].get('namespace') or ''}/{item['metadata']['name']}": item
            for namespace in namespaces
            for item in list_applications(argocd_api, namespace)
        }
        seen = [application_status(app, live.get(app.key), accepted, commit) for app in applications]
        statuses = [s.status for s in seen]
        if not all(s.converged for s in statuses):
            return _Snapshot(statuses, [_unchecked(o) for o in objects])
        started_at = {app.key: s.sync_started for app, s in zip(applications, seen, strict=True)}
        found: dict[tuple[str, str, str], dict[str, JsonObject]] = {}
        for cluster, kind, namespace in sorted({(o.cluster, o.kind, o.namespace) for o in objects}):
            found[(cluster, kind, namespace)] = _list_eso(cluster_apis[cluster], cluster, kind, namespace)
        return _Snapshot(
            statuses,
            [
                object_status(
                    o,
                    found[(o.cluster, o.kind, o.namespace)].get(o.name),
                    started_at.get(o.application),
                )
                for o in objects
            ],
        )

    converged = True
    try:
        poll_until(
            observe,
            lambda snapshot: snapshot.converged,
            what=f"Argo CD and ESO at {commit[:12]}",
            timeout=timeout,
            initial=POLL[0],
            maximum=POLL[1],
            describe=lambda snapshot: "; ".join(snapshot.pending()),
            transient=(OperationError,),
        )
    except OperationError:
        converged = False
    snapshot = last[0] if last else _Snapshot([], [])
    pending = [] if converged else snapshot.pending() + [f"last look failed: {f}" for f in failures]
    return WaitReport(
        commit=commit,
        converged=converged,
        seconds=round(time.monotonic() - started, 1),
        applications=snapshot.applications,
        objects=snapshot.objects,
        pending=pending,
    )


def _unchecked(watched: WatchedObject) -> ObjectStatus:
    return ObjectStatus(
        kind=watched.kind,
        cluster=watched.cluster,
        namespace=watched.namespace,
        name=watched.name,
        converged=False,
        message=_UNCHECKED,
    )
