"""``vaultflow sandbox up --catalog`` with a postgres credential runs PostgreSQL; ``env`` exports its
address, ``status`` shows it, ``down`` stops it, ``up`` brings it back on its data, ``down --purge``
removes it (issue 16)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from typer.testing import CliRunner

from vaultflow.cli.sandbox import app
from vaultflow.gitops.catalog import load_catalog
from vaultflow.sandbox import lifecycle
from vaultflow.sandbox.postgres import CREDENTIALS_FILE, OWNER_MARK, postgres_spec, sandbox_postgres_dir
from vaultflow.sandbox.processes import port_is_listening
from vaultflow.steps.credentials import Credential, CredentialError
from vaultflow.steps.credentials.postgres import PostgresEndpoint, PostgresSingleUser

runner = CliRunner()


def _exports(directory: Path) -> dict[str, str]:
    result = runner.invoke(app, ["env", "--dir", str(directory)])
    assert result.exit_code == 0, result.output
    return dict(
        line.removeprefix("export ").split("=", 1)
        for line in result.output.splitlines()
        if line.startswith("export ")
    )


def _logs_in(repo_root: Path, exports: dict[str, str], credential: Credential) -> bool:
    """A login as the example catalog names the server, through what ``sandbox env`` exports."""
    loaded = load_catalog(repo_root / "examples" / "catalog.yaml")
    spec = next(s.rotation.credential for s in loaded.catalog.secrets if s.rotation and s.rotation.credential)
    saved = {key: os.environ.get(key) for key in exports}
    os.environ.update(exports)
    try:
        endpoint = PostgresEndpoint.from_catalog(spec, {})
        PostgresSingleUser(endpoint, credential).test(credential)
    except CredentialError:
        return False
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return True


def test_up_with_a_postgres_credential_runs_the_database_until_down(repo_root: Path, tmp_path: Path) -> None:
    catalog = repo_root / "examples" / "catalog.yaml"
    spec = postgres_spec(load_catalog(catalog).catalog)
    assert spec is not None and (spec.host, spec.port, spec.database) == (
        "postgres.prod.internal",
        5432,
        "app",
    )
    directory = tmp_path / "sbx"  # under pytest's private directories: the data goes to /tmp instead
    data = sandbox_postgres_dir(directory)
    try:
        result = runner.invoke(app, ["up", "--dir", str(directory), "--catalog", str(catalog)])
        assert result.exit_code == 0, result.output
        state = lifecycle.load_state(directory)
        assert state.spec.postgres == spec and state.postgres.startswith("127.0.0.1:")
        port = int(state.postgres.rsplit(":", 1)[1])
        status = runner.invoke(app, ["status", "--dir", str(directory), "--output", "json"])
        assert status.exit_code == 0, status.output
        [row] = [c for c in json.loads(status.output)["components"] if c["component"] == "postgresql"]
        assert (row["name"], row["endpoint"], row["state"]) == ("database app", state.postgres, "answering")
        exports = _exports(directory)
        assert exports["VAULTFLOW_POSTGRES_ROUTES"] == f"postgres.prod.internal:5432={state.postgres}"
        assert exports["PGSSLROOTCERT"] == state.ca_file
        passwords = json.loads((data / CREDENTIALS_FILE).read_text())
        assert (data / OWNER_MARK).read_text() == f"{directory.absolute()}\n"  # outside DIR: marked
        assert ((data / CREDENTIALS_FILE).stat().st_mode & 0o777) == 0o600
        app_login = Credential("app", passwords["app"])
        assert _logs_in(repo_root, exports, app_login)  # verify-full against the catalog's host name
        assert _logs_in(repo_root, exports, Credential("vaultflow_admin", passwords["vaultflow_admin"]))
        assert not _logs_in(repo_root, exports, Credential("app", "not-the-password"))

        lifecycle.down(directory)
        assert not port_is_listening(port)
        assert not (directory / "run" / "postgres.pid").exists()
        again = lifecycle.resume(directory)  # `vaultflow sandbox up` without options: the kept spec
        assert again.resumed and again.state.postgres == state.postgres  # its port again, its data kept
        assert _logs_in(repo_root, _exports(directory), app_login)
    finally:
        lifecycle.down(directory, purge=True)
    assert not data.exists() and not directory.exists()
