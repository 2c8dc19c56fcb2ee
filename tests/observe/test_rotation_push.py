"""A rotation run's metrics pushed to a real Pushgateway (Debian's prometheus-pushgateway) by the
rotate-secrets pipeline's report step, read back as Prometheus would scrape them."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from vaultflow.base.errors import OperationError
from vaultflow.sandbox.prometheus import Pushgateway
from vaultflow.steps.rotation.tasks import PUSHGATEWAY_ENV, report


@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[Pushgateway]:
    gateway = Pushgateway(tmp_path / "pushgateway").start()
    yield gateway
    gateway.stop()


def _target(kind: str, phase: str, seconds: float | None) -> dict[str, object]:
    return {
        "kind": kind, "cluster": "prod-us", "namespace": "apps", "name": "db", "cloud": None,
        "source": "catalog", "phase": phase, "seconds": seconds, "indirect": False, "message": "",
    }  # fmt: skip


def _secret(path: str, outcome: str, targets: list[dict[str, object]]) -> dict[str, object]:
    return {"path": path, "previousVersion": 1, "newVersion": 2, "outcome": outcome, "targets": targets}


def _pushed(gateway: Pushgateway) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"{gateway.url}/metrics", timeout=10) as response:  # noqa: S310 (loopback)
        text = response.read().decode()
    return {
        (
            sample.name,
            tuple(sorted((k, v) for k, v in sample.labels.items() if k not in ("instance",))),
        ): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("vaultflow_rotation")
    }


def test_report_pushes_outcomes_and_propagation_per_kind(
    pushgateway: Pushgateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PUSHGATEWAY_ENV, pushgateway.url)
    batch = {
        "secrets": [
            _secret(
                "prod/db",
                "Rotated",
                [_target("KubernetesSecret", "Verified", 2.0), _target("KubernetesSecret", "Verified", 8.0)],
            ),
            _secret("prod/api", "Rotated", [_target("KubernetesSecret", "Verified", 4.0),
                                              _target("AwsSecretsManager", "Verified", 12.5)]),
        ]
    }  # fmt: skip
    result = report("rotate-secrets-abcde", json.dumps([batch]))
    assert result["Rotated"] == 2
    pushed = _pushed(pushgateway)
    job = ("job", "vaultflow-rotation")
    assert pushed[("vaultflow_rotation_secrets", (job, ("outcome", "Rotated")))] == 2
    assert pushed[("vaultflow_rotation_secrets", (job, ("outcome", "Failed")))] == 0
    kube = ("kind", "KubernetesSecret")
    assert pushed[("vaultflow_rotation_propagation_seconds", (job, kube, ("quantile", "0.5")))] == 4.0
    assert pushed[("vaultflow_rotation_propagation_seconds", (job, kube, ("quantile", "1")))] == 8.0
    aws = ("kind", "AwsSecretsManager")
    assert pushed[("vaultflow_rotation_propagation_seconds", (job, aws, ("quantile", "1")))] == 12.5
    assert pushed[("vaultflow_rotation_targets", (job, kube, ("phase", "Verified")))] == 3
    assert not [key for key in pushed if any("prod/" in value for _, value in key[1])]  # no path pushed


def test_a_failed_run_still_pushes_and_a_gateway_down_never_fails_the_report(
    pushgateway: Pushgateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PUSHGATEWAY_ENV, pushgateway.url)
    batch = {"secrets": [_secret("prod/db", "Failed", [_target("KubernetesSecret", "TimedOut", None)])]}
    with pytest.raises(OperationError, match="1 of 1 secrets did not rotate"):
        report("rotate-secrets-fghij", json.dumps([batch]))
    pushed = _pushed(pushgateway)
    assert pushed[("vaultflow_rotation_secrets", (("job", "vaultflow-rotation"), ("outcome", "Failed")))] == 1

    pushgateway.stop()
    ok = {"secrets": [_secret("prod/db", "Rotated", [_target("KubernetesSecret", "Verified", 1.0)])]}
    assert report("rotate-secrets-klmno", json.dumps([ok]))["Rotated"] == 1  # logged, not raised
