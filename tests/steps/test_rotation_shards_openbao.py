"""Rotation shards against a real OpenBao: a batch's child token writes exactly its shards' paths, and a
configure re-run after the catalog shrank deletes the shards it no longer has."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions
import pytest

from bench.bench_rotation import catalog_text
from vaultflow.gitops.catalog import LoadedCatalog, parse_catalog
from vaultflow.gitops.policies import ROTATION_POLICY, rotation_policies
from vaultflow.gitops.rotation_shards import RotationShards, is_shard_policy
from vaultflow.sandbox.openbao import OpenBaoServer, audit_stanza
from vaultflow.sandbox.pki import CertificateAuthority
from vaultflow.steps.kube.review import ClusterReview
from vaultflow.steps.rotation.batch_token import batch_token
from vaultflow.steps.vault.api import VaultApi
from vaultflow.steps.vault.configure import apply_config, desired_config

KV = "secret"  # bench.bench_rotation's catalog's mount
EXTRA = "extra-read"  # a policy of the rotation token that is not a shard: the child keeps it
EXTRA_HCL = f'path "{KV}/data/extra" {{ capabilities = ["read"] }}\n'
AUTHORITIES: dict[str, CertificateAuthority] = {}  # one per cluster: a re-run sees the same CA


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VaultApi]:
    """A fresh OpenBao of this module's own (the shard policies have fixed names), without any mount."""
    directory = tmp_path_factory.mktemp("shards")
    server = OpenBaoServer(directory / "node", extra_hcl=audit_stanza(directory / "audit.log"))
    server.start()
    try:
        client = hvac.Client(url=server.address)
        init = client.sys.initialize(secret_shares=1, secret_threshold=1)
        client.sys.submit_unseal_key(init["keys"][0])
        VaultApi(server.address).wait_until_active()
        yield VaultApi(server.address, token=init["root_token"])
    finally:
        server.stop()


def catalog(count: int) -> LoadedCatalog:
    return parse_catalog(catalog_text(count), Path("catalog.yaml"))


def configure(root: VaultApi, loaded: LoadedCatalog) -> list[str]:
    def review(cluster: Any) -> ClusterReview:
        return ClusterReview(
            host=f"https://kubernetes.{cluster.name}.example:6443",
            ca_pem=AUTHORITIES.setdefault(cluster.name, CertificateAuthority(cluster.name)).certificate_pem,
            reviewer_jwt=lambda: f"reviewer.jwt.of-{cluster.name}",
        )

    return apply_config(root, desired_config(loaded, review), product="openbao")


def rotation_role_policies(root: VaultApi, loaded: LoadedCatalog) -> list[str]:
    auth = loaded.catalog.vault.kubernetes_auth
    mount = loaded.catalog.workflows_cluster().auth_mount(auth)
    role = root.client.read(f"auth/{mount}/role/{auth.rotation_role}")["data"]
    return sorted(role["token_policies"])


def shard_policies_in(root: VaultApi) -> list[str]:
    return sorted(n for n in root.client.sys.list_acl_policies()["data"]["keys"] if is_shard_policy(n))


def writes(vault: VaultApi, path: str, version: int) -> bool:
    try:
        vault.client.secrets.kv.v2.create_or_update_secret(
            path, secret={"password": "next"}, cas=version, mount_point=KV
        )
    except hvac.exceptions.Forbidden:
        return False
    return True


