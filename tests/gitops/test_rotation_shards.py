"""The rotation policy's shards: a stable assignment, every rotated path in exactly one shard, small
shards whatever the catalog's size, and the plan's batches grouped by shard."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from bench.bench_rotation import catalog_text, path_of
from vaultflow.gitops.catalog import parse_catalog
from vaultflow.gitops.policies import (
    OBSERVER_POLICY,
    ROTATION_POLICY,
    all_policies,
    rotation_policies,
    rotation_shard_policies,
)
from vaultflow.gitops.rotation_shards import (
    SECRETS_PER_SHARD,
    RotationShards,
    is_shard_policy,
    shard_count,
    shard_of,
)
from vaultflow.steps.rotation.plan import PlannedRotation, shard_batches

DATA_PATH = re.compile(r"^path \"secret/data/(.+)\" \{$", re.MULTILINE)


def loaded(count: int):  # type: ignore[no-untyped-def]
    return parse_catalog(catalog_text(count), Path("catalog.yaml"))


def test_a_paths_shard_is_a_fixed_hash_of_the_path_and_a_doubled_count_splits_each_shard() -> None:
    # Pinned: the same on every machine, interpreter and run (never Python's salted hash).
    assert [shard_of(p, 64) for p in ("prod/database", "bench/s-0000", "bench/s-0001")] == [20, 6, 55]
    paths = [path_of(i) for i in range(500)]
    for count in (1, 2, 8, 64):
        assert all(shard_of(p, 2 * count) % count == shard_of(p, count) for p in paths)


def test_the_shard_count_grows_with_the_catalog_so_a_shard_stays_small() -> None:
    assert [shard_count(n) for n in (0, 1, 16, 17, 33, 1000, 6000)] == [1, 1, 1, 2, 4, 64, 512]
    shards = RotationShards(loaded(1000).catalog)
    sizes = [len(members) for members in shards.members().values()]
    assert shards.count == 64 and sum(sizes) == 1000
    assert max(sizes) <= 3 * SECRETS_PER_SHARD


def test_every_rotated_path_is_in_exactly_one_shard_policy_and_the_observer_reads_each() -> None:
    catalog = loaded(300).catalog
    shards = RotationShards(catalog)
    policies = rotation_shard_policies(catalog)
    assert [p.name for p in policies] == shards.names() == [f"vaultflow-rotation-{k}" for k in range(32)]
    written = Counter(path for policy in policies for path in DATA_PATH.findall(policy.hcl))
    assert written == Counter(path_of(i) for i in range(300))
    for policy in policies:
        assert all(shards.policy_of(path) == policy.name for path in DATA_PATH.findall(policy.hcl))
        assert len(policy.hcl) < 16_000  # a few KB, far below Vault's 1 MiB, at any catalog size
    names = [p.name for p in all_policies(catalog, loaded(300).plan)]
    assert set(names) >= {ROTATION_POLICY, *shards.names()} and len(names) == len(set(names))
    observer = next(p for p in all_policies(catalog, loaded(300).plan) if p.name == OBSERVER_POLICY)
    # one glob reads every shard (the observer's ACL does not grow with the catalog)
    assert observer.hcl.count("sys/policies/acl/vaultflow-rotation-") == 1
    assert 'path "sys/policies/acl/vaultflow-rotation-*" {' in observer.hcl
    assert all(name.startswith("vaultflow-rotation-") for name in shards.names())
    assert [p.name for p in rotation_policies(catalog)] == [ROTATION_POLICY, *shards.names()]


def test_the_base_rotation_policy_may_only_create_a_child_token_and_look_up_and_revoke_itself() -> None:
    hcl = rotation_policies(loaded(3).catalog)[0].hcl
    assert re.findall(r'^path "([^"]+)"', hcl, re.MULTILINE) == [
        "auth/token/create",
        "auth/token/lookup-self",  # what the rotation used of Vault's ``default`` policy, which its
        "auth/token/revoke-self",  # role no longer hands out
    ]
    assert "sudo" not in hcl and "allowed_parameters" in hcl


def test_only_shard_names_are_shard_policies() -> None:
    assert is_shard_policy("vaultflow-rotation-0") and is_shard_policy("vaultflow-rotation-63")
    for name in ("vaultflow-rotation", "vaultflow-rotation-01", "vaultflow-rotation-x", "eso-prod"):
        assert not is_shard_policy(name), name


def test_plan_batches_are_grouped_by_shard_and_as_few_as_without_grouping() -> None:
    shards = RotationShards(loaded(1000).catalog)
    planned = [
        PlannedRotation(path=path_of(i), version=1, why="due", last_rotated_at=None) for i in range(1000)
    ]
    batches = shard_batches(planned, shards, 50)
    assert all(len(batch) <= 50 for batch in batches)
    assert sorted(s.path for batch in batches for s in batch) == sorted(s.path for s in planned)
    holders = Counter(shard for batch in batches for shard in {shards.of(s.path) for s in batch})
    assert set(holders.values()) == {1}  # no shard here exceeds a batch: each is in one batch only
    assert len(batches) <= 1000 // 50 + 2
    assert shard_batches(planned, shards, 50) == batches  # deterministic
    # A shard larger than a batch is split; nothing is lost or repeated.
    small = shard_batches(planned, shards, 4)
    assert all(len(batch) <= 4 for batch in small)
    assert sorted(s.path for batch in small for s in batch) == sorted(s.path for s in planned)
    assert all(len({shards.of(s.path) for s in batch}) <= 4 for batch in small)
