"""The rendered Vault policies, enforced by a real OpenBao: least privilege, exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions
import pytest

from tests.conftest import UnsealedVault
from vaultflow.gitops.catalog import load_catalog
from vaultflow.gitops.policies import ROTATION_POLICY, all_policies, eso_policy_name, rotation_policies

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml"
OUTSIDE = ["prod/payroll", "prod", "prod/database-old", "argocd/admin/extra"]


@pytest.fixture(scope="module")
def vault_with_catalog(unsealed_vault: UnsealedVault) -> UnsealedVault:
    loaded = load_catalog(EXAMPLE)
    catalog = loaded.catalog
    root = unsealed_vault.client()
    for policy in all_policies(catalog, loaded.plan):
        root.sys.create_or_update_policy(name=policy.name, policy=policy.hcl)
    for path in [s.path for s in catalog.secrets] + OUTSIDE:
        root.secrets.kv.v2.create_or_update_secret(
            path, secret={"value": f"test-{path}"}, mount_point="secret"
        )
    return unsealed_vault


def token_with(vault: UnsealedVault, *policies: str) -> Any:
    token = vault.client().auth.token.create(policies=list(policies), no_default_policy=True, ttl="10m")
    return vault.client(token["auth"]["client_token"])


def can_read(client: Any, path: str) -> bool:
    try:
        client.secrets.kv.v2.read_secret_version(path, mount_point="secret", raise_on_deleted_version=True)
    except hvac.exceptions.Forbidden:
        return False
    return True


def can_write(client: Any, path: str) -> bool:
    try:
        client.secrets.kv.v2.create_or_update_secret(path, secret={"value": "new"}, mount_point="secret")
    except hvac.exceptions.Forbidden:
        return False
    return True


def test_eso_policy_reads_exactly_its_clusters_paths(vault_with_catalog: UnsealedVault) -> None:
    loaded = load_catalog(EXAMPLE)
    catalog, plan = loaded.catalog, loaded.plan
    all_paths = {s.path for s in catalog.secrets}
    for cluster in catalog.clusters:
        client = token_with(vault_with_catalog, eso_policy_name(cluster.name))
        mine = {es.secret.path for es in plan.external_secrets if es.cluster == cluster.name}
        assert mine, cluster.name
        for path in sorted(all_paths | set(OUTSIDE)):
            assert can_read(client, path) == (path in mine), (cluster.name, path)
        for path in sorted(mine):
            assert not can_write(client, path), (cluster.name, path)
        with pytest.raises(hvac.exceptions.Forbidden):
            client.secrets.kv.v2.list_secrets("prod", mount_point="secret")


def test_rotation_policy_writes_only_rotated_paths(vault_with_catalog: UnsealedVault) -> None:
    catalog = load_catalog(EXAMPLE).catalog
    client = token_with(vault_with_catalog, *(policy.name for policy in rotation_policies(catalog)))
    rotated = {s.path for s in catalog.secrets if s.rotation is not None}
    assert rotated and rotated != {s.path for s in catalog.secrets}
    for path in sorted({s.path for s in catalog.secrets} | set(OUTSIDE)):
        assert can_write(client, path) == (path in rotated), path
    # Reading the current version for check-and-set is allowed on rotated paths only.
    for path in sorted(rotated):
        metadata = client.secrets.kv.v2.read_secret_metadata(path, mount_point="secret")
        assert metadata["data"]["current_version"] >= 1
    with pytest.raises(hvac.exceptions.Forbidden):
        client.secrets.kv.v2.read_secret_metadata("shared/stripe", mount_point="secret")
    with pytest.raises(hvac.exceptions.Forbidden):
        client.secrets.kv.v2.delete_metadata_and_all_versions(sorted(rotated)[0], mount_point="secret")
    # The base policy alone writes nothing: it creates a (narrower) child token, looks up and revokes itself.
    base = token_with(vault_with_catalog, ROTATION_POLICY)
    assert not any(can_write(base, path) for path in sorted(rotated))
