"""Step *status*: what state is each replica in? (read-only, no token)"""

import sys
from typing import Annotated

from hera.workflows import Parameter
from pydantic import BaseModel

from vaultflow.base.errors import InputError, OperationError
from vaultflow.steps.vault.api import VaultApi, refuse_plain_http


class ReplicaStatus(BaseModel):
    address: str
    initialized: bool
    sealed: bool
    version: str
    seal_type: str = "shamir"


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
        refuse_plain_http(address)  # every replica before any is asked
    return cleaned


def vault_status(addresses: str, ca_cert: str = "") -> VaultStatus:
    """Status of every replica; fails (one message) when any replica cannot be reached."""
    replicas = []
    statuses = [VaultApi(a, ca_cert=ca_cert or None).seal_status() for a in parse_addresses(addresses)]
    for status in statuses:
        replicas.append(
            ReplicaStatus(
                address=status.address,
                initialized=status.initialized,
                sealed=status.sealed,
                version=status.version,
                seal_type=status.seal_type,
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


def check_status(addresses: str, ca_cert: str = "") -> Annotated[str, Parameter(name="initialized")]:
    """The pipeline's *status* step: log each replica's state; output whether Vault is initialised.

    The output (``true``/``false``) decides whether the *init* step runs.
    """
    status = vault_status(addresses, ca_cert)
    for replica in status.replicas:
        state = "sealed" if replica.sealed else "unsealed"
        initialised = "initialised" if replica.initialized else "uninitialised"
        seal = "" if replica.seal_type == "shamir" else f" (auto-unseal: {replica.seal_type} seal)"
        print(
            f"{status.product} {replica.version} at {replica.address}: {initialised}, {state}{seal}",
            file=sys.stderr,
        )
    return "true" if status.initialized else "false"
