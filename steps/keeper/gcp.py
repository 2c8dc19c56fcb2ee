"""A keeper in GCP Secret Manager: each write adds a version; the latest is the content.

Creating is two calls (create the secret, add a version), with no way to make
them one: a secret without versions, left by a run that stopped in between,
reads as empty and is filled by the next run instead of blocking it forever.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from vaultflow.base.errors import OperationError
from vaultflow.steps.cloud_clients import gcp_secret_manager
from vaultflow.steps.keeper.base import Keeper
from vaultflow.steps.transport import transport_cause


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

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """API errors, and what the transports raise before an API answers (REST: requests; both:
        google-auth for missing credentials)."""
        import google.auth.exceptions
        import requests
        from google.api_core import exceptions

        try:
            yield
        except exceptions.GoogleAPIError as error:
            raise OperationError(f"{self.location}: cannot {action} ({type(error).__name__})") from None
        except google.auth.exceptions.GoogleAuthError as error:
            raise OperationError(
                f"{self.location}: cannot {action} (no usable credentials: {type(error).__name__})"
            ) from None
        except requests.exceptions.RequestException as error:
            raise OperationError(
                f"{self.location}: cannot {action} (Secret Manager unreachable: {transport_cause(error)})"
            ) from None

    def _sm(self) -> Any:
        if self._client is None:
            with self._errors("open a client"):
                self._client = gcp_secret_manager()  # the sandbox's emulator when pointed at it
        return self._client

    def _read(self) -> bytes | None:
        from google.api_core import exceptions

        with self._errors("read it"):
            try:
                response = self._sm().access_secret_version(name=f"{self._name}/versions/latest")
            except exceptions.NotFound:
                return None  # no secret, or a secret without versions
            return bytes(response.payload.data)

    def _create(self, text: str) -> None:
        from google.api_core import exceptions

        with self._errors("create it"):
            try:
                self._sm().create_secret(
                    parent=f"projects/{self.project}",
                    secret_id=self.secret_id,
                    secret={"replication": {"automatic": {}}, "labels": {"managed-by": "vaultflow"}},
                )
            except exceptions.Conflict:  # AlreadyExists over gRPC; over REST a 409 is a plain Conflict
                self._refuse_unless_empty()  # a secret without versions: its first version never landed
        self._update(text)

    def _update(self, text: str) -> None:
        with self._errors("write it"):
            self._sm().add_secret_version(parent=self._name, payload={"data": text.encode()})
