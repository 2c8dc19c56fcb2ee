"""PostgreSQL: set a rotated password with ``ALTER ROLE`` and test it with a login, over TLS.

The password never reaches PostgreSQL in clear text: libpq computes the
SCRAM-SHA-256 verifier client-side (``PQencryptPasswordConn``, psycopg's
``PGconn.encrypt_password``) and only the verifier is sent, so statement
logging (``log_statement = all``), ``pg_stat_statements`` or an error report
shows a salted hash, never the password. The session also turns statement
logging off where it may (``log_statement`` can only be changed by a superuser).

Two strategies, as in AWS Secrets Manager's rotation functions:

* single-user: log in as the user with its current password and change it.
* alternating-users: log in as an admin (``CREATEROLE``) and set the password of
  the user *not* in use: ``<user>`` and ``<user>_clone`` take turns. The clone is
  created when missing as a member of ``<user>`` (so it holds the same grants),
  and its sessions start with ``SET ROLE <user>`` (role setting ``role``), so that
  what it creates is owned by ``<user>`` just as when ``<user>`` logs in.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import psycopg
from psycopg import sql

from vaultflow.base.errors import InputError
from vaultflow.gitops.catalog.model import PostgresCredential
from vaultflow.steps.credentials.base import (
    Credential,
    CredentialChecker,
    CredentialError,
    CredentialRefused,
    CredentialUnreachable,
)

CLONE_SUFFIX = "_clone"
_MAX_IDENTIFIER = 63  # NAMEDATALEN - 1: PostgreSQL truncates longer role names
_AUTH_STATES = frozenset({"28P01", "28000"})  # invalid_password, invalid_authorization_specification
_LIBPQ_PREFIX = re.compile(r"^(connection failed: )?(connection to server at [^:]*? failed: )?(FATAL:\s+)?")


@dataclass(frozen=True)
class PostgresEndpoint:
    """Where the server is and how the connection is protected (libpq's ``sslmode``/``sslrootcert``)."""

    host: str
    port: int
    database: str
    sslmode: str = "verify-full"
    ca_file: Path | None = None
    connect_timeout: int = 5
    hostaddr: str | None = None  # the IP to connect to, ``host`` staying the name TLS verifies (a route)

    def describe(self) -> str:
        return f"postgres {self.host}:{self.port}/{self.database}"

    @classmethod
    def from_catalog(
        cls, spec: PostgresCredential, secret_data: Mapping[str, str], base_dir: Path | None = None
    ) -> PostgresEndpoint:
        """The endpoint ``spec`` names; ``host: {key: ...}`` is read from the secret's data."""
        if isinstance(spec.host, str):
            host = spec.host
        else:
            host = secret_data.get(spec.host.key, "")
            if not host:
                raise InputError(f"the secret has no value for key {spec.host.key!r}, the PostgreSQL host")
        ca_file = None
        if spec.ca_file is not None:
            ca_file = ((base_dir or Path.cwd()) / spec.ca_file).resolve()
        hostaddr, port = routed(host, spec.port)
        return cls(
            host=host,
            port=port,
            database=spec.database,
            sslmode=spec.sslmode,
            ca_file=ca_file,
            hostaddr=hostaddr,
        )


ROUTES_ENV = "VAULTFLOW_POSTGRES_ROUTES"


def routed(host: str, port: int) -> tuple[str | None, int]:
    """(the IP to connect to, the port) for the catalog's ``host:port``: ``(None, port)`` unless
    ``$VAULTFLOW_POSTGRES_ROUTES`` (``host:port=ip:port,...``, set by ``vaultflow sandbox env``) maps it.

    A route is libpq's ``hostaddr``: the connection goes to that address while TLS still verifies
    the server's certificate against ``host``, as when DNS resolves the name to it.
    """
    for entry in filter(None, (part.strip() for part in os.environ.get(ROUTES_ENV, "").split(","))):
        source, _, target = entry.partition("=")
        address, _, target_port = target.rpartition(":")
        if not source or not address or not target_port.isdigit():
            raise InputError(f"{ROUTES_ENV}: {entry!r} is not host:port=ip:port")
        if source == f"{host}:{port}":
            return address, int(target_port)
    return None, port


def _reason(error: psycopg.Error, secret: str) -> str:
    """libpq's first line without its boilerplate; any occurrence of ``secret`` masked all the same."""
    first = (str(error).strip().splitlines() or [type(error).__name__])[0]
    reason = _LIBPQ_PREFIX.sub("", first).strip() or type(error).__name__
    return reason.replace(secret, "***") if secret else reason


def _is_auth_failure(error: psycopg.Error) -> bool:
    if error.sqlstate in _AUTH_STATES:
        return True
    text = str(error)
    return "password authentication failed" in text or "no pg_hba.conf entry" in text


@contextmanager
def connect(
    endpoint: PostgresEndpoint, credential: Credential
) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """An autocommit session as ``credential``; one clear ``CredentialError`` line when it cannot open."""
    try:
        connection = psycopg.connect(
            host=endpoint.host,
            port=endpoint.port,
            dbname=endpoint.database,
            user=credential.username,
            password=credential.password,
            connect_timeout=endpoint.connect_timeout,
            autocommit=True,
            application_name="vaultflow-rotation",
            sslmode=endpoint.sslmode,
            sslrootcert=None if endpoint.ca_file is None else str(endpoint.ca_file),  # None: left out
            hostaddr=endpoint.hostaddr,
        )
    except psycopg.OperationalError as error:
        reason = _reason(error, credential.password)
        if _is_auth_failure(error):
            raise CredentialRefused(
                f"{endpoint.describe()}: login as {credential.username!r} refused: {reason}"
            ) from None
        raise CredentialUnreachable(f"{endpoint.describe()}: cannot connect: {reason}") from None
    with connection:
        yield connection


def scram_verifier(connection: psycopg.Connection[tuple[object, ...]], credential: Credential) -> str:
    """The SCRAM-SHA-256 verifier of ``credential``, computed by libpq on this machine (random salt)."""
    verifier = connection.pgconn.encrypt_password(
        credential.password.encode(), credential.username.encode(), b"scram-sha-256"
    )
    return verifier.decode()


def _quiet(connection: psycopg.Connection[tuple[object, ...]]) -> None:
    """Turn statement logging off for this session where allowed (superusers only); harmless otherwise."""
    with suppress(psycopg.errors.InsufficientPrivilege):  # then a log line can show the verifier only
        connection.execute("SET log_statement = 'none'")


def _apply(
    endpoint: PostgresEndpoint,
    connection: psycopg.Connection[tuple[object, ...]],
    statement: sql.Composed,
    what: str,
) -> None:
    try:
        connection.execute(statement)
    except psycopg.Error as error:
        raise CredentialError(f"{endpoint.describe()}: {what} failed: {_reason(error, '')}") from None


def _set_password(
    endpoint: PostgresEndpoint,
    connection: psycopg.Connection[tuple[object, ...]],
    role: sql.Composable,
    new: Credential,
) -> None:
    _quiet(connection)
    # A <user>_clone session starts as its primary (its ``role`` setting): back to the login itself,
    # so that CURRENT_USER is the clone and a password it may change is its own.
    connection.execute("SET ROLE NONE")
    statement = sql.SQL("ALTER ROLE {} PASSWORD {}").format(
        role, sql.Literal(scram_verifier(connection, new))
    )
    _apply(endpoint, connection, statement, f"setting the password of {new.username!r}")


class _PostgresChecker(CredentialChecker):
    kind: ClassVar[str] = "postgres"

    def __init__(self, endpoint: PostgresEndpoint) -> None:
        self.endpoint = endpoint

    def test(self, credential: Credential) -> None:
        with connect(self.endpoint, credential) as connection:
            try:
                row = connection.execute("SELECT 1").fetchone()
            except psycopg.Error as error:
                raise CredentialError(
                    f"{self.endpoint.describe()}: test query as {credential.username!r} failed: "
                    f"{_reason(error, credential.password)}"
                ) from None
        if row != (1,):
            raise CredentialError(f"{self.endpoint.describe()}: test query returned {row!r}, not (1,)")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.endpoint.describe()})"


