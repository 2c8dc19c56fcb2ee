"""The sandbox's monitoring: `sandbox up` starts a real Prometheus scraping every OpenBao node and
every cluster's ESO emulator, a Pushgateway and an Alertmanager; alerts reach the Alertmanager;
`sandbox env` and `sandbox status` show them; `down` stops them and `up` brings them back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Gauge, push_to_gateway
from typer.testing import CliRunner

from tests.sandbox.test_lifecycle import assert_nothing_runs
from vaultflow.cli.sandbox import app
from vaultflow.sandbox import lifecycle
from vaultflow.sandbox.observe import wait_for
from vaultflow.sandbox.prometheus import Alertmanager, PrometheusServer
from vaultflow.sandbox.state import SandboxState


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxState]:
    directory = tmp_path / "sbx"
    yield lifecycle.up(directory, clusters=1, builtin_crds=True).state
    lifecycle.down(directory, purge=True)


def _prometheus(state: SandboxState) -> PrometheusServer:
    return PrometheusServer(Path(state.directory), port=int(state.prometheus.rsplit(":", 1)[1]))


def _targets(prometheus: PrometheusServer) -> dict[str, list[tuple[str, str]]]:
    targets: dict[str, list[tuple[str, str]]] = {}
    for target in prometheus.api("targets?state=active")["activeTargets"]:
        job = target["labels"]["job"]
        targets.setdefault(job, []).append((target["labels"].get("cluster", ""), target["health"]))
    return targets


def test_sandbox_up_runs_prometheus_pushgateway_and_alertmanager(sandbox: SandboxState) -> None:
    assert sandbox.prometheus and sandbox.pushgateway and sandbox.alertmanager
    prometheus = _prometheus(sandbox)
    expected = {
        "vault": [("", "up")],
        "external-secrets": sorted((cluster.name, "up") for cluster in sandbox.clusters),
        "pushgateway": [("", "up")],
    }
    wait_for(
        lambda: {job: sorted(found) for job, found in _targets(prometheus).items()} == expected,
        timeout=60,
        what="Prometheus to scrape every OpenBao node, every ESO and the Pushgateway",
    )
    assert "VaultSealed" in {
        rule["name"] for group in prometheus.api("rules")["groups"] for rule in group["rules"]
    }

    # A fresh sandbox's OpenBao is not initialised, hence sealed: the alert reaches the Alertmanager.
    alertmanager = Alertmanager(Path(sandbox.directory), port=int(sandbox.alertmanager.rsplit(":", 1)[1]))
    wait_for(
        lambda: "VaultSealed" in {alert["labels"]["alertname"] for alert in alertmanager.alerts()},
        timeout=150,
        what="VaultSealed to reach the Alertmanager",
    )

    # What a rotation run pushes to the Pushgateway is scraped and queryable.
    registry = CollectorRegistry()
    Gauge("vaultflow_rotation_probe", "a probe", registry=registry).set(42)
    push_to_gateway(sandbox.pushgateway, job="probe", registry=registry)
    wait_for(
        lambda: prometheus.api("query?query=vaultflow_rotation_probe")["result"] != [],
        timeout=30,
        what="the pushed metric in Prometheus",
    )
    (sample,) = prometheus.api("query?query=vaultflow_rotation_probe")["result"]
    assert sample["metric"]["job"] == "probe" and sample["value"][1] == "42"  # honor_labels: the pusher's job


def test_env_and_status_show_the_monitoring_and_down_stops_it(sandbox: SandboxState) -> None:
    runner = CliRunner()
    env = runner.invoke(app, ["env", "--dir", sandbox.directory])
    exports = dict(
        line.removeprefix("export ").split("=", 1) for line in env.output.splitlines() if "=" in line
    )
    assert exports["VAULTFLOW_PROMETHEUS_URL"] == sandbox.prometheus
    assert exports["VAULTFLOW_PUSHGATEWAY_URL"] == sandbox.pushgateway
    assert exports["VAULTFLOW_ALERTMANAGER_URL"] == sandbox.alertmanager
    report = lifecycle.status(Path(sandbox.directory))
    monitoring = {c.name: c.healthy for c in report.components if c.component == "monitoring"}
    assert monitoring == {"prometheus": True, "pushgateway": True, "alertmanager": True}

    lifecycle.down(Path(sandbox.directory))
    assert_nothing_runs(Path(sandbox.directory), sandbox)  # Prometheus and friends included
    again = lifecycle.up(Path(sandbox.directory), clusters=1, builtin_crds=True).state
    assert again.prometheus and Path(again.directory, "monitoring", "prometheus", "data").is_dir()
    wait_for(lambda: _targets(_prometheus(again)) != {}, timeout=60, what="Prometheus back, scraping again")
