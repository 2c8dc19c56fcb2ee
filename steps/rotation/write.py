"""Write a rotated secret's new version to Vault: check-and-set, idempotent per run, no value returned.

The new values are drawn from the catalog's generators inside this step and go
nowhere but into Vault; static keys keep their current values. What comes out
is a reference: the path, the version before and the version written.

Retries and concurrency
-----------------------
Argo may run the step again after it wrote (a pod killed after the write, before
it reported). KV v2 keeps no per-version annotations, so the run records itself
in the secret's custom metadata (never a value):

1. mark ``vaultflow.io/rotation-writing.<run id>=<version it starts from>``, a key
   of the run's own (a merge PATCH: other custom metadata stays, and a run that is
   about to lose a race cannot overwrite the record of the one that won);
2. write the new data with check-and-set on that version;
3. record ``rotation-run=<run id>``, ``rotation-state=written``, the versions and
   the time, and remove the run's writing key in the same PATCH.

A retry with the same run id that finds ``written`` returns the recorded write
without writing again. One that finds its writing key writes if the secret is
still at the starting version, and adopts the next version (its own write, which
landed before the pod died) unless another run recorded or marked that version
as its own. A concurrent writer makes the check-and-set fail: the step removes
its writing key and fails naming the version it expected and the one it found,
leaving the record to the writer that won.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from vaultflow.base.errors import OperationError
from vaultflow.gitops.catalog.model import Secret, StaticGenerator
from vaultflow.steps.secrets.generators import generate
from vaultflow.steps.vault.api import VaultApi, vault_errors

RUN = "vaultflow.io/rotation-run"
STATE = "vaultflow.io/rotation-state"
BASE_VERSION = "vaultflow.io/rotation-base-version"
VERSION = "vaultflow.io/rotation-version"
ROTATED_AT = "vaultflow.io/rotated-at"
ROLLBACK_VERSION = "vaultflow.io/rotation-rollback-version"
WRITING_PREFIX = "vaultflow.io/rotation-writing."
_MAX_KEY_BYTES = 128  # Vault's limit on a custom metadata key


def writing_key(run_id: str) -> str:
    """The run's own custom metadata key, holding the version its write starts from.

    The run id itself when it fits Vault's key limit (a workflow name does), else a
    digest of it: a run id is a name, not a secret.
    """
    key = WRITING_PREFIX + run_id
    if len(key.encode()) <= _MAX_KEY_BYTES:
        return key
    return WRITING_PREFIX + hashlib.sha256(run_id.encode()).hexdigest()[:32]


class VaultWrite(BaseModel):
    """What a rotation wrote: references only."""

    path: str
    previous_version: int
    new_version: int
    run_id: str
    rotated_at: str  # RFC 3339, UTC
    written_now: bool  # False when a retry of the same run found its write already done
    rolled_back_version: int | None = None  # a retry of a run that already rolled back: the version it wrote


class SecretMetadata(BaseModel):
    """The KV v2 metadata the rotation reads: versions, creation time and the custom metadata."""

    current_version: int
    created_time: str  # RFC 3339, when the secret (its first version) was created
    custom: dict[str, str]
    written_time: str = ""  # RFC 3339, when the current version was written ("" if Vault did not say)


def read_metadata(vault: VaultApi, kv: str, path: str) -> SecretMetadata | None:
    """The secret's metadata, or None when it does not exist (or every version is deleted)."""
    import hvac.exceptions

    with vault_errors(vault.address, f"read the metadata of {kv}/{path}"):
        try:
            data = vault.client.secrets.kv.v2.read_secret_metadata(path, mount_point=kv)["data"]
        except hvac.exceptions.InvalidPath:
            return None
    return metadata_from(data)


def metadata_from(data: Mapping[str, Any]) -> SecretMetadata:
    """``SecretMetadata`` from the ``data`` of a KV v2 metadata read (also the exporter's pooled reads)."""
    current = int(data["current_version"])
    return SecretMetadata(
        current_version=current,
        created_time=data["created_time"],
        custom=data.get("custom_metadata") or {},
        written_time=((data.get("versions") or {}).get(str(current)) or {}).get("created_time", ""),
    )


