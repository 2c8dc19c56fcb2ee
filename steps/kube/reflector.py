"""One collection of a cluster kept in memory by a LIST and then a WATCH, as client-go's reflector keeps it.

A step that waits for many objects to change (the rotation's verification waits for
ESO to refresh every consuming ExternalSecret) would otherwise list them again and
again: each LIST makes the API server filter and encode the whole selection, and
the step decode it, whether anything changed or not. A reflector lists once, then
watches from the LIST's ``resourceVersion`` and applies each event to its copy:

* the watch asks for bookmarks (``allowWatchBookmarks``) and a ``timeoutSeconds``;
  when the server ends it (the timeout), it watches again from the last
  resourceVersion seen, a bookmark's included, without listing;
* a watch whose resourceVersion is too old (an ``ERROR`` event with a 410 Status,
  or a 410 answer) is followed by a new LIST, whose content replaces the copy:
  what was deleted meanwhile disappears (client-go's ``isExpiredError``, relist);
* any other failure, a 403 included, is kept as ``error`` (one sentence, for
  what a caller reports as last seen) and retried with backoff: the watch from
  its resourceVersion, the LIST when there is none yet. As client-go's reflector,
  it does not fall back to listing when the watch is refused: the rotation's
  plan asks for ``watch`` (SelfSubjectAccessReview) before anything is written.

``on_change`` is called (from the reflector's thread) after each change of the
copy and after each failure; it must not block.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vaultflow.base.errors import OperationError
from vaultflow.steps.kube.errors import kube_errors

WATCH_TIMEOUT = 300  # seconds the server keeps a watch open (client-go draws 5-10 minutes)
RETRY_INITIAL, RETRY_MAXIMUM = 0.2, 5.0  # seconds before retrying after a failure, doubling
ObjectKey = tuple[str, str]  # (namespace, name)


@dataclass(frozen=True)
class Collection:
    """Custom objects of one resource, in a namespace or across namespaces, narrowed by a label selector."""

    group: str
    version: str
    plural: str
    kind_plural: str  # how messages name them: "ExternalSecrets"
    namespace: str | None = None
    selector: str | None = None

    def describe(self) -> str:
        return f"in namespace {self.namespace}" if self.namespace is not None else "across namespaces"


class _Expired(Exception):
    """The watch's resourceVersion is older than the server keeps: list again."""


