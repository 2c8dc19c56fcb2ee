"""The demo's stale-consumer step reads ESO's error counter from the ESO emulator's real ``/metrics``
server, and picks the consumer the fault leaves stale from the catalog."""

from __future__ import annotations

from pathlib import Path

from vaultflow.gitops.catalog import load_catalog
from vaultflow.sandbox.demo_observe import _sync_errors, stale_candidate
from vaultflow.sandbox.eso.metrics import ExternalSecretMetrics, metrics_server


def test_the_sync_errors_of_one_external_secret_are_read_from_esos_metrics() -> None:
    metrics = ExternalSecretMetrics()
    server = metrics_server(metrics).start()
    try:
        url = f"{server.url}/metrics"
        assert _sync_errors(url, "payments", "shared-stripe") == 0.0  # no series before a failure
        for _ in range(3):
            metrics.sync_error("payments", "shared-stripe")
        metrics.sync_error("payments", "other")
        metrics.sync_error("shop", "shared-stripe")
        assert _sync_errors(url, "payments", "shared-stripe") == 3.0
    finally:
        server.stop()


def test_the_stale_candidate_is_a_lone_owned_unrotated_unpushed_consumer(repo_root: Path) -> None:
    loaded = load_catalog(repo_root / "examples" / "catalog.yaml")
    chosen = stale_candidate(loaded)
    assert chosen is not None
    assert (chosen.cluster, chosen.namespace, chosen.name) == ("prod-us", "payments", "shared-stripe")
    assert not chosen.secret.pushes and chosen.secret.rotation is None
