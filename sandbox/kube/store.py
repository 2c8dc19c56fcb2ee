"""The in-memory object store of one emulated cluster: kube-apiserver's registry semantics.

What the store guarantees, as kube-apiserver + etcd do:

* ``metadata.uid`` and ``creationTimestamp`` set once on create; one cluster-wide,
  monotonic ``resourceVersion`` bumped by every write; an update carrying a
  stale ``resourceVersion`` is a 409 Conflict; an update that changes nothing
  writes nothing (the resourceVersion stays);
* ``metadata.generation`` for kinds that track it, bumped when anything but
  metadata (and status, when status is a subresource) changes;
* with a ``status`` subresource, writes to the object ignore ``status`` and
  writes to ``/status`` change nothing else;
* finalizers: deleting an object that has them only sets ``deletionTimestamp``;
  it goes away when an update removes the last one (a namespace marked so is
  ``Terminating``: its content is deleted at once, new content is a 403);
* garbage collection by ``ownerReferences`` (background cascade, or orphaning);
  deleting a namespace deletes its content, deleting a CRD its custom resources;
* a bounded event log that watches replay from a ``resourceVersion``.

Objects are stored as plain dicts that are never mutated after they are
stored, next to their JSON encoding, so a list of 10,000 Secrets is a join of
cached bytes rather than 10,000 serialisations.
"""

from __future__ import annotations

import base64
import builtins
import json
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from vaultflow.sandbox.kube import errors
from vaultflow.sandbox.kube.errors import ApiError, FieldCause, JsonObject
from vaultflow.sandbox.kube.resources import ResourceCatalog, ResourceType
from vaultflow.sandbox.kube.strategies import Strategy, now_rfc3339
from vaultflow.sandbox.kube.validation import validate_metadata

EVENT_LOG_SIZE = 50_000
_NAMESPACES = ("", "namespaces")
_GENERATE_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_SERVER_MANAGED = (
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
)

Predicate = Callable[[JsonObject], bool]


def encode(obj: JsonObject) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Entry:
    """A stored object (read-only by convention) and its JSON encoding."""

    obj: JsonObject
    encoded: bytes

    @property
    def resource_version(self) -> str:
        return str(self.obj["metadata"]["resourceVersion"])

    def copy(self) -> JsonObject:
        """A private, mutable copy of the object."""
        result: JsonObject = json.loads(self.encoded)
        return result


@dataclass(frozen=True)
class Event:
    """One committed change, as a watch reports it."""

    resource_version: int
    rtype: ResourceType
    namespace: str
    type: str  # ADDED, MODIFIED or DELETED
    entry: Entry
    previous: JsonObject | None


@dataclass(frozen=True)
class ListResult:
    entries: list[Entry]
    resource_version: int
    continue_token: str
    remaining: int


@dataclass(frozen=True)
class Preconditions:
    uid: str | None = None
    resource_version: str | None = None


Hook = Callable[["ObjectStore", Event], None]
StrategyLookup = Callable[[ResourceType], Strategy]


def _spec_part(obj: JsonObject, ignore_status: bool) -> JsonObject:
    return {k: v for k, v in obj.items() if k != "metadata" and not (ignore_status and k == "status")}


