"""A controller work queue with client-go's semantics, its rate limiters, and the worker loop that drains it.

The controller emulators (ESO, Argo CD) react to events the way real
controllers do, because timing is part of what a pipeline observes:

* a key is queued at most once; a key added while a worker holds it is
  processed again after that worker is done (never twice at the same time);
* ``add_after`` schedules a key (``RequeueAfter``); of several schedules of
  one key the earliest wins and the others are dropped, as client-go's
  delaying queue keeps one waiting entry per key (``delaying_queue.go``);
* ``add_rate_limited`` schedules a key after its rate limiter's delay: a
  failed reconcile, or ``Requeue: true``. The default limiter is client-go's
  per-item exponential backoff (5 ms doubling, capped at 1000 s); ESO passes
  its own (``EsoRateLimiter``: 1 s doubling, capped at 7 min, combined with
  a 10 qps token bucket of 100, ESO's ``pkg/controllers/common/common.go``).

The worker loop handles a reconcile's result as controller-runtime's
``reconcileHandler`` (``pkg/internal/controller/controller.go``) does: an error
is retried rate-limited (the failure count keeps growing); ``RequeueAfter``
forgets the failures and schedules the key; ``Requeue`` is rate-limited
without forgetting; a plain success forgets.
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
from typing import Generic, Protocol, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
K_contra = TypeVar("K_contra", bound=Hashable, contravariant=True)
Clock = Callable[[], float]

BASE_BACKOFF = 0.005  # client-go's DefaultTypedControllerRateLimiter
MAX_BACKOFF = 1000.0
ESO_BASE_BACKOFF = 1.0  # ESO's BuildRateLimiter: failureBaseDelay
ESO_MAX_BACKOFF = 7 * 60.0  # failureMaxDelay
ESO_QPS = 10.0  # totalEventsPerSecond
ESO_BURST = 100  # totalMaxBurst


class RateLimiter(Protocol[K_contra]):
    """client-go's ``TypedRateLimiter``: how long a key waits before it is processed again."""

    def when(self, key: K_contra) -> float: ...

    def forget(self, key: K_contra) -> None: ...

    def requeues(self, key: K_contra) -> int: ...


class ExponentialFailureLimiter(Generic[K]):
    """``ItemExponentialFailureRateLimiter``: ``base * 2^failures`` per key, capped at ``maximum``."""

    def __init__(self, base: float, maximum: float) -> None:
        self._base = base
        self._maximum = maximum
        self._failures: dict[K, int] = {}
        self._lock = threading.Lock()

    def when(self, key: K) -> float:
        with self._lock:
            exponent = self._failures.get(key, 0)
            self._failures[key] = exponent + 1
        if exponent >= 64:  # client-go guards the overflow the same way: the cap
            return self._maximum
        return min(self._base * float(2**exponent), self._maximum)

    def forget(self, key: K) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def requeues(self, key: K) -> int:
        with self._lock:
            return self._failures.get(key, 0)


class TokenBucketLimiter(Generic[K]):
    """``BucketRateLimiter`` over ``golang.org/x/time/rate``: one bucket for every key.

    The bucket holds ``burst`` tokens and starts full; it refills at ``qps``.
    Every ``when`` takes a token by reservation: with the bucket empty the
    tokens go negative and the delay is the time until this one is refilled,
    so a hundred-and-first immediate failure waits 0.1 s, the next 0.2 s.
    """

    def __init__(self, qps: float, burst: int, clock: Clock = time.monotonic) -> None:
        self._qps = qps
        self._burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()
        self._lock = threading.Lock()

    def when(self, key: K) -> float:
        with self._lock:
            now = self._clock()
            elapsed = max(now - self._last, 0.0)
            tokens = min(self._burst, self._tokens + elapsed * self._qps) - 1.0
            self._tokens, self._last = tokens, now
        return -tokens / self._qps if tokens < 0 else 0.0

    def forget(self, key: K) -> None:
        return None

    def requeues(self, key: K) -> int:
        return 0


class MaxOfLimiter(Generic[K]):
    """``MaxOfRateLimiter``: every limiter is asked (each takes its share), the longest delay wins."""

    def __init__(self, *limiters: RateLimiter[K]) -> None:
        self._limiters = limiters

    def when(self, key: K) -> float:
        return max(limiter.when(key) for limiter in self._limiters)

    def forget(self, key: K) -> None:
        for limiter in self._limiters:
            limiter.forget(key)

    def requeues(self, key: K) -> int:
        return max(limiter.requeues(key) for limiter in self._limiters)


