"""What a benchmark reports, and how the report is printed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Measurement:
    """One timed operation, optionally beside the baseline it is judged against.

    ``target_seconds`` is an absolute goal for ``seconds``; ``target_ratio`` a
    goal for ``seconds / baseline_seconds``. Either may be absent.
    """

    name: str
    seconds: float
    baseline_name: str | None = None
    baseline_seconds: float | None = None
    target_seconds: float | None = None
    target_ratio: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline_seconds is None or self.baseline_seconds <= 0:
            return None
        return self.seconds / self.baseline_seconds

    @property
    def meets_target(self) -> bool | None:
        checks: list[bool] = []
        if self.target_seconds is not None:
            checks.append(self.seconds <= self.target_seconds)
        if self.target_ratio is not None and self.ratio is not None:
            checks.append(self.ratio <= self.target_ratio)
        return all(checks) if checks else None


@contextmanager
def stopwatch() -> Iterator[Callable[[], float]]:
    """``with stopwatch() as elapsed: ...; elapsed()`` gives the seconds spent inside."""
    start = time.perf_counter()
    end: float | None = None

    def elapsed() -> float:
        return (end if end is not None else time.perf_counter()) - start

    try:
        yield elapsed
    finally:
        end = time.perf_counter()


def best_of(repeat: int, action: Callable[[], object]) -> float:
    """The fastest of ``repeat`` runs: the least disturbed by the rest of the machine."""
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        timings.append(time.perf_counter() - start)
    return min(timings)


def int_list_from_env(variable: str, default: str) -> list[int]:
    """``1,4`` in ``$variable`` (or ``default``) -> ``[1, 4]``; exits naming the variable when it is not
    a list of positive integers."""
    import os

    text = os.environ.get(variable, default)
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise SystemExit(f"error: {variable}={text!r}: comma-separated integers") from None
    if not values or min(values) < 1:
        raise SystemExit(f"error: {variable}={text!r}: each value at least 1")
    return values
