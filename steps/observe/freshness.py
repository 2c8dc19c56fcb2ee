"""Whether an ExternalSecret picked up its Vault path's last write: the exporter's and the audit's rule."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from vaultflow.base.times import parse_time


def stale_seconds(external_secret: Mapping[str, Any], written: datetime, now: datetime) -> float:
    """Seconds since ``written`` when the ExternalSecret last refreshed before it, else 0.

    ``status.refreshTime`` has whole seconds: a refresh in the write's second counts as
    after it, as the rotation's verification counts it.
    """
    refreshed = (external_secret.get("status") or {}).get("refreshTime")
    if refreshed is not None and parse_time(refreshed) >= written.replace(microsecond=0):
        return 0.0
    return max(0.0, (now - written).total_seconds())


def is_ready(obj: Mapping[str, Any]) -> tuple[bool, str]:
    """An ESO object's Ready condition: (True/False, its message or reason)."""
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            said = condition.get("message") or condition.get("reason") or ""
            return condition.get("status") == "True", str(said)
    return False, "no Ready condition yet"
