"""A credential that hands out one static bearer token, for the sandbox's Key Vault emulator.

The sandbox has no Microsoft identity platform to get real tokens from, and
the emulator accepts any bearer token; the SDK still insists on a credential
object implementing ``azure.core.credentials.TokenCredential`` (and the newer
``SupportsTokenInfo``). This is that object, and nothing more: never use it
against a real vault. It lives in steps because ``vaultflow.steps.cloud_clients``
builds emulator clients with it (steps never import the sandbox);
``vaultflow.sandbox.azure.credential`` re-exports it for the sandbox's own code.
"""

from __future__ import annotations

import time
from typing import Any

from azure.core.credentials import AccessToken, AccessTokenInfo

SANDBOX_TOKEN = "vaultflow-sandbox-token"  # not a secret: the emulator accepts any bearer token
_LIFETIME = 3600


class StaticTokenCredential:
    """``get_token`` / ``get_token_info`` always answer ``token``, valid for an hour from now."""

    def __init__(self, token: str = SANDBOX_TOKEN) -> None:
        self._token = token
        self.requested_scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.requested_scopes.append(scopes)
        return AccessToken(self._token, int(time.time()) + _LIFETIME)

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        self.requested_scopes.append(scopes)
        return AccessTokenInfo(self._token, int(time.time()) + _LIFETIME)

    def close(self) -> None:
        """Nothing to release (the SDK's clients call it on exit)."""

    def __enter__(self) -> StaticTokenCredential:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
