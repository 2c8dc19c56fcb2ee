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

Under auto-unseal (Vault reports a seal ``type`` other than ``shamir``: transit,
a cloud KMS) no share is submitted, and none is even read: every replica
unseals itself with its seal, and the keeper holds recovery shares, which
cannot unseal. The step then joins a follower that never joined (the join
unseals it) and waits until each replica is unsealed, failing with what to
check when one stays sealed or unreachable. With a catalog, each replica's
seal type must be the catalog's ``vault.seal`` (``vaultflow.steps.vault.seal``).
"""

import logging
import time
from collections.abc import Callable

from pydantic import BaseModel

from vaultflow.base.errors import OperationError
from vaultflow.base.retry import poll_until
from vaultflow.gitops.vault_seal import AnySeal
from vaultflow.steps.keeper import UnsealMaterial, open_keeper
from vaultflow.steps.vault.api import RaftJoinRefused, SealStatus, VaultApi
from vaultflow.steps.vault.seal import AUTO_UNSEAL_HINT, catalog_seal, check_seal_type
from vaultflow.steps.vault.status import parse_addresses

log = logging.getLogger(__name__)


class ReplicaUnseal(BaseModel):
    address: str
    was_sealed: bool
    joined: bool
    sealed: bool
    shares_submitted: int = 0  # 0 under auto-unseal: the replica unsealed itself
    seal_type: str = "shamir"


class UnsealResult(BaseModel):
    replicas: list[ReplicaUnseal]

    @property
    def shares_submitted(self) -> int:
        return sum(replica.shares_submitted for replica in self.replicas)

    @property
    def unsealed_now(self) -> int:
        return sum(1 for r in self.replicas if r.was_sealed and not r.sealed)


def _seal_words(status: SealStatus) -> str:
    if not status.sealed:
        return "unsealed"
    return f"sealed, {status.progress} of {status.threshold} shares in"


# Vault's answer to a threshold of shares that is not its own (vault/barrier_aes_gcm.go, Unseal).
WRONG_SHARES = "failed to decrypt keys from storage"


def _submit_threshold(
    replica: VaultApi, material: UnsealMaterial, source: str, submitted: list[int] | None = None
) -> SealStatus:
    """Submit a threshold of shares (after clearing a half-finished attempt that would skew the count);
    ``submitted`` (one counter) counts the shares sent."""
    status = replica.seal_status()
    if not status.sealed:
        return status
    if status.progress:
        replica.reset_unseal()
    for share in material.shares[: material.threshold]:
        if submitted is not None:
            submitted[0] += 1
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


# Seconds a replica that took the threshold may show no share in and stay sealed before it is given the
# threshold again: longer than a follower takes to catch up with the leader once it has the shares.
RESUBMIT_AFTER = 10.0


def _await_unsealed(
    replica: VaultApi, timeout: float, resubmit: Callable[[], SealStatus] | None = None
) -> SealStatus:
    """A joining raft follower accepts the threshold and unseals only once it has caught up with
    the leader, so the seal status is awaited rather than read once.

    A replica that stays sealed with no share in for ``RESUBMIT_AFTER`` seconds has dropped the ones it
    was given, and waits for them again: a follower given its shares before its ``retry_join`` had the
    leader's challenge waits for "unseal keys to be supplied" (OpenBao's ``JoinRaftCluster``,
    vault/raft.go), one that restarted meanwhile starts sealed. ``resubmit`` (joining first if it has
    to) is then called, again after each such wait; a failure of it is logged and waited out, as the
    replica's state may be changing under it.
    """
    given = time.monotonic()

    def observe() -> SealStatus:
        nonlocal given
        status = replica.seal_status()
        if (
            resubmit is None
            or not status.sealed
            or status.progress
            or time.monotonic() - given < RESUBMIT_AFTER
        ):
            return status
        log.warning(
            "Vault at %s is still sealed with no share in: giving it the threshold again", replica.address
        )
        given = time.monotonic()
        try:
            return resubmit()
        except OperationError as error:  # a RaftJoinRefused too
            log.warning("Vault at %s: %s", replica.address, error)
            return status

    return poll_until(
        observe,
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
    replica: VaultApi,
    leader: _Leader,
    material: UnsealMaterial,
    timeout: float,
    source: str,
    *,
    seal: AnySeal | None = None,
) -> ReplicaUnseal:
    """Join ``replica`` to the leader if it never joined, submit the shares, await it unsealed.

    A refused join (``RaftJoinRefused``) is retried, re-reading the replica first: its own
    ``retry_join`` may have joined it meanwhile, or it may have to be told to join again.
    A replica that reports an auto-unseal seal gets no share (``_auto_unsealed_replica``).
    """
    before = replica.seal_status()
    check_seal_type(before, seal)
    if before.auto_unseal:
        return _auto_unsealed_replica(replica, leader, seal, timeout, before)
    joined = False
    submitted = [0]

    def attempt() -> SealStatus:
        nonlocal joined
        status = replica.seal_status()
        if status.sealed and not status.initialized and replica is not leader.api:
            leader.ready()
            replica.raft_join(leader.api.address, leader_ca_cert=leader.api.ca_cert_pem)
            joined = True
        return _submit_threshold(replica, material, source, submitted)

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
    status = _await_unsealed(replica, timeout, resubmit=attempt)
    return ReplicaUnseal(
        address=replica.address,
        was_sealed=before.sealed,
        joined=joined,
        sealed=status.sealed,
        shares_submitted=submitted[0],
    )


# OpenBao's answer to a join while the node's own retry_join is joining it (internal/vault/raft.go): the node
# needs no unseal key under auto-unseal, so retry_join completes by itself right after the leader's init.
ALREADY_JOINING = "raft is already initialized"


def _join_unless_joined(replica: VaultApi, leader: VaultApi) -> None:
    """Join ``replica`` to ``leader``; a replica that its own ``retry_join`` is joining meanwhile is fine."""
    try:
        replica.raft_join(leader.address, leader_ca_cert=leader.ca_cert_pem)
    except OperationError as error:
        if ALREADY_JOINING not in str(error):
            raise


def _auto_unsealed_replica(
    replica: VaultApi,
    leader: _Leader,
    seal: AnySeal | None,
    timeout: float,
    before: SealStatus | None = None,
) -> ReplicaUnseal:
    """Under auto-unseal: join ``replica`` if it never joined (the join unseals it), then wait until
    it has unsealed itself. No share is submitted: recovery shares cannot unseal."""
    if before is None:
        try:
            before = replica.seal_status()
        except OperationError as error:
            raise OperationError(f"{error}; {AUTO_UNSEAL_HINT}") from None
        check_seal_type(before, seal)
    if not before.auto_unseal:
        raise OperationError(
            f"Vault at {replica.address} uses the Shamir seal, but this Vault auto-unseals (the keeper "
            "holds recovery shares, or the catalog's vault.seal says so): every replica needs the same "
            "seal stanza"
        )
    joined = False
    if before.sealed and not before.initialized and replica is not leader.api:
        leader.ready()
        poll_until(
            lambda: _join_unless_joined(replica, leader.api),
            lambda _: True,
            what=f"the raft leader to let Vault at {replica.address} join",
            timeout=timeout,
            initial=0.5,
            maximum=4.0,
            transient=(RaftJoinRefused,),
        )
        joined = True
    try:
        status = poll_until(
            replica.seal_status,
            lambda status: not status.sealed,
            what=f"Vault at {replica.address} to unseal itself with its {before.seal_type} seal",
            timeout=timeout,
            initial=0.1,
            maximum=1.0,
            describe=lambda status: "sealed" if status.sealed else "unsealed",
        )
    except OperationError as error:
        raise OperationError(f"{error}; {AUTO_UNSEAL_HINT}") from None
    return ReplicaUnseal(
        address=replica.address,
        was_sealed=before.sealed,
        joined=joined,
        sealed=status.sealed,
        seal_type=before.seal_type,
    )


def _load_material(keeper: str, leader: VaultApi) -> tuple[UnsealMaterial, str] | None:
    """The keeper's material and where it is (for messages); None when it holds recovery shares
    (an auto-unsealed Vault: they cannot unseal, and are not needed to)."""
    store = open_keeper(keeper)
    material = store.load()
    if material is None:
        if leader.seal_status().initialized:
            raise OperationError(f"{store.location} is empty: cannot unseal Vault at {leader.address}")
        raise OperationError(f"Vault at {leader.address} is not initialised: run the init step first")
    if material.recovery:
        return None
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
    addresses: str, keeper: str, *, ca_cert: str = "", join_timeout: float = 30.0, catalog: str = ""
) -> UnsealResult:
    """Unseal the leader (first address), then join (if needed) and unseal each follower; wait until
    a node is active. Fails, after trying every replica, naming each that is still sealed.

    Under auto-unseal (the catalog's ``vault.seal``, the keeper's recovery shares or the replica's own
    seal status say so) no share is submitted: the replicas unseal themselves (``_auto_unsealed_replica``).
    """
    replicas = [VaultApi(address, ca_cert=ca_cert or None) for address in parse_addresses(addresses)]
    seal = catalog_seal(catalog)
    material = None if seal is not None and seal.type != "shamir" else _load_material(keeper, replicas[0])
    leader = _Leader(replicas[0], join_timeout)

    def unseal(replica: VaultApi) -> ReplicaUnseal:
        if material is None:
            return _auto_unsealed_replica(replica, leader, seal, join_timeout)
        return _unseal_replica(replica, leader, material[0], join_timeout, material[1], seal=seal)

    done, problems = _each(replicas, unseal)
    if problems:
        unsealed = [r.address for r in done if not r.sealed]
        also = f" (unsealed: {', '.join(unsealed)})" if unsealed else ""
        raise OperationError(
            f"{len(problems)} of {len(replicas)} Vault replicas are not unsealed{also}: "
            + "; ".join(problems)
        )
    _await_an_active_node(replicas, join_timeout)
    return UnsealResult(replicas=done)