class PostgresSingleUser(_PostgresChecker):
    """One user changes its own password, logged in with its current one.

    ``admin`` (optional) is used only by ``restore`` when the user can log in with
    neither password (someone changed it behind the pipeline's back).
    """

    def __init__(
        self, endpoint: PostgresEndpoint, current: Credential, admin: Credential | None = None
    ) -> None:
        super().__init__(endpoint)
        self._current = current
        self._admin = admin

    def next_credential(self, current: Credential, password: str) -> Credential:
        return Credential(current.username, password)

    def set(self, new: Credential) -> None:
        if new.username != self._current.username:
            raise InputError(
                f"single-user rotation of {self._current.username!r} cannot set {new.username!r}"
            )
        try:
            with connect(self.endpoint, self._current) as connection:
                _set_password(self.endpoint, connection, sql.SQL("CURRENT_USER"), new)
        except CredentialRefused:
            self.test(new)  # a retried step: the new password is in place already (else this raises)

    def restore(self, old: Credential, new: Credential) -> None:
        for login in (new, self._admin):
            if login is None:
                continue
            try:
                with connect(self.endpoint, login) as connection:
                    _set_password(self.endpoint, connection, sql.Identifier(old.username), old)
                return
            except CredentialRefused:
                continue
        try:
            self.test(old)  # restored already (a retried step)
        except CredentialRefused:
            raise CredentialRefused(
                f"{self.endpoint.describe()}: cannot restore the password of {old.username!r}: neither the "
                "new nor the old password logs in" + ("" if self._admin else ", and no admin is configured")
            ) from None


