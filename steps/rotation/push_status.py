"""When to read a pushed cloud secret: as soon as ESO's PushSecret status says it pushed, or failed to.

A cloud offers no watch. Reading each pushed secret on a timer until ESO's PushSecret
controller gets to it costs one request per secret per interval, and ESO's queue
can hold it for many intervals (in the sandbox, each such read is CPU taken from
ESO itself). ESO writes the status of a PushSecret after each reconcile
(``pkg/controllers/pushsecret/pushsecret_controller.go``): ``refreshTime``,
``syncedResourceVersion`` and ``Ready`` ("PushSecret synced successfully") after a
push, ``Ready=False``/``Errored`` with the error when it failed. So the rotation
watches the PushSecrets it follows (per cluster, one LIST and one WATCH by the
rendered ``vaultflow.io/secret`` label, ``verify.ClusterConsumers``) and, for each
whose status changed since just before its force-sync annotation, calls what
``follow`` was given: the cloud verification reads that PushSecret's secrets then
(``clouds.CloudVerification.cue``). The status is only the moment to look: what
verifies a cloud target is its current version, read from the cloud.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from vaultflow.steps.rotation.discover import ConsumingPushSecret
from vaultflow.steps.rotation.verify import ClusterConsumers

UNKNOWN: Any = object()  # a status not known yet (not listed, or the watch is failing)


@dataclass
class _Followed:
    push: ConsumingPushSecret
    on_push: Callable[[], None]
    status: Any  # as last seen (UNKNOWN before the first look)


class PushSecretCues:
    """``with PushSecretCues(clients, pushes) as cues:`` ``before = cues.status(push)``, annotate,
    then ``cues.follow(push, before, on_push)``: ``on_push`` is called (from a watch's thread; it must
    not block) each time that PushSecret's status changes from then on."""

    def __init__(self, clients: Mapping[str, Any], pushes: Iterable[ConsumingPushSecret]) -> None:
        by_cluster: dict[str, list[ConsumingPushSecret]] = {}
        for push in pushes:
            by_cluster.setdefault(push.cluster, []).append(push)
        self._watched = {
            cluster: ClusterConsumers(clients[cluster], cluster, in_cluster, self._changed, kind="PushSecret")
            for cluster, in_cluster in by_cluster.items()
        }
        self._lock = threading.Lock()
        self._followed: list[_Followed] = []

    def __enter__(self) -> PushSecretCues:
        for watched in self._watched.values():
            watched.start()
        return self

    def __exit__(
        self, error_type: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        for watched in self._watched.values():
            watched.stop()

    def status(self, push: ConsumingPushSecret) -> Any:
        """The PushSecret's ``status`` as last seen (None when it has none, or the object is gone), or
        ``UNKNOWN``."""
        watched = self._watched.get(push.cluster)
        if watched is None:
            return UNKNOWN
        obj, unknown = watched.get(push)
        if unknown is not None:
            return UNKNOWN
        return None if obj is None else obj.get("status")

    def follow(self, push: ConsumingPushSecret, before: Any, on_push: Callable[[], None]) -> None:
        """Call ``on_push`` whenever the status differs from the one last seen, ``before`` first: at
        once when it changed meanwhile (ESO may have pushed before this was called)."""
        followed = _Followed(push, on_push, before)
        with self._lock:
            self._followed.append(followed)
        self._look(followed)

    def _changed(self) -> None:
        with self._lock:
            followed = list(self._followed)
        for item in followed:
            self._look(item)

    def _look(self, item: _Followed) -> None:
        current = self.status(item.push)
        if current is UNKNOWN:
            return
        with self._lock:
            if current == item.status:
                return
            first = item.status is UNKNOWN and current is None  # never pushed yet: nothing to read
            item.status = current
        if not first:
            item.on_push()
