"""vaultflow's alerts: the plain Prometheus rules file, and the PrometheusRule rendered from it.

``monitoring/vaultflow.rules.yaml`` is the one source: ``promtool`` checks and
unit-tests it as it is, a Prometheus without the Operator loads it, and the
PrometheusRule that ``argocd-apps/monitoring/`` delivers carries its groups
unchanged (``vaultflow alerts render`` writes it; ``--check`` fails when it is
out of date).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from vaultflow.base.errors import InputError
from vaultflow.gitops.yaml_emit import emit_yaml

RULES_FILE = Path("monitoring/vaultflow.rules.yaml")
PROMETHEUS_RULE_FILE = Path("argocd-apps/monitoring/manifests/prometheusrule.yaml")
NAMESPACE = "vaultflow-monitoring"

_HEADER = """\
# Rendered by `vaultflow alerts render` from {source}: edit that file (its
# promtool unit tests sit beside it), not this one. The label release: prometheus
# is what kube-prometheus-stack's Prometheus selects rules by, the same label the
# Vault and ESO ServiceMonitors carry (argocd-apps/apps/).
"""


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
            "labels": {
                "app.kubernetes.io/name": "vaultflow",
                "app.kubernetes.io/component": "alerts",
                "release": "prometheus",
            },
        },
        "spec": {"groups": rule_groups(rules_text, source)},
    }
    return _HEADER.format(source=source.as_posix()) + emit_yaml(manifest)
