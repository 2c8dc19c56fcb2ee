"""Step *unseal*: every replica it can reach, with shares from the keeper; raft followers join first.

Re-running it is how a replica that restarted sealed gets unsealed again. A
replica that is down, or that will not unseal, does not stop the others: the
step unseals every replica it can, then fails naming each one it could not,
and why. Only a follower that has never joined needs the leader (the first
address) to be active; after a restart of every replica, the members unseal
first and elect a leader among themselves.

A follower whose join the raft leader refuses (raft-autopilot's "Preventing
server addition ...", see ``RaftJoinRefused``) is retried with backoff until
``join_timeout``: the refusal lasts only as long as another member holds the
follower's cluster address.
"""

from collections.abc import Callable

from pydantic import BaseModel

from vaultflow.base.errors import OperationError
from vaultflow.base.retry import poll_until
from vaultflow.steps.keeper import UnsealMaterial, open_keeper
from vaultflow.steps.vault.api import RaftJoinRefused, SealStatus, VaultApi
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


def _seal_words(status: SealStatus) -> str:
    if not status.sealed:
        return "unsealed"
    return f"sealed, {status.progress} of {status.threshold} shares in"


# Vault's answer to a threshold of shares that is not its own (vault/barrier_aes_gcm.go, Unseal).
WRONG_SHARES = "failed to decrypt keys from storage"


def _submit_threshold(replica: VaultApi, material: UnsealMaterial, source: str) -> SealStatus:
    """Submit a threshold of shares (after clearing a half-finished attempt that would skew the count)."""
    status = replica.seal_status()
    if not status.sealed:
        return status
    if status.progress:
        replica.reset_unseal()
    for share in material.shares[: material.threshold]:
        try:
            status = replica.submit_unseal_share(share)
        except OperationError as error:
            if WRONG_SHARES not in str(error):
                raise
            replica.reset_unseal()
            raise OperationError(
                f"the shares in {source} do not unseal Vault at {replica.address}: "
                f"the keeper holds another Vault's material ({error})"
            ) from None
        if not status.sealed:
            break
    return status


def _await_unsealed(replica: VaultApi, timeout: float) -> SealStatus:
    """A joining raft follower accepts the threshold and unseals only once it has caught up with
    the leader, so the seal status is awaited rather than read once."""
    return poll_until(
        replica.seal_status,
        lambda status: not status.sealed,
        what=f"Vault at {replica.address} to unseal after the threshold of shares",
        timeout=timeout,
        initial=0.1,
        describe=_seal_words,
    )


class _Leader:
    """The replica followers join; waited for (once) until active, only when a follower must join."""

    def __init__(self, api: VaultApi, timeout: float) -> None:
        self.api = api
        self.timeout = timeout
        self._problem: str | None = None
        self._ready = False

    def ready(self) -> None:
        if not self._ready and self._problem is None:
            try:
                self.api.wait_until_active(self.timeout)
                self._ready = True
            except OperationError as error:
                self._problem = str(error)
        if self._problem is not None:
            raise OperationError(f"cannot join the raft cluster of {self.api.address}: {self._problem}")


def _unseal_replica(
    replica: VaultApi, leader: _Leader, material: UnsealMaterial, timeout: float, source: str
) -> ReplicaUnseal:
    """Join ``replica`` to the leader if it never joined, submit the shares, await it unsealed.

    A refused join (``RaftJoinRefused``) is retried, re-reading the replica first: its own
    ``retry_join`` may have joined it meanwhile, or it may have to be told to join again.
    """
    before = replica.seal_status()
    joined = False

    def attempt() -> SealStatus:
        nonlocal joined
        status = replica.seal_status()
        if status.sealed and not status.initialized and replica is not leader.api:
            leader.ready()
            replica.raft_join(leader.api.address, leader_ca_cert=leader.api.ca_cert_pem)
            joined = True
        return _submit_threshold(replica, material, source)

    poll_until(
        attempt,
        lambda _: True,
        what=f"the raft leader to let Vault at {replica.address} join",
        timeout=timeout,
        initial=0.5,
        maximum=4.0,
        describe=_seal_words,
        transient=(RaftJoinRefused,),
    )
    status = _await_unsealed(replica, timeout)
    return ReplicaUnseal(
        address=replica.address, was_sealed=before.sealed, joined=joined, sealed=status.sealed
    )


def _load_material(keeper: str, leader: VaultApi) -> tuple[UnsealMaterial, str]:
    """The keeper's material and where it is (for messages)."""
    store = open_keeper(keeper)
    material = store.load()
    if material is None:
        if leader.seal_status().initialized:
            raise OperationError(f"{store.location} is empty: cannot unseal Vault at {leader.address}")
        raise OperationError(f"Vault at {leader.address} is not initialised: run the init step first")
    if material.pgp_encrypted:
        raise OperationError(
            f"the shares in {store.location} are PGP-encrypted: each operator must unseal with their own "
            "decrypted share (bao operator unseal); automatic unseal needs plaintext shares"
        )
    return material, store.location


def _await_an_active_node(replicas: list[VaultApi], timeout: float) -> None:
    """Unsealed is not yet usable: raft must elect a leader (any member) before Vault serves requests."""

    def states() -> dict[str, str]:
        return {replica.address: replica.health() for replica in replicas}

    poll_until(
        states,
        lambda seen: "active" in seen.values(),
        what="an active node among " + ", ".join(r.address for r in replicas),
        timeout=timeout,
        maximum=0.5,
        describe=lambda seen: ", ".join(f"{address} {state}" for address, state in seen.items()),
        transient=(OperationError,),
    )


def _each(
    replicas: list[VaultApi], unseal: Callable[[VaultApi], ReplicaUnseal]
) -> tuple[list[ReplicaUnseal], list[str]]:
    """Unseal every replica in order; what failed is collected (each naming its replica), not raised."""
    done, problems = [], []
    for replica in replicas:
        try:
            done.append(unseal(replica))
        except OperationError as error:
            message = str(error)
            problems.append(
                message if replica.address in message else f"Vault at {replica.address}: {message}"
            )
    return done, problems


def unseal_vault(
    addresses: str, keeper: str, *, ca_cert: str = "", join_timeout: float = 30.0
) -> UnsealResult:
    """Unseal the leader (first address), then join (if needed) and unseal each follower; wait until
    a node is active. Fails, after trying every replica, naming each that is still sealed."""
    replicas = [VaultApi(address, ca_cert=ca_cert or None) for address in parse_addresses(addresses)]
    material, source = _load_material(keeper, replicas[0])
    leader = _Leader(replicas[0], join_timeout)
    done, problems = _each(
        replicas, lambda replica: _unseal_replica(replica, leader, material, join_timeout, source)
    )
    if problems:
        unsealed = [r.address for r in done if not r.sealed]
        also = f" (unsealed: {', '.join(unsealed)})" if unsealed else ""
        raise OperationError(
            f"{len(problems)} of {len(replicas)} Vault replicas are not unsealed{also}: "
            + "; ".join(problems)
        )
    _await_an_active_node(replicas, join_timeout)
    return UnsealResult(replicas=done)
