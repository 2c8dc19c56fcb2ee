"""A keeper in Azure Key Vault.

Key Vault has no create-if-absent: creating checks that nothing is there just
before. A deleted secret stays recoverable (soft delete) and blocks its name
until it is recovered or purged; that is said in the message.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from vaultflow.base.errors import OperationError
from vaultflow.steps.cloud_clients import azure_secret_client
from vaultflow.steps.keeper.base import Keeper


class AzureKeyVaultKeeper(Keeper):
    def __init__(self, vault_url: str, name: str, *, client: Any = None) -> None:
        self.vault_url = vault_url
        self.name = name
        self._client = client

    @property
    def location(self) -> str:
        return f"Azure Key Vault secret {self.name} in {self.vault_url}"

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        from azure.core.exceptions import AzureError, ResourceExistsError

        try:
            yield
        except ResourceExistsError:
            raise OperationError(
                f"{self.location}: cannot {action}: a deleted secret of that name is still recoverable "
                "(recover or purge it first)"
            ) from None
        except AzureError as error:
            raise OperationError(f"{self.location}: cannot {action} ({type(error).__name__})") from None

    def _kv(self) -> Any:
        if self._client is None:
            self._client = azure_secret_client(self.vault_url)  # the sandbox's emulator when pointed at it
        return self._client

    def _read(self) -> bytes | None:
        from azure.core.exceptions import ResourceNotFoundError

        with self._errors("read it"):
            try:
                secret = self._kv().get_secret(self.name)
            except ResourceNotFoundError:
                return None
        return str(secret.value or "").encode()

    def _create(self, text: str) -> None:
        self._refuse_unless_empty()
        self._update(text)

    def _update(self, text: str) -> None:
        with self._errors("write it"):
            self._kv().set_secret(self.name, text, tags={"managed-by": "vaultflow"})
