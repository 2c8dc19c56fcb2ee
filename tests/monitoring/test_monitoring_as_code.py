"""The alert rules and the dashboard: promtool accepts the rules, their unit tests pass and would
catch a changed threshold, and the manifests Argo CD delivers carry exactly the sources."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from tests.argocd_apps.argocd_policy import ProjectPolicy
from tests.argocd_apps.manifests import directory_source_files, load_documents
from vaultflow.cli import app
from vaultflow.gitops.catalog import load_catalog
from vaultflow.gitops.crd_schemas import CrdRegistry
from vaultflow.gitops.monitoring import (
    DASHBOARD_CONFIG_MAP_FILE,
    DASHBOARD_FILE,
    MANIFESTS_DIR,
    PROMETHEUS_RULE_FILE,
    RULES_FILE,
    dashboard_config_map,
    exporter_files,
    panel_queries,
    prometheus_rule,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
RULES = REPO_ROOT / RULES_FILE
RULE_TESTS = RULES.with_name("vaultflow.rules.test.yaml")
EXAMPLE_NAME = "examples/catalog.yaml"  # what the committed exporter manifests are rendered from
EXAMPLE = load_catalog(REPO_ROOT / EXAMPLE_NAME)
# The architecture document's five alerts, and the ones its metrics make natural.
ARCHITECTURE_ALERTS = {
    "VaultSealed": "critical",
    "ExternalSecretSyncFailures": "critical",
    "EsoVaultTokenExpiring": "critical",
    "SecretRotationDelayed": "warning",
    "VaultApiLatencyHigh": "warning",
}


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool not found: install Debian's prometheus package (.ci/run does)")
    command = [promtool, *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def _alerts(path: Path = RULES) -> list[dict[str, Any]]:
    groups = yaml.safe_load(path.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_promtool_checks_the_rules() -> None:
    result = _promtool("check", "rules", RULES.name, cwd=RULES.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_alerts())} rules found" in result.stdout


def test_every_alert_fires_and_stays_quiet_in_its_unit_tests() -> None:
    result = _promtool("test", "rules", RULE_TESTS.name, cwd=RULES.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    cases = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    checks = [check for case in cases for check in case.get("alert_rule_test", [])]
    for name in {rule["alert"] for rule in _alerts()}:
        fired = [c for c in checks if c["alertname"] == name and c.get("exp_alerts")]
        quiet = [c for c in checks if c["alertname"] == name and not c.get("exp_alerts")]
        assert fired and quiet, f"{name}: a unit test must show it firing and one staying quiet"


@pytest.mark.parametrize(
    ("alert", "threshold", "changed"),
    [
        ("ExternalSecretSyncFailures", "> 5", "> 15"),
        ("SecretRotationDelayed", "> 3600", "> 7200"),
        ("VaultApiLatencyHigh", "> 500", "> 700"),
        ("EsoVaultTokenExpiring", "< 7 * 86400", "< 1 * 86400"),
        ("VaultSealed", "max by", "min by"),
    ],
)
def test_the_unit_tests_catch_a_changed_threshold(
    tmp_path: Path, alert: str, threshold: str, changed: str
) -> None:
    """Guard the guard: the same unit tests fail on a copy of the rules with one threshold moved."""
    rules = yaml.safe_load(RULES.read_text())
    (rule,) = [r for group in rules["groups"] for r in group["rules"] if r.get("alert") == alert]
    assert threshold in rule["expr"]
    rule["expr"] = rule["expr"].replace(threshold, changed)
    (tmp_path / RULES.name).write_text(yaml.safe_dump(rules, sort_keys=False))
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    result = _promtool("test", "rules", RULE_TESTS.name, cwd=tmp_path)
    assert result.returncode != 0
    assert f"alertname: {alert}," in result.stdout + result.stderr


def test_the_architecture_alerts_exist_with_their_severity_and_a_runbook(repo_root: Path) -> None:
    alerts = _alerts()
    severities = {rule["alert"]: rule["labels"]["severity"] for rule in alerts}
    assert {name: severities.get(name) for name in ARCHITECTURE_ALERTS} == ARCHITECTURE_ALERTS
    runbook = (repo_root / "docs" / "observability.md").read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in runbook.splitlines()
        if line.startswith("#")
    }
    for rule in alerts:
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert {"summary", "description", "runbook_url"} <= set(rule["annotations"]), rule["alert"]
        anchor = rule["annotations"]["runbook_url"].rsplit("#", 1)[1]
        assert anchor in anchors, f"{rule['alert']}: docs/observability.md has no section #{anchor}"


def test_the_prometheus_rule_carries_the_rules_file_unchanged(upstream_crds: CrdRegistry) -> None:
    manifest_path = REPO_ROOT / PROMETHEUS_RULE_FILE
    assert manifest_path.read_text() == prometheus_rule(RULES.read_text()), (
        f"{PROMETHEUS_RULE_FILE} is out of date: run `vaultflow monitoring render`"
    )
    (document,) = yaml.safe_load_all(manifest_path.read_text())
    assert document["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]
    assert upstream_crds.validate(document) == []
    broken = {**document, "spec": {"groups": [{"name": "x", "rules": [{"alert": "A", "exp": "up"}]}]}}
    assert upstream_crds.validate(broken), "the CRD schema must refuse a misspelt rule field"


def test_the_dashboard_config_map_carries_the_dashboard_for_grafana() -> None:
    import json

    import kubernetes_validate

    text = (REPO_ROOT / DASHBOARD_FILE).read_text()
    manifest_path = REPO_ROOT / DASHBOARD_CONFIG_MAP_FILE
    assert manifest_path.read_text() == dashboard_config_map(text), (
        f"{DASHBOARD_CONFIG_MAP_FILE} is out of date: run `vaultflow monitoring render`"
    )
    (config_map,) = yaml.safe_load_all(manifest_path.read_text())
    kubernetes_validate.validate(config_map, "1.33.0", strict=True)
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(config_map["data"]["vaultflow.json"]) == json.loads(text)
    queries = panel_queries(text)
    assert {"vault_core_unsealed", "externalsecret_sync_calls_error", "vaultflow_consumer_stale_seconds"} <= {
        name for _, expr in queries for name in re.findall(r"[a-z_]+", expr)
    }


def test_the_monitoring_application_delivers_both_manifests_through_its_project() -> None:
    apps_dir = REPO_ROOT / "argocd-apps" / "monitoring"
    (application,) = load_documents(apps_dir / "application.yaml")
    (project,) = load_documents(apps_dir / "project.yaml")
    policy = ProjectPolicy.from_manifest(project.obj)
    assert policy.application_violations(application.obj) == []
    source = application.obj["spec"]["source"]
    files = directory_source_files(REPO_ROOT / source["path"], source.get("directory"))
    # The workflows cluster's exporter objects and the other clusters' Applications (applications/)
    # are synced; the other clusters' objects (clusters/<name>/) are not: each has its Application.
    rendered_files = exporter_files(EXAMPLE, EXAMPLE_NAME)
    exporter = {MANIFESTS_DIR / p for p in rendered_files if len(p.parts) == 1}
    children = {MANIFESTS_DIR / p for p in rendered_files if p.parts[0] == "applications"}
    assert len(exporter) >= 4 and len(children) == len(EXAMPLE.catalog.clusters) - 1
    assert sorted(f.relative_to(REPO_ROOT) for f in files) == sorted(
        [PROMETHEUS_RULE_FILE, DASHBOARD_CONFIG_MAP_FILE, *exporter, *children]
    )
    server = application.obj["spec"]["destination"]["server"]
    for path in files:
        (document,) = load_documents(path)
        assert (
            policy.object_violations(document.obj, namespaced=_namespaced(document.obj), server=server) == []
        )
    for child_file in sorted(children):  # each through the same project, its folder to its cluster
        (child,) = load_documents(REPO_ROOT / child_file)
        assert policy.application_violations(child.obj) == []
        child_source, destination = child.obj["spec"]["source"], child.obj["spec"]["destination"]
        cluster = child_source["path"].rsplit("/", 1)[-1]
        synced = directory_source_files(REPO_ROOT / child_source["path"], child_source.get("directory"))
        assert sorted(f.relative_to(REPO_ROOT / MANIFESTS_DIR) for f in synced) == sorted(
            p for p in rendered_files if p.parts[:2] == ("clusters", cluster)
        )
        for path in synced:
            (document,) = load_documents(path)
            where = {"server": destination.get("server", ""), "name": destination.get("name", "")}
            assert policy.object_violations(document.obj, namespaced=_namespaced(document.obj), **where) == []


def _namespaced(obj: dict[str, Any]) -> bool:
    return obj["kind"] not in {"ClusterRole", "ClusterRoleBinding", "Namespace"}


def test_render_check_fails_on_a_stale_manifest_and_render_fixes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO_ROOT)  # the default source folder is the repository's
    monkeypatch.delenv("VAULTFLOW_CATALOG", raising=False)  # no catalog: the rules and dashboard only
    out = tmp_path / "manifests"

    def monitoring_render(*extra: str) -> Any:
        return CliRunner().invoke(app, ["monitoring", "render", "--out", str(out), *extra])

    missing = monitoring_render("--check")
    assert missing.exit_code == 1 and "is missing" in missing.output
    assert monitoring_render().exit_code == 0
    assert (out / PROMETHEUS_RULE_FILE.name).read_text() == prometheus_rule(RULES.read_text())
    assert (out / DASHBOARD_CONFIG_MAP_FILE.name).read_text() == (
        REPO_ROOT / DASHBOARD_CONFIG_MAP_FILE
    ).read_text()
    ok = monitoring_render("--check")
    assert ok.exit_code == 0, ok.output
    rule = out / PROMETHEUS_RULE_FILE.name
    rule.write_text(rule.read_text().replace("> 3600", "> 60"))
    stale = monitoring_render("--check")
    assert stale.exit_code == 1 and f"{rule} differs from its source" in stale.output


def test_a_rules_file_without_groups_is_refused_in_one_line(tmp_path: Path) -> None:
    (tmp_path / RULES_FILE.name).write_text("rules: []\n")
    (tmp_path / DASHBOARD_FILE.name).write_text((REPO_ROOT / DASHBOARD_FILE).read_text())
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["monitoring", "render", "--source", str(tmp_path), "--out", str(out)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: {tmp_path / RULES_FILE.name}: a Prometheus rules file needs a non-empty 'groups' list"
    ]
    assert not out.exists()
