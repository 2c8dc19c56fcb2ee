"""Step *init*: initialise Vault once, straight into the keeper.

The shares and the root token go from Vault's response into the keeper and
nowhere else: not stdout, not a log, not the step's output (which Argo shows).
Never initialise twice, never overwrite a keeper:

* Vault initialised and the keeper holds material: nothing to do.
* Vault initialised and the keeper is empty: stop. The material is somewhere
  else (or lost); guessing would be worse than asking a human.
* Vault not initialised and the keeper holds material: stop. The keeper
  belongs to another Vault (or this one lost its storage).

The keeper is checked writable *before* initialising, so that a keeper that
cannot be written cannot lose freshly generated shares.
"""

from pydantic import BaseModel

from vaultflow.base.errors import InputError, OperationError
from vaultflow.steps.keeper import UnsealMaterial, open_keeper
from vaultflow.steps.vault.api import VaultApi
from vaultflow.steps.vault.status import parse_addresses


class InitResult(BaseModel):
    initialized_now: bool
    keeper: str
    shares: int
    threshold: int


def init_vault(
    addresses: str,
    keeper: str,
    *,
    shares: int = 5,
    threshold: int = 3,
    pgp_keys: str = "",
    ca_cert: str = "",
) -> InitResult:
    """Initialise the leader (first address) if needed; the material goes to ``keeper`` only.

    ``pgp_keys``: comma-separated base64 PGP public keys, one per share (optional).
    """
    pgp = [key.strip() for key in pgp_keys.split(",") if key.strip()]
    if not 1 <= threshold <= shares:
        raise InputError(f"threshold {threshold} must be between 1 and the number of shares ({shares})")
    if pgp and len(pgp) != shares:
        raise InputError(f"{len(pgp)} PGP keys given for {shares} shares: give one per share")
    leader = VaultApi(parse_addresses(addresses)[0], ca_cert=ca_cert or None)
    store = open_keeper(keeper)
    status = leader.seal_status()
    existing = store.load()
    if status.initialized:
        if existing is None:
            raise OperationError(
                f"Vault at {leader.address} is already initialised but {store.location} is empty: "
                "refusing to continue (restore the keeper from backup; "
                "never re-initialise a Vault that holds data)"
            )
        return InitResult(
            initialized_now=False,
            keeper=store.location,
            shares=len(existing.shares),
            threshold=existing.threshold,
        )
    if existing is not None:
        raise OperationError(
            f"{store.location} already holds unseal material but Vault at {leader.address} "
            "is not initialised: the keeper belongs to another Vault (or this one lost its storage); "
            "refusing to overwrite it"
        )
    store.check_writable()
    keys, root_token = leader.initialize(shares, threshold, pgp)
    store.store_new(
        UnsealMaterial(shares=keys, threshold=threshold, pgp_encrypted=bool(pgp), root_token=root_token)
    )
    return InitResult(initialized_now=True, keeper=store.location, shares=shares, threshold=threshold)
