"""Status bookkeeping ESO's controllers share: conditions, refresh decisions, time stamps."""

from __future__ import annotations

import datetime
from typing import Any

from vaultflow.base.durations import parse_go_duration
from vaultflow.sandbox.eso.gohash import resource_version

JsonObject = dict[str, Any]


def rfc3339(seconds: float) -> str:
    """``metav1.Time`` as it is serialised: RFC 3339 with whole seconds."""
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: Any) -> float | None:
    if not text:
        return None
    try:
        return (
            datetime.datetime.strptime(str(text), "%Y-%m-%dT%H:%M:%SZ")
            .replace(tzinfo=datetime.UTC)
            .timestamp()
        )
    except ValueError:
        return None


def interval(spec: JsonObject, default: str = "1h") -> float:
    """``spec.refreshInterval`` in seconds (the CRD's default when absent)."""
    return parse_go_duration(str(spec.get("refreshInterval") or default))


def set_condition(status: JsonObject, condition: JsonObject) -> None:
    """ESO's ``SetExternalSecretCondition``: keep the old one when nothing changed, keep its
    ``lastTransitionTime`` when only reason or message changed, otherwise replace it (appended last)."""
    conditions: list[JsonObject] = list(status.get("conditions") or [])
    current = next((c for c in conditions if c.get("type") == condition["type"]), None)
    if current is not None and all(current.get(k) == condition[k] for k in ("status", "reason", "message")):
        return
    if current is not None and current.get("status") == condition["status"]:
        condition = {**condition, "lastTransitionTime": current.get("lastTransitionTime")}
    status["conditions"] = [c for c in conditions if c.get("type") != condition["type"]] + [condition]


def new_condition(kind: str, status: str, reason: str, message: str, now: float) -> JsonObject:
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": rfc3339(now),
    }


def should_refresh(obj: JsonObject, refresh_interval: float, now: float, policy: str = "Periodic") -> bool:
    """ESO's ``shouldRefresh``: a changed object, no refresh yet, or the interval has passed."""
    status = obj.get("status") or {}
    synced = status.get("syncedResourceVersion") or ""
    refreshed = parse_time(status.get("refreshTime"))
    current = resource_version(obj["metadata"])
    if policy == "CreatedOnce":
        return not synced or refreshed is None
    if policy == "OnChange":
        return not synced or refreshed is None or synced != current
    if refresh_interval <= 0 and synced:
        return False
    if synced != current or refreshed is None or refreshed > now:
        return True
    return refreshed + refresh_interval < now
