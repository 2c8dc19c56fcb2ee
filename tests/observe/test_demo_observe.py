"""The demo's stale-consumer step makes Prometheus see enough failed refreshes for the alert, and
picks the consumer the fault leaves stale from the catalog."""

from __future__ import annotations

from pathlib import Path

import pytest

from vaultflow.base.errors import OperationError
from vaultflow.gitops.catalog import load_catalog
from vaultflow.sandbox.demo_observe import fail_until_counted, stale_candidate


class _ScrapedCounter:
    """ESO's error counter as Prometheus sees it: a failed refresh counts at once, Prometheus's view
    moves on the second look after it (a scrape interval later); ``backlog`` failures of ESO's own
    backoff retries were counted before Prometheus first saw the series, as under load."""

    def __init__(self, backlog: int) -> None:
        self.count, self.backlog, self.looks = 0, backlog, 0
        self.view: float | None = None
        self.refreshes: list[int] = []

    def refresh(self, attempt: int) -> None:
        self.refreshes.append(attempt)
        self.count += 1 + self.backlog
        self.backlog = 0

    def scraped(self) -> float | None:
        self.looks += 1
        if self.looks % 2 == 0 and self.count:
            self.view = float(self.count)
        return self.view


def test_refreshes_go_on_until_prometheus_has_seen_more_failures_than_the_threshold_past_its_first() -> None:
    # Prometheus first sees the counter at 5: five more counted failures would show an increase of
    # 0 to the alert; it needs six failures scraped after that first sample.
    counter = _ScrapedCounter(backlog=4)
    gained = fail_until_counted(counter.refresh, counter.scraped, more_than=5, timeout=30)
    assert gained == 6.0  # 5 -> 11
    assert counter.refreshes == list(range(7))


def test_a_counter_reset_counts_its_new_value_as_increase_does() -> None:
    # ESO restarted after Prometheus saw 9: the counter starts again from 0.
    views = iter([9.0, 9.0, 1.0, 1.0, 3.0, 6.0])
    refreshes: list[int] = []
    gained = fail_until_counted(refreshes.append, lambda: next(views), more_than=5, timeout=30)
    assert gained == 6.0  # 1 (after the reset) + 2 + 3: an increase past the threshold
    assert refreshes == [0, 1, 2, 3]


def test_no_scraped_failure_is_one_clear_timeout() -> None:
    with pytest.raises(OperationError, match="Prometheus to scrape ESO's first failed refresh"):
        fail_until_counted(lambda _: None, lambda: None, more_than=5, timeout=0.2)


def test_the_stale_candidate_is_a_lone_owned_unrotated_unpushed_consumer(repo_root: Path) -> None:
    loaded = load_catalog(repo_root / "examples" / "catalog.yaml")
    chosen = stale_candidate(loaded)
    assert chosen is not None
    assert (chosen.cluster, chosen.namespace, chosen.name) == ("prod-us", "payments", "shared-stripe")
    assert not chosen.secret.pushes and chosen.secret.rotation is None


def test_a_refresh_prometheus_never_sees_times_out_with_what_eso_says() -> None:
    counter = _ScrapedCounter(backlog=0)
    with pytest.raises(OperationError, match=r"fail refresh 1 .*last seen 1\); ESO says: Ready True"):
        fail_until_counted(
            lambda attempt: counter.refresh(attempt) if attempt == 0 else None,  # later refreshes succeed
            counter.scraped,
            more_than=5,
            timeout=0.3,
            explain=lambda: "ESO says: Ready True",
        )
