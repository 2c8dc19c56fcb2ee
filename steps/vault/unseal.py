"""Step *unseal*: every replica, with shares from the keeper; raft followers join the leader first.

Re-running it is how a replica that restarted sealed gets unsealed again.
"""

import time
from collections.abc import Callable

from pydantic import BaseModel

from vaultflow.base.errors import OperationError
from vaultflow.steps.keeper import UnsealMaterial, open_keeper
from vaultflow.steps.vault.api import SealStatus, VaultApi
from vaultflow.steps.vault.status import parse_addresses


class ReplicaUnseal(BaseModel):
    address: str
    was_sealed: bool
    joined: bool
    sealed: bool


class UnsealResult(BaseModel):
    replicas: list[ReplicaUnseal]

    @property
    def unsealed_now(self) -> int:
        return sum(1 for r in self.replicas if r.was_sealed and not r.sealed)


def _wait_for(check: Callable[[], bool], timeout: float, failure: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise OperationError(failure)
        time.sleep(0.2)


def _unseal(replica: VaultApi, material: UnsealMaterial, timeout: float) -> SealStatus:
    """Submit a threshold of shares, then wait for the replica to unseal.

    A joining raft follower accepts the threshold and unseals only once it has
    caught up with the leader, so the seal status is awaited rather than read once.
    """
    status = replica.seal_status()
    if not status.sealed:
        return status
    if status.progress:
        replica.reset_unseal()  # a half-finished attempt (ours or an operator's) would skew the count
    for share in material.shares[: material.threshold]:
        status = replica.submit_unseal_share(share)
        if not status.sealed:
            return status
    _wait_for(
        lambda: not replica.seal_status().sealed,
        timeout,
        f"Vault at {replica.address} is still sealed {timeout:.0f}s after the unseal threshold was reached",
    )
    return replica.seal_status()


def unseal_vault(
    addresses: str, keeper: str, *, ca_cert: str = "", join_timeout: float = 30.0
) -> UnsealResult:
    """Unseal the leader (first address), then join and unseal each follower."""
    replicas = [VaultApi(address, ca_cert=ca_cert or None) for address in parse_addresses(addresses)]
    store = open_keeper(keeper)
    material = store.load()
    leader, followers = replicas[0], replicas[1:]
    leader_status = leader.seal_status()
    if material is None:
        if leader_status.initialized:
            raise OperationError(f"{store.location} is empty: cannot unseal Vault at {leader.address}")
        raise OperationError(f"Vault at {leader.address} is not initialised: run the init step first")
    if material.pgp_encrypted:
        raise OperationError(
            f"the shares in {store.location} are PGP-encrypted: each operator must unseal with their own "
            "decrypted share (bao operator unseal); automatic unseal needs plaintext shares"
        )
    results = []
    _unseal(leader, material, join_timeout)
    leader.wait_until_active(join_timeout)
    results.append(
        ReplicaUnseal(address=leader.address, was_sealed=leader_status.sealed, joined=False, sealed=False)
    )
    for follower in followers:
        before = follower.seal_status()
        joined = False
        if not before.initialized:
            follower.raft_join(leader.address, leader_ca_cert=leader.ca_cert_pem)
            joined = True
        status = _unseal(follower, material, join_timeout)
        results.append(
            ReplicaUnseal(
                address=follower.address, was_sealed=before.sealed, joined=joined, sealed=status.sealed
            )
        )
    return UnsealResult(replicas=results)
