"""A keeper in AWS Secrets Manager.

Creating is two calls, ``CreateSecret`` without a value and ``PutSecretValue``,
so that the reservation exercises the very call that later stores the
material (they are separate IAM actions). A secret without a current value
(created, never written: a run that stopped in between) reads as empty.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from vaultflow.base.errors import OperationError
from vaultflow.steps.keeper.base import Keeper


class AwsSecretsManagerKeeper(Keeper):
    def __init__(self, name: str, *, region: str | None = None, client: Any = None) -> None:
        self.name = name
        self.region = region
        self._client = client

    @property
    def location(self) -> str:
        return f"AWS Secrets Manager secret {self.name}" + (f" ({self.region})" if self.region else "")

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", type(error).__name__)
            raise OperationError(f"{self.location}: cannot {action} ({code})") from None
        except BotoCoreError as error:
            raise OperationError(f"{self.location}: cannot {action} ({type(error).__name__})") from None

    def _sm(self) -> Any:
        if self._client is None:
            import boto3

            with self._errors("open a client"):
                self._client = boto3.client("secretsmanager", region_name=self.region)
        return self._client

    def _read(self) -> bytes | None:
        from botocore.exceptions import ClientError

        with self._errors("read it"):
            try:
                value = self._sm().get_secret_value(SecretId=self.name)
            except ClientError as error:
                if error.response["Error"]["Code"] == "ResourceNotFoundException":
                    return None  # no secret, or a secret without a current value
                raise
        if "SecretString" in value:
            return str(value["SecretString"]).encode()
        return bytes(value.get("SecretBinary") or b"")  # someone stored binary: parse_content says what

    def _create(self, text: str) -> None:
        from botocore.exceptions import ClientError

        with self._errors("create it"):
            try:
                self._sm().create_secret(
                    Name=self.name,
                    Description="Vault unseal material, written by vaultflow bootstrap",
                    Tags=[{"Key": "managed-by", "Value": "vaultflow"}],
                )
            except ClientError as error:
                if error.response["Error"]["Code"] != "ResourceExistsException":
                    raise
                self._refuse_unless_empty()  # created by a run that stopped before writing a value
        self._update(text)

    def _update(self, text: str) -> None:
        with self._errors("write it"):
            self._sm().put_secret_value(SecretId=self.name, SecretString=text)
