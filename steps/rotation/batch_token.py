"""A *rotate* step's own Vault token: a child of the rotation role's, holding only its batch's shards.

The rotation role's token holds every rotation shard (``vaultflow.gitops.rotation_shards``):
Vault builds a token's ACL from all its policies on every request, so each request made
with it costs Vault in proportion to every rotated path of the catalog. A step therefore
creates a child token (``auth/token/create``: a non-root token can only give its child a
subset of its own policies, and Vault revokes the child with its parent) holding the
shards of the paths it rotates and every policy of the parent that is not a shard, and
makes all of its Vault requests with it. It can write exactly its batch's shards' paths,
no other rotated secret's.
"""

from __future__ import annotations

from collections.abc import Iterable

from vaultflow.base.errors import OperationError
from vaultflow.gitops.catalog.model import Catalog
from vaultflow.gitops.rotation_shards import RotationShards, is_shard_policy
from vaultflow.steps.vault.api import VaultApi

DISPLAY_NAME = "rotation-batch"


def batch_token(vault: VaultApi, catalog: Catalog, paths: Iterable[str]) -> VaultApi:
    """A client holding a child of ``vault``'s token with the shards of ``paths`` only, and the same
    remaining TTL; ``vault`` itself when its token is root (nothing to narrow)."""
    with vault.errors("look up the rotation token"):
        own = vault.client.auth.token.lookup_self()["data"]
    parent = [str(name) for name in own.get("policies") or []]
    if "root" in parent:
        return vault
    needed = RotationShards(catalog).policies_for(paths)
    missing = [name for name in needed if name not in parent]
    if missing:
        raise OperationError(
            f"Vault at {vault.address}: the rotation token lacks policies {', '.join(missing)} that the "
            "catalog's rotated paths fall in: the bootstrap pipeline's configure step must run again after "
            "the catalog changed"
        )
    policies = [name for name in parent if not is_shard_policy(name)] + needed
    # No ``default`` policy on the child either: it would double Vault's CPU per request; the rotation
    # policy grants what the step uses of it (revoking its own token).
    request: dict[str, object] = {
        "policies": policies,
        "display_name": DISPLAY_NAME,
        "renewable": False,
        "no_default_policy": True,
    }
    ttl = int(own.get("ttl") or 0)
    if ttl > 0:
        request["ttl"] = f"{ttl}s"
    with vault.errors("create the batch's child token"):
        created = vault.client.write_data("auth/token/create", data=request)
    return vault.with_token(str(created["auth"]["client_token"]))
