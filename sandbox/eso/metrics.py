"""ESO's ExternalSecret controller metrics, as ESO's ``/metrics`` exposes them.

Follows ``pkg/controllers/externalsecret/esmetrics/esmetrics.go`` and the
``Reconcile`` of ``pkg/controllers/externalsecret/externalsecret_controller.go``
(external-secrets/external-secrets):

- ``externalsecret_sync_calls_total`` (counter, ``name``/``namespace``): one per
  reconcile, whatever its outcome (a deferred ``Inc``);
- ``externalsecret_sync_calls_error`` (counter, same labels; Go's client adds no
  ``_total``): one per failed sync (each ``markAsFailed``);
- ``externalsecret_reconcile_duration`` (gauge, same labels): the last reconcile's
  duration as Go's ``float64(time.Duration)``, nanoseconds;
- ``externalsecret_status_condition`` (gauge, ``name``/``namespace``/``condition``/
  ``status``): 1 for the condition just set and 0 for the one it replaced; for
  ``Ready``, the opposite status is set to 0 as well; a deleted ExternalSecret's
  series are removed (``UpdateExternalSecretCondition``).

The Kubernetes standard labels (``app_kubernetes_io_*``, which ESO adds only when
asked to) are not emitted. Written by hand rather than with
prometheus_client, which appends ``_total`` to every counter and so cannot spell
``externalsecret_sync_calls_error`` as ESO does. ``metrics_server`` answers ``GET /metrics``
as ESO's metrics port (8080) does, for a Prometheus to scrape.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from vaultflow.sandbox.http import HttpServer, Response, Router

Labels = tuple[tuple[str, str], ...]

_FAMILIES = (
    ("externalsecret_sync_calls_total", "counter", "Total number of the External Secret sync calls"),
    ("externalsecret_sync_calls_error", "counter", "Total number of the External Secret sync errors"),
    ("externalsecret_status_condition", "gauge", "The status condition of a specific External Secret"),
    ("externalsecret_reconcile_duration", "gauge", "The duration time to reconcile the External Secret"),
)


class ExternalSecretMetrics:
    """The four metric families of one ESO's ExternalSecret controller (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, dict[Labels, float]] = {name: {} for name, _, _ in _FAMILIES}

    @contextmanager
    def reconcile(self, namespace: str, name: str) -> Iterator[None]:
        """Around one reconcile: count it and record its duration, however it ends."""
        start = time.monotonic_ns()
        try:
            yield
        finally:
            labels = _labels(name=name, namespace=namespace)
            with self._lock:
                self._values["externalsecret_reconcile_duration"][labels] = float(time.monotonic_ns() - start)
                calls = self._values["externalsecret_sync_calls_total"]
                calls[labels] = calls.get(labels, 0.0) + 1

    def sync_error(self, namespace: str, name: str) -> None:
        labels = _labels(name=name, namespace=namespace)
        with self._lock:
            errors = self._values["externalsecret_sync_calls_error"]
            errors[labels] = errors.get(labels, 0.0) + 1

    def condition(
        self, namespace: str, name: str, kind: str, status: str, previous: tuple[str, str] | None
    ) -> None:
        """``SetExternalSecretCondition``'s metric side: ``previous`` is the replaced (kind, status)."""
        with self._lock:
            gauge = self._values["externalsecret_status_condition"]
            if previous is not None and previous != (kind, status):
                gauge[_condition_labels(namespace, name, *previous)] = 0.0
            if kind == "Ready" and status in ("True", "False"):
                opposite = "False" if status == "True" else "True"
                gauge[_condition_labels(namespace, name, "Ready", opposite)] = 0.0
            gauge[_condition_labels(namespace, name, kind, status)] = 1.0

    def forget(self, namespace: str, name: str) -> None:
        """A deleted ExternalSecret: its condition series go (its counters stay, as in ESO)."""
        with self._lock:
            gauge = self._values["externalsecret_status_condition"]
            for labels in [key for key in gauge if _names(key) == (namespace, name)]:
                del gauge[labels]

    def value(self, family: str, **labels: str) -> float | None:
        """One sample (for tests and the sandbox's own views), None when it is not exposed."""
        with self._lock:
            return self._values[family].get(_labels(**labels))

    def exposition(self) -> str:
        """The Prometheus text format (version 0.0.4) of every family."""
        lines: list[str] = []
        with self._lock:
            for family, kind, help_text in _FAMILIES:
                lines += [f"# HELP {family} {help_text}", f"# TYPE {family} {kind}"]
                for labels, value in sorted(self._values[family].items()):
                    rendered = ",".join(f'{key}="{_escape(text)}"' for key, text in labels)
                    lines.append(f"{family}{{{rendered}}} {_number(value)}")
        return "\n".join(lines) + "\n"


def _labels(**labels: str) -> Labels:
    return tuple(sorted(labels.items()))


def _names(labels: Labels) -> tuple[str, str]:
    found = dict(labels)
    return found["namespace"], found["name"]


def _condition_labels(namespace: str, name: str, kind: str, status: str) -> Labels:
    return _labels(name=name, namespace=namespace, condition=kind, status=status)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def metrics_server(metrics: ExternalSecretMetrics, port: int = 0) -> HttpServer:
    """An ``HttpServer`` (not started) answering ``GET /metrics`` as ESO's metrics port (8080) does."""
    text_format = "text/plain; version=0.0.4; charset=utf-8"
    router = Router()
    router.add("GET", "/metrics", lambda _: Response.text(metrics.exposition(), content_type=text_format))
    return HttpServer(router, port=port, name="eso-metrics")