class Reflector:
    """The objects of one ``Collection`` of one cluster, kept by LIST + WATCH in a thread of their own."""

    def __init__(
        self,
        api_client: Any,
        cluster: str,
        collection: Collection,
        on_change: Callable[[], None],
        *,
        watch_timeout: int = WATCH_TIMEOUT,
    ) -> None:
        self._api_client, self.cluster, self.collection = api_client, cluster, collection
        self._on_change = on_change
        self._watch_timeout = watch_timeout
        self._objects: dict[ObjectKey, dict[str, Any]] = {}
        self._resource_version: str | None = None
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._response: Any = None
        self._thread = threading.Thread(
            target=self._run, name=f"reflector {cluster} {collection.plural}", daemon=True
        )
        self.synced = False  # a LIST has succeeded: ``objects`` is a copy of the collection
        self.error = ""  # the last failure, "" after the next success
        self.requests: Counter[str] = Counter()  # "LIST" / "WATCH": what this reflector sent

    def start(self) -> Reflector:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching: the open watch is shut down, so the thread ends now rather than at its timeout."""
        self._stopped.set()
        response = self._response
        if response is not None:
            with contextlib.suppress(Exception):  # already closed: nothing to unblock
                response.shutdown()  # urllib3 2.3+: unblocks a read in progress in the other thread
        self._thread.join(timeout=2)

    def get(self, key: ObjectKey) -> dict[str, Any] | None:
        """One object of the copy, by (namespace, name): plain JSON, not to be modified. Not the whole
        copy: a caller looks up each object it follows on every change."""
        with self._lock:
            return self._objects.get(key)

    # --- the thread ------------------------------------------------------------------------------

    def _run(self) -> None:
        retry = RETRY_INITIAL
        while not self._stopped.is_set():
            try:
                if self._resource_version is None:
                    self._list()
                self._watch()
                retry = RETRY_INITIAL
            except _Expired:
                self._resource_version = None  # relist at once
            except OperationError as error:
                if self._stopped.is_set():
                    return
                self.error = str(error)
                self._on_change()
                self._stopped.wait(random.uniform(retry / 2, retry))
                retry = min(RETRY_MAXIMUM, retry * 2)

    def _list(self) -> None:
        listed = self._request(watch=False)
        body = json.loads(listed.data)
        objects = {_key(item): item for item in body.get("items") or []}
        with self._lock:
            changed = _versions(objects) != _versions(self._objects) or not self.synced
            self._objects = objects
            self._resource_version = str((body.get("metadata") or {}).get("resourceVersion") or "") or None
        self.synced, self.error = True, ""
        if changed:
            self._on_change()

    def _watch(self) -> None:
        """Follow one watch until the server ends it (its timeout) or ``stop``; each event applied."""
        from kubernetes.watch.watch import iter_resp_lines
        from urllib3.exceptions import HTTPError

        response = self._request(watch=True)
        self._response = response
        if self.error:  # the watch is open again: the copy is current from here on
            self.error = ""
            self._on_change()
        try:
            for line in iter_resp_lines(response):
                if self._stopped.is_set():
                    return
                if line:
                    self._apply(json.loads(line))
        except HTTPError as error:  # the connection broke mid-stream (or stop shut it down)
            if not self._stopped.is_set():
                raise OperationError(
                    f"cluster {self.cluster}: the watch of {self.collection.kind_plural} "
                    f"{self.collection.describe()} broke ({error.__class__.__name__})"
                ) from None
        finally:
            self._response = None
            response.release_conn()

    def _apply(self, event: dict[str, Any]) -> None:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise _Expired
            raise OperationError(
                f"cluster {self.cluster}: the watch of {self.collection.kind_plural} "
                f"{self.collection.describe()} failed ({obj.get('code')} {obj.get('reason')}: "
                f"{obj.get('message', '')})"
            )
        version = (obj.get("metadata") or {}).get("resourceVersion")
        with self._lock:
            if version:
                self._resource_version = str(version)
            if kind == "BOOKMARK":
                return
            if kind == "DELETED":
                self._objects.pop(_key(obj), None)
            else:
                self._objects[_key(obj)] = obj
        self.error = ""
        self._on_change()

    def _request(self, *, watch: bool) -> Any:
        """One LIST, or one WATCH from the last resourceVersion, unparsed (``_preload_content=False``)."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        what = self.collection
        options: dict[str, Any] = {"label_selector": what.selector, "_preload_content": False}
        if watch:
            options.update(
                watch=True,
                resource_version=self._resource_version,
                allow_watch_bookmarks=True,
                timeout_seconds=self._watch_timeout,
                # the server's bookmark comes 2 s before its timeout: a read waits no longer than that
                _request_timeout=(10, self._watch_timeout + 10),
            )
        api = client.CustomObjectsApi(self._api_client)
        self.requests["WATCH" if watch else "LIST"] += 1
        action = f"{'watch' if watch else 'list'} {what.kind_plural} {what.describe()}"
        with kube_errors(f"cluster {self.cluster}", action):
            try:
                if what.namespace is None:
                    return api.list_cluster_custom_object(what.group, what.version, what.plural, **options)
                return api.list_namespaced_custom_object(
                    what.group, what.version, what.namespace, what.plural, **options
                )
            except ApiException as error:
                if watch and error.status == 410:  # an API server that answers a too old one so
                    raise _Expired from None
                raise


def _key(obj: dict[str, Any]) -> ObjectKey:
    metadata = obj.get("metadata") or {}
    return (str(metadata.get("namespace", "")), str(metadata.get("name", "")))


def _versions(objects: dict[ObjectKey, dict[str, Any]]) -> dict[ObjectKey, str]:
    return {key: str((obj.get("metadata") or {}).get("resourceVersion")) for key, obj in objects.items()}
