"""The smoke test's per-cluster check on real OpenBao: a too-broad ESO policy is a finding, not a crash."""

from __future__ import annotations

from collections.abc import Iterator

import hvac.exceptions
import pytest

from tests.conftest import UnsealedVault
from vaultflow.base.retry import poll_until
from vaultflow.gitops.policies import canary_path
from vaultflow.steps.vault.api import VaultApi
from vaultflow.steps.vault.smoke import _check_cluster

KV = "smoke-kv"


@pytest.fixture
def root(unsealed_vault: UnsealedVault) -> Iterator[VaultApi]:
    """Root on a KV v2 mount that requires check-and-set on every write, as configure sets it."""
    client = unsealed_vault.client()
    client.sys.enable_secrets_engine("kv", path=KV, options={"version": "2"})
    poll_until(  # a fresh KV v2 mount upgrades its storage for a moment before it serves requests
        lambda: client.secrets.kv.v2.configure(cas_required=True, mount_point=KV),
        lambda _: True,
        what=f"{KV}/ to accept its configuration",
        timeout=30,
        transient=(hvac.exceptions.InvalidRequest,),
    )
    try:
        yield VaultApi(unsealed_vault.address, token=unsealed_vault.root_token)
    finally:
        client.sys.disable_secrets_engine(KV)


def eso_with_policy(root: VaultApi, name: str, hcl: str) -> VaultApi:
    root.client.sys.create_or_update_acl_policy(name, hcl)
    token = root.client.auth.token.create(policies=[name], ttl="5m")["auth"]["client_token"]
    return root.with_token(token)


def test_least_privilege_passes_and_the_canary_is_written_with_check_and_set(root: VaultApi) -> None:
    canary = canary_path("c1")
    # A canary left behind by an interrupted run: replaced, with check-and-set on its version.
    root.client.secrets.kv.v2.create_or_update_secret(canary, secret={"canary": "old"}, cas=0, mount_point=KV)
    eso = eso_with_policy(root, "smoke-eso-exact", f'path "{KV}/data/{canary}" {{ capabilities = ["read"] }}')
    result = _check_cluster(root, eso, KV, "c1", "kubernetes-c1")
    assert (result.canary_read, result.write_denied, result.outside_denied) == (True, True, True)
    with pytest.raises(hvac.exceptions.InvalidPath):  # deleted afterwards, every version
        root.client.secrets.kv.v2.read_secret_metadata(canary, mount_point=KV)


def test_a_policy_that_lets_eso_read_everything_is_reported_not_raised(root: VaultApi) -> None:
    eso = eso_with_policy(
        root, "smoke-eso-broad", f'path "{KV}/*" {{ capabilities = ["read", "create", "update"] }}'
    )
    result = _check_cluster(root, eso, KV, "c2", "kubernetes-c2")
    # Reading outside its paths found nothing there (404): the policy let ESO through, so not denied.
    assert (result.canary_read, result.write_denied, result.outside_denied) == (True, False, False)
    assert not result.passed
