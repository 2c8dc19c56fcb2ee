"""Step *init*: initialise Vault once, straight into the keeper, and never lose what init returns.

The shares and the root token go from Vault's response into the keeper and
nowhere else: not stdout, not a log, not the step's output (which Argo shows).

Order: **reserve** the keeper (a placeholder written create-only and rewritten,
see ``vaultflow.steps.keeper.base``), so a keeper that cannot be written or
already holds something stops the run while Vault holds nothing; **initialise**;
**fill** the reservation, retrying with backoff (``WritePolicy``). If the keeper
still cannot be written, the material goes to the fallback keeper (reserved
before init as well); without one, the step fails with the emergency procedure
(docs/operations.md).

Never initialise twice, never overwrite a keeper:

* Vault initialised and the keeper holds material: nothing to do, once the
  material's shape (shares, threshold) is the one Vault reports; material of
  another shape belongs to another Vault, and the run stops before anything
  uses it.
* Vault initialised, the keeper empty or only reserved, and the fallback holds
  material: copy it into the keeper (a run whose keeper write failed; re-run
  once the keeper is fixed).
* Vault initialised, nothing anywhere: stop. The material is somewhere else (or
  lost); guessing would be worse than asking a human.
* Vault not initialised and a keeper holds material: stop. The keeper belongs
  to another Vault (or this one lost its storage).

The step runs on every bootstrap (a no-op on an initialised Vault with a full
keeper), so that a re-run can do the copy above.

Under auto-unseal (the server's ``seal`` stanza: transit, a cloud KMS) Vault
takes *recovery* shares at init (``recovery_shares``/``recovery_threshold``) and
unseals itself; ``shares``/``threshold`` then say how many recovery shares, and
the keeper keeps them exactly like unseal shares (``UnsealMaterial.recovery``).
With a catalog, the server's seal type is checked against ``vault.seal`` before
anything is done (``vaultflow.steps.vault.seal``).
"""

import sys

from pydantic import BaseModel

from vaultflow.base.errors import InputError, OperationError
from vaultflow.gitops.vault_seal import AnySeal
from vaultflow.steps.keeper import (
    RESERVED_PROCEDURE,
    Keeper,
    Reservation,
    UnsealMaterial,
    WritePolicy,
    open_keeper,
    write_retrying,
)
from vaultflow.steps.vault.api import SealStatus, VaultApi
from vaultflow.steps.vault.seal import catalog_seal, check_seal_type
from vaultflow.steps.vault.status import parse_addresses


class InitResult(BaseModel):
    initialized_now: bool
    keeper: str
    shares: int
    threshold: int
    copied_from: str | None = None  # the fallback keeper the material was copied from, on a recovery
    seal_type: str = "shamir"  # what Vault reports; anything else auto-unseals
    recovery: bool = False  # the kept shares are recovery shares (auto-unseal), not unseal shares


def init_vault(
    addresses: str,
    keeper: str,
    *,
    fallback_keeper: str = "",
    shares: int = 5,
    threshold: int = 3,
    pgp_keys: str = "",
    ca_cert: str = "",
    catalog: str = "",
) -> InitResult:
    """Initialise the leader (first address) if needed; the material goes to ``keeper`` only
    (or, if it cannot be written, to ``fallback_keeper``).

    ``pgp_keys``: comma-separated base64 PGP public keys, one per share (optional).
    ``catalog``: when given, the server's seal must be the catalog's ``vault.seal``.
    """
    pgp = [key.strip() for key in pgp_keys.split(",") if key.strip()]
    if not 1 <= threshold <= shares:
        raise InputError(f"threshold {threshold} must be between 1 and the number of shares ({shares})")
    if pgp and len(pgp) != shares:
        raise InputError(f"{len(pgp)} PGP keys given for {shares} shares: give one per share")
    if fallback_keeper and fallback_keeper == keeper:
        raise InputError("the fallback keeper must be another place than the keeper")
    leader = VaultApi(parse_addresses(addresses)[0], ca_cert=ca_cert or None)
    store = open_keeper(keeper)
    fallback = open_keeper(fallback_keeper) if fallback_keeper else None
    return initialise(
        leader,
        store,
        fallback,
        shares=shares,
        threshold=threshold,
        pgp_keys=pgp,
        policy=WritePolicy.from_env(),
        seal=catalog_seal(catalog),
    )


