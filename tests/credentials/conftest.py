"""One real PostgreSQL server per test session (per xdist worker), TLS with the sandbox CA."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from vaultflow.sandbox.pki import CertificateAuthority
from vaultflow.sandbox.postgres import PostgresServer
from vaultflow.steps.credentials import Credential
from vaultflow.steps.credentials.postgres import PostgresEndpoint

DATABASE = "app"


def new_password() -> str:
    return "pw-" + secrets.token_urlsafe(18)


@dataclass
class SandboxPostgres:
    """The server, its database ``app`` and an admin (``CREATEROLE``) that alternating users log in as."""

    server: PostgresServer
    admin: Credential

    @property
    def endpoint(self) -> PostgresEndpoint:
        return self.server.endpoint(DATABASE)

    def new_user(self, prefix: str) -> Credential:
        """A login role of its own for one test, with ``CONNECT`` on ``app`` and the admin's ADMIN OPTION."""
        user = Credential(f"{prefix}_{secrets.token_hex(3)}", new_password())
        self.server.create_user(user)
        self.server.execute(f'GRANT "{user.username}" TO "{self.admin.username}" WITH ADMIN OPTION')
        return user

    def log_text(self) -> str:
        return self.server.log_path.read_text(errors="replace")


@pytest.fixture(scope="session")
def postgres() -> Iterator[SandboxPostgres]:
    # Not pytest's tmp_path: its parents are private to root, and the server runs as a system user.
    base = Path(tempfile.mkdtemp(prefix="vaultflow-postgres-"))
    server = PostgresServer(base, CertificateAuthority())
    admin = Credential("vaultflow_admin", new_password())
    try:
        server.start()
        server.provision(DATABASE, Credential("app", new_password()), admin)
        yield SandboxPostgres(server, admin)
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
