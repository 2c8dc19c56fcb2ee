"""A rotation's ``credential`` block: where the new password is set and tested before consumers see it."""

from __future__ import annotations

import json
import textwrap

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from tests.gitops.test_catalog import HEADER, line_of, parse, problems
from vaultflow.cli import app
from vaultflow.gitops.catalog.model import AdminSecretRef, PostgresCredential, SecretKeyValue

ADMIN = """\
secrets:
  - path: prod/database-admin
    keys:
      - {name: username, generator: {type: static}}
      - {name: password, generator: {type: static}}
"""


def database(credential: str, keys: str = "", admin: str = ADMIN) -> str:
    """A catalog body whose prod/database rotates with ``credential`` (YAML, indented under it)."""
    keys = keys or (
        "      - {name: username, generator: {type: static}}\n"
        "      - {name: password, generator: {type: password}}\n"
        "      - {name: host, generator: {type: static}}\n"
    )
    return (
        admin
        + "  - path: prod/database\n"
        + "    keys:\n"
        + keys
        + "    rotation:\n"
        + "      schedule: '0 3 * * 0'\n"
        + "      credential:\n"
        + textwrap.indent(textwrap.dedent(credential), "        ")
    )


ALTERNATING = """\
type: postgres
strategy: alternating-users
host: {key: host}
port: 5433
database: app
usernameKey: username
passwordKey: password
admin: {path: prod/database-admin}
"""


def test_the_issue_example_loads_with_its_values() -> None:
    loaded = parse(database(ALTERNATING))
    secret = next(s for s in loaded.catalog.secrets if s.path == "prod/database")
    assert secret.rotation is not None
    credential = secret.rotation.credential
    assert credential == PostgresCredential.model_validate(
        {
            "type": "postgres",
            "strategy": "alternating-users",
            "host": {"key": "host"},
            "port": 5433,
            "database": "app",
            "admin": {"path": "prod/database-admin"},
        }
    )
    assert credential is not None
    assert credential.host == SecretKeyValue(key="host")
    assert credential.admin == AdminSecretRef(path="prod/database-admin")
    assert credential.sslmode == "verify-full"  # TLS with verification unless the catalog says otherwise


def test_single_user_with_a_literal_host_needs_no_admin() -> None:
    loaded = parse(
        database(
            "type: postgres\nstrategy: single-user\nhost: db.internal\ndatabase: app\n", admin="secrets:\n"
        )
    )
    credential = loaded.catalog.secrets[0].rotation.credential  # type: ignore[union-attr]
    assert credential is not None
    assert (credential.host, credential.port, credential.admin) == ("db.internal", 5432, None)


def test_alternating_users_without_admin_is_refused_at_the_strategy_line() -> None:
    body = database(ALTERNATING.replace("admin: {path: prod/database-admin}\n", ""))
    line = line_of(body, "strategy: alternating-users")
    assert problems(body) == [
        f"catalog.yaml:{line}:19: secrets[1].rotation.credential.strategy: alternating-users needs 'admin': "
        "the Vault path of a user that may CREATE and ALTER ROLE (the pipeline sets the other user's "
        "password as that user)"
    ]


@pytest.mark.parametrize(
    ("change", "needle", "field", "words"),
    [
        (
            ("usernameKey: username", "usernameKey: user"),
            "usernameKey: user",
            "usernameKey",
            "'user' (the username) is not a key of secret 'prod/database'",
        ),
        (
            ("passwordKey: password", "passwordKey: pass"),
            "passwordKey: pass",
            "passwordKey",
            "'pass' (the password) is not a key",
        ),
        (
            ("passwordKey: password", "passwordKey: host"),
            "passwordKey: host",
            "passwordKey",
            "key 'host' is static",
        ),
        (
            ("passwordKey: password", "passwordKey: username"),
            "passwordKey: username",
            "passwordKey",
            "must be different keys",
        ),
        (
            ("host: {key: host}", "host: {key: hostname}"),
            "host: {key: hostname}",
            "host.key",
            "'hostname' (the host) is not a key",
        ),
        (("prod/database-admin}", "prod/database}"), "admin: {path", "admin.path", "must be another secret"),
        (
            ("database: app\n", "database: app\nsslmode: disable\n"),
            "sslmode: disable",
            "sslmode",
            "accepted only for a loopback host",
        ),
        (
            ("type: postgres", "type: mysql"),
            "type: mysql",
            "",
            "unknown type 'mysql': expected one of 'postgres'",
        ),
        (
            ("strategy: alternating-users", "strategy: alternating"),
            "strategy: alternating",
            "strategy",
            "'single-user' or 'alternating-users'",
        ),
        (("port: 5433", "port: 70000"), "port: 70000", "port", "less than or equal to 65535"),
        (
            ("database: app\n", "database: app\nsslMode: require\n"),
            "sslMode",
            "sslMode",
            "did you mean 'sslmode'?",
        ),
    ],
)
def test_each_credential_mistake_is_named_at_its_line(
    change: tuple[str, str], needle: str, field: str, words: str
) -> None:
    body = database(ALTERNATING.replace(*change))
    found = problems(body)
    assert len(found) == 1, found
    where = "secrets[1].rotation.credential" + (f".{field}" if field else "")
    assert found[0].startswith(f"catalog.yaml:{line_of(body, needle)}:"), found
    assert f": {where}: " in found[0], found
    assert words in found[0], found


def test_a_generated_username_is_refused() -> None:
    keys = (
        "      - {name: username, generator: {type: uuid}}\n"
        "      - {name: password, generator: {type: password}}\n"
        "      - {name: host, generator: {type: static}}\n"
    )
    [found] = problems(database(ALTERNATING, keys=keys))
    assert "secrets[1].rotation.credential.usernameKey: key 'username' is generated" in found


def test_admin_keys_are_checked_when_the_admin_secret_is_in_the_catalog() -> None:
    body = database(
        ALTERNATING.replace("{path: prod/database-admin}", "{path: prod/database-admin, passwordKey: pw}")
    )
    [found] = problems(body)
    assert "secrets[1].rotation.credential.admin.passwordKey: 'pw' (password) is not a key of secret" in found


def test_a_missing_credential_ca_file_is_reported() -> None:
    body = database(ALTERNATING + "caFile: certs/db-ca.pem\n")
    [found] = problems(body)
    assert "secrets[1].rotation.credential.caFile: CA file 'certs/db-ca.pem' not found" in found


def test_the_published_schema_describes_the_credential_block() -> None:
    result = CliRunner().invoke(app, ["catalog", "schema"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    credential = schema["$defs"]["PostgresCredential"]
    assert set(credential["required"]) == {"type", "strategy", "host", "database"}
    assert credential["properties"]["strategy"]["enum"] == ["single-user", "alternating-users"]
    validator = jsonschema.Draft202012Validator(schema)
    document = yaml.safe_load(HEADER + database(ALTERNATING))
    assert list(validator.iter_errors(document)) == []
    document["secrets"][1]["rotation"]["credential"]["sslMode"] = "require"
    error = jsonschema.exceptions.best_match(validator.iter_errors(document))
    assert error is not None
    assert "'sslMode' was unexpected" in error.message
