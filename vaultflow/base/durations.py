"""Durations as the Go programs vaultflow talks to read them.

ESO's ``refreshInterval``, Argo CD's ``backoff.duration`` and the catalog's
timeouts are parsed by Go's ``time.ParseDuration``; Argo Workflows also takes
whole seconds (``activeDeadlineSeconds``-style ``"30"``) where it reads a
duration. Everything in vaultflow that reads a duration goes through here, so
the catalog, the pipelines and the emulators agree with the real controllers.

``durationpy`` (installed with ``kubernetes``) does the arithmetic; its parser
is looser than Go's (it takes ``d``, ``w``, ``y`` and spaces between parts), so
the text is first matched against Go's grammar.
"""

from __future__ import annotations

import re

import durationpy

# Go's grammar: an optional sign, then number-unit pairs (both micro signs are accepted), or a bare 0.
_GO_DURATION = re.compile(r"[+-]?(?:0|(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)")
_WHOLE_SECONDS = re.compile(r"\d+")


def parse_go_duration(text: str) -> float:
    """Seconds in a Go duration (``0``, ``.5s``, ``1h30m``, ``-2m``); ``ValueError`` naming the text."""
    if not _GO_DURATION.fullmatch(text):
        raise ValueError(_not_a_duration(text))
    try:
        return float(durationpy.from_str(text).total_seconds())
    except (durationpy.DurationError, ValueError, OverflowError):
        raise ValueError(_not_a_duration(text)) from None


def parse_argo_duration(value: str | int) -> float:
    """Seconds in a duration as Argo Workflows reads one: a Go duration, or whole seconds."""
    if isinstance(value, int):
        return float(value)
    if _WHOLE_SECONDS.fullmatch(value):
        return float(value)
    return parse_go_duration(value)


def _not_a_duration(text: str) -> str:
    return f"{text!r} is not a duration: use Go syntax such as '30s', '5m', '1h30m' or '500ms'"
