"""One duration parser with Go's ``time.ParseDuration`` semantics, and Argo's whole seconds."""

from __future__ import annotations

import pytest

from vaultflow.base.durations import parse_argo_duration, parse_go_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("+0", 0.0),
        (".5s", 0.5),
        ("1.5h", 5400.0),
        ("1h30m", 5400.0),
        ("2m3.5s", 123.5),
        ("300ms", 0.3),
        ("-2m", -120.0),
        ("1us", 1e-6),
        ("1µs", 1e-6),
        ("1μs", 1e-6),  # Go accepts the Greek mu as well as the micro sign
        ("1h0m0s", 3600.0),
    ],
)
def test_go_durations_read_as_go_reads_them(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["", "1", "s", "1d", "2w", "1y", "1mm", "1h 30m", " 1h", "1..5s", "1x", "--1s", "ms"]
)
def test_what_go_refuses_is_refused_with_the_text_named(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_go_duration(text)


def test_argo_also_takes_whole_seconds() -> None:
    assert parse_argo_duration("30") == 30.0
    assert parse_argo_duration(45) == 45.0
    assert parse_argo_duration("1m30s") == 90.0
    with pytest.raises(ValueError, match="is not a duration"):
        parse_argo_duration("1.5")
