"""The credential rotation's stage / set / test / finish against a real OpenBao and a real PostgreSQL.

The Vault token holds only the policies rendered from the test's catalog for the
rotation role (its shards and ``vaultflow-rotation-credentials``), as the rotation
workflow's identity would. A run "killed" between two steps is a fault raised by
the step's hook: the exception ends the run there, exactly as a dead pod leaves it.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import UnsealedVault
from tests.credentials.conftest import SandboxPostgres, new_password
from vaultflow.base.errors import OperationError
from vaultflow.gitops.catalog import parse_catalog
from vaultflow.gitops.catalog.model import Secret
from vaultflow.gitops.policies import CREDENTIAL_STAGING_PREFIX, all_policies, eso_policies, rotation_policies
from vaultflow.sandbox.openbao import free_port
from vaultflow.steps.credentials import Credential, CredentialError
from vaultflow.steps.credentials.postgres import PostgresAlternatingUsers, PostgresSingleUser
from vaultflow.steps.rotation.credential import (
    CredentialRotation,
    Hook,
    read_staged,
    restore_after_rollback,
    staging_path,
)
from vaultflow.steps.rotation.write import read_metadata
from vaultflow.steps.vault.api import VaultApi

KV = "secret"
CATALOG = """\
apiVersion: vaultflow.io/v1alpha1
kind: SecretsCatalog
vault: {{address: https://vault.example.com:8200}}
gitops: {{repoUrl: https://git.example.com/gitops.git}}
clusters: [{{name: one, kubeContext: one, argocd: {{server: https://kubernetes.default.svc}}}}]
secrets:
  - path: {prefix}/db
    keys:
      - {{name: username, generator: {{type: static}}}}
      - {{name: password, generator: {{type: password, length: 32}}}}
    rotation:
      schedule: "@daily"
      credential:
        type: postgres
        strategy: {strategy}
        host: 127.0.0.1
        port: {port}
        database: app
        admin: {{path: {prefix}/db-admin}}
        caFile: ca.crt
    consumers: [{{cluster: one, namespace: apps, secretName: db}}]
  - path: {prefix}/db-admin
    keys:
      - {{name: username, generator: {{type: static}}}}
      - {{name: password, generator: {{type: static}}}}
    consumers: []
"""


class Killed(Exception):
    """The fault a hook raises: the run ends there, as when its pod dies."""


@dataclass
class Setup:
    vault: VaultApi  # the rotation role's policies only
    root: object
    secret: Secret
    user: Credential
    postgres: SandboxPostgres
    base_dir: Path

    def rotation(
        self, run_id: str, *, after: Hook | None = None, planned: int | None = None
    ) -> CredentialRotation:
        return CredentialRotation(
            self.vault,
            KV,
            self.secret,
            run_id,
            lambda: datetime.now(UTC),
            planned_version=planned,
            base_dir=self.base_dir,
            after=after or (lambda _path, _step: None),
        )

    def data(self) -> dict[str, str]:
        response = self.root.secrets.kv.v2.read_secret_version(  # type: ignore[attr-defined]
            self.secret.path, mount_point=KV, raise_on_deleted_version=True
        )
        return dict(response["data"]["data"])

    def version(self) -> int:
        metadata = read_metadata(VaultApi(self.vault.address, token=self.root.token), KV, self.secret.path)  # type: ignore[attr-defined]
        assert metadata is not None
        return metadata.current_version

    def logs_in(self, credential: Credential) -> bool:
        try:
            PostgresSingleUser(self.postgres.endpoint, credential).test(credential)
        except CredentialError:
            return False
        return True

    def vault_credential(self) -> Credential:
        data = self.data()
        return Credential(data["username"], data["password"])


def make_setup(
    unsealed_vault: UnsealedVault, postgres: SandboxPostgres, tmp_path: Path, strategy: str, port: int = 0
) -> Setup:
    prefix = f"cred-{uuid.uuid4().hex[:8]}"
    (tmp_path / "ca.crt").write_text(postgres.server.ca_file.read_text())
    text = CATALOG.format(prefix=prefix, strategy=strategy, port=port or postgres.server.port)
    (tmp_path / "catalog.yaml").write_text(text)
    loaded = parse_catalog(text, tmp_path / "catalog.yaml")
    root = unsealed_vault.client()
    names = []
    for policy in rotation_policies(loaded.catalog):
        names.append(f"{prefix}-{policy.name}")
        root.sys.create_or_update_policy(name=names[-1], policy=policy.hcl)
    user = postgres.new_user("cred")
    root.secrets.kv.v2.create_or_update_secret(
        f"{prefix}/db", secret={"username": user.username, "password": user.password}, mount_point=KV
    )
    admin = postgres.admin
    root.secrets.kv.v2.create_or_update_secret(
        f"{prefix}/db-admin", secret={"username": admin.username, "password": admin.password}, mount_point=KV
    )
    token = root.auth.token.create(policies=names, no_default_policy=True, ttl="10m")["auth"]["client_token"]
    secret = next(s for s in loaded.catalog.secrets if s.path == f"{prefix}/db")
    return Setup(VaultApi(unsealed_vault.address, token=token), root, secret, user, postgres, tmp_path)


def assert_no_password_shown(setup: Setup, *things: object, credentials: tuple[Credential, ...] = ()) -> None:
    log = setup.postgres.log_text()
    for credential in (*credentials, setup.user, setup.vault_credential()):
        assert credential.password not in log
        for thing in things:
            assert credential.password not in str(thing)
            assert credential.password not in repr(thing)


def steps_of(rotation: CredentialRotation) -> list[tuple[str, str]]:
    return [(step.name, step.phase) for step in rotation.steps]


def test_single_user_stage_set_test_finish(
    unsealed_vault: UnsealedVault, postgres: SandboxPostgres, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    setup = make_setup(unsealed_vault, postgres, tmp_path, "single-user")
    before = setup.version()
    rotation = setup.rotation("run-1", planned=before)
    written, data = rotation.run()
    assert (written.previous_version, written.new_version) == (before, before + 1)
    assert steps_of(rotation) == [("stage", "Done"), ("set", "Done"), ("test", "Done"), ("finish", "Done")]
    now = setup.vault_credential()
    assert now.username == setup.user.username and now.password != setup.user.password
    assert data == setup.data()
    assert setup.logs_in(now)  # the database accepts what Vault now holds
    assert not setup.logs_in(setup.user)
    assert read_metadata(setup.vault, KV, staging_path(setup.secret.path)) is None  # staging deleted
    again = setup.rotation("run-1")
    assert again.run()[0].new_version == written.new_version  # a retry of the same run changes nothing
    assert setup.logs_in(now)
    assert_no_password_shown(setup, caplog.text, rotation.steps, written, credentials=(now,))


def test_alternating_users_never_refuse_the_previous_credential(
    unsealed_vault: UnsealedVault, postgres: SandboxPostgres, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    setup = make_setup(unsealed_vault, postgres, tmp_path, "alternating-users")
    previous = setup.user

    def rotate_while_polling(run_id: str, held: Credential) -> tuple[CredentialRotation, list[int]]:
        """One rotation while a client holding ``held`` logs in again and again: its refusals."""
        refusals: list[int] = []
        logins: list[int] = []
        stop = threading.Event()

        def poll() -> None:
            while True:
                ended = stop.is_set()  # one more login after the rotation ended, then stop
                (logins if setup.logs_in(held) else refusals).append(1)
                if ended:
                    return

        poller = threading.Thread(target=poll)
        poller.start()
        try:
            rotation = setup.rotation(run_id)
            rotation.run()
        finally:
            stop.set()
            poller.join()
        return rotation, refusals

    first, refused_first = rotate_while_polling("run-a", previous)
    clone = setup.vault_credential()
    second, refused_second = rotate_while_polling("run-b", clone)
    back = setup.vault_credential()
    assert (refused_first, refused_second) == ([], [])
    assert clone.username == previous.username + "_clone" and setup.logs_in(clone)
    assert back.username == previous.username and back.password not in (previous.password, clone.password)
    assert setup.logs_in(back) and setup.logs_in(clone)  # the previous user works until the next rotation
    assert not setup.logs_in(previous)  # ... and the one before it no longer
    assert_no_password_shown(
        setup, caplog.text, first.steps, second.steps, credentials=(previous, clone, back)
    )


def test_killed_after_set_resumes_without_a_second_password(
    unsealed_vault: UnsealedVault, postgres: SandboxPostgres, tmp_path: Path
) -> None:
    setup = make_setup(unsealed_vault, postgres, tmp_path, "single-user")
    before = setup.version()

    def die_after_set(_path: str, step: str) -> None:
        if step == "set":
            raise Killed

    with pytest.raises(Killed):
        setup.rotation("run-killed", after=die_after_set, planned=before).run()
    staged = read_staged(setup.vault, KV, setup.secret.path)
    assert staged is not None and (staged.run_id, staged.state) == ("run-killed", "set")
    pending = Credential(staged.data["username"], staged.data["password"])
    assert setup.version() == before  # nothing promoted, and the database already has the new password
    assert setup.logs_in(pending) and not setup.logs_in(setup.user)
    resumed = setup.rotation("run-next", planned=before)  # the next run, with its own id
    written, _ = resumed.run()
    assert steps_of(resumed) == [
        ("stage", "Resumed"),
        ("set", "Resumed"),
        ("test", "Done"),
        ("finish", "Done"),
    ]
    assert written.new_version == before + 1
    assert setup.vault_credential().password == pending.password  # no second password was generated
    assert setup.logs_in(setup.vault_credential())
    assert read_staged(setup.vault, KV, setup.secret.path) is None


def test_killed_after_stage_sets_the_staged_value(
    unsealed_vault: UnsealedVault, postgres: SandboxPostgres, tmp_path: Path
) -> None:
    setup = make_setup(unsealed_vault, postgres, tmp_path, "alternating-users")

    def die_after_stage(_path: str, step: str) -> None:
        if step == "stage":
            raise Killed

    with pytest.raises(Killed):
        setup.rotation("run-1", after=die_after_stage).run()
    staged = read_staged(setup.vault, KV, setup.secret.path)
    assert staged is not None and staged.state == "staged"
    resumed = setup.rotation("run-1")
    resumed.run()
    assert steps_of(resumed) == [("stage", "Resumed"), ("set", "Done"), ("test", "Done"), ("finish", "Done")]
    assert setup.vault_credential().password == staged.data["password"]
    assert setup.logs_in(setup.vault_credential()) and setup.logs_in(setup.user)


def test_postgres_down_during_set_promotes_nothing(
    unsealed_vault: UnsealedVault, postgres: SandboxPostgres, tmp_path: Path
) -> None:
    setup = make_setup(unsealed_vault, postgres, tmp_path, "single-user", port=free_port())  # nothing there
    before, data = setup.version(), setup.data()
    rotation = setup.rotation("run-down")
    with pytest.raises(OperationError) as caught:
        rotation.run()
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{setup.secret.path}: set failed, nothing was promoted: postgres 127.0.0.1:")
    assert "cannot connect" in message
    assert steps_of(rotation) == [("stage", "Done"), ("set", "Failed")]
    assert setup.version() == before and setup.data() == data  # consumers keep what works
    assert setup.logs_in(setup.user)  # the real server was never touched
    staged = read_staged(setup.vault, KV, setup.secret.path)
    assert staged is not None and staged.state == "staged"  # the next run sets this same value
    assert_no_password_shown(
        setup, message, rotation.steps, credentials=(Credential("x", staged.data["password"]),)
    )


def test_a_failed_test_promotes_nothing_and_single_user_restores(
    unsealed_vault: UnsealedVault, postgres: SandboxPostgres, tmp_path: Path
) -> None:
    setup = make_setup(unsealed_vault, postgres, tmp_path, "single-user")
    before = setup.version()
    behind = Credential(setup.user.username, new_password())

    def changed(_path: str, step: str) -> None:
        """Someone changes the password between set and test, as the admin (the way a human would)."""
        if step == "set":
            PostgresAlternatingUsers(postgres.endpoint, postgres.admin).set(behind)

    rotation = setup.rotation("run-test-fails", after=changed)
    with pytest.raises(OperationError) as caught:
        rotation.run()
    message = str(caught.value)
    assert "\n" not in message and message.startswith(
        f"{setup.secret.path}: test failed, nothing was promoted"
    )
    assert steps_of(rotation) == [
        ("stage", "Done"),
        ("set", "Done"),
        ("test", "Failed"),
        ("restore", "Done"),
    ]
    assert setup.version() == before and setup.vault_credential().password == setup.user.password
    assert setup.logs_in(setup.user)  # the old password is back: the consumers keep working
    assert not setup.logs_in(behind)
    assert read_staged(setup.vault, KV, setup.secret.path) is None
    assert_no_password_shown(setup, message, rotation.steps, credentials=(behind,))


def test_an_unfinished_rotation_of_another_version_is_never_overrun(
    unsealed_vault: UnsealedVault, postgres: SandboxPostgres, tmp_path: Path
) -> None:
    setup = make_setup(unsealed_vault, postgres, tmp_path, "alternating-users")

    def die_after_set(_path: str, step: str) -> None:
        if step == "set":
            raise Killed

    with pytest.raises(Killed):
        setup.rotation("run-1", after=die_after_set).run()
    by_hand = {"username": setup.user.username, "password": setup.user.password, "note": "by hand"}
    setup.root.secrets.kv.v2.create_or_update_secret(setup.secret.path, secret=by_hand, mount_point=KV)  # type: ignore[attr-defined]
    with pytest.raises(OperationError) as caught:
        setup.rotation("run-2").run()
    assert "a credential staged by run run-1" in str(caught.value) and "nothing was set or promoted" in str(
        caught.value
    )
    assert setup.data() == by_hand
    assert read_staged(setup.vault, KV, setup.secret.path) is not None  # kept for a human to decide


def test_no_eso_policy_grants_the_staging_prefix(tmp_path: Path) -> None:
    (tmp_path / "ca.crt").write_text("")
    text = CATALOG.format(prefix="prod", strategy="alternating-users", port=5432).replace(
        "caFile: ca.crt", ""
    )
    loaded = parse_catalog(text, tmp_path / "catalog.yaml")
    eso = eso_policies(loaded.catalog, loaded.plan)
    assert eso and all(CREDENTIAL_STAGING_PREFIX not in policy.hcl for policy in eso)
    assert all("prod/db-admin" not in policy.hcl for policy in eso)  # the admin login is no consumer's
    names = {policy.name: policy.hcl for policy in all_policies(loaded.catalog, loaded.plan)}
    staging = names["vaultflow-rotation-credentials"]
    assert f'path "secret/data/{CREDENTIAL_STAGING_PREFIX}/prod/db"' in staging
    assert 'path "secret/data/prod/db-admin" {\n  capabilities = ["read"]\n}' in staging


def test_a_single_user_rollback_puts_the_previous_password_back_in_the_database_first(
    unsealed_vault: UnsealedVault, postgres: SandboxPostgres, tmp_path: Path
) -> None:
    """``onFailure: rollback`` writes the previous data back to Vault: the database must accept it
    again, or the rollback itself would lock the consumers out."""
    setup = make_setup(unsealed_vault, postgres, tmp_path, "single-user")
    written, _ = setup.rotation("run-rolled-back").run()
    assert not setup.logs_in(setup.user)
    restore_after_rollback(setup.vault, KV, setup.secret, written, setup.base_dir)
    assert setup.logs_in(setup.user) and not setup.logs_in(setup.vault_credential())
    restore_after_rollback(setup.vault, KV, setup.secret, written, setup.base_dir)  # retried: done already
    assert setup.logs_in(setup.user)
    assert_no_password_shown(setup)


def test_killed_after_promotion_leaves_only_the_cleanup(
    unsealed_vault: UnsealedVault, postgres: SandboxPostgres, tmp_path: Path
) -> None:
    setup = make_setup(unsealed_vault, postgres, tmp_path, "alternating-users")
    before = setup.version()

    def die_after_promotion(_path: str, step: str) -> None:
        if step == "promoted":  # the finish's write landed, the staging entry is not deleted yet
            raise Killed

    with pytest.raises(Killed):
        setup.rotation("run-1", after=die_after_promotion).run()
    assert setup.version() == before + 1 and read_staged(setup.vault, KV, setup.secret.path) is not None
    retried = setup.rotation("run-1")  # Argo retries the step: same run id
    assert retried.run()[0].new_version == before + 1
    assert steps_of(retried) == [("finish", "Resumed")]
    assert read_staged(setup.vault, KV, setup.secret.path) is None

    with pytest.raises(Killed):
        setup.rotation("run-2", after=die_after_promotion).run()
    promoted = setup.vault_credential()
    following = setup.rotation("run-3", planned=before + 2)  # the next run, planned after that promotion
    assert following.run()[0].new_version == before + 3
    assert steps_of(following) == [("stage", "Done"), ("set", "Done"), ("test", "Done"), ("finish", "Done")]
    assert setup.logs_in(setup.vault_credential()) and setup.logs_in(promoted)
    assert read_staged(setup.vault, KV, setup.secret.path) is None
