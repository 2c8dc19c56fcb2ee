"""The ESO emulator's controller metrics: ESO's names, types, labels and update rules.

Driven through the Kubernetes API against a real OpenBao, read as Prometheus
would read ESO's ``/metrics`` (the text format, parsed by prometheus_client).
"""

from __future__ import annotations

import uuid

from prometheus_client.parser import text_string_to_metric_families

from tests.sandbox_eso.conftest import EsoStack, external_secret
from vaultflow.sandbox.observe import wait_for

ES = "ExternalSecret"


def _condition(eso: EsoStack, namespace: str, name: str, status: str) -> float | None:
    return eso.controller.metrics.value(
        "externalsecret_status_condition", name=name, namespace=namespace, condition="Ready", status=status
    )


def _counter(eso: EsoStack, family: str, namespace: str, name: str) -> float:
    return eso.controller.metrics.value(family, name=name, namespace=namespace) or 0.0


def test_a_failing_then_fixed_external_secret_moves_the_counters_and_the_condition_gauges(
    eso: EsoStack, namespace: str, vault_path: str
) -> None:
    remote = [{"secretKey": "pw", "remoteRef": {"key": vault_path, "property": "password"}}]
    eso.create(namespace, external_secret("db", data=remote))
    wait_for(lambda: eso.condition(namespace, ES, "db").get("status") == "False", what="db failing")
    wait_for(lambda: _condition(eso, namespace, "db", "False") == 1.0, what="the failure in the metrics")
    assert _condition(eso, namespace, "db", "True") == 0.0  # the opposite Ready status, set to 0
    errors = _counter(eso, "externalsecret_sync_calls_error", namespace, "db")
    assert errors >= 1
    assert _counter(eso, "externalsecret_sync_calls_total", namespace, "db") >= errors

    value = f"pw-{uuid.uuid4().hex}"
    eso.vault.secrets.kv.v2.create_or_update_secret(
        vault_path, secret={"password": value}, mount_point="secret"
    )
    eso.force_sync(namespace, ES, "db")
    eso.wait_ready(namespace, ES, "db")
    wait_for(lambda: _condition(eso, namespace, "db", "True") == 1.0, what="Ready in the metrics")
    assert _condition(eso, namespace, "db", "False") == 0.0
    settled = _counter(eso, "externalsecret_sync_calls_error", namespace, "db")
    calls = _counter(eso, "externalsecret_sync_calls_total", namespace, "db")
    eso.force_sync(namespace, ES, "db")
    wait_for(
        lambda: _counter(eso, "externalsecret_sync_calls_total", namespace, "db") > calls,
        what="a second successful reconcile counted",
    )
    assert _counter(eso, "externalsecret_sync_calls_error", namespace, "db") == settled  # no new error
    duration = eso.controller.metrics.value(
        "externalsecret_reconcile_duration", name="db", namespace=namespace
    )
    assert duration is not None and duration > 1000  # nanoseconds, as Go's float64(time.Duration)
    assert value not in eso.controller.metrics.exposition()

    eso.custom.delete_namespaced_custom_object(
        "external-secrets.io", "v1", namespace, "externalsecrets", "db"
    )
    wait_for(
        lambda: (
            _condition(eso, namespace, "db", "True") is None
            and _condition(eso, namespace, "db", "False") is None
        ),
        what="the deleted ExternalSecret's condition series removed",
    )
    assert _counter(eso, "externalsecret_sync_calls_total", namespace, "db") >= calls  # counters stay


def test_the_exposition_spells_the_families_as_eso_does(
    eso: EsoStack, namespace: str, vault_path: str
) -> None:
    eso.vault.secrets.kv.v2.create_or_update_secret(
        vault_path, secret={"password": "x"}, mount_point="secret"
    )
    remote = [{"secretKey": "pw", "remoteRef": {"key": vault_path, "property": "password"}}]
    eso.create(namespace, external_secret("app", data=remote))
    eso.wait_ready(namespace, ES, "app")
    wait_for(lambda: _condition(eso, namespace, "app", "True") == 1.0, what="Ready in the metrics")
    text = eso.controller.metrics.exposition()
    assert "# TYPE externalsecret_sync_calls_error counter" in text
    assert "externalsecret_sync_calls_error_total" not in text  # Go's client adds no _total
    families = {family.name: family for family in text_string_to_metric_families(text)}
    # prometheus_client's parser names a counter family without its _total suffix.
    assert families["externalsecret_sync_calls"].type == "counter"
    assert families["externalsecret_status_condition"].type == "gauge"
    assert families["externalsecret_reconcile_duration"].type == "gauge"
    ready = [
        sample
        for sample in families["externalsecret_status_condition"].samples
        if sample.labels.get("namespace") == namespace
    ]
    assert {(s.labels["condition"], s.labels["status"], s.value) for s in ready} == {
        ("Ready", "True", 1.0),
        ("Ready", "False", 0.0),
    }
    assert set(ready[0].labels) == {"name", "namespace", "condition", "status"}
