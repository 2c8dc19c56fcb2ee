"""The Vault Application: its chart values, and its server configuration run on
a real OpenBao (see openbao_chart.py for what is localised and why)."""

from __future__ import annotations

import re
import stat
from collections.abc import Mapping
from typing import Any

from tests.argocd_apps.conftest import VaultRun

# The chart's start script replaces these words anywhere in the configuration.
CHART_PLACEHOLDERS = ("HOST_IP", "POD_IP", "HOSTNAME", "API_ADDR", "TRANSIT_ADDR", "RAFT_ADDR")
DECLARED_AUDIT = re.compile(r'^\s*audit\s+"(?P<type>[^"]+)"\s+"(?P<path>[^"]+)"', re.MULTILINE)


def _config(vault_values: Mapping[str, Any]) -> str:
    return str(vault_values["server"]["ha"]["raft"]["config"])


def test_values_ask_for_ha_raft_with_three_sealed_replicas(vault_values: Mapping[str, Any]) -> None:
    server = vault_values["server"]
    assert server["ha"]["enabled"] is True
    assert server["ha"]["replicas"] == 3
    assert server["ha"]["raft"]["enabled"] is True
    assert server["ha"]["raft"]["setNodeId"] is True
    assert server.get("dev", {}).get("enabled", False) is False
    assert 'storage "raft"' in _config(vault_values)
    assert not re.search(r'^\s*seal\s+"', _config(vault_values), re.MULTILINE), (
        "no auto-unseal: Shamir shares"
    )
    assert vault_values["injector"]["enabled"] is False
    assert server["auditStorage"]["enabled"] is True
    assert vault_values["global"]["tlsDisable"] is False
    assert vault_values["serverTelemetry"]["serviceMonitor"]["enabled"] is True


def test_config_survives_the_charts_templating(vault_values: Mapping[str, Any]) -> None:
    config = _config(vault_values)
    assert "{{" not in config, "the chart renders the configuration with tpl"
    found = [word for word in CHART_PLACEHOLDERS if word in config]
    assert found == [], f"the chart's start script would rewrite {found} in the configuration"


def test_audit_file_device_writes_to_the_persistent_audit_volume(vault_values: Mapping[str, Any]) -> None:
    mount = vault_values["server"]["auditStorage"].get("mountPath", "/openbao/audit")
    assert f'file_path = "{mount}/audit.log"' in _config(vault_values)


def test_tls_and_metrics_settings_point_at_the_same_secret(vault_values: Mapping[str, Any]) -> None:
    secret = vault_values["server"]["extraVolumes"][0]
    assert secret == {"type": "secret", "name": "vault-server-tls"}
    mount = f"/openbao/userconfig/{secret['name']}"
    config = _config(vault_values)
    for file in ("tls.crt", "tls.key"):
        assert f'"{mount}/{file}"' in config
    assert vault_values["server"]["extraEnvironmentVars"]["BAO_CACERT"] == f"{mount}/ca.crt"
    tls = vault_values["serverTelemetry"]["serviceMonitor"]["tlsConfig"]
    assert tls["ca"]["secret"] == {"name": secret["name"], "key": "ca.crt"}
    assert "insecureSkipVerify" not in tls


# --- the configuration on a real OpenBao ----------------------------------------------------


def test_server_starts_sealed_and_uninitialised_with_shamir(vault_run: VaultRun) -> None:
    status = vault_run.sealed_status
    assert status["sealed"] is True
    assert status["initialized"] is False
    assert status["type"] == "shamir"
    assert status["storage_type"] == "raft"


def test_sealed_replica_counts_as_ready_and_alive(vault_run: VaultRun) -> None:
    """The probe path must not gate the waves on unsealing (see vault.yaml)."""
    assert vault_run.sealed_readiness_code == 204
    assert vault_run.unsealed_readiness_code == 200


def test_listener_speaks_tls_only(vault_run: VaultRun) -> None:
    assert '"sealed"' not in vault_run.plain_http_answer, "seal status was served over plain HTTP"


def test_prometheus_metrics_are_served_even_while_sealed(vault_run: VaultRun) -> None:
    """Without a token, so the seed's "Vault sealed unexpectedly" alert can fire."""
    assert re.search(r"^vault_core_unsealed\{[^}]*\} 0$", vault_run.sealed_metrics, re.MULTILINE)
    assert re.search(r"^vault_core_unsealed\{[^}]*\} 1$", vault_run.unsealed_metrics, re.MULTILINE)


def test_declared_audit_devices_are_active_after_unseal(
    vault_run: VaultRun, vault_values: Mapping[str, Any]
) -> None:
    declared = {f"{m['path']}/": m["type"] for m in DECLARED_AUDIT.finditer(_config(vault_values))}
    assert len(declared) >= 2, "a second device keeps Vault answering when one audit sink fails"
    active = {path: device["type"] for path, device in vault_run.audit_devices.items()}
    assert active == declared


def test_audit_log_is_written_privately_and_without_secrets(vault_run: VaultRun) -> None:
    log = vault_run.audit_log
    assert log.is_file() and log.stat().st_size > 0
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    text = log.read_text()
    assert '"path":"sys/mounts"' in text
    for secret in vault_run.secrets:
        assert secret.reveal() not in text, "the audit log must hold HMACs, never a key or a token"
        assert secret.reveal() not in vault_run.server_log


def test_openbao_refuses_audit_devices_created_through_the_api(vault_run: VaultRun) -> None:
    assert vault_run.api_audit_status == 400
    assert "declarative" in vault_run.api_audit_error
