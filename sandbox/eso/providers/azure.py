"""ESO's Azure Key Vault provider (push side), with the real ``azure-keyvault-secrets`` client.

As ESO's provider does it: a secret that exists without the tag
``managed-by: external-secrets`` is refused ("not managed by
external-secrets"); an unchanged value (and expiry, content type) is left
alone; otherwise a new version is set with that tag plus the metadata's tags,
enabled. Deleting is Key Vault's soft delete. Remote keys may carry ESO's
object-type prefix ``secret/``; ``cert/`` and ``key/`` objects are not
emulated.

The store's ``vaultUrl`` (``https://<name>.vault.azure.net``) is served by the
sandbox's Key Vault emulator for vault ``<name>``, over HTTPS verified with
the sandbox CA. There is no identity platform: ``ServicePrincipal`` still
needs its ``authSecretRef`` Secret (as ESO does), but the token is a static one.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from vaultflow.sandbox.eso.providers.base import ProviderError, PushData, WriteOnly, extract_secret_data
from vaultflow.sandbox.eso.providers.metadata import push_metadata
from vaultflow.sandbox.faults import FaultInjector, InjectedFault

MANAGED_BY = ("managed-by", "external-secrets")


def secret_name(remote_key: str) -> str:
    kind, _, name = remote_key.partition("/")
    if not name:
        return remote_key
    if kind == "secret":
        return name
    raise ProviderError(f"secret type '{kind}' is not supported by the sandbox's Key Vault (only secrets)")


class AzureKeyVaultProvider(WriteOnly):
    name = "azure"

    def __init__(self, *, vault_url: str, ca_file: str, faults: FaultInjector) -> None:
        self.vault_url = vault_url
        self._ca_file = ca_file
        self._faults = faults
        self._client: Any = None
        self._lock = threading.Lock()

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                from azure.keyvault.secrets import SecretClient

                from vaultflow.sandbox.azure.credential import StaticTokenCredential

                self._client = SecretClient(
                    self.vault_url,
                    StaticTokenCredential(),
                    connection_verify=self._ca_file,
                    verify_challenge_resource=False,
                    retry_total=2,
                )
            return self._client

    def _call(self, operation: str, *args: Any, **kwargs: Any) -> Any:
        from azure.core.exceptions import AzureError, ResourceNotFoundError

        try:
            self._faults.before_call("azure", self.vault_url)
            return getattr(self.client(), operation)(*args, **kwargs)
        except InjectedFault as fault:
            raise ProviderError(f"{operation}: {fault}") from None
        except ResourceNotFoundError as error:
            raise _NotFound(str(error.message)) from None
        except AzureError as error:
            raise ProviderError(f"unexpected api error: {error.message}") from None

    def validate(self) -> None:
        self.client()

    def _managed(self, tags: Mapping[str, str] | None) -> bool:
        return (tags or {}).get(MANAGED_BY[0]) == MANAGED_BY[1]

    def push_secret(self, data: Mapping[str, bytes], push: PushData) -> None:
        value = extract_secret_data(data, push).decode(errors="replace")
        spec = push_metadata(push.metadata)
        name = secret_name(push.remote_key)
        content_type = spec.get("contentType") or None
        try:
            existing = self._call("get_secret", name)
        except _NotFound:
            existing = None
        if existing is not None:
            if not self._managed(existing.properties.tags):
                raise ProviderError(f"cannot get secret {name}: not managed by external-secrets")
            unchanged_type = content_type is None or existing.properties.content_type == content_type
            if existing.value == value and unchanged_type and existing.properties.expires_on is None:
                return
            if content_type is None:
                content_type = existing.properties.content_type
        tags = {MANAGED_BY[0]: MANAGED_BY[1], **(spec.get("tags") or {})}
        self._call("set_secret", name, value, tags=tags, enabled=True, content_type=content_type)

    def secret_exists(self, push: PushData) -> bool:
        try:
            self._call("get_secret", secret_name(push.remote_key))
        except _NotFound:
            return False
        return True

    def delete_secret(self, push: PushData) -> None:
        name = secret_name(push.remote_key)
        try:
            existing = self._call("get_secret", name)
        except _NotFound:
            return
        if not self._managed(existing.properties.tags):
            raise ProviderError(f"error getting secret {name}: not managed by external-secrets")
        self._call("begin_delete_secret", name)  # the DELETE is sent here; ESO does not wait for the purge


class _NotFound(ProviderError):
    pass
