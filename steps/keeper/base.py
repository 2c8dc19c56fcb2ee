"""What a keeper stores, and the contract every keeper honours."""

from __future__ import annotations

import abc
import json

from pydantic import BaseModel, ConfigDict, Field

from vaultflow.base.errors import OperationError


class KeeperConflict(OperationError):
    """The keeper already holds material and would be overwritten."""


class UnsealMaterial(BaseModel):
    """Vault's unseal shares (plaintext, or PGP-encrypted per operator) and, transiently, a root token.

    ``__repr__`` and ``__str__`` never show the values: a material object that
    ends up in a log line or an exception message leaks nothing.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    shares: list[str] = Field(min_length=1)
    threshold: int = Field(ge=1)
    pgp_encrypted: bool = False
    root_token: str | None = None

    def __repr__(self) -> str:
        root = "present" if self.root_token else "absent"
        encrypted = ", pgp-encrypted" if self.pgp_encrypted else ""
        shares = f"{len(self.shares)} shares, threshold {self.threshold}{encrypted}"
        return f"UnsealMaterial({shares}, root token {root})"

    __str__ = __repr__

    def to_json(self) -> str:
        return json.dumps(self.model_dump(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, where: str) -> UnsealMaterial:
        try:
            return cls.model_validate_json(text)
        except ValueError:
            # Never echo the content: it holds the shares.
            raise OperationError(f"{where}: keeper content is not valid unseal material") from None

    def with_root_token(self, token: str | None) -> UnsealMaterial:
        return self.model_copy(update={"root_token": token})


class Keeper(abc.ABC):
    """Where unseal material lives. Implementations must be safe to call again after a crash."""

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """Where the material is, for messages (never the material itself)."""

    @abc.abstractmethod
    def load(self) -> UnsealMaterial | None:
        """The stored material, or None when the keeper is empty."""

    @abc.abstractmethod
    def _write(self, material: UnsealMaterial, *, create: bool) -> None:
        """Store ``material``; with ``create`` the keeper must be empty (fail rather than overwrite)."""

    @abc.abstractmethod
    def check_writable(self) -> None:
        """Raise unless a later ``store`` can succeed: checked *before* Vault is initialised."""

    def store_new(self, material: UnsealMaterial) -> None:
        """Store material for a freshly initialised Vault; never overwrite existing material."""
        if self.load() is not None:
            raise KeeperConflict(f"{self.location} already holds unseal material: refusing to overwrite it")
        self._write(material, create=True)

    def set_root_token(self, token: str | None) -> None:
        """Keep (or, with None, forget) the root token beside the shares."""
        material = self.load()
        if material is None:
            raise OperationError(f"{self.location} holds no unseal material")
        self._write(material.with_root_token(token), create=False)
