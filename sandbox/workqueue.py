"""A controller work queue with controller-runtime's semantics, and the worker loop that drains it.

The controller emulators (ESO, Argo CD) react to events the way real
controllers do, because timing is part of what a pipeline observes:

* a key is queued at most once; a key added while a worker holds it is
  processed again after that worker is done (never twice at the same time);
* ``add_after`` schedules a key (``RequeueAfter``); an earlier ``add`` wins;
* a reconcile that fails is retried with client-go's default per-item
  exponential backoff (5 ms doubling, capped at 1000 s) until it succeeds,
  which resets the backoff (``Forget``).
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)

BASE_BACKOFF = 0.005
MAX_BACKOFF = 1000.0


@dataclass(frozen=True)
class Result:
    """What a reconcile asks for next: nothing, a retry after a delay, or an immediate requeue."""

    requeue_after: float | None = None
    requeue: bool = False


DONE = Result()


class WorkQueue(Generic[K]):
    """Deduplicating, delaying, rate-limited queue of keys (thread-safe)."""

    def __init__(self, *, base_backoff: float = BASE_BACKOFF, max_backoff: float = MAX_BACKOFF) -> None:
        self._condition = threading.Condition()
        self._ready: deque[K] = deque()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._delayed: list[tuple[float, int, K]] = []
        self._sequence = itertools.count()
        self._failures: dict[K, int] = {}
        self._base_backoff = base_backoff
        self._max_backoff = max_backoff
        self._shutdown = False

    def add(self, key: K) -> None:
        with self._condition:
            if self._shutdown or key in self._dirty:
                return
            self._dirty.add(key)
            if key not in self._processing:
                self._ready.append(key)
                self._condition.notify()

    def add_after(self, key: K, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        with self._condition:
            if self._shutdown:
                return
            heapq.heappush(self._delayed, (time.monotonic() + delay, next(self._sequence), key))
            self._condition.notify()

    def add_rate_limited(self, key: K) -> float:
        """Requeue after the key's next backoff step; returns the delay."""
        with self._condition:
            failures = self._failures.get(key, 0)
            self._failures[key] = failures + 1
        delay = min(self._base_backoff * float(2**failures), self._max_backoff)
        self.add_after(key, delay)
        return delay

    def forget(self, key: K) -> None:
        with self._condition:
            self._failures.pop(key, None)

    def failures(self, key: K) -> int:
        with self._condition:
            return self._failures.get(key, 0)

    def _promote_due(self, now: float) -> float | None:
        """Move due delayed keys to the ready queue; seconds until the next one (None: none)."""
        while self._delayed and self._delayed[0][0] <= now:
            _, _, key = heapq.heappop(self._delayed)
            if key not in self._dirty:
                self._dirty.add(key)
                if key not in self._processing:
                    self._ready.append(key)
        return self._delayed[0][0] - now if self._delayed else None

    def get(self) -> K | None:
        """The next key to process (blocks); None once the queue is shut down."""
        with self._condition:
            while True:
                if self._shutdown:
                    return None
                wait = self._promote_due(time.monotonic())
                if self._ready:
                    key = self._ready.popleft()
                    self._dirty.discard(key)
                    self._processing.add(key)
                    return key
                self._condition.wait(wait)

    def done(self, key: K) -> None:
        with self._condition:
            self._processing.discard(key)
            if key in self._dirty:
                self._ready.append(key)
                self._condition.notify()

    def __len__(self) -> int:
        with self._condition:
            return len(self._ready) + len(self._delayed)

    def shutdown(self) -> None:
        with self._condition:
            self._shutdown = True
            self._condition.notify_all()


class Workers(Generic[K]):
    """``count`` threads that take keys from ``queue`` and reconcile them.

    ``reconcile`` returns a ``Result``; an exception is a failed reconcile
    (logged, retried with backoff), as a returned ``err`` is for controller-runtime.
    """

    def __init__(
        self, name: str, queue: WorkQueue[K], reconcile: Callable[[K], Result], *, count: int = 1
    ) -> None:
        self.name = name
        self.queue = queue
        self._reconcile = reconcile
        self._threads = [
            threading.Thread(target=self._run, name=f"{name}-{index}", daemon=True) for index in range(count)
        ]
        self.reconciles = 0
        self.errors = 0
        self._counter_lock = threading.Lock()

    def start(self) -> Workers[K]:
        for thread in self._threads:
            thread.start()
        return self

    def _run(self) -> None:
        while True:
            key = self.queue.get()
            if key is None:
                return
            try:
                result = self._reconcile(key)
            except Exception as error:  # a failed reconcile: retried, never fatal to the worker
                delay = self.queue.add_rate_limited(key)
                with self._counter_lock:
                    self.errors += 1
                log.info("%s: reconcile of %s failed (%s); retry in %.3fs", self.name, key, error, delay)
            else:
                self.queue.forget(key)
                if result.requeue:
                    self.queue.add_rate_limited(key)
                elif result.requeue_after is not None:
                    self.queue.add_after(key, result.requeue_after)
            finally:
                with self._counter_lock:
                    self.reconciles += 1
                self.queue.done(key)

    def stop(self, timeout: float = 5.0) -> None:
        self.queue.shutdown()
        for thread in self._threads:
            thread.join(timeout)
