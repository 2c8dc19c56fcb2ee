"""A keeper in AWS Secrets Manager."""

from __future__ import annotations

from typing import Any

from vaultflow.base.errors import OperationError
from vaultflow.steps.keeper.base import Keeper, KeeperConflict, UnsealMaterial


class AwsSecretsManagerKeeper(Keeper):
    def __init__(self, name: str, *, region: str | None = None, client: Any = None) -> None:
        self.name = name
        self.region = region
        self._client = client

    @property
    def location(self) -> str:
        return f"AWS Secrets Manager secret {self.name}" + (f" ({self.region})" if self.region else "")

    def _sm(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("secretsmanager", region_name=self.region)
        return self._client

    def _fail(self, action: str, error: Exception) -> OperationError:
        code = getattr(error, "response", {}).get("Error", {}).get("Code", type(error).__name__)
        return OperationError(f"{self.location}: cannot {action} ({code})")

    def load(self) -> UnsealMaterial | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            value = self._sm().get_secret_value(SecretId=self.name)
        except ClientError as error:
            if error.response["Error"]["Code"] == "ResourceNotFoundException":
                return None
            raise self._fail("read", error) from None
        except BotoCoreError as error:
            raise self._fail("read", error) from None
        return UnsealMaterial.from_json(value["SecretString"], self.location)

    def check_writable(self) -> None:
        self.load()  # reachable, authenticated and allowed to read: enough to know where we stand

    def _write(self, material: UnsealMaterial, *, create: bool) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            if create:
                self._sm().create_secret(
                    Name=self.name,
                    SecretString=material.to_json(),
                    Description="Vault unseal material, written by vaultflow bootstrap",
                    Tags=[{"Key": "managed-by", "Value": "vaultflow"}],
                )
            else:
                self._sm().put_secret_value(SecretId=self.name, SecretString=material.to_json())
        except ClientError as error:
            if error.response["Error"]["Code"] == "ResourceExistsException":
                raise KeeperConflict(f"{self.location} already exists: refusing to overwrite it") from None
            raise self._fail("write", error) from None
        except BotoCoreError as error:
            raise self._fail("write", error) from None
