"""Which replica to talk to with a token: the active node, wherever raft elected it.

The first address of ``vault-addresses`` is the node bootstrap initialises, not
forever the active one: when it stops (a pod evicted, a node lost), the other
voters elect a new active node within seconds, and a step that kept talking to
the first address would fail although Vault serves. So a step that needs a
token first finds the active node among every replica.

The replicas are asked at once, each on its own thread and each with backoff
(``sys/health``, no token), because a stopped replica only fails after the
connect retries (``VaultApi``: about 30 s): asking one after the other would
make the dead one delay finding the live one. When no replica becomes active
within ``$VAULTFLOW_VAULT_ACTIVE_TIMEOUT`` seconds (default 60: an election takes
seconds), the step fails naming what each replica was last seen as (the
stopped ones by why they are unreachable). A raft cluster elects a leader only
while a majority of its voters runs, and a follower joined moments ago is not a
voter yet (raft autopilot promotes it after its stabilisation time, 10 s by
default): a three-node cluster survives losing one node only once both
followers were promoted.
"""

import os
import sys
import threading

from vaultflow.base.errors import OperationError
from vaultflow.base.retry import poll_until
from vaultflow.steps.vault.api import VaultApi
from vaultflow.steps.vault.status import parse_addresses

ACTIVE_TIMEOUT_ENV = "VAULTFLOW_VAULT_ACTIVE_TIMEOUT"
DEFAULT_ACTIVE_TIMEOUT = 60.0


def active_timeout() -> float:
    value = os.environ.get(ACTIVE_TIMEOUT_ENV, "")
    try:
        return float(value) if value else DEFAULT_ACTIVE_TIMEOUT
    except ValueError:
        raise OperationError(f"${ACTIVE_TIMEOUT_ENV} must be a number of seconds (got {value!r})") from None


class _Watch:
    """What each replica was last seen as, and the first one seen active."""

    def __init__(self, replicas: list[VaultApi]) -> None:
        self.seen = dict.fromkeys((replica.address for replica in replicas), "no answer yet")
        self.active: VaultApi | None = None
        self.over = threading.Event()  # an active node was found, or the caller gave up
        self._lock = threading.Lock()

    def observe(self, replica: VaultApi) -> str:
        try:
            state = replica.health()
        except OperationError as error:
            state = str(error)
        with self._lock:
            self.seen[replica.address] = state
            if state == "active" and self.active is None:
                self.active = replica
                self.over.set()
        return state

    def watch(self, replica: VaultApi, timeout: float) -> None:
        """Poll one replica until it is active or the watch is over (a thread's whole life)."""
        try:
            poll_until(
                lambda: self.observe(replica),
                lambda _: self.over.is_set(),
                what=f"Vault at {replica.address} to become active",
                timeout=timeout,
                initial=0.2,
                maximum=2.0,
            )
        except OperationError:
            return  # timed out: the caller reports what was seen

    def described(self, address: str) -> str:
        """``address`` and what it was last seen as, once (an error message names it already)."""
        with self._lock:
            state = self.seen[address]
        return state if address in state else f"Vault at {address}: {state}"

    def describe(self) -> str:
        return "; ".join(self.described(address) for address in self.seen)


def active_node(
    addresses: str, *, token: str | None = None, ca_cert: str = "", timeout: float | None = None
) -> VaultApi:
    """A client (with ``token``) of the active node among ``addresses``. A single address is used as it
    is: there is no other node to turn to, and the call itself says what is wrong with it."""
    listed = parse_addresses(addresses)
    if len(listed) == 1:
        return VaultApi(listed[0], token=token, ca_cert=ca_cert or None)
    replicas = [VaultApi(address, ca_cert=ca_cert or None) for address in listed]
    wait = active_timeout() if timeout is None else timeout
    watch = _Watch(replicas)
    for replica in replicas:
        # Daemon threads: one stuck in connect retries to a stopped replica must not hold the step up.
        threading.Thread(target=watch.watch, args=(replica, wait), daemon=True).start()
    watch.over.wait(wait)
    watch.over.set()  # every watching thread stops at its next poll
    if watch.active is None:
        raise OperationError(
            f"no active Vault node among {', '.join(listed)} within {wait:g}s ({watch.describe()}). "
            "Raft elects an active node only while a majority of its voters runs: start the replicas "
            "that are down (then re-run the pipeline)"
        )
    if watch.active.address != listed[0]:
        print(
            f"the active node is Vault at {watch.active.address} ({watch.described(listed[0])})",
            file=sys.stderr,
        )
    return watch.active if token is None else watch.active.with_token(token)
