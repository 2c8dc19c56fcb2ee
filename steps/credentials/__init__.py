"""Systems that check a rotated credential: set the new value there and test it before promoting it.

``base`` holds the contract (``CredentialChecker``) and ``Credential``; each kind has its own
module (``postgres``). ``open_checker`` builds the checker a catalog's ``rotation.credential``
names.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from vaultflow.steps.credentials.base import (
    Credential,
    CredentialChecker,
    CredentialError,
    CredentialRefused,
    CredentialUnreachable,
)

if TYPE_CHECKING:
    from vaultflow.gitops.catalog.model import PostgresCredential

__all__ = [
    "Credential",
    "CredentialChecker",
    "CredentialError",
    "CredentialRefused",
    "CredentialUnreachable",
    "open_checker",
]


def open_checker(
    spec: PostgresCredential,
    secret_data: Mapping[str, str],
    *,
    admin: Credential | None = None,
    base_dir: Path | None = None,
) -> CredentialChecker:
    """The checker for ``spec``, reaching the system named by the spec and the secret's current data.

    ``admin`` is the login read from ``spec.admin.path`` (required for alternating-users);
    ``base_dir`` resolves a relative ``caFile`` (the catalog's directory).
    """
    from vaultflow.steps.credentials import postgres  # psycopg loads only when a rotation needs it

    return postgres.checker_for(spec, secret_data, admin=admin, base_dir=base_dir)