def read_version(vault: VaultApi, kv: str, path: str, version: int) -> dict[str, Any]:
    """The data of one version of the secret (kept inside the step that asks)."""
    with vault_errors(vault.address, f"read version {version} of {kv}/{path}"):
        response = vault.client.secrets.kv.v2.read_secret_version(
            path, version=version, mount_point=kv, raise_on_deleted_version=True
        )
    return dict(response["data"]["data"])


def patch_custom_metadata(vault: VaultApi, kv: str, path: str, custom: dict[str, str | None]) -> None:
    """Merge ``custom`` into the custom metadata (JSON merge patch: other keys stay, a None value removes)."""
    with vault_errors(vault.address, f"record the rotation in the metadata of {kv}/{path}"):
        vault.client.adapter.request(
            "PATCH",
            f"/v1/{kv}/metadata/{path}",
            json={"custom_metadata": custom},
            headers={"Content-Type": "application/merge-patch+json"},
        )


def write_with_cas(vault: VaultApi, kv: str, path: str, data: dict[str, Any], expected: int) -> int:
    """Write ``data`` as the version after ``expected``; a clear error when someone else wrote first."""
    import hvac.exceptions

    try:
        with vault_errors(vault.address, f"write {kv}/{path}"):
            try:
                response = vault.client.secrets.kv.v2.create_or_update_secret(
                    path, secret=data, cas=expected, mount_point=kv
                )
            except hvac.exceptions.InvalidRequest as error:
                if any("check-and-set" in str(message) for message in error.errors or []):
                    raise _CasConflict from None
                raise
    except _CasConflict:
        found = read_metadata(vault, kv, path)
        raise OperationError(
            f"{kv}/{path} changed while rotating: expected version {expected}, found "
            f"{found.current_version if found else 'none'} (another writer); nothing was written"
        ) from None
    return int(response["data"]["version"])


class _CasConflict(Exception):
    """Internal: the check-and-set version did not match."""


def new_values(secret: Secret, current: dict[str, Any]) -> dict[str, Any]:
    """Generated keys regenerated from the catalog's generators; static keys kept as they are."""
    values: dict[str, Any] = {}
    for field in secret.keys:
        generated = generate(field)
        if generated is not None:
            values[field.name] = generated
        elif field.name in current:
            values[field.name] = current[field.name]
        else:
            raise OperationError(
                f"{secret.path}: static key {field.name!r} has no value in Vault to keep: "
                "set it before rotating"
            )
    return values


def keeps_static_keys(secret: Secret) -> bool:
    """Whether a key of ``secret`` is static (only humans set it): its current value must be kept."""
    return any(isinstance(field.generator, StaticGenerator) for field in secret.keys)


def write_rotation(
    vault: VaultApi,
    kv: str,
    secret: Secret,
    run_id: str,
    now: datetime | None = None,
    *,
    planned_version: int | None = None,
) -> VaultWrite:
    """Write the new version of ``secret`` for run ``run_id`` (see the module's docstring).

    ``planned_version`` is the version the run's plan saw: a secret written since
    (by another rotation planned at the same time, or by hand) is not rotated
    again on top of it; the step fails naming both versions instead.
    """
    return write_rotation_keeping_data(vault, kv, secret, run_id, now, planned_version=planned_version)[0]


