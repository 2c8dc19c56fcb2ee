"""The observe benchmark at a tiny size: what its report counts is what the exporter and the audit
send, for real (a real OpenBao, two emulated clusters): one LIST per kind per cluster, one metadata
read per path per scrape."""

from __future__ import annotations

import pytest

from bench.bench_delivery import CLUSTERS
from bench.bench_observe import measure, measurements, secret_count

COUNT = 12


def test_the_count_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULTFLOW_BENCH_OBSERVE_COUNT", "25")
    assert secret_count() == 25
    monkeypatch.setenv("VAULTFLOW_BENCH_OBSERVE_COUNT", "none")
    with pytest.raises(SystemExit, match="VAULTFLOW_BENCH_OBSERVE_COUNT"):
        secret_count()


def test_a_scrape_and_an_audit_send_what_the_targets_say() -> None:
    result = measure(COUNT)
    assert (result.secrets, result.external_secrets) == (COUNT, COUNT + len(range(0, COUNT, 10)))
    scrape = result.scrape_calls
    for cluster in CLUSTERS:  # one LIST per kind per cluster, nothing else asked of a cluster
        assert {k: n for k, n in scrape.items() if k.startswith(f"{cluster} ")} == {
            f"{cluster} GET externalsecrets": 1
        }
    assert scrape["vault GET secret/metadata/*"] == COUNT  # one metadata read per path
    assert scrape["vault GET secret/metadata/vaultflow/*"] == len(CLUSTERS)  # the reviewer records
    assert scrape["vault GET auth/*/role/*"] == len(CLUSTERS)  # ESO's role of each cluster
    assert sum(scrape.values()) == COUNT + 3 * len(CLUSTERS)  # nothing else
    audited = result.audit_calls
    for cluster in CLUSTERS:
        assert {k: n for k, n in audited.items() if k.startswith(f"{cluster} ")} == {
            f"{cluster} GET externalsecrets": 1,
            f"{cluster} GET pushsecrets": 1,
        }
    assert audited["vault GET secret/metadata/*"] == COUNT
    assert result.audit_drift == 0  # the platform is what the catalog says
    [scraped, floor, audit] = measurements(result)
    assert scraped.target_seconds == 2.0 and scraped.seconds > 0 and scraped.baseline_seconds
    assert "1 east GET externalsecrets" in scraped.note and audit.baseline_seconds and floor.seconds > 0