class ObjectStore:
    """All objects of one cluster. Thread-safe; hooks run after each commit, under the lock."""

    def __init__(
        self, catalog: ResourceCatalog, strategies: StrategyLookup, *, event_log_size: int = EVENT_LOG_SIZE
    ) -> None:
        self.catalog = catalog
        self._strategies = strategies
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._resource_version = 1
        self._data: dict[tuple[str, str], dict[str, dict[str, Entry]]] = {}
        self._dependents: dict[str, set[tuple[tuple[str, str], str, str]]] = {}
        self._types: dict[tuple[str, str], ResourceType] = {}
        self._events: deque[Event] = deque(maxlen=event_log_size)
        self._hooks: list[Hook] = []

    # ------------------------------------------------------------ reading

    @property
    def resource_version(self) -> int:
        return self._resource_version

    def add_hook(self, hook: Hook) -> None:
        """Run ``hook`` after every committed write (controllers use this)."""
        self._hooks.append(hook)

    def _bucket(self, rtype: ResourceType, namespace: str) -> dict[str, Entry]:
        return self._data.setdefault(rtype.storage_key, {}).setdefault(
            namespace if rtype.namespaced else "", {}
        )

    def _find(self, rtype: ResourceType, namespace: str, name: str) -> Entry:
        entry = self._data.get(rtype.storage_key, {}).get(namespace if rtype.namespaced else "", {}).get(name)
        if entry is None:
            raise errors.not_found(rtype.plural, name, rtype.group)
        return entry

    def get(self, rtype: ResourceType, namespace: str, name: str) -> Entry:
        with self._lock:
            return self._find(rtype, namespace, name)

    def exists(self, rtype: ResourceType, namespace: str, name: str) -> bool:
        try:
            self.get(rtype, namespace, name)
        except ApiError:
            return False
        return True

    def list(
        self,
        rtype: ResourceType,
        namespace: str | None,
        predicate: Predicate | None = None,
        *,
        limit: int = 0,
        continue_token: str = "",
    ) -> ListResult:
        """Objects sorted by namespace and name; ``namespace=None`` lists every namespace."""
        start_after = _decode_continue(continue_token) if continue_token else None
        with self._lock:
            buckets = self._data.get(rtype.storage_key, {})
            if rtype.namespaced and namespace is not None:
                selected = [((namespace, name), e) for name, e in buckets.get(namespace, {}).items()]
            else:
                selected = [((ns, name), e) for ns, bucket in buckets.items() for name, e in bucket.items()]
            resource_version = self._resource_version
        selected.sort(key=lambda item: item[0])
        if start_after is not None:
            selected = [item for item in selected if item[0] > start_after]
        entries = [e for _, e in selected if predicate is None or predicate(e.obj)]
        if limit and len(entries) > limit:
            last = entries[limit - 1].obj["metadata"]
            token = _encode_continue((last.get("namespace", ""), last["name"]))
            return ListResult(entries[:limit], resource_version, token, len(entries) - limit)
        return ListResult(entries, resource_version, "", 0)

    def snapshot(self) -> tuple[int, builtins.list[tuple[ResourceType, Entry]]]:
        """The resourceVersion and every stored entry, consistent: what etcd keeps across a restart."""
        with self._lock:
            objects = [
                (self._types[key], entry)
                for key, buckets in self._data.items()
                for bucket in buckets.values()
                for entry in bucket.values()
            ]
            return self._resource_version, objects

    # ------------------------------------------------------------ writing

    def restore(self, resource_version: int, objects: Iterable[tuple[ResourceType, JsonObject]]) -> None:
        """Replace the content with ``snapshot``'s objects (uids, resourceVersions, status kept).

        Objects are read back as the storage codec decodes them: a custom
        resource gets its CRD's current defaults (``redecode``).

        Hooks see each object ADDED in the given order, as controllers resync after
        a restart (restored CRDs serve their kinds again: ``objects`` may be a generator
        that looks their types up after yielding them); the event log starts empty,
        so a watch from an older resourceVersion gets a 410 and relists.
        """
        with self._lock:
            self._data.clear()
            self._dependents.clear()
            self._events.clear()
            for rtype, saved in objects:
                obj = self._strategies(rtype).stored(saved)
                entry = Entry(obj, encode(obj))
                namespace = obj["metadata"].get("namespace", "")
                self._bucket(rtype, namespace)[obj["metadata"]["name"]] = entry
                self._types[rtype.storage_key] = rtype
                self._index_owners(rtype, None, obj)
                event = Event(int(entry.resource_version), rtype, namespace, "ADDED", entry, None)
                for hook in self._hooks:
                    hook(self, event)
            self._resource_version = max(self._resource_version, resource_version)

    def redecode(self, rtype: ResourceType) -> None:
        """Every stored object of ``rtype`` as decoding it from storage yields it now.

        kube-apiserver defaults custom resources when it reads them from etcd,
        so after a CRD gains or changes a ``default`` every read serves it,
        although nothing was written: the resourceVersion stays and no watch
        event is sent. The store keeps decoded objects, so it re-decodes
        them once when a CRD's schemas change.
        """
        strategy = self._strategies(rtype)
        with self._lock:
            for bucket in self._data.get(rtype.storage_key, {}).values():
                for name, entry in list(bucket.items()):
                    obj = strategy.stored(entry.obj)
                    if obj is not entry.obj:
                        bucket[name] = Entry(obj, encode(obj))

    def _commit(self, rtype: ResourceType, obj: JsonObject, previous: Entry | None, kind: str) -> Entry:
        """Store ``obj`` under a new resourceVersion and tell watchers and hooks."""
        self._resource_version += 1
        obj["metadata"]["resourceVersion"] = str(self._resource_version)
        entry = Entry(obj, encode(obj))
        namespace = obj["metadata"].get("namespace", "")
        name = obj["metadata"]["name"]
        bucket = self._bucket(rtype, namespace)
        if kind == "DELETED":
            bucket.pop(name, None)
        else:
            bucket[name] = entry
        self._types[rtype.storage_key] = rtype
        self._index_owners(rtype, previous.obj if previous else None, None if kind == "DELETED" else obj)
        event = Event(
            self._resource_version, rtype, namespace, kind, entry, previous.obj if previous else None
        )
        self._events.append(event)
        self._changed.notify_all()
        for hook in self._hooks:
            hook(self, event)
        return entry

    def _index_owners(self, rtype: ResourceType, old: JsonObject | None, new: JsonObject | None) -> None:
        for obj, add in ((old, False), (new, True)):
            if obj is None:
                continue
            key = (rtype.storage_key, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
            for ref in obj["metadata"].get("ownerReferences") or []:
                uid = ref.get("uid", "")
                if add:
                    self._dependents.setdefault(uid, set()).add(key)
                else:
                    self._dependents.get(uid, set()).discard(key)

    def _check_kind(self, rtype: ResourceType, obj: JsonObject) -> None:
        api_version = obj.setdefault("apiVersion", rtype.api_version)
        kind = obj.setdefault("kind", rtype.kind)
        if api_version != rtype.api_version:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match "
                f"the expected API version ({rtype.api_version})"
            )
        if kind != rtype.kind:
            raise errors.bad_request(
                f"the kind in the data ({kind}) does not match the expected kind ({rtype.kind})"
            )

    def _validate(self, rtype: ResourceType, obj: JsonObject, old: JsonObject | None) -> None:
        strategy = self._strategies(rtype)
        causes: list[FieldCause] = validate_metadata(obj, strategy.name_validator)
        causes += strategy.validate(obj, old)
        if causes:
            raise errors.invalid(rtype.kind, obj["metadata"].get("name", ""), causes, rtype.group)

    def create(
        self, rtype: ResourceType, namespace: str, body: JsonObject, *, dry_run: bool = False
    ) -> Entry:
        """POST semantics. The store takes ownership of ``body`` (pass a copy if you keep using it)."""
        obj = body
        if not isinstance(obj, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        self._check_kind(rtype, obj)
        strategy = self._strategies(rtype)
        strategy.default(obj)
        metadata = obj.setdefault("metadata", {})
        if not isinstance(metadata, dict):
            raise errors.bad_request("metadata must be an object")
        if rtype.namespaced:
            if metadata.get("namespace") not in (None, "", namespace):
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            metadata["namespace"] = namespace
        else:
            metadata.pop("namespace", None)
        if not metadata.get("name") and metadata.get("generateName"):
            suffix = "".join(secrets.choice(_GENERATE_NAME_ALPHABET) for _ in range(5))
            metadata["name"] = f"{metadata['generateName']}{suffix}"
        for key in (*_SERVER_MANAGED, "resourceVersion", "selfLink", "managedFields"):
            metadata.pop(key, None)
        if rtype.has_status:
            obj.pop("status", None)  # status is the controllers' (strategies may initialise it)
        strategy.prepare_create(obj)
        self._validate(rtype, obj, None)
        with self._lock:
            name = metadata["name"]
            if rtype.namespaced:
                self._check_namespace_open(rtype, namespace, name)
            if name in self._bucket(rtype, namespace):
                raise errors.already_exists(rtype.plural, name, rtype.group)
            metadata["uid"] = str(uuid.uuid4())
            metadata["creationTimestamp"] = now_rfc3339()
            if rtype.tracks_generation:
                metadata["generation"] = 1
            if dry_run:
                metadata["resourceVersion"] = str(self._resource_version)
                return Entry(obj, encode(obj))
            return self._commit(rtype, obj, None, "ADDED")

    def _namespace_exists(self, namespace: str) -> bool:
        return namespace in self._data.get(_NAMESPACES, {}).get("", {})

    def _check_namespace_open(self, rtype: ResourceType, namespace: str, name: str) -> None:
        """New content needs a namespace that exists and is not terminating (NamespaceLifecycle)."""
        entry = self._data.get(_NAMESPACES, {}).get("", {}).get(namespace)
        if entry is None:
            raise errors.not_found("namespaces", namespace)
        if entry.obj["metadata"].get("deletionTimestamp"):
            raise errors.namespace_terminating(rtype.plural, name, rtype.group, namespace)

    def update(
        self,
        rtype: ResourceType,
        namespace: str,
        name: str,
        body: JsonObject,
        *,
        subresource: str = "",
        dry_run: bool = False,
    ) -> Entry:
        """PUT semantics: replace the object (or only its status for ``subresource='status'``).

        The store takes ownership of ``body``.
        """
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        new = body
        self._check_kind(rtype, new)
        metadata = new.setdefault("metadata", {})
        if metadata.get("name", name) != name:
            raise _name_mismatch(metadata.get("name"), name)
        if rtype.namespaced and metadata.get("namespace") not in (None, "", namespace):
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        with self._lock:
            current = self._find(rtype, namespace, name)
            wanted = metadata.get("resourceVersion")
            if wanted not in (None, "") and wanted != current.resource_version:
                raise errors.conflict(rtype.plural, name, rtype.group)
            return self._replace(rtype, current, new, subresource=subresource, dry_run=dry_run)

    def patch(
        self,
        rtype: ResourceType,
        namespace: str,
        name: str,
        apply_patch: Callable[[JsonObject], JsonObject],
        *,
        subresource: str = "",
        dry_run: bool = False,
    ) -> Entry:
        """Read-modify-write under the lock; a ``resourceVersion`` in the patched object is a precondition."""
        with self._lock:
            current = self._find(rtype, namespace, name)
            document = current.copy()
            document["apiVersion"] = rtype.api_version  # as the requested version sees it
            patched = apply_patch(document)
            if not isinstance(patched, dict):
                raise errors.unprocessable("the patched object is not a JSON object")
            metadata = patched.setdefault("metadata", {})
            wanted = metadata.get("resourceVersion")
            if wanted not in (None, "") and wanted != current.resource_version:
                raise errors.conflict(rtype.plural, name, rtype.group)
            if metadata.get("name", name) != name:
                raise _name_mismatch(metadata.get("name"), name)
            self._check_kind(rtype, patched)
            return self._replace(rtype, current, patched, subresource=subresource, dry_run=dry_run)

    def _replace(
        self, rtype: ResourceType, current: Entry, new: JsonObject, *, subresource: str, dry_run: bool
    ) -> Entry:
        old = current.obj
        self._strategies(rtype).default(new)  # the decoded body, before the status/spec split
        if subresource == "status":
            new = _with_status_of(current.copy(), new)
        else:
            _carry_server_fields(rtype, old, new)
            self._strategies(rtype).prepare_update(new, old)
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        self._validate(rtype, new, old)
        if rtype.tracks_generation and _spec_part(new, rtype.has_status) != _spec_part(old, rtype.has_status):
            new["metadata"]["generation"] = int(old["metadata"].get("generation", 1)) + 1
        if new == old:
            return current  # no-op writes do not bump the resourceVersion
        if dry_run:
            return Entry(new, encode(new))
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            return self._remove(rtype, current, new, propagation="Background")
        return self._commit(rtype, new, current, "MODIFIED")

    def delete(
        self,
        rtype: ResourceType,
        namespace: str,
        name: str,
        *,
        preconditions: Preconditions | None = None,
        propagation: str = "Background",
        dry_run: bool = False,
    ) -> tuple[Entry, bool]:
        """Delete, or mark for deletion when finalizers remain; returns (object, deleted now)."""
        with self._lock:
            current = self._find(rtype, namespace, name)
            metadata = current.obj["metadata"]
            if preconditions is not None:
                if preconditions.uid and preconditions.uid != metadata["uid"]:
                    raise errors.conflict(
                        rtype.plural,
                        name,
                        rtype.group,
                        f"Precondition failed: UID in precondition: {preconditions.uid}, "
                        f"UID in object meta: {metadata['uid']}",
                    )
                if (
                    preconditions.resource_version
                    and preconditions.resource_version != current.resource_version
                ):
                    raise errors.conflict(
                        rtype.plural,
                        name,
                        rtype.group,
                        "Precondition failed: ResourceVersion in precondition: "
                        f"{preconditions.resource_version}, "
                        f"ResourceVersion in object meta: {current.resource_version}",
                    )
            if dry_run:
                return current, not metadata.get("finalizers")
            if metadata.get("finalizers"):
                if metadata.get("deletionTimestamp"):
                    return current, False
                marked = current.copy()
                marked["metadata"]["deletionTimestamp"] = now_rfc3339()
                marked["metadata"]["deletionGracePeriodSeconds"] = 0
                if rtype.tracks_generation:
                    marked["metadata"]["generation"] = int(metadata.get("generation", 1)) + 1
                if rtype.storage_key != _NAMESPACES:
                    return self._commit(rtype, marked, current, "MODIFIED"), False
                marked["status"] = {**(marked.get("status") or {}), "phase": "Terminating"}
                entry = self._commit(rtype, marked, current, "MODIFIED")
                self._drop_namespace_content(name)  # the namespace controller's work; finalizers wait
                return entry, False
            return self._remove(rtype, current, current.copy(), propagation=propagation), True

    def _remove(self, rtype: ResourceType, current: Entry, final: JsonObject, *, propagation: str) -> Entry:
        entry = self._commit(rtype, final, current, "DELETED")
        uid = final["metadata"]["uid"]
        if rtype.storage_key == _NAMESPACES:
            self._drop_namespace_content(final["metadata"]["name"])
        self._collect_dependents(uid, orphan=propagation == "Orphan")
        return entry

    def _drop_namespace_content(self, namespace: str) -> None:
        for storage_key, buckets in list(self._data.items()):
            rtype = self._types.get(storage_key)
            if rtype is None or not rtype.namespaced:
                continue
            for entry in list(buckets.get(namespace, {}).values()):
                self._remove(rtype, entry, entry.copy(), propagation="Background")

    def drop_all(self, rtype: ResourceType) -> None:
        """Delete every object of a type (its CRD went away)."""
        with self._lock:
            for bucket in list(self._data.get(rtype.storage_key, {}).values()):
                for entry in list(bucket.values()):
                    self._remove(rtype, entry, entry.copy(), propagation="Background")

    def _collect_dependents(self, owner_uid: str, *, orphan: bool) -> None:
        """The garbage collector: drop the owner reference; delete dependents left without owners."""
        for storage_key, namespace, name in sorted(self._dependents.pop(owner_uid, set())):
            rtype = self._types.get(storage_key)
            entry = self._data.get(storage_key, {}).get(namespace, {}).get(name)
            if rtype is None or entry is None:
                continue
            refs = [
                r for r in entry.obj["metadata"].get("ownerReferences") or [] if r.get("uid") != owner_uid
            ]
            if refs or orphan:
                updated = entry.copy()
                if refs:
                    updated["metadata"]["ownerReferences"] = refs
                else:
                    updated["metadata"].pop("ownerReferences", None)
                self._commit(rtype, updated, entry, "MODIFIED")
            else:
                self.delete(rtype, namespace, name)

    # ------------------------------------------------------------ watching

    def watch(
        self,
        rtype: ResourceType,
        namespace: str | None,
        predicate: Predicate | None,
        *,
        since: int | None,
        timeout: float,
        stopped: threading.Event,
        bookmarks: bool = False,
    ) -> Iterator[tuple[str, Entry]]:
        """(event type, object) for every change after ``since``, until ``timeout`` or ``stopped``.

        ``since=None`` first reports every existing object as ADDED (a watch
        without resourceVersion). A ``since`` older than the event log raises
        410 here, before any event is produced. ``bookmarks`` (the request's
        ``allowWatchBookmarks``) adds BOOKMARK events as kube-apiserver's
        watch cache sends them (``cacheWatcher.nextBookmarkTime``): about every
        minute, and 2 s before the watch's deadline, so that a client that
        watches again after the timeout starts from a recent resourceVersion.
        """
        with self._lock:
            scope = _WatchScope(rtype, namespace, predicate)
            if since is None:
                initial = self.list(rtype, namespace, predicate)
                return self._follow(
                    scope, initial.entries, initial.resource_version, timeout, stopped, bookmarks=bookmarks
                )
            oldest = self._events[0].resource_version if self._events else self._resource_version + 1
            if since < oldest - 1:
                raise errors.gone(f"too old resource version: {since} ({oldest - 1})")
            return self._follow(scope, [], since, timeout, stopped, bookmarks=bookmarks)

    def _follow(
        self,
        scope: _WatchScope,
        initial: Sequence[Entry],
        position: int,
        timeout: float,
        stopped: threading.Event,
        *,
        bookmarks: bool,
    ) -> Iterator[tuple[str, Entry]]:
        for entry in initial:
            yield "ADDED", entry
        started_at = position  # the cacher sends a bookmark only past the watch's starting resourceVersion
        now = time.monotonic()
        deadline = now + timeout
        next_bookmark = _next_bookmark(now, deadline) if bookmarks else None
        while not stopped.is_set():
            bookmark: int | None = None
            with self._lock:
                fell_behind = bool(self._events) and self._events[0].resource_version > position + 1
                oldest = self._events[0].resource_version - 1 if self._events else position
                pending = [] if fell_behind else self._events_after(position)
                now = time.monotonic()
                if fell_behind:
                    pass
                elif not pending and next_bookmark is not None and now >= next_bookmark:
                    next_bookmark = _next_bookmark(now, deadline)
                    if self._resource_version > started_at:  # every event up to it was reported
                        bookmark = self._resource_version
                elif not pending:
                    remaining = deadline - now
                    if remaining <= 0:
                        return
                    until_bookmark = next_bookmark - now if next_bookmark is not None else remaining
                    self._changed.wait(min(remaining, until_bookmark, 0.5))
                    continue
                else:
                    position = pending[-1].resource_version
            if fell_behind:
                # Events this watch had not reported yet left the log: it cannot go on. The uncached
                # watch ends so (etcd compacted: an ERROR event, 410 Expired; the watch cache closes a
                # watcher that fell behind), and the client lists again.
                gone = errors.gone(f"too old resource version: {position} ({oldest})").status()
                yield "ERROR", Entry(gone, encode(gone))
                return
            if bookmark is not None:  # sent outside the lock, as every event is
                yield "BOOKMARK", _bookmark(scope.rtype, bookmark)
            for event in pending:
                reported = scope.report(event)
                if reported is not None:
                    yield reported, _reported_entry(reported, event)

    def _events_after(self, position: int) -> Sequence[Event]:
        """The logged events newer than ``position`` (newest are at the right end)."""
        newer: builtins.list[Event] = []
        for event in reversed(self._events):
            if event.resource_version <= position:
                break
            newer.append(event)
        newer.reverse()
        return newer


def _name_mismatch(in_body: object, in_url: str) -> ApiError:
    return errors.bad_request(
        f"the name of the object ({in_body}) does not match the name on the URL ({in_url})"
    )


def _with_status_of(current: JsonObject, new: JsonObject) -> JsonObject:
    """A write to ``/status``: the stored object with only its status replaced."""
    if "status" in new:
        current["status"] = new["status"]
    else:
        current.pop("status", None)
    return current


def _carry_server_fields(rtype: ResourceType, old: JsonObject, new: JsonObject) -> None:
    """A write to the object cannot change identity, server-managed metadata or a status subresource."""
    metadata = new["metadata"]
    if rtype.namespaced:
        metadata["namespace"] = old["metadata"]["namespace"]
    metadata["name"] = old["metadata"]["name"]
    for key in _SERVER_MANAGED:
        if key in old["metadata"]:
            metadata[key] = old["metadata"][key]
        else:
            metadata.pop(key, None)
    metadata.pop("managedFields", None)
    if rtype.has_status:
        if "status" in old:
            new["status"] = old["status"]
        else:
            new.pop("status", None)


@dataclass(frozen=True)
class _WatchScope:
    """Which events a watch reports."""

    rtype: ResourceType
    namespace: str | None
    predicate: Predicate | None

    def report(self, event: Event) -> str | None:
        """The event type to report, or None when the event is outside the scope."""
        if event.rtype.storage_key != self.rtype.storage_key:
            return None
        if self.rtype.namespaced and self.namespace is not None and event.namespace != self.namespace:
            return None
        return _filtered_type(event, self.predicate)


BOOKMARK_FREQUENCY = 60.0  # seconds: the cacher's defaultBookmarkFrequency


def _next_bookmark(now: float, deadline: float) -> float | None:
    """When a watch's next bookmark is due (``cacheWatcher.nextBookmarkTime``): a minute from now, or 2 s
    before the deadline if that is sooner; None when that moment has already passed."""
    due = min(now + BOOKMARK_FREQUENCY, deadline - 2.0)
    return None if due < now else due


def _bookmark(rtype: ResourceType, resource_version: int) -> Entry:
    """A BOOKMARK's object: the watched kind with nothing but ``metadata.resourceVersion``."""
    obj: JsonObject = {
        "kind": rtype.kind,
        "apiVersion": rtype.api_version,
        "metadata": {"resourceVersion": str(resource_version)},
    }
    return Entry(obj, encode(obj))


def _reported_entry(reported: str, event: Event) -> Entry:
    """The object a watch reports for ``event``: an object that left the selection is DELETED with its
    previous content at the event's resourceVersion (``cacheWatcher.convertToWatchEvent``)."""
    if reported != "DELETED" or event.type == "DELETED" or event.previous is None:
        return event.entry
    metadata = {**event.previous["metadata"], "resourceVersion": str(event.resource_version)}
    previous = {**event.previous, "metadata": metadata}
    return Entry(previous, encode(previous))


def _filtered_type(event: Event, predicate: Predicate | None) -> str | None:
    """What a selector-filtered watch reports: entering the selection is ADDED, leaving it DELETED."""
    if predicate is None:
        return event.type
    now_matches = event.type != "DELETED" and predicate(event.entry.obj)
    was_matching = event.previous is not None and predicate(event.previous)
    if event.type == "DELETED":
        return "DELETED" if predicate(event.entry.obj) else None
    if now_matches and not was_matching:
        return "ADDED"
    if now_matches:
        return "MODIFIED"
    if was_matching:
        return "DELETED"
    return None


def _encode_continue(key: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode()


def _decode_continue(token: str) -> tuple[str, str]:
    try:
        namespace, name = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError):
        raise errors.bad_request(f"invalid continue token {token!r}") from None
    return (str(namespace), str(name))
