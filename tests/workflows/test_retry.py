"""Argo's retry arithmetic (``processNodeRetries`` in ``workflow/controller/operator.go``), on its own."""

from __future__ import annotations

import pytest

from vaultflow.workflows.runner import retry
from vaultflow.workflows.runner.model import BackoffSpec, RetrySpec
from vaultflow.workflows.runner.nodes import Phase


def _same(text: str) -> str:
    return text


@pytest.mark.parametrize(
    ("attempts", "expected"),
    [(1, 10.0), (2, 20.0), (3, 40.0), (4, 80.0)],
)
def test_the_wait_is_duration_times_factor_to_the_retry_number(attempts: int, expected: float) -> None:
    # After the first attempt the wait is the duration itself; every retry multiplies it by the factor.
    assert retry.backoff_seconds(retry.Backoff(duration=10, factor=2), attempts) == expected


@pytest.mark.parametrize("factor", [0, 1])
def test_a_factor_of_zero_or_one_waits_the_duration_every_time(factor: int) -> None:
    backoff = retry.Backoff(duration=5, factor=factor)
    assert [retry.backoff_seconds(backoff, n) for n in (1, 2, 5)] == [5, 5, 5]


def test_cap_bounds_the_wait() -> None:
    backoff = retry.Backoff(duration=10, factor=3, cap=60)
    assert [retry.backoff_seconds(backoff, n) for n in (1, 2, 3, 4)] == [10, 30, 60, 60]


def test_max_duration_stops_retries_counted_from_the_first_attempt() -> None:
    backoff = retry.Backoff(duration=10, factor=2, max_duration=120)
    # first attempt started at t=1000; third attempt failed at t=1050: the wait (40 s) ends before 1120.
    assert retry.next_wait(backoff, attempts=3, first_started=1000, now=1050) == 40
    # failed at t=1090: a 40 s wait would end after 1120.
    too_late = retry.next_wait(backoff, attempts=3, first_started=1000, now=1090)
    assert too_late == retry.BACKOFF_EXCEEDS_MAX_DURATION
    # failed after 1120: the limit has passed.
    assert retry.next_wait(backoff, attempts=3, first_started=1000, now=1121) == retry.MAX_DURATION_EXCEEDED


def test_no_backoff_retries_at_once() -> None:
    assert retry.next_wait(None, attempts=7, first_started=0, now=10_000) == 0.0


def test_backoff_values_are_resolved_and_parsed_as_argo_durations() -> None:
    variables = {"{{inputs.parameters.wait}}": "1m30s"}
    resolved = retry.resolve_backoff(
        BackoffSpec(duration="{{inputs.parameters.wait}}", factor="2", max_duration="1h", cap=90),
        lambda text: variables.get(text, text),
    )
    assert resolved == retry.Backoff(duration=90, factor=2, cap=90, max_duration=3600)
    assert retry.resolve_backoff(BackoffSpec(factor=2), _same) is None  # no duration: no wait
    with pytest.raises(ValueError, match="soon"):
        retry.resolve_backoff(BackoffSpec(duration="soon"), _same)


@pytest.mark.parametrize(
    ("policy", "failed", "errored"),
    [
        ("Always", True, True),
        ("OnFailure", True, False),
        ("OnError", False, True),
        ("OnTransientError", False, False),
    ],
)
def test_the_policy_decides_which_failures_are_retried(policy: str, failed: bool, errored: bool) -> None:
    assert retry.retries_on(policy, Phase.FAILED) is failed
    assert retry.retries_on(policy, Phase.ERROR) is errored


def test_the_retry_limit() -> None:
    assert retry.retry_limit(None, _same) == 0
    assert retry.retry_limit(RetrySpec(limit=None, policy="Always", backoff=None), _same) is None
    assert retry.retry_limit(RetrySpec(limit="{{n}}", policy="Always", backoff=None), lambda _: "3") == 3
    with pytest.raises(ValueError, match="'many' is not a whole number"):
        retry.retry_limit(RetrySpec(limit="many", policy="Always", backoff=None), _same)
