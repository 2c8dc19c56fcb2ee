"""One cron validator with Argo's rules (robfig/cron v3 ``ParseStandard``)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from vaultflow.base.cron import next_run, previous_run, validate_cron


@pytest.mark.parametrize(
    "schedule",
    [
        "0 3 * * 0",
        "*/5 * * * *",
        "5/10 * * * *",
        "0 0 1,15 * *",
        "0 9-17/2 * * MON-FRI",
        "0 0 1 jan-mar sun",
        "0 0 ? * *",
        "@hourly",
        "@midnight",
        "@annually",
        "@every 1h30m",
        "CRON_TZ=Europe/Paris 0 3 * * *",
        "TZ=UTC @daily",
    ],
)
def test_what_argo_accepts_is_accepted(schedule: str) -> None:
    assert validate_cron(schedule) == schedule


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        ("0 0 0 * * *", "has 6 fields"),  # croniter takes seconds; Argo does not
        ("0 0 0 * * * 2027", "has 7 fields"),
        ("0 3 * *", "has 4 fields"),
        ("0 25 * * *", "hour '25': outside 0-23"),
        ("0 0 0 * *", "day-of-month '0': outside 1-31"),
        ("0 0 * * 7", "day-of-week '7': outside 0-6"),
        ("0 0 L * *", "'L' is not a number"),
        ("0 0 * * MON#2", "is not a number or a name"),
        ("*/0 * * * *", "the step must be a positive number"),
        ("10-5 * * * *", "starts after it ends"),
        ("1-2-3 * * * *", "too many hyphens"),
        ("@fortnightly", "not a known descriptor"),
        ("@every 1d", "is not a duration"),
        ("CRON_TZ=Mars/Olympus 0 3 * * *", "unknown time zone 'Mars/Olympus'"),
    ],
)
def test_what_argo_refuses_is_refused_with_the_reason(schedule: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("?", r"\?")):
        validate_cron(schedule)


NOW = datetime(2026, 12, 1, 12, 30, tzinfo=UTC)  # a Tuesday


@pytest.mark.parametrize(
    ("schedule", "fired"),
    [
        ("0 3 * * *", datetime(2026, 12, 1, 3, 0, tzinfo=UTC)),
        ("30 12 * * *", datetime(2026, 12, 1, 12, 30, tzinfo=UTC)),  # exactly now counts
        ("0 3 * * 0", datetime(2026, 11, 29, 3, 0, tzinfo=UTC)),  # last Sunday
        ("@daily", datetime(2026, 12, 1, 0, 0, tzinfo=UTC)),
        ("@hourly", datetime(2026, 12, 1, 12, 0, tzinfo=UTC)),
        ("@every 2h", datetime(2026, 12, 1, 10, 30, tzinfo=UTC)),
        # 03:00 in Tokyo is 18:00 UTC the day before.
        ("CRON_TZ=Asia/Tokyo 0 3 * * *", datetime(2026, 11, 30, 18, 0, tzinfo=UTC)),
    ],
)
def test_the_previous_run_of_a_schedule(schedule: str, fired: datetime) -> None:
    assert previous_run(schedule, NOW) == fired


def test_the_default_zone_applies_without_a_prefix() -> None:
    assert previous_run("0 3 * * *", NOW, default_zone="America/New_York") == datetime(
        2026, 12, 1, 8, 0, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("schedule", "fires"),
    [
        ("0 3 * * *", datetime(2026, 12, 2, 3, 0, tzinfo=UTC)),
        ("30 12 * * *", datetime(2026, 12, 2, 12, 30, tzinfo=UTC)),  # strictly after: not now
        ("0 3 * * 0", datetime(2026, 12, 6, 3, 0, tzinfo=UTC)),  # next Sunday
        ("@hourly", datetime(2026, 12, 1, 13, 0, tzinfo=UTC)),
        ("@every 2h", datetime(2026, 12, 1, 14, 30, tzinfo=UTC)),
        ("CRON_TZ=Asia/Tokyo 0 3 * * *", datetime(2026, 12, 1, 18, 0, tzinfo=UTC)),
    ],
)
def test_the_next_run_of_a_schedule(schedule: str, fires: datetime) -> None:
    assert next_run(schedule, NOW) == fires
    assert next_run(schedule, NOW) > NOW
