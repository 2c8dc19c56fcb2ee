"""A rotation run's outcome, pushed to a Prometheus Pushgateway when one is configured.

``report`` (the rotate-secrets pipeline's last step) pushes, under job
``vaultflow-rotation`` (each run replaces the last one's group):

- ``vaultflow_rotation_last_run_timestamp_seconds``: when the run reported;
- ``vaultflow_rotation_secrets{outcome}``: secrets Rotated, RolledBack, Failed;
- ``vaultflow_rotation_targets{kind, phase}``: targets Verified, Failed, TimedOut per kind;
- ``vaultflow_rotation_propagation_seconds{kind, quantile}``: write-to-verified per target kind,
  the median (``0.5``) and the slowest (``1``).

Counts and timings only: no path, no value. A Pushgateway that does not answer is
logged and never fails the run (the report itself is what says whether it rotated).
"""

from __future__ import annotations

import logging
import statistics
import time
from collections import defaultdict

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

from vaultflow.steps.rotation.report import RotationReport

log = logging.getLogger(__name__)

JOB = "vaultflow-rotation"
OUTCOMES = ("Rotated", "RolledBack", "Failed")


def rotation_registry(report: RotationReport, now: float | None = None) -> CollectorRegistry:
    """The run's metrics, ready to push."""
    registry = CollectorRegistry()
    last = Gauge("vaultflow_rotation_last_run_timestamp_seconds", "When the run reported", registry=registry)
    last.set(time.time() if now is None else now)
    secrets = Gauge("vaultflow_rotation_secrets", "Secrets by outcome", ["outcome"], registry=registry)
    for outcome in OUTCOMES:
        secrets.labels(outcome).set(sum(1 for s in report.secrets if s.outcome == outcome))
    labels = ["kind", "phase"]
    targets = Gauge("vaultflow_rotation_targets", "Targets by kind and phase", labels, registry=registry)
    latency = Gauge(
        "vaultflow_rotation_propagation_seconds",
        "Write-to-verified of the last run per target kind: median (0.5) and slowest (1)",
        ["kind", "quantile"],
        registry=registry,
    )
    phases: dict[tuple[str, str], int] = defaultdict(int)
    seconds: dict[str, list[float]] = defaultdict(list)
    for secret in report.secrets:
        for target in secret.targets:
            phases[(target.kind, target.phase)] += 1
            if target.phase == "Verified" and target.seconds is not None:
                seconds[target.kind].append(target.seconds)
    for (kind, phase), count in sorted(phases.items()):
        targets.labels(kind, phase).set(count)
    for kind, values in sorted(seconds.items()):
        latency.labels(kind, "0.5").set(statistics.median(values))
        latency.labels(kind, "1").set(max(values))
    return registry


def push_rotation(report: RotationReport, gateway: str) -> bool:
    """Push the run's metrics to ``gateway`` (its URL); False, with a warning, when it cannot."""
    try:
        push_to_gateway(gateway, job=JOB, registry=rotation_registry(report), timeout=10)
    except OSError as error:  # URLError is one: a Pushgateway that is down or refuses
        log.warning("could not push the rotation's metrics to %s: %s", gateway, error)
        return False
    return True