def test_a_batch_token_writes_its_shards_paths_and_is_refused_anything_else(root: VaultApi) -> None:
    loaded = catalog(40)
    configure(root, loaded)
    shards = RotationShards(loaded.catalog)
    assert shards.count == 4
    names = [policy.name for policy in rotation_policies(loaded.catalog)]
    assert rotation_role_policies(root, loaded) == sorted(names)
    members = shards.members()
    for path in shards.paths:
        root.client.secrets.kv.v2.create_or_update_secret(
            path, secret={"password": "p"}, cas=0, mount_point=KV
        )
    root.client.sys.create_or_update_acl_policy(EXTRA, EXTRA_HCL)
    root.client.secrets.kv.v2.create_or_update_secret("extra", secret={"v": "x"}, cas=0, mount_point=KV)
    parent = root.with_token(
        root.client.auth.token.create(policies=[*names, EXTRA], ttl="10m")["auth"]["client_token"]
    )

    child = batch_token(parent, loaded.catalog, members[1][:2])
    own = child.client.auth.token.lookup_self()["data"]
    # No ``default`` policy (it doubles Vault's CPU per request), though the parent holds it here.
    assert sorted(own["policies"]) == sorted([EXTRA, ROTATION_POLICY, "vaultflow-rotation-1"])
    assert own["renewable"] is False and 0 < own["ttl"] <= 600
    assert all(writes(child, path, 1) for path in members[1])  # its shard, the whole of it
    for other in (members[0][0], members[2][0], members[3][0]):
        assert not writes(child, other, 1), other
        with pytest.raises(hvac.exceptions.Forbidden):
            child.client.secrets.kv.v2.read_secret_metadata(other, mount_point=KV)
    assert child.client.secrets.kv.v2.read_secret_version(
        "extra", mount_point=KV, raise_on_deleted_version=True
    )["data"]["data"]
    # Vault gives a child only policies its parent holds; the base policy no other parameters.
    with pytest.raises(hvac.exceptions.InvalidRequest, match="subset"):
        child.client.write_data("auth/token/create", data={"policies": ["vaultflow-rotation-2"]})
    with pytest.raises(hvac.exceptions.Forbidden):
        parent.client.write_data("auth/token/create", data={"policies": names[:2], "period": "24h"})
    # A batch over two shards holds those two.
    both = batch_token(parent, loaded.catalog, [members[0][0], members[3][0]])
    assert [n for n in both.client.auth.token.lookup_self()["data"]["policies"] if is_shard_policy(n)] == [
        "vaultflow-rotation-0",
        "vaultflow-rotation-3",
    ]
    # Revoking the rotation token revokes its children.
    parent.revoke_self()
    for token in (child, both):
        with pytest.raises(hvac.exceptions.Forbidden):
            token.client.auth.token.lookup_self()


def test_a_configure_rerun_after_the_catalog_shrank_deletes_the_shards_it_no_longer_has(
    root: VaultApi,
) -> None:
    large, small = catalog(40), catalog(10)
    configure(root, large)
    assert shard_policies_in(root) == [f"vaultflow-rotation-{k}" for k in range(4)]
    changes = configure(root, small)
    assert [c for c in changes if c.startswith("deleted policy")] == [
        f"deleted policy vaultflow-rotation-{k} (a rotation shard the catalog no longer has)"
        for k in (1, 2, 3)
    ]
    assert shard_policies_in(root) == ["vaultflow-rotation-0"]
    assert rotation_role_policies(root, small) == [ROTATION_POLICY, "vaultflow-rotation-0"]
    assert root.client.sys.read_acl_policy("vaultflow-rotation-0")["data"]["policy"] == next(
        p.hcl for p in rotation_policies(small.catalog) if p.name == "vaultflow-rotation-0"
    )
    assert configure(root, small) == []  # converged
    regrown = configure(root, large)
    assert {f"created policy vaultflow-rotation-{k}" for k in (1, 2, 3)} <= set(regrown)
    assert configure(root, large) == []


def test_the_rotation_works_without_the_default_policy_its_role_no_longer_hands_out(root: VaultApi) -> None:
    """The rotation role's tokens hold no ``default`` (it doubles Vault's CPU per request): the rotation
    policy grants what a rotate step used of it, the parent's look-up of itself and each revocation."""
    loaded = catalog(10)
    configure(root, loaded)
    auth = loaded.catalog.vault.kubernetes_auth
    mount = loaded.catalog.workflows_cluster().auth_mount(auth)
    assert (
        root.client.read(f"auth/{mount}/role/{auth.rotation_role}")["data"]["token_no_default_policy"] is True
    )
    names = [policy.name for policy in rotation_policies(loaded.catalog)]
    path = RotationShards(loaded.catalog).paths[0]
    try:  # the first test of the module wrote it already
        before = root.client.secrets.kv.v2.read_secret_metadata(path, mount_point=KV)["data"][
            "current_version"
        ]
    except hvac.exceptions.InvalidPath:
        before = 0
    root.client.secrets.kv.v2.create_or_update_secret(
        path, secret={"password": "p"}, cas=before, mount_point=KV
    )
    # What the role hands out: its policies and nothing else.
    issued = root.client.auth.token.create(policies=names, no_default_policy=True, ttl="10m")
    parent = root.with_token(issued["auth"]["client_token"])
    assert sorted(parent.client.auth.token.lookup_self()["data"]["policies"]) == sorted(names)

    child = batch_token(parent, loaded.catalog, [path])
    assert "default" not in child.client.auth.token.lookup_self()["data"]["policies"]
    assert writes(child, path, before + 1)
    # Nothing more than before: no cubbyhole, no response wrapping (``default`` grants both).
    with pytest.raises(hvac.exceptions.Forbidden):
        child.client.write("cubbyhole/x", v="1")
    child.revoke_self()
    assert not child.token_works()
    parent.revoke_self()
    assert not parent.token_works()
