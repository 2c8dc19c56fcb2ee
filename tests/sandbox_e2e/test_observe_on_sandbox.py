"""`vaultflow audit`, `vaultflow exporter --once` and `vaultflow consumers` on the sandbox, as the
catalog's observer: a Kubernetes-auth login that the bootstrap's configure set up (role and policy
vaultflow-observer), never root and no VAULT_TOKEN. Nothing is delivered to the clusters yet, so the
audit reports every catalog ExternalSecret missing; what matters is that every read is allowed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sandbox_e2e.conftest import SEEDS, CatalogSandbox, catalog_sandbox_in
from vaultflow.sandbox import lifecycle


@pytest.fixture(scope="module")
def sandbox(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CatalogSandbox]:
    with catalog_sandbox_in(repo_root, tmp_path_factory.mktemp("observe") / "sbx") as made:
        yield made


def _vaultflow(sandbox: CatalogSandbox, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **lifecycle.environment(sandbox.state), "COLUMNS": "200"}
    environment.pop("VAULT_TOKEN", None)
    return subprocess.run(
        [sys.executable, "-m", "vaultflow", *args, "--catalog", str(sandbox.loaded.source)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_audit_logs_in_as_the_observer_and_reads_everything_it_compares(sandbox: CatalogSandbox) -> None:
    done = _vaultflow(sandbox, "audit", "--output", "json")
    assert done.returncode == 1, done.stderr  # drift: nothing delivered yet
    report = json.loads(done.stdout)
    checks = {item["check"] for item in report["drift"]}
    assert "missing" in checks and not [d for d in report["drift"] if "denied" in d["message"]]
    assert "policy" not in checks  # configure wrote every rendered policy, the observer could read them
    assert report["checked"]["policies"] >= 4
    assert "Traceback" not in done.stderr
    assert not [value for values in SEEDS.values() for value in values.values() if value in done.stdout]


def test_exporter_once_scrapes_vault_as_the_observer(sandbox: CatalogSandbox) -> None:
    done = _vaultflow(sandbox, "exporter", "--once")
    assert done.returncode == 0, done.stderr
    assert 'vaultflow_exporter_source_up{source="vault"} 1.0' in done.stdout
    paths = {secret.path for secret in sandbox.loaded.catalog.secrets}
    written = [line for line in done.stdout.splitlines() if line.startswith("vaultflow_secret_last_write")]
    assert {line.split('path="', 1)[1].split('"', 1)[0] for line in written} == paths
    assert not [value for values in SEEDS.values() for value in values.values() if value in done.stdout]
