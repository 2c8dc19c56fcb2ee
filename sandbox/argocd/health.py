"""Resource health as Argo CD assesses it (built-in checks and the shipped Lua customisations).

* ``external-secrets.io`` ExternalSecret, PushSecret, SecretStore,
  ClusterSecretStore: the ``Ready`` condition (True: Healthy, False: Degraded,
  absent: Progressing), as Argo CD's ``resource_customizations`` scripts do;
* ``apps/v1`` Deployment and StatefulSet: rolled out for the current generation;
* anything else (Secrets, ConfigMaps, Namespaces, most custom resources) has
  no health: it never holds a sync wave back and does not count in the
  Application's health.

An Application's health is the worst of its resources' (Missing for a desired
object that does not exist).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

HEALTHY, SUSPENDED, PROGRESSING, MISSING, DEGRADED, UNKNOWN = (
    "Healthy",
    "Suspended",
    "Progressing",
    "Missing",
    "Degraded",
    "Unknown",
)
_SEVERITY = {HEALTHY: 0, SUSPENDED: 1, PROGRESSING: 2, MISSING: 3, DEGRADED: 4, UNKNOWN: 5}
_CONDITION_KINDS = {"ExternalSecret", "PushSecret", "SecretStore", "ClusterSecretStore"}

JsonObject = dict[str, Any]


@dataclass(frozen=True)
class Health:
    status: str
    message: str = ""

    def to_json(self) -> JsonObject:
        result: JsonObject = {"status": self.status}
        if self.message:
            result["message"] = self.message
        return result


def worst(statuses: list[str]) -> str:
    return max(statuses, key=lambda status: _SEVERITY.get(status, 5), default=HEALTHY)


def _group(obj: JsonObject) -> str:
    api_version = str(obj.get("apiVersion", ""))
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def resource_health(obj: JsonObject | None) -> Health | None:
    """The health of a live object (``None`` object: Missing; ``None`` result: no health check)."""
    if obj is None:
        return Health(MISSING)
    group, kind = _group(obj), obj.get("kind")
    if group == "external-secrets.io" and kind in _CONDITION_KINDS:
        return _ready_condition(obj, f"Waiting for {kind}")
    if group == "apps" and kind in ("Deployment", "StatefulSet"):
        return _rollout(obj)
    return None


def _ready_condition(obj: JsonObject, waiting: str) -> Health:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready" and condition.get("status") == "False":
            return Health(DEGRADED, str(condition.get("message", "")))
        if condition.get("type") == "Ready" and condition.get("status") == "True":
            return Health(HEALTHY, str(condition.get("message", "")))
    return Health(PROGRESSING, waiting)


def _rollout(obj: JsonObject) -> Health:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if spec.get("paused"):
        return Health(SUSPENDED, "Deployment is paused")
    generation = int(obj.get("metadata", {}).get("generation", 1))
    if int(status.get("observedGeneration", 0)) < generation:
        return Health(
            PROGRESSING, "Waiting for rollout to finish: observed generation less than desired generation"
        )
    replicas = int(spec.get("replicas", 1))
    if int(status.get("updatedReplicas", 0)) < replicas:
        return Health(PROGRESSING, "Waiting for rollout to finish: not all replicas have been updated")
    if int(status.get("availableReplicas", status.get("readyReplicas", 0))) < replicas:
        return Health(PROGRESSING, "Waiting for rollout to finish: not all replicas are available")
    return Health(HEALTHY)
