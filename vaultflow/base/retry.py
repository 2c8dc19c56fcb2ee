"""Waiting and retrying, one way: tenacity, with exponential backoff and jitter.

Two shapes recur. *Polling*: observe something (a Vault node's health, a
workflow's phase, a controller's status) until it is what we wait for or a
deadline passes, then fail naming what was awaited and what was seen last.
*Retrying*: repeat an attempt that lost a race (a Git push, a connection to a
starting server) a bounded number of times. Both back off exponentially, so
that a slow system is not hammered, and with jitter, so that concurrent callers
(two pipelines pushing to one branch) do not retry in lockstep. ``poll_until``
is the first shape; the second uses ``backoff`` with tenacity directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import tenacity
from tenacity.wait import wait_base

from vaultflow.base.errors import OperationError

T = TypeVar("T")


def backoff(initial: float, maximum: float) -> wait_base:
    """Waits that double from ``initial`` up to ``maximum``, each drawn from the upper half of its
    step ("equal jitter"): never shorter than half the exponential step, never two callers in step.
    """
    half, cap = initial / 2, maximum / 2
    return tenacity.wait_exponential(multiplier=half, max=cap) + tenacity.wait_random_exponential(
        multiplier=half, max=cap
    )


def poll_until(
    observe: Callable[[], T],
    done: Callable[[T], bool],
    *,
    what: str,
    timeout: float | None,
    initial: float = 0.05,
    maximum: float = 1.0,
    describe: Callable[[T], str] = repr,
    transient: tuple[type[BaseException], ...] = (),
) -> T:
    """Call ``observe`` until ``done`` holds for what it returns, and return that.

    After ``timeout`` seconds (``None``: never) raise one ``OperationError`` naming ``what`` was
    awaited and the last observation (as ``describe`` words it; ``""`` leaves it out). An exception
    of a ``transient`` type is an observation too (not done yet, its message is what was seen); any
    other exception ends the poll at once. The last wait is cut short at the deadline, so the final
    observation is made when the deadline passes, not a backoff step later.
    """
    wait = backoff(initial, maximum)

    def pause(state: tenacity.RetryCallState) -> float:
        step = wait(state)
        if timeout is None:
            return step
        return max(0.0, min(step, timeout - (state.seconds_since_start or 0.0)))

    def give_up(state: tenacity.RetryCallState) -> T:
        outcome = state.outcome
        if outcome is None:  # pragma: no cover - tenacity always has an outcome when it gives up
            seen = ""
        elif outcome.failed:
            seen = str(outcome.exception())
        else:
            seen = describe(outcome.result())
        last = f" (last seen: {seen})" if seen else ""
        raise OperationError(f"timed out after {timeout:g}s waiting for {what}{last}")

    not_done = tenacity.retry_if_result(lambda seen: not done(seen))
    retrying = tenacity.Retrying(
        stop=tenacity.stop_never if timeout is None else tenacity.stop_after_delay(timeout),
        wait=pause,
        retry=tenacity.retry_if_exception_type(transient) | not_done,
        retry_error_callback=give_up,
    )
    return retrying(observe)
