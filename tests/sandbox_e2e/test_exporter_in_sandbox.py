"""vaultflow's exporter running in the sandbox as a scraped service, as the cluster runs it: as the
catalog's observer service account under the RBAC onboarding delivered (the kube emulator enforces
it for the observer's tokens), its own token in the workflows cluster and the onboarded kubeconfig
Secret for the other clusters, logged in to Vault as the observer role, scraped by the sandbox's real
Prometheus; shown by `sandbox status`, stopped by `down`."""

from __future__ import annotations

import base64
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from tests.sandbox_e2e.conftest import SEEDS, CatalogSandbox, catalog_sandbox_in
from vaultflow.gitops.monitoring_exporter import KUBECONFIG_SECRET
from vaultflow.sandbox import lifecycle
from vaultflow.sandbox.accounts import onboard_clusters
from vaultflow.sandbox.exporter import JOB, KUBECONFIG, enable_exporter, exporter_dir, volume_file
from vaultflow.sandbox.observe import wait_for
from vaultflow.sandbox.processes import port_is_listening
from vaultflow.sandbox.prometheus import prometheus_api
from vaultflow.sandbox.state import read_state


@pytest.fixture(scope="module")
def sandbox(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CatalogSandbox]:
    with catalog_sandbox_in(repo_root, tmp_path_factory.mktemp("exporter") / "sbx") as made:
        onboard_clusters(made.state, made.loaded)  # as `sandbox up --catalog` and the demo do
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

    # Its identity: the observer's own token in the workflows cluster and, for the others, the
    # onboarded kubeconfig Secret as its volume holds it, under the rendered RBAC (enforced).
    directory = exporter_dir(Path(sandbox.state.directory) / "monitoring")
    own, volume = directory / KUBECONFIG, volume_file(directory)
    assert own.stat().st_mode & 0o077 == 0 and volume.stat().st_mode & 0o077 == 0  # they carry tokens
    assert volume.read_text() == _secret_config(sandbox)
    workflows = sandbox.loaded.catalog.workflows_cluster()
    for cluster in sandbox.loaded.catalog.clusters:
        source = own if cluster.name == workflows.name else volume
        api = config.new_client_from_config(config_file=str(source), context=cluster.kube_context)
        custom = client.CustomObjectsApi(api)
        custom.list_cluster_custom_object("external-secrets.io", "v1", "externalsecrets")  # granted
        with pytest.raises(ApiException) as refused:
            custom.list_cluster_custom_object("external-secrets.io", "v1alpha1", "pushsecrets")
        assert refused.value.status == 403
        assert "system:serviceaccount:vaultflow-monitoring:vaultflow-observer" in str(refused.value.body)
        with pytest.raises(ApiException) as secrets:
            client.CoreV1Api(api).list_secret_for_all_namespaces()
        assert secrets.value.status == 403

    # A broken onboarding shows as on a cluster: the other cluster's LIST uses the Secret's token.
    other = next(c for c in sandbox.loaded.catalog.clusters if c.name != workflows.name)
    _the_other_cluster_follows_the_onboarded_secret(sandbox, prometheus, other.name, str(other.kube_context))

    # `down` stops it (one test: the steps above share this sandbox, and this one ends it).
    lifecycle.down(Path(sandbox.state.directory))
    assert not port_is_listening(int(state.exporter.rsplit(":", 1)[1]))
    assert not list((Path(sandbox.state.directory) / "run").glob("monitoring-exporter.pid"))


def _workflows_core(sandbox: CatalogSandbox) -> client.CoreV1Api:
    admin = config.new_client_from_config(
        config_file=sandbox.state.kubeconfig, context=sandbox.loaded.catalog.workflows_cluster().name
    )
    return client.CoreV1Api(admin)


def _observer_namespace(sandbox: CatalogSandbox) -> str:
    return sandbox.loaded.catalog.vault.kubernetes_auth.observer_service_account.namespace


def _secret_config(sandbox: CatalogSandbox) -> str:
    secret = _workflows_core(sandbox).read_namespaced_secret(KUBECONFIG_SECRET, _observer_namespace(sandbox))
    return base64.b64decode(secret.data["config"]).decode()


def _put_secret_config(sandbox: CatalogSandbox, text: str) -> None:
    body = {"data": {"config": base64.b64encode(text.encode()).decode()}}
    _workflows_core(sandbox).patch_namespaced_secret(KUBECONFIG_SECRET, _observer_namespace(sandbox), body)


def _the_other_cluster_follows_the_onboarded_secret(
    sandbox: CatalogSandbox, prometheus: str, other: str, context: str
) -> None:
    """The Secret's token for ``other`` replaced by one its API server does not know: that cluster's
    source goes down (the log says why), the workflows cluster's stays up; the onboarded token back:
    up again, without restarting the exporter."""
    onboarded = _secret_config(sandbox)
    document = yaml.safe_load(onboarded)
    (user,) = (u for u in document["users"] if u["name"] == context)
    user["user"]["token"] = "not-a-token-of-" + other  # one no API server issued
    log = exporter_dir(Path(sandbox.state.directory) / "monitoring") / "exporter.log"
    _put_secret_config(sandbox, yaml.safe_dump(document))
    try:
        workflows = f"cluster/{sandbox.loaded.catalog.workflows_cluster().name}"
        wait_for(
            lambda: (
                (sources := _query(prometheus, "vaultflow_exporter_source_up")).get(f"cluster/{other}") == 0.0
                and sources.get(workflows) == 1.0
            ),
            timeout=60,
            what=f"the exporter to report cluster/{other} down with the replaced token",
        )
        said = log.read_text()
        assert f"cluster {other}: cannot list ExternalSecrets: (401)" in said
        assert user["user"]["token"] not in said  # a token is never logged, not even a bad one
    finally:
        _put_secret_config(sandbox, onboarded)
    wait_for(
        lambda: _query(prometheus, "vaultflow_exporter_source_up").get(f"cluster/{other}") == 1.0,
        timeout=60,
        what=f"the exporter to list cluster/{other} again with the onboarded token",
    )
