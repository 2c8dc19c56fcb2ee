"""``vaultflow rotate`` of ``prod/database`` on the sandbox: its password is set and tested in the
sandbox's real PostgreSQL before any consumer sees it (issue 16).

The example catalog names an alternating-users credential; the sandbox runs PostgreSQL (TLS with
the sandbox CA, reached through ``VAULTFLOW_POSTGRES_ROUTES`` as ``sandbox env`` exports it) holding
the users Vault's seed names. Every assertion compares what the clusters, the cloud and PostgreSQL
accept with what Vault holds, read with the test's own root token.

The module has its own sandbox (the ``synced`` fixture of test_rotation_on_sandbox, module-scoped).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sandbox_e2e.conftest import CatalogSandbox
from tests.sandbox_e2e.test_rotation_on_sandbox import (
    _assert_never_written,
    _aws,
    _secret,
    _vault_data,
    _version,
    synced,
)
from vaultflow.gitops.catalog.model import PostgresCredential
from vaultflow.sandbox import lifecycle
from vaultflow.sandbox.openbao import free_port
from vaultflow.sandbox.postgres import sandbox_postgres_dir
from vaultflow.steps.credentials import Credential, CredentialError
from vaultflow.steps.credentials.postgres import PostgresEndpoint, PostgresSingleUser
from vaultflow.steps.rotation.credential import read_staged
from vaultflow.steps.vault.api import VaultApi

__all__ = ["synced"]  # the module's own sandbox, delivered and synced
PATH = "prod/database"
KV = "secret"


@pytest.fixture
def environment(synced: CatalogSandbox) -> Iterator[dict[str, str]]:
    """This process pointed at the sandbox as ``eval "$(vaultflow sandbox env)"`` does."""
    env = lifecycle.environment(synced.state)
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        yield env


def _spec(sandbox: CatalogSandbox) -> PostgresCredential:
    secret = next(s for s in sandbox.loaded.catalog.secrets if s.path == PATH)
    assert secret.rotation is not None and secret.rotation.credential is not None
    return secret.rotation.credential


def _logs_in(sandbox: CatalogSandbox, credential: Credential) -> bool:
    """A client logging in as the catalog names the server (its host name, verify-full), routed."""
    endpoint = PostgresEndpoint.from_catalog(_spec(sandbox), {})
    try:
        PostgresSingleUser(endpoint, credential).test(credential)
    except CredentialError:
        return False
    return True


def _credential(data: dict[str, str]) -> Credential:
    return Credential(data["username"], data["password"])


def _postgres_log(sandbox: CatalogSandbox) -> str:
    return (sandbox_postgres_dir(Path(sandbox.state.directory)) / "postgres.log").read_text(errors="replace")


def _rotate(sandbox: CatalogSandbox, tmp_path: Path, *args: str, **env: str) -> tuple[int, str, str]:
    command = [
        sys.executable,
        "-m",
        "vaultflow",
        "rotate",
        "--catalog",
        str(env.pop("catalog", "") or sandbox.loaded.source),
        "--run-dir",
        str(tmp_path / "runs"),
        "--quiet",
        "--output",
        "json",
        *args,
    ]
    environment = {**os.environ, **lifecycle.environment(sandbox.state), "COLUMNS": "200", **env}
    done = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=600, check=False)
    return done.returncode, done.stdout, done.stderr


def _agree_everywhere(sandbox: CatalogSandbox) -> dict[str, str]:
    """Both clusters' Secrets and the AWS copy hold what Vault holds, and PostgreSQL accepts it."""
    held = _vault_data(sandbox, PATH)
    for cluster in ("prod-eu", "prod-us"):
        assert _secret(sandbox, cluster, "production", "db-secret") == held
    assert json.loads(_aws(sandbox, "/prod/rds/db-credentials")) == held
    consumer = _credential(_secret(sandbox, "prod-eu", "production", "db-secret"))
    assert _logs_in(sandbox, consumer)  # what the consuming Secret holds logs in
    return held


