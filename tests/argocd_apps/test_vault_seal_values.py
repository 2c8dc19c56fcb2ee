"""The Vault Application's values with the catalog's seal merged in (``vaultflow.gitops.vault_seal``):
Shamir leaves them as committed; an auto-unseal seal adds its stanza and its Secrets, keeping the rest."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vaultflow.gitops.catalog import load_catalog
from vaultflow.gitops.catalog.model import GcpCkmsSeal, TransitSeal
from vaultflow.gitops.vault_seal import render_seal, with_seal


def test_the_example_catalogs_shamir_seal_leaves_the_committed_values_unchanged(
    vault_values: Mapping[str, Any], repo_root: Path
) -> None:
    seal = load_catalog(repo_root / "examples" / "catalog.yaml").catalog.vault.seal
    assert with_seal(vault_values, seal) == vault_values


def test_a_transit_seal_is_appended_to_the_raft_configuration(vault_values: Mapping[str, Any]) -> None:
    seal = TransitSeal.model_validate(
        {
            "type": "transit",
            "address": "https://unsealer.vault-system.svc:8200",
            "keyName": "autounseal",
            "tokenSecretRef": {"name": "vault-transit-seal", "key": "token"},
            "tlsCaCert": "/openbao/userconfig/unsealer-ca/ca.crt",
        }
    )
    merged = with_seal(vault_values, seal)
    original = str(vault_values["server"]["ha"]["raft"]["config"])
    config = merged["server"]["ha"]["raft"]["config"]
    assert config.startswith(original.rstrip("\n")) and config.endswith(render_seal(seal).stanza)
    assert "{{" not in config  # the chart renders the configuration with tpl
    assert merged["server"]["extraSecretEnvironmentVars"] == [
        {"envName": "BAO_TOKEN", "secretName": "vault-transit-seal", "secretKey": "token"}
    ]
    assert merged["server"]["extraVolumes"] == vault_values["server"]["extraVolumes"]
    assert vault_values["server"]["ha"]["raft"]["config"] == original  # the input is not modified


def test_a_file_credential_becomes_a_secret_volume_beside_the_tls_one(
    vault_values: Mapping[str, Any],
) -> None:
    seal = GcpCkmsSeal.model_validate(
        {
            "type": "gcpckms",
            "project": "my-project-1",
            "region": "global",
            "keyRing": "vault",
            "cryptoKey": "unseal",
            "credentialsSecretRef": {"name": "vault-kms-sa", "key": "key.json"},
        }
    )
    merged = with_seal(vault_values, seal)
    volumes = merged["server"]["extraVolumes"]
    assert volumes == [*vault_values["server"]["extraVolumes"], {"type": "secret", "name": "vault-kms-sa"}]
    assert (
        'credentials = "/openbao/userconfig/vault-kms-sa/key.json"'
        in merged["server"]["ha"]["raft"]["config"]
    )
