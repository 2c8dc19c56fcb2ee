"""One cron validator with Argo's rules (robfig/cron v3 ``ParseStandard``)."""

from __future__ import annotations

import pytest

from vaultflow.base.cron import validate_cron


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
