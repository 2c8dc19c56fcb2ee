"""Constrained scalar types of the catalog: Kubernetes names, Vault paths, durations, cron.

Each type validates with one precise message, because the message is what an
engineer reads next to ``file:line:column`` when a catalog is wrong.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

from vaultflow.base.cron import validate_cron
from vaultflow.base.durations import parse_go_duration

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_VAULT_SEGMENT = re.compile(r"^[A-Za-z0-9._-]+$")


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
    if parse_go_duration(value) < 0:
        raise ValueError(f"{value!r} is negative: a duration here must be 0 or more")
    return value


def duration_seconds(value: str) -> float:
    """Seconds in a Go duration string (already validated)."""
    return parse_go_duration(value)


DnsLabel = Annotated[str, AfterValidator(_dns1123_label)]
DnsSubdomain = Annotated[str, AfterValidator(_dns1123_subdomain)]
SecretKey = Annotated[str, AfterValidator(_secret_key)]
VaultPath = Annotated[str, AfterValidator(_vault_path)]
GoDuration = Annotated[str, AfterValidator(_go_duration)]
CronSchedule = Annotated[str, AfterValidator(validate_cron)]
