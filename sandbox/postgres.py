"""A real PostgreSQL server (Debian's ``postgresql`` package) for the sandbox and the tests.

It holds the database whose credential a rotation sets and tests
(steps/credentials/postgres). Like the real thing it refuses to run as root,
so when the sandbox runs as root the server runs as the ``postgres`` system
user (created by the Debian package; ``vaultflow-postgres`` is created with
``useradd`` when neither exists). It listens on 127.0.0.1 only, has no Unix
socket, and accepts only TLS connections with ``scram-sha-256`` password
authentication (``hostssl`` lines in ``pg_hba.conf``; anything else finds no
entry and is refused). Its certificate comes from the sandbox CA.

``log_statement = all`` is on: PostgreSQL's own log then proves that no
password ever reaches the server in clear text (the rotation sends SCRAM
verifiers), and tests scan ``log_path`` for the values.
"""

from __future__ import annotations

import grp
import hashlib
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from vaultflow.base.errors import OperationError
from vaultflow.sandbox.openbao import free_port
from vaultflow.sandbox.pki import CertificateAuthority
from vaultflow.sandbox.processes import process_alive
from vaultflow.steps.credentials.base import Credential, CredentialError

if TYPE_CHECKING:
    from vaultflow.gitops.catalog.model import Catalog
    from vaultflow.sandbox.state import PostgresSpec, SandboxState
    from vaultflow.steps.credentials.postgres import PostgresEndpoint  # psycopg loads only on demand
    from vaultflow.steps.vault.api import VaultApi

SUPERUSER = "postgres"
OUTSIDE_PREFIX = "vaultflow-sandbox-postgres-"  # a data directory outside DIR (see sandbox_postgres_dir)
OWNER_MARK = "sandbox-directory"  # in such a directory: the DIR it belongs to
SERVICE_USERS = ("postgres", "vaultflow-postgres")
_HBA = """\
# vaultflow sandbox: TLS and SCRAM only, loopback only; anything else matches no line and is refused.
hostssl all all 127.0.0.1/32 scram-sha-256
hostssl all all ::1/128 scram-sha-256
"""


def postgres_bin_dir() -> Path:
    """The directory of ``initdb`` and ``postgres``: ``VAULTFLOW_POSTGRES_BIN``, else Debian's newest."""
    configured = os.environ.get("VAULTFLOW_POSTGRES_BIN")
    candidates = [Path(configured)] if configured else []
    candidates += sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )[::-1]
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for directory in candidates:
        if (directory / "initdb").is_file() and (directory / "postgres").is_file():
            return directory
    raise OperationError(
        "PostgreSQL server binaries not found: install Debian's postgresql package "
        "(apt-get install postgresql)"
    )


def service_user() -> str | None:
    """The user the server runs as: None when we are not root, else a system user (created if missing)."""
    if os.geteuid() != 0:
        return None
    for name in SERVICE_USERS:
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    name = SERVICE_USERS[-1]
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        check=True,
        capture_output=True,
    )
    return name


def _reachable_by(user: str, directory: Path) -> bool:
    """Every parent of ``directory`` lets ``user`` pass (search permission), as the server needs."""
    account = pwd.getpwnam(user)
    groups = {account.pw_gid, *(g.gr_gid for g in grp.getgrall() if user in g.gr_mem)}
    for parent in directory.parents:
        if not parent.exists():
            continue  # created later, searchable by all (mkdir's default mode)
        status = parent.stat()
        if status.st_uid == account.pw_uid:
            allowed = status.st_mode & 0o100
        elif status.st_gid in groups:
            allowed = status.st_mode & 0o010
        else:
            allowed = status.st_mode & 0o001
        if not allowed:
            return False
    return True


