"""A keeper in GCP Secret Manager: each write adds a version; the latest is the material."""

from __future__ import annotations

from typing import Any

from vaultflow.base.errors import OperationError
from vaultflow.steps.keeper.base import Keeper, KeeperConflict, UnsealMaterial


class GcpSecretManagerKeeper(Keeper):
    def __init__(self, project: str, secret_id: str, *, client: Any = None) -> None:
        self.project = project
        self.secret_id = secret_id
        self._client = client

    @property
    def location(self) -> str:
        return f"GCP Secret Manager secret projects/{self.project}/secrets/{self.secret_id}"

    @property
    def _name(self) -> str:
        return f"projects/{self.project}/secrets/{self.secret_id}"

    def _sm(self) -> Any:
        if self._client is None:
            from google.cloud import secretmanager

            self._client = secretmanager.SecretManagerServiceClient()
        return self._client

    def load(self) -> UnsealMaterial | None:
        from google.api_core import exceptions

        try:
            response = self._sm().access_secret_version(name=f"{self._name}/versions/latest")
        except exceptions.NotFound:
            return None
        except exceptions.GoogleAPIError as error:
            raise OperationError(f"{self.location}: cannot read ({type(error).__name__})") from None
        return UnsealMaterial.from_json(response.payload.data.decode(), self.location)

    def check_writable(self) -> None:
        self.load()

    def _write(self, material: UnsealMaterial, *, create: bool) -> None:
        from google.api_core import exceptions

        try:
            if create:
                self._sm().create_secret(
                    parent=f"projects/{self.project}",
                    secret_id=self.secret_id,
                    secret={"replication": {"automatic": {}}, "labels": {"managed-by": "vaultflow"}},
                )
            self._sm().add_secret_version(parent=self._name, payload={"data": material.to_json().encode()})
        except exceptions.AlreadyExists:
            raise KeeperConflict(f"{self.location} already exists: refusing to overwrite it") from None
        except exceptions.GoogleAPIError as error:
            raise OperationError(f"{self.location}: cannot write ({type(error).__name__})") from None
