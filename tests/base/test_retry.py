"""The one poll and backoff of the project (tenacity underneath): its result, when and how it gives up."""

from __future__ import annotations

import itertools

import pytest
import tenacity

from vaultflow.base.errors import OperationError
from vaultflow.base.retry import backoff, poll_until


def test_poll_returns_the_first_observation_that_is_done() -> None:
    counter = itertools.count(1)
    seen: list[int] = []

    def observe() -> int:
        seen.append(next(counter))
        return seen[-1]

    assert poll_until(observe, lambda n: n >= 3, what="three", timeout=30, initial=0.001) == 3
    assert seen == [1, 2, 3]


def test_poll_gives_up_naming_what_was_awaited_and_the_last_observation() -> None:
    with pytest.raises(OperationError) as caught:
        poll_until(lambda: "standby", lambda s: s == "active", what="node-1 to become active", timeout=0)
    assert (
        str(caught.value) == "timed out after 0s waiting for node-1 to become active (last seen: 'standby')"
    )


def test_an_empty_description_leaves_the_last_observation_out() -> None:
    with pytest.raises(OperationError, match=r"^timed out after 0s waiting for the queue to drain$"):
        poll_until(lambda: None, bool, what="the queue to drain", timeout=0, describe=lambda _: "")


def test_transient_errors_are_observations_and_others_end_the_poll() -> None:
    attempts = itertools.count(1)

    def flaky() -> str:
        if next(attempts) < 3:
            raise ConnectionError("not yet listening")
        return "up"

    assert (
        poll_until(
            flaky, lambda s: s == "up", what="up", timeout=30, initial=0.001, transient=(ConnectionError,)
        )
        == "up"
    )

    def broken() -> str:
        raise ValueError("a bug, not a wait")

    with pytest.raises(ValueError, match="a bug"):
        poll_until(broken, bool, what="anything", timeout=30, transient=(ConnectionError,))

    def down() -> str:
        raise ConnectionError("connection refused")

    with pytest.raises(OperationError, match=r"waiting for the API \(last seen: connection refused\)$"):
        poll_until(down, bool, what="the API", timeout=0, transient=(ConnectionError,))


def test_backoff_doubles_up_to_the_maximum_with_jitter_in_the_upper_half() -> None:
    wait = backoff(1.0, 8.0)
    retrying = tenacity.Retrying()
    for attempt, step in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 8.0), (9, 8.0)]:
        state = tenacity.RetryCallState(retrying, fn=None, args=(), kwargs={})
        state.attempt_number = attempt
        waits = {wait(state) for _ in range(50)}
        assert all(step / 2 <= w <= step for w in waits), (attempt, sorted(waits))
        assert len(waits) > 1  # jittered: two callers do not retry in lockstep
