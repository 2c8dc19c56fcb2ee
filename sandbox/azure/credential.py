"""The static bearer credential the Key Vault emulator's clients use, under its sandbox name.

The one class lives in ``vaultflow.steps.azure_credential``: steps build emulator
clients with it (``vaultflow.steps.cloud_clients``) and must not import the
sandbox, so the sandbox imports it from there.
"""

from __future__ import annotations

from vaultflow.steps.azure_credential import SANDBOX_TOKEN, StaticTokenCredential

__all__ = ["SANDBOX_TOKEN", "StaticTokenCredential"]
