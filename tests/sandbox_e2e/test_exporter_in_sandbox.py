"""vaultflow's exporter running in the sandbox as a scraped service, as the cluster runs it: as the
catalog's observer service account under the RBAC `vaultflow monitoring render` writes (the kube
emulator enforces it for the observer's tokens), logged in to Vault as the observer role, scraped by
the sandbox's real Prometheus; shown by `sandbox status`, stopped by `down`."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from tests.sandbox_e2e.conftest import SEEDS, CatalogSandbox, catalog_sandbox_in
from vaultflow.sandbox import lifecycle
from vaultflow.sandbox.exporter import JOB, KUBECONFIG, enable_exporter, exporter_dir
from vaultflow.sandbox.observe import wait_for
from vaultflow.sandbox.processes import port_is_listening
from vaultflow.sandbox.prometheus import prometheus_api
from vaultflow.sandbox.state import read_state


@pytest.fixture(scope="module")
def sandbox(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CatalogSandbox]:
    with catalog_sandbox_in(repo_root, tmp_path_factory.mktemp("exporter") / "sbx") as made:
        yield made


def _query(prometheus: str, expr: str) -> dict[str, float]:
    """Each series' value, keyed by its ``source`` (or ``path``) label."""
    result = prometheus_api(prometheus, f"query?query={urllib.request.quote(expr)}")["result"]
    return {
        item["metric"].get("source") or item["metric"].get("path", ""): float(item["value"][1])
        for item in result
    }


def test_the_exporter_runs_as_the_observer_is_scraped_and_stops_with_down(sandbox: CatalogSandbox) -> None:
    url = enable_exporter(sandbox.state, sandbox.loaded)
    state = read_state(Path(sandbox.state.directory))
    assert state is not None and state.exporter == url
    status = {c.name: c for c in lifecycle.status(Path(sandbox.state.directory)).components}
    assert status["vaultflow-exporter"].healthy, status["vaultflow-exporter"]

    prometheus = state.prometheus
    wait_for(
        lambda: (
            [
                t["health"]
                for t in prometheus_api(prometheus, "targets?state=active")["activeTargets"]
                if t["labels"]["job"] == JOB
            ]
            == ["up"]
        ),
        timeout=60,
        what="Prometheus to scrape the exporter",
    )
    clusters = {f"cluster/{cluster.name}" for cluster in sandbox.loaded.catalog.clusters}
    # Vault read as the observer (its Kubernetes login worked), every cluster listed under its RBAC.
    every_source_up = dict.fromkeys({"vault", *clusters}, 1.0)
    wait_for(
        lambda: _query(prometheus, "vaultflow_exporter_source_up") == every_source_up,
        timeout=60,
        what="the exporter's sources, all up, in Prometheus",
    )
    written = _query(prometheus, "vaultflow_secret_last_write_timestamp_seconds")
    assert set(written) == {secret.path for secret in sandbox.loaded.catalog.secrets}

    with urllib.request.urlopen(f"{url}/metrics", timeout=30) as response:  # noqa: S310 (loopback)
        text = response.read().decode()
    assert not [value for values in SEEDS.values() for value in values.values() if value in text]

    # Its identity: the observer's own tokens, under the rendered RBAC (the emulator enforces it).
    kubeconfig = exporter_dir(Path(sandbox.state.directory) / "monitoring") / KUBECONFIG
    assert kubeconfig.stat().st_mode & 0o077 == 0  # it carries tokens
    for cluster in sandbox.loaded.catalog.clusters:
        api = config.new_client_from_config(config_file=str(kubeconfig), context=cluster.kube_context)
        custom = client.CustomObjectsApi(api)
        custom.list_cluster_custom_object("external-secrets.io", "v1", "externalsecrets")  # granted
        with pytest.raises(ApiException) as refused:
            custom.list_cluster_custom_object("external-secrets.io", "v1alpha1", "pushsecrets")
        assert refused.value.status == 403
        assert "system:serviceaccount:vaultflow-monitoring:vaultflow-observer" in str(refused.value.body)
        with pytest.raises(ApiException) as secrets:
            client.CoreV1Api(api).list_secret_for_all_namespaces()
        assert secrets.value.status == 403

    # `down` stops it (one test: the steps above share this sandbox, and this one ends it).
    lifecycle.down(Path(sandbox.state.directory))
    assert not port_is_listening(int(state.exporter.rsplit(":", 1)[1]))
    assert not list((Path(sandbox.state.directory) / "run").glob("monitoring-exporter.pid"))
