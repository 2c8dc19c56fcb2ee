"""vaultflow's exporter against a real OpenBao and a cluster where the ESO emulator runs.

Each value is derived by hand from what the test wrote (a rotation recorded at a
03:00 instant three days ago, a version written behind ESO's back), read through
prometheus_client's own exposition, as Prometheus would scrape it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.sandbox_eso.conftest import MOUNT, ROLE, EsoStack, external_secret
from vaultflow.base.times import parse_time
from vaultflow.gitops.catalog import parse_catalog
from vaultflow.gitops.catalog.model import Catalog
from vaultflow.gitops.policies import REVIEWER_EXPIRY, reviewer_record_path
from vaultflow.gitops.render import VAULT_PATH_ANNOTATION
from vaultflow.sandbox.observe import wait_for
from vaultflow.steps.observe.exporter import CatalogCollector
from vaultflow.steps.rotation.write import ROTATED_AT, read_metadata
from vaultflow.steps.vault.api import VaultApi

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
  - {{name: gone, kubeContext: gone, argocd: {{server: https://gone.example.com}}}}
secrets:
  - path: {rotated}
    keys: [{{name: password, generator: {{type: password, length: 24}}}}]
    rotation: {{schedule: "0 3 * * *"}}
    consumers: [{{cluster: eso, namespace: {namespace}, secretName: db}}]
  - path: {fresh}
    keys: [{{name: token, generator: {{type: random, bytes: 16}}}}]
    rotation: {{schedule: "@yearly"}}
    consumers: [{{cluster: eso, namespace: {namespace}, secretName: api}}]
"""


def _catalog(namespace: str, rotated: str, fresh: str) -> Catalog:
    text = CATALOG.format(role=ROLE, mount=MOUNT, namespace=namespace, rotated=rotated, fresh=fresh)
    return parse_catalog(text, Path("catalog.yaml")).catalog