def test_alternating_users_agree_everywhere_and_never_refuse_the_previous_login(
    synced: CatalogSandbox, environment: dict[str, str], tmp_path: Path
) -> None:
    sandbox = synced
    previous = _credential(_vault_data(sandbox, PATH))
    assert _logs_in(sandbox, previous)
    refusals: list[int] = []
    stop = threading.Event()

    def poll() -> None:
        """A consumer that keeps the credential it read before the rotation, logging in again and again."""
        while True:
            ended = stop.is_set()
            if not _logs_in(sandbox, previous):
                refusals.append(1)
            if ended:
                return

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        code, stdout, stderr = _rotate(sandbox, tmp_path, PATH)
    finally:
        stop.set()
        poller.join()
    assert code == 0, stdout + stderr
    [entry] = json.loads(stdout)["secrets"]
    assert entry["outcome"] == "Rotated"
    assert [(s["name"], s["phase"]) for s in entry["steps"]] == [
        ("stage", "Done"),
        ("set", "Done"),
        ("test", "Done"),
        ("finish", "Done"),
    ]
    assert all(s["seconds"] >= 0 for s in entry["steps"])
    new = _agree_everywhere(sandbox)
    assert new["username"] == previous.username + "_clone" and new["password"] != previous.password
    assert refusals == []  # not one refused login with the previous credential during the rotation
    assert _logs_in(sandbox, previous)  # ... nor after it: it works until the next rotation
    assert (
        read_staged(
            VaultApi(sandbox.state.vault_addr, token=sandbox.vault.token, ca_cert=sandbox.state.ca_file),
            KV,
            PATH,
        )
        is None
    )
    _assert_never_written(
        sandbox,
        [previous.password, new["password"]],
        stdout,
        stderr,
        _postgres_log(sandbox),  # log_statement = all: PostgreSQL saw verifiers only
        roots=(tmp_path,),
    )


def test_postgres_unreachable_during_set_promotes_nothing_and_the_next_run_resumes(
    synced: CatalogSandbox, environment: dict[str, str], tmp_path: Path
) -> None:
    sandbox = synced
    spec = _spec(sandbox)
    before, held = _version(sandbox, PATH), _vault_data(sandbox, PATH)
    dead = f"{spec.host}:{spec.port}=127.0.0.1:{free_port()}"  # the database's address answers nothing
    code, stdout, stderr = _rotate(sandbox, tmp_path / "down", PATH, VAULTFLOW_POSTGRES_ROUTES=dead)
    assert code == 1, stdout + stderr
    [entry] = json.loads(stdout)["secrets"]
    assert entry["outcome"] == "Failed" and entry["newVersion"] is None
    assert "\n" not in entry["message"]
    assert entry["message"].startswith(f"{PATH}: set failed, nothing was promoted: postgres {spec.host}:")
    assert [(s["name"], s["phase"]) for s in entry["steps"]] == [("stage", "Done"), ("set", "Failed")]
    assert _version(sandbox, PATH) == before and _vault_data(sandbox, PATH) == held
    assert _agree_everywhere(sandbox) == held  # the consumers keep working
    staged = read_staged(
        VaultApi(sandbox.state.vault_addr, token=sandbox.vault.token, ca_cert=sandbox.state.ca_file), KV, PATH
    )
    assert staged is not None and staged.state == "staged"

    code, stdout, again = _rotate(sandbox, tmp_path / "resumed", PATH)  # the database is back
    assert code == 0, stdout + again
    [entry] = json.loads(stdout)["secrets"]
    assert [(s["name"], s["phase"]) for s in entry["steps"]] == [
        ("stage", "Resumed"),
        ("set", "Done"),
        ("test", "Done"),
        ("finish", "Done"),
    ]
    new = _agree_everywhere(sandbox)
    assert new["password"] == staged.data["password"]  # no second password was generated
    assert _logs_in(sandbox, _credential(held))  # alternating users: the previous one still logs in
    _assert_never_written(
        sandbox,
        [held["password"], new["password"]],
        stdout,
        stderr,
        again,
        _postgres_log(sandbox),
        roots=(tmp_path,),
    )


def test_single_user_agrees_everywhere_and_only_the_new_password_logs_in(
    synced: CatalogSandbox, environment: dict[str, str], tmp_path: Path
) -> None:
    sandbox = synced
    text = Path(sandbox.loaded.source).read_text()  # it names no file relative to itself
    assert text.count("strategy: alternating-users") == 1
    single = tmp_path / "catalog.yaml"
    single.write_text(text.replace("strategy: alternating-users", "strategy: single-user"))
    previous = _credential(_vault_data(sandbox, PATH))
    code, stdout, stderr = _rotate(sandbox, tmp_path, PATH, catalog=str(single))
    assert code == 0, stdout + stderr
    [entry] = json.loads(stdout)["secrets"]
    assert entry["outcome"] == "Rotated"
    new = _agree_everywhere(sandbox)
    assert new["username"] == previous.username and new["password"] != previous.password
    assert not _logs_in(sandbox, previous)  # single user: the old password is gone
    _assert_never_written(
        sandbox,
        [previous.password, new["password"]],
        stdout,
        stderr,
        _postgres_log(sandbox),
        roots=(tmp_path,),
    )
