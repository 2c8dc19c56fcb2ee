"""The one interface every provider of the ESO emulator implements (ESO's ``SecretsClient``).

As in ESO, a provider reads (``get_secret``, ``get_secret_map``) and writes
(``push_secret``, ``secret_exists``, ``delete_secret``); ``validate`` is what
the SecretStore controller calls to mark a store Ready. An operation a
provider does not offer in the sandbox raises ``ProviderError`` saying so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

JsonObject = dict[str, Any]


class ProviderError(Exception):
    """A provider call failed; the message is what ESO would put in its event."""


class ClientError(ProviderError):
    """Building the client failed (a Vault login): the store controller says "unable to create client"."""


class NoSecretError(ProviderError):
    """The remote secret does not exist (ESO's ``esv1.NoSecretError``)."""

    def __init__(self, message: str = "Secret does not exist") -> None:
        super().__init__(message)


@dataclass(frozen=True)
class RemoteRef:
    """``spec.data[].remoteRef`` / ``spec.dataFrom[].extract`` of an ExternalSecret.

    ``metadata_policy`` ``Fetch`` reads the secret's metadata instead of its data
    (the Vault provider: KV v2 metadata and ``custom_metadata``).
    """

    key: str
    prop: str = ""
    version: str = ""
    metadata_policy: str = "None"

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> RemoteRef:
        return cls(
            str(spec.get("key", "")),
            str(spec.get("property") or ""),
            str(spec.get("version") or ""),
            str(spec.get("metadataPolicy") or "None"),
        )


@dataclass(frozen=True)
class PushData:
    """One ``spec.data[]`` entry of a PushSecret."""

    secret_key: str
    remote_key: str
    prop: str = ""
    metadata: JsonObject | None = None
    raw: JsonObject = field(default_factory=dict, compare=False)

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> PushData:
        match = spec.get("match") or {}
        remote = match.get("remoteRef") or {}
        return cls(
            secret_key=str(match.get("secretKey") or ""),
            remote_key=str(remote.get("remoteKey", "")),
            prop=str(remote.get("property") or ""),
            metadata=spec.get("metadata"),
            raw=dict(spec),
        )

    @property
    def status_key(self) -> str:
        """How ``status.syncedPushSecrets`` names the entry: ``remoteKey`` or ``remoteKey/property``."""
        return f"{self.remote_key}/{self.prop}" if self.prop else self.remote_key


class SecretsClient(Protocol):
    """What the ExternalSecret, PushSecret and SecretStore reconcilers ask of a provider."""

    def validate(self) -> None: ...

    def get_secret(self, ref: RemoteRef) -> bytes: ...

    def get_secret_map(self, ref: RemoteRef) -> dict[str, bytes]: ...

    def push_secret(self, data: Mapping[str, bytes], push: PushData) -> None: ...

    def secret_exists(self, push: PushData) -> bool: ...

    def delete_secret(self, push: PushData) -> None: ...

    def close(self) -> None:
        """ESO's ``SecretsClient.Close``: the end of the reconcile that built the client."""


class WriteOnly:
    """Mixin for the cloud providers: the sandbox pushes to clouds, ExternalSecrets read from Vault.

    ESO builds a cloud SDK client per reconcile; the sandbox keeps one per
    store and credentials (nothing a pipeline can tell apart), so ``close``
    leaves it open.
    """

    name = "provider"

    def close(self) -> None:
        return None

    def get_secret(self, ref: RemoteRef) -> bytes:
        raise ProviderError(
            f"reading from {self.name} is not emulated by the sandbox (ExternalSecrets read Vault)"
        )

    def get_secret_map(self, ref: RemoteRef) -> dict[str, bytes]:
        raise ProviderError(
            f"reading from {self.name} is not emulated by the sandbox (ExternalSecrets read Vault)"
        )


def extract_secret_data(data: Mapping[str, bytes], push: PushData) -> bytes:
    """``esutils.ExtractSecretData``: one key's bytes, or every key as a JSON object of strings."""
    from vaultflow.sandbox.eso.gojson import marshal

    if not push.secret_key:
        return marshal(
            {key: value.decode(errors="replace") for key, value in data.items()}, escape_html=False
        ).encode()
    if push.secret_key not in data:
        raise ProviderError(f"failed to find secret key in secret with key: {push.secret_key}")
    return data[push.secret_key]
