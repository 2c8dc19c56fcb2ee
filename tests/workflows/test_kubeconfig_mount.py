"""The other catalog clusters reach the step pods (issue 14): every pipeline that acts in them mounts
the kubeconfig Secret ``vaultflow cluster onboard`` writes for its account, read-only and optional (a
one-cluster catalog has none), and points ``KUBECONFIG`` at its ``config``; the local runner, which
has no pods, ignores both."""

from __future__ import annotations

import pytest

from vaultflow.workflows.dsl import KUBECONFIG_DIR, KUBECONFIG_FILE
from vaultflow.workflows.registry import load_registry

ACCOUNTS = {
    "vault-bootstrap": "vaultflow-bootstrap",
    "apply-eso-resources": "vaultflow-delivery",
    "rotate-secrets": "vaultflow-rotation",
}


@pytest.mark.parametrize("name", sorted(ACCOUNTS))
def test_every_step_pod_mounts_its_accounts_kubeconfig_as_KUBECONFIG(name: str) -> None:
    spec = load_registry().document(name)["spec"]
    assert spec["serviceAccountName"] == ACCOUNTS[name]
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    assert volumes["kubeconfig"] == {
        "name": "kubeconfig",
        "secret": {
            "secretName": "{{workflow.parameters.kubeconfig-secret}}",
            "defaultMode": 0o440,
            "optional": True,
        },
    }
    parameters = {p["name"]: p for p in spec["arguments"]["parameters"]}
    assert parameters["kubeconfig-secret"]["value"] == f"vaultflow-kubeconfig-{ACCOUNTS[name]}"
    scripts = [t["script"] for t in spec["templates"] if "script" in t]
    assert scripts
    for script in scripts:
        assert {"name": "kubeconfig", "mountPath": KUBECONFIG_DIR, "readOnly": True} in script["volumeMounts"]
        assert {"name": "KUBECONFIG", "value": KUBECONFIG_FILE} in script["env"]


def test_the_local_runner_accepts_the_pod_only_variable() -> None:
    """``vaultflow run`` loads the template (no 'environment variables are process-wide' refusal)."""
    from vaultflow.workflows import runner

    registry = load_registry()
    for name in ACCOUNTS:
        assert runner.load(registry.document(name), lookup=registry.lookup) is not None
