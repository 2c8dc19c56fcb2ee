"""Every panel of the Grafana dashboard queried against a real Prometheus that scrapes a real
OpenBao, the ESO emulator's /metrics and vaultflow's exporter: no query errors, none comes back empty."""

from __future__ import annotations

import uuid
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server

from tests.sandbox_eso.conftest import MOUNT, ROLE, EsoStack, external_secret
from vaultflow.base.errors import OperationError
from vaultflow.gitops.catalog import parse_catalog
from vaultflow.gitops.monitoring import DASHBOARD_FILE, RULES_FILE, panel_queries
from vaultflow.gitops.policies import REVIEWER_EXPIRY, reviewer_record_path
from vaultflow.gitops.render import VAULT_PATH_ANNOTATION
from vaultflow.sandbox.eso.metrics import metrics_server
from vaultflow.sandbox.observe import wait_for
from vaultflow.sandbox.prometheus import PrometheusServer, ScrapeTarget
from vaultflow.steps.observe.exporter import CatalogCollector
from vaultflow.steps.vault.api import VaultApi

REPO_ROOT = Path(__file__).resolve().parents[2]
ES = "ExternalSecret"
CATALOG = """\
apiVersion: vaultflow.io/v1alpha1
kind: SecretsCatalog
vault:
  address: https://vault.example.com:8200
  kubernetesAuth: {{esoRole: {role}}}
gitops: {{repoUrl: https://git.example.com/gitops.git}}
clusters:
  - {{name: eso, kubeContext: eso, vaultAuthMount: {mount}, argocd: {{server: https://kubernetes.default.svc}}}}
secrets:
  - path: {path}
    keys: [{{name: password, generator: {{type: password, length: 24}}}}]
    rotation: {{schedule: "@daily"}}
    consumers: [{{cluster: eso, namespace: {namespace}, secretName: db}}]
"""


def test_every_dashboard_panel_returns_data_from_the_sandbox_prometheus(
    tmp_path: Path, eso: EsoStack, namespace: str, vault_path: str
) -> None:
    kv = eso.vault.secrets.kv.v2
    kv.create_or_update_secret(vault_path, secret={"password": f"v-{uuid.uuid4().hex}"}, mount_point="secret")
    kv.update_metadata(
        reviewer_record_path("eso"),
        custom_metadata={REVIEWER_EXPIRY: "2027-06-01T00:00:00Z"},
        mount_point="secret",
    )
    consumer = external_secret(
        "db", data=[{"secretKey": "pw", "remoteRef": {"key": vault_path, "property": "password"}}]
    )
    consumer["metadata"]["annotations"] = {VAULT_PATH_ANNOTATION: vault_path}
    eso.create(namespace, consumer)
    broken = [{"secretKey": "pw", "remoteRef": {"key": f"{vault_path}-missing", "property": "password"}}]
    eso.create(namespace, external_secret("broken", data=broken))  # sync errors for the error panels
    eso.wait_ready(namespace, ES, "db")
    wait_for(lambda: eso.condition(namespace, ES, "broken").get("status") == "False", what="broken failing")

    catalog = parse_catalog(
        CATALOG.format(role=ROLE, mount=MOUNT, path=vault_path, namespace=namespace), Path("catalog.yaml")
    ).catalog
    registry = CollectorRegistry()
    CatalogCollector(catalog, VaultApi(eso.vault.url, token=eso.vault.token), {"eso": eso.api}, registry)
    exporter, exporter_thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    eso_metrics = metrics_server(eso.controller.metrics).start()
    vault_address = eso.vault.url.removeprefix("http://")
    targets = [
        ScrapeTarget("vault", vault_address, "/v1/sys/metrics", params={"format": ["prometheus"]}),
        ScrapeTarget("external-secrets", f"127.0.0.1:{eso_metrics.port}"),
        ScrapeTarget("vaultflow-exporter", f"127.0.0.1:{exporter.server_port}"),
    ]
    prometheus = PrometheusServer(
        tmp_path / "prometheus", targets=targets, rule_files=[REPO_ROOT / RULES_FILE]
    ).start()
    try:
        queries = panel_queries((REPO_ROOT / DASHBOARD_FILE).read_text())
        assert len(queries) >= 10

        def empty_panels() -> list[str]:
            empty = []
            for title, expr in queries:
                try:
                    result = prometheus.api(f"query?query={_quote(expr)}")["result"]
                except OperationError as error:  # a query Prometheus refuses fails at once
                    raise AssertionError(f"panel {title!r}: {expr}: {error}") from None
                if not result:
                    empty.append(title)
            return empty

        last: list[list[str]] = []

        def all_answer() -> bool:
            last[:] = [empty_panels()]
            return last[0] == []

        try:
            wait_for(all_answer, timeout=120, what="every dashboard panel to return data")
        except OperationError:
            raise AssertionError(f"panels still empty after 120 s: {last[0]}") from None
    finally:
        prometheus.stop()
        eso_metrics.stop()
        exporter.shutdown()
        exporter_thread.join(timeout=5)


def _quote(expr: str) -> str:
    from urllib.parse import quote

    return quote(expr, safe="")