class EsoRateLimiter(MaxOfLimiter[K]):
    """ESO's ``BuildRateLimiter`` (one per controller): 1 s doubling to 7 min; 10 qps, a burst of 100."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        super().__init__(
            ExponentialFailureLimiter(ESO_BASE_BACKOFF, ESO_MAX_BACKOFF),
            TokenBucketLimiter(ESO_QPS, ESO_BURST, clock),
        )


@dataclass(frozen=True)
class Result:
    """What a reconcile asks for next: nothing, a retry after a delay, or an immediate requeue."""

    requeue_after: float | None = None
    requeue: bool = False


DONE = Result()


class WorkQueue(Generic[K]):
    """Deduplicating, delaying, rate-limited queue of keys (thread-safe)."""

    def __init__(
        self,
        rate_limiter: RateLimiter[K] | None = None,
        *,
        base_backoff: float = BASE_BACKOFF,
        max_backoff: float = MAX_BACKOFF,
    ) -> None:
        self._condition = threading.Condition()
        self._ready: deque[K] = deque()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._delayed: list[tuple[float, int, K]] = []
        self._waiting: dict[K, float] = {}  # the one scheduled time per key
        self._sequence = itertools.count()
        self._limiter: RateLimiter[K] = rate_limiter or ExponentialFailureLimiter(base_backoff, max_backoff)
        self._shutdown = False

    def add(self, key: K) -> None:
        with self._condition:
            self._add_locked(key)

    def _add_locked(self, key: K) -> None:
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
            ready_at = time.monotonic() + delay
            scheduled = self._waiting.get(key)
            if scheduled is not None and scheduled <= ready_at:
                return
            self._waiting[key] = ready_at
            heapq.heappush(self._delayed, (ready_at, next(self._sequence), key))
            self._condition.notify()

    def add_rate_limited(self, key: K) -> float:
        """Requeue after the rate limiter's delay for the key; returns the delay."""
        delay = self._limiter.when(key)
        self.add_after(key, delay)
        return delay

    def forget(self, key: K) -> None:
        self._limiter.forget(key)

    def failures(self, key: K) -> int:
        return self._limiter.requeues(key)

    def _promote_due(self, now: float) -> float | None:
        """Move due delayed keys to the ready queue; seconds until the next one (None: none)."""
        while self._delayed and self._delayed[0][0] <= now:
            ready_at, _, key = heapq.heappop(self._delayed)
            if self._waiting.get(key) != ready_at:
                continue  # superseded by an earlier schedule of the same key
            del self._waiting[key]
            self._add_locked(key)
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
            return len(self._ready) + len(self._waiting)

    @property
    def depth(self) -> int:
        """Keys waiting to be worked on now: client-go's ``workqueue_depth`` (not those scheduled later)."""
        with self._condition:
            return len(self._ready)

    @property
    def scheduled(self) -> int:
        """Keys waiting for a requeue time (``RequeueAfter``, a backoff)."""
        with self._condition:
            return len(self._waiting)

    def shutdown(self) -> None:
        with self._condition:
            self._shutdown = True
            self._condition.notify_all()


class Workers(Generic[K]):
    """``count`` threads that take keys from ``queue`` and reconcile them.

    ``reconcile`` returns a ``Result``; an exception is a failed reconcile
    (logged, retried rate-limited), as a returned ``err`` is for controller-runtime.
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
                self._handle(key, result)
            finally:
                with self._counter_lock:
                    self.reconciles += 1
                self.queue.done(key)

    def _handle(self, key: K, result: Result) -> None:
        """controller-runtime's order: ``RequeueAfter`` first, then ``Requeue``, else forget."""
        if result.requeue_after is not None and result.requeue_after > 0:
            self.queue.forget(key)
            self.queue.add_after(key, result.requeue_after)
        elif result.requeue:
            self.queue.add_rate_limited(key)
        else:
            self.queue.forget(key)

    def stop(self, timeout: float = 5.0) -> None:
        self.queue.shutdown()
        for thread in self._threads:
            thread.join(timeout)
