"""The delivery benchmark at a tiny size: what its report says is measured, and counted, for real.

The full run (10,000 secrets, minutes) is ``task bench -- delivery``; here the same code runs on a
dozen secrets: a real bare repository, a real sandbox with OpenBao's audit log.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.bench_delivery import (
    CLUSTERS,
    SHARED_EVERY,
    catalog_text,
    measure,
    measurements,
    path_of,
    secret_count,
)
from vaultflow.gitops.catalog import parse_catalog
from vaultflow.gitops.render import render_catalog
from vaultflow.steps.delivery.preflight import READERS

COUNT = 12  # two of them (0 and 10) consumed twice


def test_the_catalog_has_more_references_than_distinct_paths() -> None:
    loaded = parse_catalog(catalog_text(COUNT), Path("catalog.yaml"))
    assert [s.path for s in loaded.catalog.secrets] == [path_of(i) for i in range(COUNT)]
    shared = len(range(0, COUNT, SHARED_EVERY))
    assert len(loaded.plan.external_secrets) == COUNT + shared
    assert {es.cluster for es in loaded.plan.external_secrets} == set(CLUSTERS)
    assert sum(1 for s in loaded.catalog.secrets if s.rotation is not None) == shared


def test_the_count_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULTFLOW_BENCH_DELIVERY_COUNT", "25")
    assert secret_count() == 25
    monkeypatch.setenv("VAULTFLOW_BENCH_DELIVERY_COUNT", "0")
    with pytest.raises(SystemExit, match="VAULTFLOW_BENCH_DELIVERY_COUNT='0'"):
        secret_count()


def test_a_tiny_run_reads_each_distinct_path_once_with_bounded_concurrency_and_reports_ratios() -> None:
    apply, checked = measure(COUNT)
    loaded = parse_catalog(catalog_text(COUNT), Path("catalog.yaml"))
    assert apply.files == len(render_catalog(loaded).files)  # the first commit listed every file
    assert min(apply.first_apply, apply.direct_commit, apply.no_change, apply.render) > 0
    # What OpenBao's audit log recorded: one KV read as ESO per distinct (cluster, path), a login and a
    # policy read per cluster, nothing else.
    assert checked.references == len(loaded.plan.external_secrets) > checked.distinct == COUNT
    assert checked.kv_reads == checked.checked == checked.distinct
    assert checked.other_requests == {
        "read sys/policies/acl/*": len(CLUSTERS),
        "update auth/*/login": len(CLUSTERS),
    }
    assert 1 <= checked.max_in_flight <= READERS
    assert checked.findings == 0
    rows = measurements(COUNT, apply, checked)
    assert [row.baseline_name for row in rows] == [
        "write + git add -A && git commit + git push",
        "render alone",
        "the same reads, hvac, 8 threads",
    ]
    assert all(row.ratio is not None and row.ratio > 0 for row in rows)
    assert f"Vault KV reads as ESO {COUNT}" in rows[2].note and "references/s" in rows[2].note
