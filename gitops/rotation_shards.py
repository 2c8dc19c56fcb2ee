"""The rotation policy's shards: which ``vaultflow-rotation-<k>`` policy covers a rotated secret.

Vault (and OpenBao) builds a token's ACL from all of its policies on every request, so a
token's cost per request grows with the paths its policies name: one policy naming both
paths of every rotated secret made each of a rotation's requests cost OpenBao 5-6 ms of CPU
at 1,000 secrets (and passes Vault's 1 MiB limit on a policy above ~5,500). The paths are
therefore split into shards: a secret's shard is a stable hash of its path modulo the shard
count, and the count, a power of two, grows with the number of rotated secrets
(:data:`SECRETS_PER_SHARD` on average), so a shard holds a few dozen paths whatever the size
of the catalog. A catalog that doubles past a threshold doubles the count, which splits each
shard in two (the hash keeps its low bits): most secrets keep the shard they had.

The rotation role's token holds every shard (a child token can only hold a subset of its
parent's policies); each *rotate* step creates a child token holding only its batch's shards,
and the *plan* step groups the batches by shard so that a batch needs few of them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from vaultflow.gitops.catalog.model import Catalog

ROTATION_SHARD_PREFIX = "vaultflow-rotation-"
SECRETS_PER_SHARD = 16  # on average; 32 paths, a few KB: a request's ACL costs OpenBao little
_SHARD_NAME = re.compile(rf"^{re.escape(ROTATION_SHARD_PREFIX)}(0|[1-9][0-9]*)$")


def rotated_paths(catalog: Catalog) -> list[str]:
    """The catalog's rotated secrets' paths, sorted."""
    return sorted(secret.path for secret in catalog.secrets if secret.rotation is not None)


def shard_count(rotated: int) -> int:
    """How many shards ``rotated`` secrets take: the smallest power of two that keeps the mean at
    most :data:`SECRETS_PER_SHARD` (1 for none)."""
    count = 1
    while count * SECRETS_PER_SHARD < rotated:
        count *= 2
    return count


def shard_of(path: str, count: int) -> int:
    """The shard of ``path`` among ``count`` (a power of two): its SHA-256's low bits, the same on
    every machine and run (never Python's salted ``hash``)."""
    return int.from_bytes(hashlib.sha256(path.encode()).digest()[-8:], "big") % count


def shard_policy_name(shard: int) -> str:
    return f"{ROTATION_SHARD_PREFIX}{shard}"


def is_shard_policy(name: str) -> bool:
    """Whether ``name`` is a rotation shard's policy name (``vaultflow-rotation-<k>``)."""
    return _SHARD_NAME.match(name) is not None


class RotationShards:
    """The shards of one catalog's rotated secrets."""

    def __init__(self, catalog: Catalog) -> None:
        self.paths = rotated_paths(catalog)
        self.count = shard_count(len(self.paths))

    def of(self, path: str) -> int:
        return shard_of(path, self.count)

    def policy_of(self, path: str) -> str:
        return shard_policy_name(self.of(path))

    def names(self) -> list[str]:
        """Every shard's policy name, in shard order."""
        return [shard_policy_name(shard) for shard in range(self.count)]

    def members(self) -> dict[int, list[str]]:
        """Each shard's rotated paths, sorted (a shard may be empty)."""
        members: dict[int, list[str]] = {shard: [] for shard in range(self.count)}
        for path in self.paths:
            members[self.of(path)].append(path)
        return members

    def policies_for(self, paths: Iterable[str]) -> list[str]:
        """The shard policies that cover ``paths``, sorted by shard."""
        return [shard_policy_name(shard) for shard in sorted({self.of(path) for path in paths})]
