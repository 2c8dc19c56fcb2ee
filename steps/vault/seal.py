"""Is Vault sealed the way the catalog says? (``vault.seal``: Shamir, or an auto-unseal mechanism)

The server's configuration decides the seal, not the pipeline: a Vault whose
``seal`` stanza is missing starts with Shamir, one with a stanza auto-unseals.
Initialising the wrong one would hand the keeper the wrong kind of shares
(unseal keys where recovery keys were meant, or the reverse), so *init* and
*unseal* compare what ``sys/seal-status`` reports (``type``, ``recovery_seal``)
with the catalog before they act, and stop with one sentence when they differ.
"""

from __future__ import annotations

from vaultflow.base.errors import OperationError
from vaultflow.gitops.vault_seal import AnySeal, expected_seal_types
from vaultflow.steps.catalog_source import load_catalog_source
from vaultflow.steps.vault.api import SealStatus

# What a server that auto-unseals needs while it starts: its seal must answer (OpenBao exits with
# 'Error configuring seal "transit": ...' when it cannot reach the transit server or the KMS).
AUTO_UNSEAL_HINT = (
    "an auto-unsealed server unseals itself at start, and exits when its seal does not answer "
    "(the unsealer Vault or the cloud KMS): check that the seal is reachable and its token or "
    "credentials valid, and see the server's log"
)


def catalog_seal(catalog: str) -> AnySeal | None:
    """The catalog's ``vault.seal`` (None when no catalog is given: nothing to compare)."""
    if not catalog:
        return None
    return load_catalog_source(catalog).catalog.vault.seal


def describe(status: SealStatus) -> str:
    """``the transit seal (recovery shares)`` or ``the Shamir seal``."""
    if status.auto_unseal:
        return f"the {status.seal_type} seal (auto-unseal, recovery shares)"
    return "the Shamir seal"


def check_seal_type(status: SealStatus, seal: AnySeal | None) -> None:
    """Stop when the server's seal is not the catalog's (nothing is changed before this check)."""
    if seal is None:
        return
    expected = expected_seal_types(seal)
    if status.seal_type in expected:
        return
    wanted = " or ".join(sorted(expected))
    if seal.type == "shamir":
        fix = "remove the seal stanza from its configuration, or set the catalog's vault.seal to it"
    else:
        fix = (
            "add the catalog's seal stanza to the server configuration "
            "(`vaultflow catalog seal` prints it) and restart the server"
        )
    raise OperationError(
        f"Vault at {status.address} uses {describe(status)}, but the catalog's vault.seal is {wanted}: "
        f"{fix}. Nothing was changed"
    )
