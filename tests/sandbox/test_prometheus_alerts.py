"""The sealed-Vault alert end to end: a real OpenBao scraped by a real Prometheus (Debian's
package) that loads monitoring/vaultflow.rules.yaml; sealing fires the alert, unsealing resolves it,
as seen through Prometheus' HTTP API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import hvac
import pytest

from vaultflow.sandbox.observe import wait_for
from vaultflow.sandbox.openbao import OpenBaoServer
from vaultflow.sandbox.prometheus import PrometheusServer, ScrapeTarget

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def unsealed(tmp_path: Path) -> Iterator[tuple[OpenBaoServer, hvac.Client, str]]:
    server = OpenBaoServer(data_dir=tmp_path / "openbao")
    server.start()
    try:
        client = hvac.Client(url=server.address)
        init = client.sys.initialize(secret_shares=1, secret_threshold=1)
        share = init["keys"][0]
        client.sys.submit_unseal_key(share)
        client.token = init["root_token"]
        yield server, client, share
    finally:
        server.stop()


def test_sealing_vault_fires_the_sealed_alert_and_unsealing_resolves_it(
    tmp_path: Path, unsealed: tuple[OpenBaoServer, hvac.Client, str]
) -> None:
    server, client, share = unsealed
    target = ScrapeTarget(
        job="vault",
        address=server.address.removeprefix("http://"),
        metrics_path="/v1/sys/metrics",
        params={"format": ["prometheus"]},
    )
    rules = [REPO_ROOT / "monitoring" / "vaultflow.rules.yaml"]
    prometheus = PrometheusServer(tmp_path / "prometheus", targets=[target], rule_files=rules)
    prometheus.start()
    try:

        def unsealed_value() -> float | None:
            result = prometheus.api("query?query=max(vault_core_unsealed)")["result"]
            return float(result[0]["value"][1]) if result else None

        wait_for(lambda: unsealed_value() == 1.0, timeout=60, what="Prometheus to scrape an unsealed Vault")
        rules = {r["name"] for g in prometheus.api("rules")["groups"] for r in g["rules"]}
        assert {"VaultSealed", "VaultDown", "ExternalSecretSyncFailures"} <= rules
        assert prometheus.alert_states("VaultSealed") == []

        client.sys.seal()
        wait_for(lambda: unsealed_value() == 0.0, timeout=60, what="Prometheus to see the seal")
        wait_for(
            lambda: prometheus.alert_states("VaultSealed") == ["firing"],
            timeout=120,
            what="VaultSealed firing",
        )
        (alert,) = [
            a for a in prometheus.api("alerts")["alerts"] if a["labels"]["alertname"] == "VaultSealed"
        ]
        assert alert["labels"]["severity"] == "critical" and alert["labels"]["job"] == "vault"

        client.sys.submit_unseal_key(share)
        wait_for(
            lambda: prometheus.alert_states("VaultSealed") == [], timeout=60, what="VaultSealed resolved"
        )
        assert prometheus.alert_states("VaultDown") == []  # sealed is not down: the metrics kept coming
    finally:
        prometheus.stop()
