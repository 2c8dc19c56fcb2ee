"""Constrained scalar types of the catalog: Kubernetes names, Vault paths, durations, cron.

Each type validates with one precise message, because the message is what an
engineer reads next to ``file:line:column`` when a catalog is wrong.
"""

from __future__ import annotations

import functools
import re
from typing import Annotated

from pydantic import AfterValidator

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_VAULT_SEGMENT = re.compile(r"^[A-Za-z0-9._-]+$")
_GO_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")
_GO_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
# The descriptors Argo's cron library (robfig/cron) accepts besides five fields.
_CRON_MACROS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def _dns1123_label(value: str) -> str:
    if len(value) > 63:
        raise ValueError(f"{value!r} is longer than 63 characters (DNS-1123 label)")
    if not _DNS1123_LABEL.match(value):
        raise ValueError(
            f"{value!r} is not a valid DNS-1123 label: lower-case letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return value


def _dns1123_subdomain(value: str) -> str:
    if len(value) > 253:
        raise ValueError(f"{value!r} is longer than 253 characters (DNS-1123 subdomain)")
    if not _DNS1123_SUBDOMAIN.match(value):
        raise ValueError(
            f"{value!r} is not a valid DNS-1123 subdomain: lower-case letters, digits, '-' and '.', "
            "starting and ending with a letter or digit"
        )
    return value


def _secret_key(value: str) -> str:
    if len(value) > 253 or not _SECRET_KEY.match(value):
        raise ValueError(
            f"{value!r} is not a valid Kubernetes Secret key: letters, digits, '-', '_' and '.' only"
        )
    return value


def _vault_path(value: str) -> str:
    if value.startswith("/") or value.endswith("/"):
        raise ValueError(f"{value!r} must not start or end with '/': write it relative to the KV mount")
    segments = value.split("/")
    for segment in segments:
        if segment in ("", ".", "..") or not _VAULT_SEGMENT.match(segment):
            raise ValueError(
                f"{value!r} has an invalid segment {segment!r}: use letters, digits, '.', '_' and '-'"
            )
    if segments[0] in ("data", "metadata"):
        raise ValueError(
            f"{value!r} starts with {segments[0]!r}: write the path without the KV v2 API prefix "
            f"(e.g. 'prod/db', not 'data/prod/db')"
        )
    return value


def _go_duration(value: str) -> str:
    if not _GO_DURATION.match(value):
        raise ValueError(f"{value!r} is not a duration: use Go syntax such as '30s', '5m', '1h30m'")
    return value


def duration_seconds(value: str) -> float:
    """Seconds in a Go duration string (already validated)."""
    return sum(float(n) * _DURATION_UNITS[unit] for n, unit in _GO_DURATION_PART.findall(value))


@functools.lru_cache(maxsize=1024)
def _cron(value: str) -> str:
    """Cached: a catalog repeats a handful of schedules thousands of times."""
    from croniter import croniter  # lazily: only catalogs with rotations need it

    if value.startswith("@"):
        if value not in _CRON_MACROS:
            raise ValueError(f"{value!r} is not a known schedule macro ({', '.join(sorted(_CRON_MACROS))})")
        return value
    fields = value.split()
    if len(fields) != 5:
        raise ValueError(
            f"{value!r} is not a 5-field cron expression (minute hour day-of-month month day-of-week)"
        )
    if not croniter.is_valid(value):
        raise ValueError(f"{value!r} is not a valid cron expression")
    return value


DnsLabel = Annotated[str, AfterValidator(_dns1123_label)]
DnsSubdomain = Annotated[str, AfterValidator(_dns1123_subdomain)]
SecretKey = Annotated[str, AfterValidator(_secret_key)]
VaultPath = Annotated[str, AfterValidator(_vault_path)]
GoDuration = Annotated[str, AfterValidator(_go_duration)]
CronSchedule = Annotated[str, AfterValidator(_cron)]
