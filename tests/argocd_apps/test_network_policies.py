"""The network policies: who may reach Vault (the chart's values) and what vaultflow's step pods
may reach (argocd-apps/workflows/network/), valid Kubernetes, selecting the pods they mean."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from tests.argocd_apps.argocd_policy import ProjectPolicy
from tests.argocd_apps.manifests import Document, directory_source_files, load_documents

KUBERNETES_VERSION = "1.33.0"
PART_OF = {"app.kubernetes.io/part-of": "vaultflow"}


def _steps_policy(argocd_apps_dir: Path) -> dict[str, Any]:
    (document,) = load_documents(argocd_apps_dir / "workflows" / "network" / "network-policies.yaml")
    return dict(document.obj)


def _vault_ingress(applications: dict[str, Document]) -> list[dict[str, Any]]:
    values = applications["vault"].obj["spec"]["source"]["helm"]["valuesObject"]
    policy = values["server"]["networkPolicy"]
    assert policy["enabled"] is True
    return list(policy["ingress"])


def test_the_policies_are_valid_kubernetes(argocd_apps_dir: Path, applications: dict[str, Document]) -> None:
    kubernetes_validate.validate(_steps_policy(argocd_apps_dir), KUBERNETES_VERSION, strict=True)
    vault_side = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "vault", "namespace": "vault-system"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": _vault_ingress(applications)},
    }
    kubernetes_validate.validate(vault_side, KUBERNETES_VERSION, strict=True)


def test_every_workflow_pod_is_selected_by_the_steps_policy(argocd_apps_dir: Path) -> None:
    policy = _steps_policy(argocd_apps_dir)
    selector = policy["spec"]["podSelector"]["matchLabels"]
    templates = sorted((argocd_apps_dir / "workflows" / "templates" / "workflowtemplates").glob("*.yaml"))
    assert templates
    for path in templates:
        (template,) = load_documents(path)
        labels = template.obj["spec"].get("podMetadata", {}).get("labels", {})
        assert selector.items() <= labels.items(), f"{path.name}: its pods escape the NetworkPolicy"
    assert policy["spec"]["ingress"] == [] and set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}


def test_step_pods_reach_vault_dns_and_https_only(
    argocd_apps_dir: Path, applications: dict[str, Document]
) -> None:
    egress = _steps_policy(argocd_apps_dir)["spec"]["egress"]
    ports = [{(p["protocol"], p["port"]) for p in rule["ports"]} for rule in egress]
    assert ports == [{("TCP", 8200)}, {("UDP", 53), ("TCP", 53)}, {("TCP", 443), ("TCP", 6443)}]
    (to_vault,) = egress[0]["to"]
    assert to_vault["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "vault-system"}
    # The Vault pods the steps may reach are the ones Vault's peer rule names.
    peers = _vault_ingress(applications)[0]["from"][0]["podSelector"]["matchLabels"]
    assert to_vault["podSelector"]["matchLabels"] == peers


@pytest.mark.parametrize(
    ("namespace", "pod_labels", "port", "admitted"),
    [
        ("external-secrets-system", {"app.kubernetes.io/name": "external-secrets"}, 8200, True),
        ("external-secrets-system", {"app.kubernetes.io/name": "external-secrets-webhook"}, 8200, False),
        ("argo", PART_OF, 8200, True),
        ("argo", {"app.kubernetes.io/name": "argo-workflows-server"}, 8200, False),
        ("monitoring", {"app.kubernetes.io/name": "prometheus"}, 8200, True),
        (
            "vault-system",
            {"app.kubernetes.io/name": "openbao", "app.kubernetes.io/instance": "vault"},
            8201,
            True,
        ),
        ("argo", PART_OF, 8201, False),  # raft only between peers
        ("default", {"app.kubernetes.io/name": "external-secrets"}, 8200, False),
    ],
)
def test_vault_admits_only_the_pods_it_names(
    applications: dict[str, Document], namespace: str, pod_labels: dict[str, str], port: int, admitted: bool
) -> None:
    """NetworkPolicy ingress semantics (a peer matches a `from` entry, a port one of its rule's ports),
    applied to Vault's rules; Vault's pods are in vault-system, so a bare podSelector means that namespace."""

    def matches(entry: dict[str, Any]) -> bool:
        ns_labels = {"kubernetes.io/metadata.name": namespace}
        ns_selector = entry.get("namespaceSelector")
        if ns_selector is None and namespace != "vault-system":
            return False
        if ns_selector is not None and not ns_selector["matchLabels"].items() <= ns_labels.items():
            return False
        return entry.get("podSelector", {}).get("matchLabels", {}).items() <= pod_labels.items()

    result = any(
        any(matches(entry) for entry in rule["from"]) and port in {p["port"] for p in rule["ports"]}
        for rule in _vault_ingress(applications)
    )
    assert result is admitted


def test_no_rule_admits_a_whole_namespace(applications: dict[str, Document]) -> None:
    for rule in _vault_ingress(applications):
        for entry in rule["from"]:
            assert entry.get("podSelector", {}).get("matchLabels"), f"a whole namespace is admitted: {entry}"


def test_the_workflows_application_delivers_the_policy_through_its_project(
    argocd_apps_dir: Path, applications: dict[str, Document], projects: dict[str, ProjectPolicy]
) -> None:
    application = applications["vaultflow-workflows"].obj
    source = application["spec"]["source"]
    files = directory_source_files(argocd_apps_dir.parent / source["path"], source.get("directory"))
    policy_file = argocd_apps_dir / "workflows" / "network" / "network-policies.yaml"
    assert policy_file in files
    project = projects[application["spec"]["project"]]
    problems = project.object_violations(
        _steps_policy(argocd_apps_dir), namespaced=True, server=application["spec"]["destination"]["server"]
    )
    assert problems == []
