"""The contract of a system that checks a credential (a database, a cache, an HTTP service).

Rotating a password in Vault alone changes it for every consumer while the
system that checks it still expects the old one: the next login is refused. A
rotation therefore *sets* the new credential where it is checked and *tests* a
login with it before any consumer sees it (AWS Secrets Manager's rotation
functions: create, set, test, finish). One module per kind implements
``CredentialChecker``, the way keepers are laid out (steps/keeper), so that a new
kind never touches the pipeline.

A ``Credential``'s ``repr`` and ``str`` never show the password, and no error
message of a checker contains it.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import ClassVar

from vaultflow.base.errors import OperationError


@dataclass(frozen=True)
class Credential:
    """A username and its password. The password is never part of ``repr`` or ``str``."""

    username: str
    password: str = field(repr=False)

    def __str__(self) -> str:
        return repr(self)


class CredentialError(OperationError):
    """The system that checks the credential failed or refused; the message names it, never a password."""


class CredentialUnreachable(CredentialError):
    """The system could not be reached (down, wrong host or port, TLS refused)."""


class CredentialRefused(CredentialError):
    """The system answered and refused the login (wrong password, unknown user, not allowed)."""


class CredentialChecker(abc.ABC):
    """Sets a new credential where it is checked, tests it, and (single-user) puts the old one back.

    Every method is safe to retry: a step that Argo runs again after a crash
    converges on the same state instead of failing on its own earlier work.
    """

    kind: ClassVar[str]

    @abc.abstractmethod
    def next_credential(self, current: Credential, password: str) -> Credential:
        """The credential a rotation from ``current`` sets, with the freshly generated ``password``.

        Single-user: the same user. Alternating-users: the *other* user of the pair,
        so that ``current`` keeps working until the next rotation.
        """

    @abc.abstractmethod
    def set(self, new: Credential) -> None:
        """Make the system accept ``new``. Nothing a consumer reads changes yet."""

    @abc.abstractmethod
    def test(self, credential: Credential) -> None:
        """Log in with ``credential`` and run a trivial request; raise ``CredentialError`` if that fails."""

    @abc.abstractmethod
    def restore(self, old: Credential, new: Credential) -> None:
        """Undo ``set(new)`` after a failed test: make the system accept ``old`` again.

        Alternating-users never touched the user of ``old``: there is nothing to undo.
        """
