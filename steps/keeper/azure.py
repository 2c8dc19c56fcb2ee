"""A keeper in Azure Key Vault."""

from __future__ import annotations

from typing import Any

from vaultflow.base.errors import OperationError
from vaultflow.steps.keeper.base import Keeper, KeeperConflict, UnsealMaterial


class AzureKeyVaultKeeper(Keeper):
    def __init__(self, vault_url: str, name: str, *, client: Any = None) -> None:
        self.vault_url = vault_url
        self.name = name
        self._client = client

    @property
    def location(self) -> str:
        return f"Azure Key Vault secret {self.name} in {self.vault_url}"

    def _kv(self) -> Any:
        if self._client is None:
            from azure.identity import DefaultAzureCredential
            from azure.keyvault.secrets import SecretClient

            self._client = SecretClient(vault_url=self.vault_url, credential=DefaultAzureCredential())
        return self._client

    def load(self) -> UnsealMaterial | None:
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        try:
            secret = self._kv().get_secret(self.name)
        except ResourceNotFoundError:
            return None
        except AzureError as error:
            raise OperationError(f"{self.location}: cannot read ({type(error).__name__})") from None
        return UnsealMaterial.from_json(secret.value or "", self.location)

    def check_writable(self) -> None:
        self.load()

    def _write(self, material: UnsealMaterial, *, create: bool) -> None:
        from azure.core.exceptions import AzureError

        # Key Vault has no create-if-absent; store_new() checked emptiness just before.
        if create and self.load() is not None:
            raise KeeperConflict(f"{self.location} already exists: refusing to overwrite it")
        try:
            self._kv().set_secret(self.name, material.to_json(), tags={"managed-by": "vaultflow"})
        except AzureError as error:
            raise OperationError(f"{self.location}: cannot write ({type(error).__name__})") from None