def initialise(
    leader: VaultApi,
    store: Keeper,
    fallback: Keeper | None,
    *,
    shares: int,
    threshold: int,
    pgp_keys: list[str],
    policy: WritePolicy,
    seal: AnySeal | None = None,
) -> InitResult:
    """``init_vault`` with its keepers and Vault client opened (what the tests drive directly)."""
    status = leader.seal_status()
    check_seal_type(status, seal)
    held = store.content()
    if status.initialized:
        if isinstance(held, UnsealMaterial):
            _check_shape(leader, status, store, held)
            return InitResult(
                initialized_now=False,
                keeper=store.location,
                shares=len(held.shares),
                threshold=held.threshold,
                seal_type=status.seal_type,
                recovery=held.recovery,
            )
        return _recover(leader, status, store, held, fallback=fallback, policy=policy)
    for keeper in (store, fallback):
        if keeper is not None and isinstance(keeper.content(), UnsealMaterial):
            raise OperationError(
                f"{keeper.location} already holds unseal material but Vault at {leader.address} "
                "is not initialised: the keeper belongs to another Vault (or this one lost its storage); "
                "refusing to overwrite it"
            )
    store.reserve()
    if fallback is not None:
        fallback.reserve()
    recovery = status.auto_unseal
    keys, root_token = (
        leader.initialize(shares, threshold, pgp_keys, recovery=True)
        if recovery
        else leader.initialize(shares, threshold, pgp_keys)
    )
    material = UnsealMaterial(
        shares=keys,
        threshold=threshold,
        pgp_encrypted=bool(pgp_keys),
        root_token=root_token,
        recovery=recovery,
    )
    _keep(leader, store, fallback, material, policy)
    return InitResult(
        initialized_now=True,
        keeper=store.location,
        shares=shares,
        threshold=threshold,
        seal_type=status.seal_type,
        recovery=recovery,
    )


def _check_shape(leader: VaultApi, status: SealStatus, keeper: Keeper, material: UnsealMaterial) -> None:
    """Stop when the keeper's material cannot be this Vault's: its number of shares or its threshold
    differ from what the (initialised) Vault reports. Only counts are compared and shown."""
    if not status.shares or not status.threshold:  # not reported: nothing to compare
        return
    if (len(material.shares), material.threshold) == (status.shares, status.threshold):
        return
    raise OperationError(
        f"{keeper.location} holds {len(material.shares)} shares with threshold {material.threshold}, but "
        f"Vault at {leader.address} was initialised with {status.shares} shares and threshold "
        f"{status.threshold}: the keeper belongs to another Vault (or this one was rekeyed since). "
        "Nothing was changed; give the keeper of this Vault (never re-initialise a Vault that holds data)"
    )


def _keep(
    leader: VaultApi, store: Keeper, fallback: Keeper | None, material: UnsealMaterial, policy: WritePolicy
) -> None:
    """Fill the keeper; failing that, the fallback. The material exists nowhere else."""
    try:
        write_retrying(store, "store the unseal material", lambda: store.fill(material), policy)
        return
    except OperationError as error:
        failure = str(error)
    if fallback is None:
        raise OperationError(
            f"Vault at {leader.address} was initialised just now, but its unseal material could not be "
            f"stored: {failure}. No fallback keeper was given, so the material is lost; Vault holds no "
            f"data yet. Follow {RESERVED_PROCEDURE}"
        )
    try:
        write_retrying(fallback, "store the unseal material", lambda: fallback.fill(material), policy)
    except OperationError as fallback_error:
        raise OperationError(
            f"Vault at {leader.address} was initialised just now, but its unseal material could be "
            f"stored neither in the keeper ({failure}) nor in the fallback ({fallback_error}); "
            f"Vault holds no data yet. Follow {RESERVED_PROCEDURE}"
        ) from None
    raise OperationError(
        f"Vault at {leader.address} was initialised just now and {failure}; the unseal material is safe "
        f"in the fallback, {fallback.location}. Make {store.location} writable and re-run the pipeline "
        "with the same keeper and fallback-keeper: init copies the material over"
    )


def _recover(
    leader: VaultApi,
    status: SealStatus,
    store: Keeper,
    held: Reservation | None,
    *,
    fallback: Keeper | None,
    policy: WritePolicy,
) -> InitResult:
    """Vault is initialised but the keeper holds no material: copy it from the fallback, or stop."""
    rescued = fallback.content() if fallback is not None else None
    if fallback is not None and isinstance(rescued, UnsealMaterial):
        _check_shape(leader, status, fallback, rescued)
        write_retrying(
            store, "copy the unseal material from the fallback", lambda: store.fill(rescued), policy
        )
        print(
            f"copied the unseal material from {fallback.location} into {store.location}; "
            "the fallback still holds a copy: delete it once the keeper is backed up",
            file=sys.stderr,
        )
        return InitResult(
            initialized_now=False,
            keeper=store.location,
            shares=len(rescued.shares),
            threshold=rescued.threshold,
            copied_from=fallback.location,
            seal_type=status.seal_type,
            recovery=rescued.recovery,
        )
    elsewhere = f" and {fallback.location} holds none either" if fallback is not None else ""
    if held is not None:
        raise OperationError(
            f"Vault at {leader.address} is initialised but {store.location} holds only the reservation "
            f"made before init (since {held.reserved_at}){elsewhere}: the run that initialised Vault "
            f"could not store its unseal material. Follow {RESERVED_PROCEDURE} "
            "(never re-initialise a Vault that holds data)"
        )
    raise OperationError(
        f"Vault at {leader.address} is already initialised but {store.location} is empty{elsewhere}: "
        "refusing to continue (restore the keeper from backup; "
        "never re-initialise a Vault that holds data)"
    )
