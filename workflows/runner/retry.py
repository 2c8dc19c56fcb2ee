"""Argo's retry arithmetic: whether a failed attempt is retried, and how long to wait first.

Follows ``processNodeRetries`` in Argo's ``workflow/controller/operator.go``:

* ``retryPolicy`` decides which failures are retried: ``Always`` both, ``OnFailure``
  a step's own failure (Failed), ``OnError`` an error of the system running it
  (Error), ``OnTransientError`` only transient Kubernetes errors, which a step
  run in-process never has;
* ``limit`` retries follow the first attempt; without a limit Argo retries until
  something else (a deadline, ``maxDuration``) stops it;
* the wait before retry *n* is ``duration * factor**(n-1)`` (a factor of 0 or none
  means a constant ``duration``), capped by ``cap``;
* no retry starts once ``maxDuration`` has passed since the first attempt
  started ("Max duration limit exceeded"), nor when the wait would end after
  that ("Backoff would exceed max duration limit").

Everything here is a pure function of its arguments; the engine supplies the
clock and the resolved ``{{variables}}``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from vaultflow.base.durations import parse_argo_duration
from vaultflow.workflows.runner.model import BackoffSpec, RetrySpec
from vaultflow.workflows.runner.nodes import Phase

_RETRIED_PHASES: dict[str, tuple[Phase, ...]] = {
    "Always": (Phase.FAILED, Phase.ERROR),
    "OnFailure": (Phase.FAILED,),
    "OnError": (Phase.ERROR,),
    "OnTransientError": (),  # a step's own failure is never a transient Kubernetes error
}
MAX_DURATION_EXCEEDED = "Max duration limit exceeded"
BACKOFF_EXCEEDS_MAX_DURATION = "Backoff would exceed max duration limit"
NO_RETRIES_LEFT = "No more retries left"


@dataclass(frozen=True)
class Backoff:
    """A ``retryStrategy.backoff`` with its variables resolved: seconds and a whole factor."""

    duration: float
    factor: int = 0
    cap: float | None = None
    max_duration: float | None = None


def retries_on(policy: str, phase: Phase) -> bool:
    """True if a ``retryPolicy`` retries an attempt that ended in ``phase``."""
    return phase in _RETRIED_PHASES[policy]


def retry_limit(retry: RetrySpec | None, substitute: Callable[[str], str]) -> int | None:
    """How many retries follow the first attempt: 0 without a strategy, ``None`` for no limit."""
    if retry is None:
        return 0
    if retry.limit is None:
        return None  # Argo: a retryStrategy without limit retries until something else stops it
    text = substitute(str(retry.limit))
    if not text.strip().isdigit():
        raise ValueError(f"retryStrategy.limit {text!r} is not a whole number")
    return int(text)


def resolve_backoff(spec: BackoffSpec | None, substitute: Callable[[str], str]) -> Backoff | None:
    """The backoff with its variables substituted and its durations parsed; ``None`` for no wait."""
    if spec is None or spec.duration is None:
        return None

    def seconds(value: str | int | None) -> float | None:
        return None if value is None else parse_argo_duration(substitute(str(value)))

    return Backoff(
        duration=parse_argo_duration(substitute(str(spec.duration))),
        factor=int(substitute(str(spec.factor))) if spec.factor is not None else 0,
        cap=seconds(spec.cap),
        max_duration=seconds(spec.max_duration),
    )


def backoff_seconds(backoff: Backoff, attempts: int) -> float:
    """The wait after ``attempts`` attempts: ``duration * factor**(attempts-1)``, capped by ``cap``."""
    wait = backoff.duration
    if backoff.factor > 0:
        wait *= backoff.factor ** (attempts - 1)
    if backoff.cap is not None:
        wait = min(wait, backoff.cap)
    return wait


def next_wait(backoff: Backoff | None, attempts: int, first_started: float, now: float) -> float | str:
    """Seconds to wait before the next attempt, or the reason Argo gives for not retrying.

    ``first_started`` and ``now`` are readings of one monotonic clock.
    """
    if backoff is None:
        return 0.0
    wait = backoff_seconds(backoff, attempts)
    if backoff.max_duration is not None:
        max_deadline = first_started + backoff.max_duration
        if now > max_deadline:
            return MAX_DURATION_EXCEEDED
        if now + wait > max_deadline:
            return BACKOFF_EXCEEDS_MAX_DURATION
    return wait