@dataclass
class PostgresServer:
    """One ``postgres`` process with its data, TLS material and log under ``base_dir``."""

    base_dir: Path
    authority: CertificateAuthority
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    names: tuple[str, ...] = ()  # host names its certificate holds beside 127.0.0.1 and localhost
    _superuser_password: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def log_path(self) -> Path:
        return self.base_dir / "postgres.log"

    @property
    def ca_file(self) -> Path:
        """The sandbox CA's certificate: what a client gives as ``sslrootcert`` (``verify-full``)."""
        return self.base_dir / "ca.crt"

    def superuser(self) -> Credential:
        return Credential(SUPERUSER, self._superuser_password)

    def endpoint(self, database: str = "postgres") -> PostgresEndpoint:
        from vaultflow.steps.credentials.postgres import PostgresEndpoint

        return PostgresEndpoint(self.host, self.port, database, "verify-full", self.ca_file)

    def start(self, timeout: float = 60.0) -> PostgresServer:
        self.base_dir = self.base_dir.absolute()
        user = service_user()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if user is not None and not _reachable_by(user, self.base_dir):
            raise OperationError(
                f"{self.base_dir}: user {user!r} (PostgreSQL refuses to run as root) cannot reach this "
                "directory: a parent is not searchable by it; use a directory such as /tmp/<name>"
            )
        self._write_files(user)
        if not (self.data_dir / "PG_VERSION").is_file():
            self._initdb(user)
        self._launch(user)
        self._wait_ready(timeout)
        return self

    def _write_files(self, user: str | None) -> None:
        certificate = self.authority.issue_server_certificate(("127.0.0.1", "localhost", *self.names))
        self.ca_file.write_text(self.authority.certificate_pem)
        (self.base_dir / "server.crt").write_text(certificate.certificate_pem)
        key = self.base_dir / "server.key"
        key.write_text(certificate.key_pem)
        key.chmod(0o600)  # PostgreSQL refuses a key others can read
        password_file = self.base_dir / "superuser.password"
        if password_file.is_file():
            self._superuser_password = password_file.read_text().strip()
        else:
            descriptor = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(self._superuser_password + "\n")
        self.base_dir.chmod(0o700)
        if user is not None:
            for path in [self.base_dir, *self.base_dir.iterdir()]:
                shutil.chown(path, user, pwd.getpwnam(user).pw_gid)

    def _initdb(self, user: str | None) -> None:
        result = subprocess.run(
            [
                str(postgres_bin_dir() / "initdb"),
                f"--pgdata={self.data_dir}",
                f"--username={SUPERUSER}",
                f"--pwfile={self.base_dir / 'superuser.password'}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",  # a sandbox: its data is thrown away with it
            ],
            capture_output=True,
            text=True,
            check=False,
            cwd=self.base_dir,
            env=self._environment(),
            user=user,
            group=None if user is None else pwd.getpwnam(user).pw_gid,
            extra_groups=None if user is None else [],
        )
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise OperationError(f"initdb failed in {self.data_dir}: {last}")
        (self.data_dir / "pg_hba.conf").write_text(_HBA)

    def _environment(self) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.base_dir), "LC_ALL": "C"}

    def _launch(self, user: str | None) -> None:
        settings = {
            "listen_addresses": self.host,
            "port": str(self.port),
            "unix_socket_directories": "",
            "ssl": "on",
            "ssl_cert_file": str(self.base_dir / "server.crt"),
            "ssl_key_file": str(self.base_dir / "server.key"),
            "password_encryption": "scram-sha-256",
            "log_statement": "all",
            "log_connections": "on",
            "log_destination": "stderr",
            "logging_collector": "off",
            "max_connections": "50",
        }
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(postgres_bin_dir() / "postgres"), "-D", str(self.data_dir)]
            + [item for name, value in settings.items() for item in ("-c", f"{name}={value}")],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=self.base_dir,
            env=self._environment(),
            user=user,
            group=None if user is None else pwd.getpwnam(user).pw_gid,
            extra_groups=None if user is None else [],
        )
        log.close()

    def _wait_ready(self, timeout: float) -> None:
        from vaultflow.steps.credentials.postgres import PostgresSingleUser

        assert self.process is not None
        deadline = time.monotonic() + timeout
        checker = PostgresSingleUser(self.endpoint(), self.superuser())
        while True:
            if self.process.poll() is not None:
                raise OperationError(
                    f"postgres exited with code {self.process.returncode}; see {self.log_path}"
                )
            try:
                checker.test(self.superuser())
                return
            except CredentialError as error:
                if time.monotonic() > deadline:
                    raise OperationError(
                        f"postgres did not accept logins within {timeout:.0f}s: {error}"
                    ) from None
            time.sleep(0.1)

    def execute(self, statement: str, database: str = "postgres") -> None:
        """Run ``statement`` as the superuser (setting up users and grants)."""
        from vaultflow.steps.credentials.postgres import connect

        with connect(self.endpoint(database), self.superuser()) as connection:
            connection.execute(statement.encode())

    def create_user(self, credential: Credential, *, createrole: bool = False) -> None:
        """A login role with ``credential``'s password, sent as a SCRAM verifier (never in the log)."""
        from psycopg import sql

        from vaultflow.steps.credentials.postgres import connect, scram_verifier

        with connect(self.endpoint(), self.superuser()) as connection:
            verifier = scram_verifier(connection, credential)
            connection.execute(
                sql.SQL("CREATE ROLE {} LOGIN {} PASSWORD {}").format(
                    sql.Identifier(credential.username),
                    sql.SQL("CREATEROLE" if createrole else "NOCREATEROLE"),
                    sql.Literal(verifier),
                )
            )

    def provision(self, database: str, owner: Credential, admin: Credential) -> None:
        """The example catalog's ``prod/database``: a database owned by its user, and an admin that may
        ``CREATE``/``ALTER ROLE`` it (``CREATEROLE``, plus ``ADMIN OPTION`` on the user, which
        PostgreSQL 16 and later require to alter a role)."""
        self.create_user(owner)
        self.create_user(admin, createrole=True)
        self.execute(f'GRANT "{owner.username}" TO "{admin.username}" WITH ADMIN OPTION')
        self.execute(f'CREATE DATABASE "{database}" OWNER "{owner.username}"')

    def stop(self, timeout: float = 20.0) -> None:
        """Fast shutdown (SIGINT): open sessions are ended, as a database restart ends them."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)


# --- the sandbox's server ---------------------------------------------------------------------------

SANDBOX_USER = "app"  # the owner of the catalog's database, whose credential the catalog's secret holds
SANDBOX_ADMIN = "vaultflow_admin"  # CREATEROLE + ADMIN OPTION: what alternating users log in as
POSTGRES_PID = "postgres.pid"  # in the sandbox's run directory
CREDENTIALS_FILE = "sandbox-credentials.json"  # the users' first passwords (0600): what seeds Vault


def postgres_spec(catalog: Catalog) -> PostgresSpec | None:
    """What the sandbox's server holds for ``catalog``: its first secret whose rotation names a
    postgres credential (None when none does). A host read from a key of the secret (``{key: ...}``)
    is not known before Vault holds it: the sandbox then names its server ``localhost``."""
    from vaultflow.sandbox.state import PostgresSpec

    for secret in catalog.secrets:
        credential = secret.rotation.credential if secret.rotation is not None else None
        if credential is None or credential.type != "postgres":
            continue
        admin = credential.admin
        return PostgresSpec(
            host=credential.host if isinstance(credential.host, str) else "localhost",
            port=credential.port,
            database=credential.database,
            user=SANDBOX_USER,
            admin_user=SANDBOX_ADMIN,
            secret_path=secret.path,
            admin_path=admin.path if admin is not None else "",
            username_key=credential.username_key,
            password_key=credential.password_key,
            admin_username_key=admin.username_key if admin is not None else "username",
            admin_password_key=admin.password_key if admin is not None else "password",
        )
    return None


def sandbox_postgres_dir(root: Path) -> Path:
    """Where a sandbox's server keeps its data: ``DIR/postgres`` when the user it runs as may reach it,
    else a directory of its own under the system's temporary directory, named after ``DIR`` (the same
    at every start, so its data survives ``down``/``up``; ``down --purge`` removes it)."""
    root = root.absolute()
    user = service_user()
    if user is None or _reachable_by(user, root / "postgres"):
        return root / "postgres"
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"{OUTSIDE_PREFIX}{digest}"


def claim_postgres_dir(root: Path) -> Path:
    """``sandbox_postgres_dir(root)``, marked with ``root`` when it lies outside it, after removing
    the directories outside that no sandbox owns any more.

    A sandbox directory deleted without ``down --purge`` (``rm -rf``, a test's temporary directory)
    would otherwise leave its database behind in the temporary directory for good: the mark names
    the sandbox directory, and a directory whose sandbox is gone and whose server is not running is
    removed at the next start of any sandbox's PostgreSQL.
    """
    base = sandbox_postgres_dir(root)
    if base.is_relative_to(root.absolute()):
        return base
    sweep_orphaned_postgres_dirs(base.parent)
    base.mkdir(parents=True, exist_ok=True)
    (base / OWNER_MARK).write_text(f"{root.absolute()}\n")
    return base


def sweep_orphaned_postgres_dirs(parent: Path) -> list[Path]:
    """Remove the sandbox PostgreSQL directories in ``parent`` whose marked sandbox directory no
    longer exists and whose server does not run; the ones removed. Unmarked ones are left alone."""
    removed = []
    for base in sorted(parent.glob(f"{OUTSIDE_PREFIX}*")):
        mark = base / OWNER_MARK
        if not mark.is_file() or Path(mark.read_text().strip()).exists() or _server_running(base):
            continue
        shutil.rmtree(base, ignore_errors=True)
        removed.append(base)
    return removed


def _server_running(base: Path) -> bool:
    """Whether ``postmaster.pid`` under ``base`` names a live process (its first line is the pid)."""
    try:
        first = (base / "data" / "postmaster.pid").read_text().split("\n", 1)[0].strip()
    except OSError:
        return False
    return first.isdigit() and process_alive(int(first))


def ensure_provisioned(server: PostgresServer, spec: PostgresSpec) -> None:
    """The database and users ``spec`` names, created once (idempotent): roles that exist are left as
    they are (a rotation may have changed their passwords since)."""
    passwords = _sandbox_passwords(server.base_dir, spec)
    _provision(
        server,
        spec,
        Credential(spec.user, passwords[spec.user]),
        Credential(spec.admin_user, passwords[spec.admin_user]),
        reset=False,
    )


def adopt(state: SandboxState, user: Credential, admin: Credential) -> None:
    """Make the sandbox's server accept exactly these logins, as its DBA would: ``user`` owns the
    database, ``admin`` may ``ALTER ROLE`` it (the credentials a test seeded in Vault)."""
    spec = state.spec.postgres
    if spec is None or not state.postgres:
        raise OperationError(f"the sandbox in {state.directory} runs no PostgreSQL")
    _provision(attached(state), spec, user, admin, reset=True)


def attached(state: SandboxState) -> PostgresServer:
    """The running sandbox's server, to administer (its superuser's password from its 0600 file)."""
    from vaultflow.sandbox.layout import SandboxPaths

    paths = SandboxPaths(Path(state.directory))
    server = PostgresServer(
        sandbox_postgres_dir(paths.root),
        CertificateAuthority.kept_in(paths.ca_file, paths.ca_key, "vaultflow sandbox CA"),
        port=int(state.postgres.rsplit(":", 1)[1]),
    )
    server._superuser_password = (server.base_dir / "superuser.password").read_text().strip()
    return server


def _provision(
    server: PostgresServer, spec: PostgresSpec, user: Credential, admin: Credential, *, reset: bool
) -> None:
    from psycopg import sql

    from vaultflow.steps.credentials.postgres import connect, scram_verifier

    with connect(server.endpoint(), server.superuser()) as connection:
        connection.execute("SET log_statement = 'none'")  # a superuser session: nothing logged at all
        for login, createrole in ((user, False), (admin, True)):
            exists = connection.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [login.username])
            if exists.fetchone() is not None and not reset:
                continue
            verb = "ALTER" if exists.rowcount else "CREATE"
            connection.execute(
                sql.SQL(verb + " ROLE {} LOGIN {} PASSWORD {}").format(
                    sql.Identifier(login.username),
                    sql.SQL("CREATEROLE" if createrole else "NOCREATEROLE"),
                    sql.Literal(scram_verifier(connection, login)),
                )
            )
        names = {"user": sql.Identifier(user.username), "admin": sql.Identifier(admin.username)}
        connection.execute(sql.SQL("GRANT {user} TO {admin} WITH ADMIN OPTION").format(**names))
        database = sql.Identifier(spec.database)
        found = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [spec.database])
        if found.fetchone() is None:
            connection.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(database, names["user"]))
        elif reset:
            connection.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(database, names["user"]))


def handover(vault: VaultApi, kv: str, state: SandboxState) -> list[str]:
    """Make Vault hold logins the sandbox's server accepts, where what it holds does not log in (the
    seed generated a password the database never saw): the admin's at ``admin_path``, the user's at
    ``secret_path``, each a new version with check-and-set (other keys kept). One line per path."""
    from vaultflow.steps.credentials.postgres import PostgresSingleUser
    from vaultflow.steps.rotation.write import read_metadata, read_version, write_with_cas

    spec = state.spec.postgres
    if spec is None or not state.postgres:
        return []
    server = attached(state)
    passwords = _sandbox_passwords(server.base_dir, spec)
    endpoint = server.endpoint(spec.database)
    lines = []
    for path, username_key, password_key, username in (
        (spec.admin_path, spec.admin_username_key, spec.admin_password_key, spec.admin_user),
        (spec.secret_path, spec.username_key, spec.password_key, spec.user),
    ):
        if not path:
            continue
        metadata = read_metadata(vault, kv, path)
        current = read_version(vault, kv, path, metadata.current_version) if metadata else {}
        held = Credential(str(current.get(username_key, "")), str(current.get(password_key, "")))
        try:
            PostgresSingleUser(endpoint, held).test(held)
            lines.append(f"{path}: PostgreSQL accepts the login Vault holds: kept")
            continue
        except CredentialError:
            pass
        data = {**current, username_key: username, password_key: passwords[username]}
        version = write_with_cas(vault, kv, path, data, metadata.current_version if metadata else 0)
        lines.append(f"{path}: a login the sandbox's PostgreSQL accepts, handed over to Vault (v{version})")
    return lines


def _sandbox_passwords(directory: Path, spec: PostgresSpec) -> dict[str, str]:
    """The users' first passwords, generated once and kept in ``CREDENTIALS_FILE`` (mode 0600)."""
    path = directory / CREDENTIALS_FILE
    kept: dict[str, str] = json.loads(path.read_text()) if path.is_file() else {}
    wanted = {user: kept.get(user) or secrets.token_urlsafe(24) for user in (spec.user, spec.admin_user)}
    if wanted != kept:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(wanted, handle)
    return wanted
