"""Plan a rotation: which secrets rotate now, refused before anything is written when one cannot.

A secret is *due* when its catalog schedule says a run should have happened
since it last rotated: the time the rotation recorded in Vault's custom
metadata, or, for a secret never rotated, the time it was created (seeding
gave it a fresh value). Named paths rotate whether due or not.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from vaultflow.base.cron import previous_run
from vaultflow.base.errors import InputError
from vaultflow.base.times import parse_time
from vaultflow.gitops.catalog.checks import unrefreshable
from vaultflow.gitops.catalog.model import Catalog, Secret
from vaultflow.gitops.rotation_shards import RotationShards
from vaultflow.steps.rotation.write import ROTATED_AT, read_metadata
from vaultflow.steps.vault.api import VaultApi

METADATA_READERS = 8  # concurrent metadata reads: a run of 1,000 secrets does not wait for them in turn


class PlannedRotation(BaseModel):
    """One secret to rotate: a reference, never a value."""

    path: str
    version: int  # the current version when planned
    why: Literal["requested", "due"]
    last_rotated_at: str | None  # RFC 3339; None when it never rotated


class RotationPlan(BaseModel):
    run_id: str
    secrets: list[PlannedRotation]
    not_due: list[str]  # rotated secrets whose schedule has not fired since their last rotation


def refusals(catalog: Catalog, paths: Sequence[str]) -> list[str]:
    """Why each named path cannot rotate (empty when all can); the catalog alone decides these."""
    by_path = {secret.path: secret for secret in catalog.secrets}
    problems = []
    for path in paths:
        secret = by_path.get(path)
        if secret is None:
            problems.append(f"{path}: not in the catalog")
        elif secret.rotation is None:
            problems.append(f"{path}: has no rotation in the catalog (add rotation.schedule to rotate it)")
        elif not secret.generated_keys():
            problems.append(f"{path}: every key is static, there is nothing to generate")
        else:
            problems.extend(
                f"{path}: consumer {c.cluster}/{c.namespace}/{c.secret_name} cannot pick up a new value: "
                f"{reason}"
                for c in secret.consumers
                if (reason := unrefreshable(c.refresh_policy, c.refresh_interval)) is not None
            )
    return problems


def plan_rotation(
    vault: VaultApi,
    catalog: Catalog,
    *,
    paths: Sequence[str],
    all_due: bool,
    run_id: str,
    now: datetime,
    schedule: str | None = None,
) -> RotationPlan:
    """The secrets to rotate in run ``run_id``; InputError listing every refusal, before any write.

    ``schedule`` narrows ``all_due`` to the secrets of that catalog schedule (one CronWorkflow each).
    """
    if not paths and not all_due:
        raise InputError("name the secrets to rotate (their catalog paths), or ask for --all-due")
    rotated = [
        secret
        for secret in catalog.secrets
        if secret.rotation is not None and schedule in (None, secret.rotation.schedule)
    ]
    candidates = list(dict.fromkeys([*paths, *([s.path for s in rotated] if all_due else [])]))
    problems = refusals(catalog, candidates)
    if problems:
        raise InputError("nothing was rotated:\n" + "\n".join(problems))
    by_path = {secret.path: secret for secret in catalog.secrets}
    planned, not_due, missing = [], [], []
    kv = catalog.vault.kv_mount
    with ThreadPoolExecutor(max_workers=max(1, min(METADATA_READERS, len(candidates)))) as pool:
        read = list(pool.map(lambda path: read_metadata(vault, kv, path), candidates))
    for path, metadata in zip(candidates, read, strict=True):
        if metadata is None:
            missing.append(f"{path}: does not exist in Vault ({kv}/{path}); seed it first")
            continue
        last = metadata.custom.get(ROTATED_AT)
        if path in paths:
            why: Literal["requested", "due"] = "requested"
        elif _is_due(by_path[path], last or metadata.created_time, now):
            why = "due"
        else:
            not_due.append(path)
            continue
        planned.append(
            PlannedRotation(path=path, version=metadata.current_version, why=why, last_rotated_at=last)
        )
    if missing:
        raise InputError("nothing was rotated:\n" + "\n".join(missing))
    return RotationPlan(run_id=run_id, secrets=planned, not_due=not_due)


def shard_batches(
    planned: Sequence[PlannedRotation], shards: RotationShards, batch_size: int
) -> list[list[PlannedRotation]]:
    """``planned`` in batches of at most ``batch_size``, grouped by rotation shard: a shard's secrets
    share one batch (split only when a shard alone holds more), so that the child token of each
    *rotate* step holds few shards. Shards are packed first fit, largest first: about as few batches
    as without the grouping. Deterministic: the same plan gives the same batches.
    """
    groups: dict[int, list[PlannedRotation]] = {}
    for secret in planned:
        groups.setdefault(shards.of(secret.path), []).append(secret)
    pieces = [
        (shard, members[start : start + batch_size])
        for shard, members in sorted(groups.items())
        for start in range(0, len(members), batch_size)
    ]
    pieces.sort(key=lambda piece: -len(piece[1]))  # stable: equal sizes keep shard order
    batches: list[list[PlannedRotation]] = []
    for _, piece in pieces:
        fit = next((batch for batch in batches if len(batch) + len(piece) <= batch_size), None)
        if fit is None:
            batches.append(list(piece))
        else:
            fit.extend(piece)
    return batches


def _is_due(secret: Secret, since: str, now: datetime) -> bool:
    assert secret.rotation is not None
    return previous_run(secret.rotation.schedule, now) > parse_time(since)
