"""Vault's CA reaches the step pods (issue 14): every pipeline that talks to Vault mounts the Secret
its ``vault-ca-secret`` parameter names, read-only, and ``ca-cert`` can point the steps at it."""

from __future__ import annotations

import pytest

from vaultflow.workflows.dsl import VAULT_CA_DIR, VAULT_CA_FILE
from vaultflow.workflows.registry import load_registry

VAULT_PIPELINES = ("vault-bootstrap", "apply-eso-resources", "rotate-secrets")


@pytest.mark.parametrize("name", VAULT_PIPELINES)
def test_every_step_pod_mounts_the_vault_ca_secret_read_only(name: str) -> None:
    document = load_registry().document(name)
    spec = document["spec"]
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    assert volumes["vault-ca"] == {
        "name": "vault-ca",
        "secret": {
            "secretName": "{{workflow.parameters.vault-ca-secret}}",
            "defaultMode": 0o440,  # read through the pod's fsGroup by the steps' non-root user
            "optional": True,  # a publicly trusted Vault needs no CA Secret
        },
    }
    parameters = {p["name"]: p for p in spec["arguments"]["parameters"]}
    assert parameters["vault-ca-secret"]["value"] == "vaultflow-vault-ca"
    assert VAULT_CA_FILE in parameters["ca-cert"]["description"]
    scripts = [t["script"] for t in spec["templates"] if "script" in t]
    assert scripts
    for script in scripts:
        assert {"name": "vault-ca", "mountPath": VAULT_CA_DIR, "readOnly": True} in script["volumeMounts"]


@pytest.mark.parametrize("name", VAULT_PIPELINES)
def test_the_steps_get_the_ca_cert_parameter(name: str) -> None:
    """Every step that talks to Vault is given ``ca-cert`` (so a pod verifies with the mounted CA)."""
    pipeline = load_registry().get(name)
    given = [
        step.name for step in pipeline.steps if step.args.get("ca_cert") == "{{workflow.parameters.ca-cert}}"
    ]
    assert given, f"no step of {name} takes ca-cert"