def clone_of(username: str) -> str:
    return username + CLONE_SUFFIX


def primary_of(username: str) -> str:
    return username.removesuffix(CLONE_SUFFIX)


class PostgresAlternatingUsers(_PostgresChecker):
    """``<user>`` and ``<user>_clone`` take turns; the admin sets the one not in use."""

    def __init__(self, endpoint: PostgresEndpoint, admin: Credential) -> None:
        super().__init__(endpoint)
        self._admin = admin

    def next_credential(self, current: Credential, password: str) -> Credential:
        if current.username.endswith(CLONE_SUFFIX):
            return Credential(primary_of(current.username), password)
        if len(clone_of(current.username)) > _MAX_IDENTIFIER:
            clone = clone_of(current.username)
            raise InputError(
                f"user {current.username!r} is too long for alternating users: {clone!r} would exceed "
                f"PostgreSQL's {_MAX_IDENTIFIER} characters"
            )
        return Credential(clone_of(current.username), password)

    def set(self, new: Credential) -> None:
        with connect(self.endpoint, self._admin) as connection:
            if new.username.endswith(CLONE_SUFFIX):
                self._ensure_clone(connection, new.username)
            _set_password(self.endpoint, connection, sql.Identifier(new.username), new)

    def _ensure_clone(self, connection: psycopg.Connection[tuple[object, ...]], clone: str) -> None:
        """``clone`` exists, may log in, is a member of its primary and acts as it (idempotent)."""
        primary = primary_of(clone)
        exists = connection.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [clone]).fetchone()
        names = {"clone": sql.Identifier(clone), "primary": sql.Identifier(primary)}
        if exists is None:
            statement = sql.SQL("CREATE ROLE {clone} LOGIN IN ROLE {primary}").format(**names)
            _apply(self.endpoint, connection, statement, f"creating {clone!r}")
        else:
            _apply(self.endpoint, connection, sql.SQL("ALTER ROLE {clone} LOGIN").format(**names), "login")
            member = connection.execute("SELECT pg_has_role(%s, %s, 'MEMBER')", [clone, primary]).fetchone()
            if member != (True,):
                statement = sql.SQL("GRANT {primary} TO {clone}").format(**names)
                _apply(self.endpoint, connection, statement, f"granting {primary!r} to {clone!r}")
        statement = sql.SQL("ALTER ROLE {clone} SET role = {role}").format(
            clone=names["clone"], role=sql.Literal(primary)
        )
        _apply(self.endpoint, connection, statement, f"making {clone!r} act as {primary!r}")

    def restore(self, old: Credential, new: Credential) -> None:
        """Nothing to undo: the user of ``old`` was never changed, and ``new`` is simply not promoted."""


def checker_for(
    spec: PostgresCredential,
    secret_data: Mapping[str, str],
    *,
    admin: Credential | None = None,
    base_dir: Path | None = None,
) -> CredentialChecker:
    """The checker of ``spec``'s strategy, for the secret whose current data is ``secret_data``."""
    endpoint = PostgresEndpoint.from_catalog(spec, secret_data, base_dir)
    if spec.strategy == "alternating-users":
        if admin is None:
            raise InputError("alternating-users needs the admin credential (rotation.credential.admin)")
        return PostgresAlternatingUsers(endpoint, admin)
    current = Credential(secret_data.get(spec.username_key, ""), secret_data.get(spec.password_key, ""))
    return PostgresSingleUser(endpoint, current, admin)
