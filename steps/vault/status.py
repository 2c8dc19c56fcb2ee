"""Step *status*: what state is each replica in? (read-only, no token)"""

from __future__ import annotations

from pydantic import BaseModel

from steps.vault.api import VaultApi
from vaultflow.errors import InputError, OperationError


class ReplicaStatus(BaseModel):
    address: str
    initialized: bool
    sealed: bool
    version: str


class VaultStatus(BaseModel):
    """The cluster as the bootstrap pipeline sees it. Holds no secret."""

    product: str
    version: str
    initialized: bool
    replicas: list[ReplicaStatus]

    @property
    def sealed_replicas(self) -> list[str]:
        return [r.address for r in self.replicas if r.sealed]


def parse_addresses(addresses: str | list[str]) -> list[str]:
    """Replica addresses from a list or a comma-separated workflow parameter; the first is the leader."""
    items = addresses.split(",") if isinstance(addresses, str) else addresses
    cleaned = [item.strip().rstrip("/") for item in items if item.strip()]
    if not cleaned:
        raise InputError("no Vault address given")
    for address in cleaned:
        if not address.startswith(("http://", "https://")):
            raise InputError(f"Vault address {address!r} is not an http(s) URL")
    return cleaned


def vault_status(addresses: str | list[str], ca_cert: str | None = None) -> VaultStatus:
    """Status of every replica; fails (one message) when any replica cannot be reached."""
    replicas = []
    statuses = [VaultApi(address, ca_cert=ca_cert).seal_status() for address in parse_addresses(addresses)]
    for status in statuses:
        replicas.append(
            ReplicaStatus(
                address=status.address,
                initialized=status.initialized,
                sealed=status.sealed,
                version=status.version,
            )
        )
    products = {s.product for s in statuses}
    if len(products) > 1:
        raise OperationError(f"replicas disagree on the product: {sorted(products)}")
    return VaultStatus(
        product=statuses[0].product,
        version=statuses[0].version,
        initialized=any(s.initialized for s in statuses),
        replicas=replicas,
    )