def _scrape(registry: CollectorRegistry) -> tuple[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    text = generate_latest(registry).decode()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    return text, samples


def _value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def test_the_exporter_measures_rotation_delay_staleness_and_the_eso_role(
    eso: EsoStack, namespace: str, vault_path: str
) -> None:
    rotated, fresh = f"{vault_path}/db", f"{vault_path}/api"
    first = f"pw-{uuid.uuid4().hex}"
    eso.vault.secrets.kv.v2.create_or_update_secret(rotated, secret={"password": first}, mount_point="secret")
    eso.vault.secrets.kv.v2.create_or_update_secret(fresh, secret={"token": "t"}, mount_point="secret")
    today_at_3 = datetime.now(UTC).replace(hour=3, minute=0, second=0, microsecond=0)
    last_rotation = today_at_3 - timedelta(days=3)
    eso.vault.secrets.kv.v2.update_metadata(
        rotated,
        custom_metadata={ROTATED_AT: last_rotation.strftime("%Y-%m-%dT%H:%M:%SZ")},
        mount_point="secret",
    )
    remote = [{"secretKey": "password", "remoteRef": {"key": rotated, "property": "password"}}]
    body = external_secret("db", data=remote)
    body["metadata"]["annotations"] = {VAULT_PATH_ANNOTATION: rotated}
    eso.create(namespace, body)
    eso.wait_ready(namespace, ES, "db")

    # What the bootstrap's configure records for the cluster's reviewer JWT.
    reviewer_expires = "2027-06-01T00:00:00Z"
    record = {REVIEWER_EXPIRY: reviewer_expires}
    eso.vault.secrets.kv.v2.update_metadata(
        reviewer_record_path("eso"), custom_metadata=record, mount_point="secret"
    )
    registry = CollectorRegistry()
    CatalogCollector(
        _catalog(namespace, rotated, fresh),
        VaultApi(eso.vault.url, token=eso.vault.token),
        {"eso": eso.api},
        registry,
    )
    before = datetime.now(UTC)
    text, samples = _scrape(registry)
    # The daily 03:00 run after the recorded rotation is a day later; nothing rotated since.
    overdue = _value(samples, "vaultflow_secret_rotation_overdue_seconds", path=rotated)
    expected = (before - (last_rotation + timedelta(days=1))).total_seconds()
    assert expected <= overdue <= expected + 60
    assert _value(samples, "vaultflow_secret_rotation_overdue_seconds", path=fresh) == 0.0  # next: new year
    assert _value(samples, "vaultflow_secret_last_rotation_timestamp_seconds", path=rotated) == (
        last_rotation.timestamp()
    )
    assert ("vaultflow_secret_last_rotation_timestamp_seconds", (("path", fresh),)) not in samples
    consumer = {"cluster": "eso", "namespace": namespace, "externalsecret": "db", "path": rotated}
    assert _value(samples, "vaultflow_consumer_stale_seconds", **consumer) == 0.0  # refreshed after the write
    assert _value(samples, "vaultflow_consumer_refresh_interval_seconds", **consumer) == 3600.0
    assert _value(samples, "vaultflow_vault_role_token_ttl_seconds", cluster="eso", role=ROLE) == 3600.0
    assert _value(samples, "vaultflow_vault_role_token_max_ttl_seconds", cluster="eso", role=ROLE) == 0.0
    reviewer = _value(
        samples, "vaultflow_vault_kubernetes_reviewer_token_expiry_timestamp_seconds", cluster="eso"
    )
    assert reviewer == parse_time(reviewer_expires).timestamp()
    assert _value(samples, "vaultflow_exporter_source_up", source="vault") == 1.0
    assert _value(samples, "vaultflow_exporter_source_up", source="cluster/eso") == 1.0
    assert _value(samples, "vaultflow_exporter_source_up", source="cluster/gone") == 0.0  # no client for it
    # One metadata read per catalog path (2) and per cluster's reviewer record (2).
    reads = _value(samples, "vaultflow_exporter_vault_request_duration_seconds_count", operation="metadata")
    assert reads == 4
    assert first not in text

    # A version written behind ESO's back (no force-sync, refreshInterval 1h): the consumer is stale.
    # refreshTime has whole seconds, and a refresh in the write's second counts as after it: write
    # in a later second than the refresh, or the write would (rightly) not show.
    refreshed = parse_time(eso.get(namespace, ES, "db")["status"]["refreshTime"])
    wait_for(lambda: datetime.now(UTC).replace(microsecond=0) > refreshed, what="a second after the refresh")
    second = f"pw-{uuid.uuid4().hex}"
    eso.vault.secrets.kv.v2.create_or_update_secret(
        rotated, secret={"password": second}, mount_point="secret"
    )
    metadata = read_metadata(VaultApi(eso.vault.url, token=eso.vault.token), "secret", rotated)
    assert metadata is not None
    text, samples = _scrape(registry)
    stale = _value(samples, "vaultflow_consumer_stale_seconds", **consumer)
    since_write = (datetime.now(UTC) - parse_time(metadata.written_time)).total_seconds()
    assert 0 < stale <= since_write
    assert _value(samples, "vaultflow_secret_last_write_timestamp_seconds", path=rotated) == (
        parse_time(metadata.written_time).timestamp()
    )
    assert second not in text and first not in text

    # ESO picks it up: no longer stale.
    eso.force_sync(namespace, ES, "db")
    eso.wait_ready(namespace, ES, "db")
    wait_for(
        lambda: _value(_scrape(registry)[1], "vaultflow_consumer_stale_seconds", **consumer) == 0.0,
        what="the consumer refreshed after the write",
    )


def test_a_vault_that_does_not_answer_is_reported_down_and_the_clusters_still_come(
    eso: EsoStack, namespace: str, vault_path: str
) -> None:
    registry = CollectorRegistry()
    CatalogCollector(
        _catalog(namespace, f"{vault_path}/db", f"{vault_path}/api"),
        VaultApi("http://127.0.0.1:9", token="nothing"),  # the discard port: connection refused
        {"eso": eso.api},
        registry,
    )
    _, samples = _scrape(registry)
    assert _value(samples, "vaultflow_exporter_source_up", source="vault") == 0.0
    assert _value(samples, "vaultflow_exporter_source_up", source="cluster/eso") == 1.0
    assert not [name for name, _ in samples if name == "vaultflow_secret_rotation_overdue_seconds"]


def test_the_command_refuses_a_bad_listen_address_in_one_line(
    monkeypatch: pytest.MonkeyPatch, repo_root: Path
) -> None:
    from typer.testing import CliRunner

    from vaultflow.cli import app

    catalog = str(repo_root / "examples" / "catalog.yaml")
    monkeypatch.setenv("VAULT_TOKEN", "t")
    result = CliRunner().invoke(app, ["exporter", "--catalog", catalog, "--listen", "9469"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: --listen '9469': give HOST:PORT, for example 127.0.0.1:9469"
    ]
