"""Rotate a secret whose credential is checked elsewhere: *stage*, *set*, *test*, *finish* (issue 16).

Writing a new database password to Vault alone would lock every consumer out:
the database still expects the old one. A secret whose ``rotation`` names a
``credential`` therefore goes through AWS Secrets Manager's four rotation steps,
mapped onto Vault:

1. **stage**: the new data goes to ``<kv>/vaultflow/credential-staging/<path>``,
   a prefix no ESO policy grants (only the rotation role reads and writes it),
   with check-and-set 0 (a staging entry that exists is never overwritten); its
   custom metadata records the run, the version of the secret it was staged from
   and its state (``staged``, then ``set``). Never a value.
2. **set**: the checker makes the system accept it (PostgreSQL: ``ALTER ROLE``;
   alternating-users sets the user not in use); then the state becomes ``set``.
3. **test**: the checker logs in with it and runs a trivial query.
4. **finish**: the staged data is written to the secret's path with
   check-and-set on the version it was staged from (``write.py``: idempotent per
   run, a concurrent writer refused), then the staging entry is deleted. The
   caller propagates and verifies it as any rotation.

A run that dies anywhere leaves a state the next one *resumes*, whatever its run
id: a staging entry not yet ``set`` is set, one ``set`` is tested and promoted.
The staged value is never replaced by a second one, so no second password is
generated while the first may already be in the database (single-user: the only
one that logs in). A staging entry from a version that is no longer current
(someone wrote the secret since) is neither promoted nor discarded: the step
fails naming it, for a human to decide.

A failed test promotes nothing. Single-user puts the old password back
(``restore``) and the staging entry is deleted; if the old password cannot be
restored, the staging entry stays (it may be the only password that works) and
the message says so. Alternating-users never touched the user in use: the
staging entry is deleted and the next run starts afresh. A failed *set*
(PostgreSQL down) keeps the staging entry: the next run sets the same value.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from vaultflow.base.errors import InputError, OperationError
from vaultflow.gitops.catalog.model import PostgresCredential, Secret
from vaultflow.gitops.policies import CREDENTIAL_STAGING_PREFIX
from vaultflow.steps.credentials import Credential, CredentialChecker, CredentialError, open_checker
from vaultflow.steps.rotation.report import ReportStep
from vaultflow.steps.rotation.write import (
    BASE_VERSION,
    RUN,
    STATE,
    VaultWrite,
    new_values,
    patch_custom_metadata,
    read_metadata,
    read_version,
    write_rotation_keeping_data,
    write_with_cas,
)
from vaultflow.steps.vault.api import VaultApi, vault_errors

log = logging.getLogger(__name__)

STAGING_PREFIX = CREDENTIAL_STAGING_PREFIX
STAGED_RUN = "vaultflow.io/staged-by-run"
STAGED_BASE = "vaultflow.io/staged-base-version"
STAGED_STATE = "vaultflow.io/staged-state"  # "staged" (not yet set) or "set"
StepName = Literal["stage", "set", "test", "finish", "restore"]
# Called after each step that changed something, with the path and the step: a test's fault injection point.
Hook = Callable[[str, str], None]


def staging_path(path: str) -> str:
    """Where a rotation of ``path`` stages its new data (relative to the KV mount)."""
    return f"{STAGING_PREFIX}/{path}"


@dataclass
class Staged:
    """A staging entry: who staged it, from which version, how far it got, and its data (never shown)."""

    run_id: str
    base_version: int
    state: str
    data: dict[str, Any] = field(repr=False)


def read_staged(vault: VaultApi, kv: str, path: str) -> Staged | None:
    """The staging entry of ``path``; None when there is none or its metadata was never recorded."""
    metadata = read_metadata(vault, kv, staging_path(path))
    if metadata is None or metadata.current_version < 1:
        return None
    custom = metadata.custom
    if STAGED_RUN not in custom or not custom.get(STAGED_BASE, "").isdigit():
        return None  # a run died between writing the data and recording itself: never set, safe to drop
    data = read_version(vault, kv, staging_path(path), metadata.current_version)
    return Staged(custom[STAGED_RUN], int(custom[STAGED_BASE]), custom.get(STAGED_STATE, "staged"), data)


def delete_staged(vault: VaultApi, kv: str, path: str) -> None:
    """Remove the staging entry (every version and its metadata); nothing to do when there is none."""
    with vault_errors(vault.address, f"delete the staging entry {kv}/{staging_path(path)}"):
        vault.client.secrets.kv.v2.delete_metadata_and_all_versions(staging_path(path), mount_point=kv)


def read_admin(vault: VaultApi, kv: str, spec: PostgresCredential) -> Credential | None:
    """The admin login ``spec.admin`` names, read from Vault (None when the spec names none)."""
    if spec.admin is None:
        return None
    ref = spec.admin
    with vault_errors(vault.address, f"read the admin credential {kv}/{ref.path}"):
        data = vault.client.secrets.kv.v2.read_secret_version(
            ref.path, mount_point=kv, raise_on_deleted_version=True
        )["data"]["data"]
    username, password = data.get(ref.username_key), data.get(ref.password_key)
    if not username or not password:
        raise OperationError(
            f"{kv}/{ref.path}: the admin credential has no {ref.username_key!r} or {ref.password_key!r}"
        )
    return Credential(str(username), str(password))


def credential_of(spec: PostgresCredential, data: dict[str, Any]) -> Credential:
    return Credential(str(data.get(spec.username_key, "")), str(data.get(spec.password_key, "")))


@dataclass
class CredentialRotation:
    """One secret's stage/set/test/finish, resuming whatever an earlier run left; ``steps`` says what ran."""

    vault: VaultApi
    kv: str
    secret: Secret
    run_id: str
    now: Callable[[], datetime]
    planned_version: int | None = None
    base_dir: Path | None = None
    after: Hook = field(default=lambda _path, _step: None)
    steps: list[ReportStep] = field(default_factory=list)

    @property
    def spec(self) -> PostgresCredential:
        rotation = self.secret.rotation
        if rotation is None or rotation.credential is None:
            raise InputError(f"{self.secret.path}: its rotation names no credential")
        return rotation.credential

    def run(self) -> tuple[VaultWrite, dict[str, Any] | None]:
        """Stage (or resume), set, test, finish; the write and the data promoted (None: promoted earlier).

        Raises ``OperationError`` (one line, no value) when nothing was promoted.
        """
        path = self.secret.path
        metadata = read_metadata(self.vault, self.kv, path)
        if metadata is None:
            raise OperationError(f"{self.kv}/{path} does not exist in Vault: seed it before rotating")
        custom = metadata.custom
        if custom.get(RUN) == self.run_id and custom.get(STATE) in ("written", "rolled-back"):
            # A retry of this run after it promoted: the write is recorded, only the cleanup may be left.
            delete_staged(self.vault, self.kv, path)
            written, _ = write_rotation_keeping_data(
                self.vault, self.kv, self.secret, self.run_id, self.now()
            )
            self._step("finish", "Resumed", 0.0, "promoted by an earlier attempt of this run")
            return written, None
        current = read_version(self.vault, self.kv, path, metadata.current_version)
        staged = read_staged(self.vault, self.kv, path)
        promoted = staged is not None and (custom.get(RUN), custom.get(BASE_VERSION)) == (
            staged.run_id,
            str(staged.base_version),
        )
        if staged is not None and staged.base_version != metadata.current_version and promoted:
            # That run promoted it (the version after it is its own) and died before deleting the
            # entry: only the cleanup was left; this run rotates from the current version.
            delete_staged(self.vault, self.kv, path)
            staged = None
        if staged is not None and staged.base_version != metadata.current_version:
            raise OperationError(
                f"{path}: a credential staged by run {staged.run_id} from v{staged.base_version} is "
                f"unfinished, but Vault holds v{metadata.current_version} (written since): nothing was set "
                f"or promoted; check which password the database accepts, then delete "
                f"{self.kv}/{staging_path(path)}"
            )
        if staged is None and self.planned_version not in (None, metadata.current_version):
            raise OperationError(
                f"{self.kv}/{path} changed while rotating: expected version {self.planned_version}, "
                f"found {metadata.current_version} (another writer); nothing was written"
            )
        checker = open_checker(
            self.spec, current, admin=read_admin(self.vault, self.kv, self.spec), base_dir=self.base_dir
        )
        old = credential_of(self.spec, current)
        if staged is None:
            staged = self._stage(checker, metadata.current_version, current)
        else:
            self._step("stage", "Resumed", 0.0, f"staged by run {staged.run_id}, state {staged.state}")
        new = credential_of(self.spec, staged.data)
        if staged.state != "set":
            self._set(checker, new)
        else:
            self._step("set", "Resumed", 0.0, f"set by run {staged.run_id}")
        self._test(checker, old, new)
        return self._finish(staged)

    # --- the steps ---------------------------------------------------------------------------

    def _stage(self, checker: CredentialChecker, base: int, current: dict[str, Any]) -> Staged:
        started = time.perf_counter()
        path = self.secret.path
        data = new_values(self.secret, current)
        # single-user: the same user; alternating-users: the other one of the pair
        following = checker.next_credential(
            credential_of(self.spec, current), str(data[self.spec.password_key])
        )
        data[self.spec.username_key] = following.username
        if read_metadata(self.vault, self.kv, staging_path(path)) is not None:
            delete_staged(self.vault, self.kv, path)  # data without its record: a run died before recording
        write_with_cas(self.vault, self.kv, staging_path(path), data, 0)
        patch_custom_metadata(
            self.vault,
            self.kv,
            staging_path(path),
            {STAGED_RUN: self.run_id, STAGED_BASE: str(base), STAGED_STATE: "staged"},
        )
        self._step("stage", "Done", time.perf_counter() - started, f"from v{base}")
        self.after(path, "stage")
        return Staged(self.run_id, base, "staged", data)

    def _set(self, checker: CredentialChecker, new: Credential) -> None:
        started = time.perf_counter()
        try:
            checker.set(new)
        except CredentialError as error:
            self._step("set", "Failed", time.perf_counter() - started, str(error))
            raise OperationError(f"{self.secret.path}: set failed, nothing was promoted: {error}") from None
        patch_custom_metadata(self.vault, self.kv, staging_path(self.secret.path), {STAGED_STATE: "set"})
        which = "the same user" if self.spec.strategy == "single-user" else "the other user of the pair"
        self._step("set", "Done", time.perf_counter() - started, which)
        self.after(self.secret.path, "set")

    def _test(self, checker: CredentialChecker, old: Credential, new: Credential) -> None:
        started = time.perf_counter()
        try:
            checker.test(new)
        except CredentialError as error:
            self._step("test", "Failed", time.perf_counter() - started, str(error))
            self._restore(checker, old, new)
            raise OperationError(f"{self.secret.path}: test failed, nothing was promoted: {error}") from None
        self._step("test", "Done", time.perf_counter() - started, "logged in with it (SELECT 1)")
        self.after(self.secret.path, "test")

    def _restore(self, checker: CredentialChecker, old: Credential, new: Credential) -> None:
        started = time.perf_counter()
        if self.spec.strategy == "alternating-users":
            delete_staged(self.vault, self.kv, self.secret.path)
            return  # the user in use was never touched
        try:
            checker.restore(old, new)
        except CredentialError as error:
            self._step("restore", "Failed", time.perf_counter() - started, str(error))
            raise OperationError(
                f"{self.secret.path}: test failed and the old password could not be restored ({error}); "
                f"the staging entry {self.kv}/{staging_path(self.secret.path)} is kept"
            ) from None
        delete_staged(self.vault, self.kv, self.secret.path)
        self._step("restore", "Done", time.perf_counter() - started, "the old password is back")

    def _finish(self, staged: Staged) -> tuple[VaultWrite, dict[str, Any] | None]:
        started = time.perf_counter()
        written, data = write_rotation_keeping_data(
            self.vault,
            self.kv,
            self.secret,
            self.run_id,
            self.now(),
            planned_version=staged.base_version,
            staged=staged.data,
        )
        self.after(self.secret.path, "promoted")
        delete_staged(self.vault, self.kv, self.secret.path)
        self._step("finish", "Done", time.perf_counter() - started, f"v{written.new_version}")
        return written, data if data is not None else dict(staged.data)

    def _step(
        self, name: StepName, phase: Literal["Done", "Resumed", "Failed"], seconds: float, note: str
    ) -> None:
        self.steps.append(ReportStep(name=name, phase=phase, seconds=round(seconds, 4), message=note))
        log.info("%s: %s %s (%.3fs) %s", self.secret.path, name, phase.lower(), seconds, note)


def restore_after_rollback(
    vault: VaultApi, kv: str, secret: Secret, written: VaultWrite, base_dir: Path | None = None
) -> None:
    """Before a rollback writes the previous data back to Vault: single-user puts the previous password
    back in the database too (else the rollback itself would lock the consumers out). Alternating-users
    never touched the previous user; a secret without a credential has nothing to do."""
    rotation = secret.rotation
    if rotation is None or rotation.credential is None or rotation.credential.strategy != "single-user":
        return
    if written.rolled_back_version is not None:
        return  # an earlier attempt of this run rolled back already
    spec = rotation.credential
    previous = read_version(vault, kv, secret.path, written.previous_version)
    promoted = read_version(vault, kv, secret.path, written.new_version)
    checker = open_checker(spec, promoted, admin=read_admin(vault, kv, spec), base_dir=base_dir)
    try:
        checker.restore(credential_of(spec, previous), credential_of(spec, promoted))
    except CredentialError as error:
        raise OperationError(f"the previous password could not be restored: {error}") from None
