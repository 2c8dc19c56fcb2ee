"""vaultflow's monitoring as code: the alert rules and the Grafana dashboard, and the manifests
Argo CD delivers for them.

``monitoring/`` holds the sources: ``vaultflow.rules.yaml``, a plain Prometheus
rules file (``promtool`` checks and unit-tests it as it is; a Prometheus without
the Operator loads it), and ``vaultflow-dashboard.json``, a Grafana dashboard
(importable as it is). ``vaultflow monitoring render`` writes, into
``argocd-apps/monitoring/manifests/``, the PrometheusRule carrying the rules'
groups unchanged and the ConfigMap carrying the dashboard for Grafana's sidecar
(label ``grafana_dashboard``); ``--check`` fails when either is out of date.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from vaultflow.base.errors import InputError
from vaultflow.gitops.catalog import LoadedCatalog
from vaultflow.gitops.yaml_emit import emit_yaml

SOURCE_DIR = Path("monitoring")
RULES_FILE = SOURCE_DIR / "vaultflow.rules.yaml"
DASHBOARD_FILE = SOURCE_DIR / "vaultflow-dashboard.json"
MANIFESTS_DIR = Path("argocd-apps/monitoring/manifests")
PROMETHEUS_RULE_FILE = MANIFESTS_DIR / "prometheusrule.yaml"
DASHBOARD_CONFIG_MAP_FILE = MANIFESTS_DIR / "grafana-dashboard.yaml"
NAMESPACE = "vaultflow-monitoring"
LABELS = {"app.kubernetes.io/name": "vaultflow", "app.kubernetes.io/part-of": "vaultflow"}

_HEADER = """\
# Rendered by `vaultflow monitoring render` from {source}: edit that file, not this one.
# {why}
"""
_RULE_WHY = (
    "The label release: prometheus is what kube-prometheus-stack's Prometheus selects rules by,\n"
    "# the same label the Vault and ESO ServiceMonitors carry (argocd-apps/apps/)."
)
_DASHBOARD_WHY = "Grafana's dashboard sidecar loads every ConfigMap labelled grafana_dashboard."
_EXPORTER_WHY = (
    "The exporter and its observer's least-privilege RBAC, derived from the catalog\n"
    "# (gitops/monitoring_exporter.py, docs/observability.md)."
)


def rule_groups(rules_text: str, source: Path) -> list[dict[str, Any]]:
    """The ``groups`` of a Prometheus rules file; a clear error when it has none."""
    try:
        document = yaml.safe_load(rules_text)
    except yaml.YAMLError as error:
        raise InputError(f"{source}: not YAML: {error}") from None
    groups = document.get("groups") if isinstance(document, dict) else None
    if not isinstance(groups, list) or not groups:
        raise InputError(f"{source}: a Prometheus rules file needs a non-empty 'groups' list")
    return groups


def prometheus_rule(rules_text: str, source: Path = RULES_FILE) -> str:
    """The PrometheusRule manifest (YAML text) carrying the rules file's groups unchanged."""
    manifest = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "vaultflow-alerts",
            "namespace": NAMESPACE,
            "labels": {**LABELS, "app.kubernetes.io/component": "alerts", "release": "prometheus"},
        },
        "spec": {"groups": rule_groups(rules_text, source)},
    }
    return _HEADER.format(source=source.as_posix(), why=_RULE_WHY) + emit_yaml(manifest)


def dashboard(dashboard_text: str, source: Path) -> dict[str, Any]:
    """The dashboard's JSON; a clear error when it is not a Grafana dashboard with panels."""
    try:
        document = json.loads(dashboard_text)
    except ValueError as error:
        raise InputError(f"{source}: not JSON: {error}") from None
    if not isinstance(document, dict) or not document.get("uid") or not document.get("panels"):
        raise InputError(f"{source}: a Grafana dashboard needs a 'uid' and a non-empty 'panels' list")
    return document


def dashboard_config_map(dashboard_text: str, source: Path = DASHBOARD_FILE) -> str:
    """The ConfigMap (YAML text) that carries the dashboard for Grafana's sidecar."""
    document = dashboard(dashboard_text, source)
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "vaultflow-dashboard",
            "namespace": NAMESPACE,
            "labels": {**LABELS, "app.kubernetes.io/component": "dashboard", "grafana_dashboard": "1"},
        },
        "data": {f"{document['uid']}.json": dashboard_text},
    }
    return _HEADER.format(source=source.as_posix(), why=_DASHBOARD_WHY) + emit_yaml(manifest)


def rendered(
    source_dir: Path = SOURCE_DIR, catalog: LoadedCatalog | None = None, catalog_name: str = ""
) -> dict[Path, str]:
    """What ``vaultflow monitoring render`` writes: path (in the manifests folder) to text. With a
    catalog, also the exporter and its RBAC (``monitoring_exporter``): the workflows cluster's
    objects beside the rules, every other catalog cluster's under ``clusters/<cluster>/``."""
    rules, board = source_dir / RULES_FILE.name, source_dir / DASHBOARD_FILE.name
    files = {
        Path(PROMETHEUS_RULE_FILE.name): prometheus_rule(_read(rules), rules),
        Path(DASHBOARD_CONFIG_MAP_FILE.name): dashboard_config_map(_read(board), board),
    }
    if catalog is not None:
        files.update(exporter_files(catalog, catalog_name or catalog.source.as_posix()))
    return files


def exporter_files(loaded: LoadedCatalog, catalog_name: str) -> dict[Path, str]:
    """The exporter's manifests and the observer's RBAC, one object per file (``catalog_name``: the
    catalog as the headers name it, the path given on the command line)."""
    from vaultflow.gitops.monitoring_exporter import (
        APPLICATIONS_DIR,
        CLUSTERS_DIR,
        cluster_applications,
        exporter_manifests,
    )

    workflows = loaded.catalog.workflows_cluster().name
    header = _HEADER.format(source=catalog_name, why=_EXPORTER_WHY)
    files: dict[Path, str] = {}
    for cluster, manifests in exporter_manifests(loaded).items():
        for path, manifest in manifests:
            # The workflows cluster's: flat, beside the rules (the Application syncs manifests/*.yaml).
            where = Path(Path(path).name) if cluster == workflows else Path(CLUSTERS_DIR, cluster, path)
            files[where] = header + emit_yaml(manifest)
    # Synced by the monitoring Application too (its include crosses folders); each syncs one
    # clusters/<cluster>/ folder, which the monitoring Application excludes, to that cluster.
    for name, application in cluster_applications(loaded.catalog):
        files[Path(APPLICATIONS_DIR, name)] = header + emit_yaml(application)
    return files


def panel_queries(dashboard_text: str, source: Path = DASHBOARD_FILE) -> list[tuple[str, str]]:
    """Every (panel title, PromQL expression) of the dashboard, rows' nested panels included."""
    queries = []
    for panel in _panels(dashboard(dashboard_text, source)["panels"]):
        for target in panel.get("targets") or []:
            if target.get("expr"):
                queries.append((str(panel.get("title", "")), str(target["expr"])))
    return queries


def _panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    flat = []
    for panel in panels:
        flat.append(panel)
        flat += _panels(panel.get("panels") or [])
    return flat


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise InputError(f"{path}: cannot read it: {error.strerror}") from None
