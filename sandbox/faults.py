"""Injected faults on the links from the controller emulators to each provider, for reliability tests.

A fault is set per provider (``vault``, ``aws``, ``gcp``, ``azure``) and
applies to every call the ESO emulator makes to it: ``latency`` seconds added,
a fraction ``error_rate`` of calls failing as a 503 would, or ``down`` (every
call fails as an unreachable host does). It models the network between ESO and
the provider; the providers themselves keep answering everyone else, so a
pipeline can see that a push did *not* happen. Faults change at run time
through the supervisor's admin API (``vaultflow sandbox fault ...``).

Every failure says it was injected: nothing about a fault is silent.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

PROVIDERS = ("vault", "aws", "gcp", "azure")


class InjectedFault(Exception):
    """A provider call failed because a fault was injected (the message says which)."""


@dataclass(frozen=True)
class Fault:
    latency: float = 0.0
    error_rate: float = 0.0
    down: bool = False

    def __post_init__(self) -> None:
        if self.latency < 0 or self.latency > 60:
            raise ValueError(f"latency must be between 0 and 60 seconds (got {self.latency})")
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError(f"error_rate must be between 0 and 1 (got {self.error_rate})")

    @property
    def active(self) -> bool:
        return self.down or self.error_rate > 0 or self.latency > 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, payload: Any) -> Fault:
        if not isinstance(payload, dict):
            raise ValueError("a fault is an object with latency, error_rate and down")
        unknown = set(payload) - {"latency", "error_rate", "down"}
        if unknown:
            raise ValueError(
                f"unknown fault fields: {', '.join(sorted(unknown))} (allowed: latency, error_rate, down)"
            )
        try:
            return cls(
                latency=float(payload.get("latency", 0.0)),
                error_rate=float(payload.get("error_rate", 0.0)),
                down=bool(payload.get("down", False)),
            )
        except (TypeError, ValueError) as error:
            raise ValueError(str(error)) from None


def check_provider(provider: str) -> str:
    if provider not in PROVIDERS:
        raise ValueError(f"unknown provider {provider!r} (one of {', '.join(PROVIDERS)})")
    return provider


class FaultInjector:
    """The faults in force, per provider (thread-safe). ``before_call`` enforces them."""

    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, Fault] = {}
        self._random = random.Random(seed)

    def set(self, provider: str, fault: Fault) -> None:
        check_provider(provider)
        with self._lock:
            if fault.active:
                self._faults[provider] = fault
            else:
                self._faults.pop(provider, None)

    def clear(self, provider: str | None = None) -> None:
        with self._lock:
            if provider is None:
                self._faults.clear()
            else:
                self._faults.pop(check_provider(provider), None)

    def get(self, provider: str) -> Fault:
        with self._lock:
            return self._faults.get(provider, Fault())

    def snapshot(self) -> dict[str, Fault]:
        with self._lock:
            return dict(self._faults)

    def before_call(self, provider: str, endpoint: str) -> None:
        """Apply the provider's fault to a call about to go to ``endpoint``."""
        fault = self.get(provider)
        if not fault.active:
            return
        if fault.latency:
            time.sleep(fault.latency)
        if fault.down:
            raise InjectedFault(
                f"dial {endpoint}: connect: connection refused (sandbox: {provider} is down, injected)"
            )
        with self._lock:
            failing = self._random.random() < fault.error_rate
        if failing:
            raise InjectedFault(f"{endpoint}: 503 Service Unavailable (sandbox: injected {provider} error)")