def write_rotation_keeping_data(
    vault: VaultApi,
    kv: str,
    secret: Secret,
    run_id: str,
    now: datetime | None = None,
    *,
    planned_version: int | None = None,
    staged: dict[str, Any] | None = None,
) -> tuple[VaultWrite, dict[str, Any] | None]:
    """``write_rotation``, and the data it wrote (None when a retry found the write already made).

    For a caller in the same step that verifies against it: the values stay in
    this process, and Vault is not asked for what was just written to it.
    ``staged``: the data to write instead of newly generated values (a credential
    rotation promotes what it staged, set and tested: steps/rotation/credential.py).
    """
    metadata = read_metadata(vault, kv, secret.path)
    if metadata is None:
        raise OperationError(f"{kv}/{secret.path} does not exist in Vault: seed it before rotating")
    custom = metadata.custom
    if custom.get(RUN) == run_id and custom.get(STATE) in ("written", "rolled-back"):
        recorded = VaultWrite(
            path=secret.path,
            previous_version=int(custom[BASE_VERSION]),
            new_version=int(custom[VERSION]),
            run_id=run_id,
            rotated_at=custom[ROTATED_AT],
            written_now=False,
            rolled_back_version=int(custom[ROLLBACK_VERSION]) if ROLLBACK_VERSION in custom else None,
        )
        return recorded, None
    mine = writing_key(run_id)
    if mine in custom:
        base = int(custom[mine])
        if metadata.current_version == base + 1 and not _claimed_by_another(custom, run_id, base + 1):
            # This run's write landed before the pod died.
            landed = _finish(
                vault, kv, secret.path, run_id=run_id, base=base, written=base + 1, now=now, written_now=False
            )
            return landed, None
        if metadata.current_version != base:
            patch_custom_metadata(vault, kv, secret.path, {mine: None})
            raise OperationError(
                f"{kv}/{secret.path} changed while rotating: expected version {base}, found "
                f"{metadata.current_version} (another writer); nothing was written"
            )
    base = metadata.current_version
    if planned_version is not None and base != planned_version:
        raise OperationError(
            f"{kv}/{secret.path} changed while rotating: expected version {planned_version}, found {base} "
            "(another writer); nothing was written"
        )
    if staged is not None:
        values = dict(staged)
    else:
        # The current data only when a key keeps its value: a secret whose keys are all generated
        # costs one request fewer (its values do not depend on the version being replaced).
        current = read_version(vault, kv, secret.path, base) if keeps_static_keys(secret) else {}
        values = new_values(secret, current)
    patch_custom_metadata(vault, kv, secret.path, {mine: str(base)})
    try:
        written = write_with_cas(vault, kv, secret.path, values, base)
    except OperationError:
        patch_custom_metadata(vault, kv, secret.path, {mine: None})
        raise
    done = _finish(
        vault, kv, secret.path, run_id=run_id, base=base, written=written, now=now, written_now=True
    )
    return done, values


def _claimed_by_another(custom: dict[str, str], run_id: str, version: int) -> bool:
    """Whether another run recorded ``version`` as its write, or is writing on the version before it."""
    if custom.get(RUN) != run_id and custom.get(VERSION) == str(version):
        return True
    others = {key: value for key, value in custom.items() if key.startswith(WRITING_PREFIX)}
    others.pop(writing_key(run_id), None)
    return str(version - 1) in others.values()


def write_rollback(vault: VaultApi, kv: str, written: VaultWrite) -> int:
    """Write the data of the version before ``written`` back as a new version; return that version.

    Check-and-set on the rotated version: a writer that came after the rotation
    is not overwritten. Rolling back is a new version, not a delete: ESO and
    every reader see a normal change, and Vault's history keeps what happened.
    The metadata records it (``rotation-state=rolled-back``), so a retry of the
    same run neither rolls back twice nor rotates again.
    """
    if written.rolled_back_version is not None:
        return written.rolled_back_version
    metadata = read_metadata(vault, kv, written.path)
    custom = metadata.custom if metadata is not None else {}
    if custom.get(RUN) == written.run_id and custom.get(STATE) == "rolled-back":
        return int(custom[ROLLBACK_VERSION])
    data = read_version(vault, kv, written.path, written.previous_version)
    version = write_with_cas(vault, kv, written.path, data, written.new_version)
    patch_custom_metadata(vault, kv, written.path, {STATE: "rolled-back", ROLLBACK_VERSION: str(version)})
    return version


def _finish(
    vault: VaultApi,
    kv: str,
    path: str,
    *,
    run_id: str,
    base: int,
    written: int,
    now: datetime | None,
    written_now: bool,
) -> VaultWrite:
    at = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    patch_custom_metadata(
        vault,
        kv,
        path,
        {
            RUN: run_id,
            STATE: "written",
            BASE_VERSION: str(base),
            VERSION: str(written),
            ROTATED_AT: at,
            writing_key(run_id): None,
        },
    )
    return VaultWrite(
        path=path,
        previous_version=base,
        new_version=written,
        run_id=run_id,
        rotated_at=at,
        written_now=written_now,
    )
