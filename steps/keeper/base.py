"""What a keeper stores, and the contract every keeper honours.

A keeper is in one of three states:

* **empty**: nothing there;
* **reserved**: a placeholder written *before* Vault is initialised, create-only,
  and then rewritten the way the material will be written. It holds no secret;
  it proves, by writing, that the keeper can be created and updated, so that a
  conflict or a denial shows up while Vault holds nothing yet;
* **full**: the unseal material (and, while a bootstrap runs, a root token).

Init reserves, initialises, then fills (retrying, see ``WritePolicy``); material
is never overwritten by a fill or a reservation.
"""

from __future__ import annotations

import abc
import datetime
import json
import os
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from vaultflow.base.errors import OperationError
from vaultflow.base.retry import backoff

RESERVATION_KIND: Literal["vaultflow-keeper-reservation"] = "vaultflow-keeper-reservation"
RESERVED_PROCEDURE = "docs/operations.md, 'Vault initialised, the keeper only reserved'"
WRITE_TIMEOUT_ENV = "VAULTFLOW_KEEPER_WRITE_TIMEOUT"


class KeeperConflict(OperationError):
    """The keeper already holds material (or was changed by someone else) and would be overwritten."""


class KeeperReserved(OperationError):
    """The keeper holds only a reservation: the run that made it never stored unseal material."""


class KeeperCorrupt(OperationError):
    """The keeper holds something that is neither unseal material nor a reservation. It is never
    written over: it may be the only copy of the shares, damaged, and a human must look at it."""


class UnsealMaterial(BaseModel):
    """Vault's unseal shares (plaintext, or PGP-encrypted per operator) and, transiently, a root token.

    Under auto-unseal (a ``seal`` stanza: transit, a cloud KMS) init returns
    *recovery* shares instead, kept here the same way (``recovery: true``): they
    never unseal, but they are what generating a root token (or a rekey) takes.

    ``__repr__`` and ``__str__`` never show the values: a material object that
    ends up in a log line or an exception message leaks nothing.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    shares: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)
    threshold: int = Field(ge=1)
    pgp_encrypted: bool = False
    root_token: str | None = None
    recovery: bool = False  # the shares are recovery keys of an auto-unsealed Vault

    @model_validator(mode="after")
    def _threshold_reachable(self) -> UnsealMaterial:
        if self.threshold > len(self.shares):
            raise ValueError(f"threshold {self.threshold} is more than the {len(self.shares)} shares")
        return self

    def __repr__(self) -> str:
        root = "present" if self.root_token else "absent"
        encrypted = ", pgp-encrypted" if self.pgp_encrypted else ""
        kind = "recovery shares" if self.recovery else "shares"
        shares = f"{len(self.shares)} {kind}, threshold {self.threshold}{encrypted}"
        return f"UnsealMaterial({shares}, root token {root})"

    __str__ = __repr__

    def to_json(self) -> str:
        # Shamir material is written exactly as before ``recovery`` existed: older readers forbid extras.
        return json.dumps(self.model_dump(exclude=None if self.recovery else {"recovery"}), sort_keys=True)

    def with_root_token(self, token: str | None) -> UnsealMaterial:
        return self.model_copy(update={"root_token": token})


class Reservation(BaseModel):
    """The placeholder a keeper holds between reservation and init: who reserved it and when, no secret."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["vaultflow-keeper-reservation"] = RESERVATION_KIND
    reservation: str  # a random id, only to tell two reservations apart
    reserved_at: str  # UTC, ISO 8601

    @classmethod
    def new(cls) -> Reservation:
        now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        return cls(reservation=secrets.token_hex(8), reserved_at=now.isoformat())

    def to_json(self) -> str:
        return json.dumps(self.model_dump(), sort_keys=True)


Content = UnsealMaterial | Reservation


def corrupt(where: str, problem: str) -> KeeperCorrupt:
    """The one message for a keeper whose content is not what vaultflow writes."""
    return KeeperCorrupt(
        f"{where} is corrupt: {problem}. vaultflow never writes over it (it may be the only copy of the "
        "shares): restore it from a backup, or, if it holds nothing needed, delete it and re-run"
    )


def _field_problems(error: ValidationError, model: type[BaseModel]) -> str:
    """What is wrong with each field vaultflow writes; fields it does not write are counted, never
    named (a name could be a value pasted in the wrong place), and no value is ever shown."""
    problems, unknown = [], 0
    for item in error.errors(include_input=False, include_url=False):
        location = item["loc"]
        if location and location[0] not in model.model_fields:
            unknown += 1
            continue
        field = ".".join(str(part) for part in location)
        problems.append(
            f"{field}: {item['msg']}" if field else str(item["msg"]).removeprefix("Value error, ")
        )
    if unknown:
        problems.append(f"{unknown} field(s) vaultflow does not write (not named here)")
    return "; ".join(problems)


def parse_content(data: bytes, where: str) -> Content:
    """What a keeper's stored bytes are: material, a reservation, or ``KeeperCorrupt`` saying what is
    wrong (empty, not UTF-8, not JSON and where it breaks off, which field is missing or invalid).
    The content is never echoed: it may hold the shares."""
    if not data.strip():
        raise corrupt(where, f"it holds no data ({len(data)} bytes)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise corrupt(where, f"it is not UTF-8 text (byte {error.start} of {len(data)})") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        problem = f"{error.msg} at line {error.lineno} column {error.colno} of {len(data)} bytes"
        raise corrupt(where, f"it is not JSON ({problem}: truncated, or not written by vaultflow)") from None
    if not isinstance(raw, dict):
        raise corrupt(where, f"it holds a JSON {type(raw).__name__}, not the object vaultflow writes")
    model: type[UnsealMaterial | Reservation]
    model, what = (
        (Reservation, "a reservation")
        if raw.get("kind") == RESERVATION_KIND
        else (UnsealMaterial, "unseal material")
    )
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        raise corrupt(where, f"it is not valid {what} ({_field_problems(error, model)})") from None


def reserved_message(location: str, reservation: Reservation) -> str:
    return (
        f"{location} is reserved (since {reservation.reserved_at}) but holds no unseal material: "
        "the bootstrap run that reserved it stopped before storing the material. "
        f"If Vault is initialised, follow {RESERVED_PROCEDURE}"
    )


class Keeper(abc.ABC):
    """Where unseal material lives. Implementations must be safe to call again after a crash.

    Implementations read bytes (what is stored may not even be text) and write
    text; this class decides what may be written over what.
    """

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """Where the material is, for messages (never the material itself)."""

    @abc.abstractmethod
    def _read(self) -> bytes | None:
        """The stored bytes, or None when there are none (absent, or a secret without a readable
        version). Bytes, not text: what is stored may not even be text, and ``parse_content`` says so."""

    @abc.abstractmethod
    def _create(self, text: str) -> None:
        """Store ``text`` where nothing is; raise ``KeeperConflict`` if something already is."""

    @abc.abstractmethod
    def _update(self, text: str) -> None:
        """Replace what ``_read`` last saw with ``text`` (with compare-and-set where the backend has it)."""

    def _check_access(self) -> None:
        """Raise if the caller may not create and update the keeper (where the backend can be asked)."""
        return

    def _refuse_unless_empty(self) -> None:
        """``KeeperConflict`` when something is stored; an existing but empty secret (a create whose
        first value never landed) is ours to fill."""
        if self._read() is not None:
            raise KeeperConflict(f"{self.location} already exists: refusing to overwrite it")

    def content(self) -> Content | None:
        """What the keeper holds (None: nothing); every write reads this first, so corrupt content
        (``KeeperCorrupt``) stops it and is never written over."""
        data = self._read()
        return None if data is None else parse_content(data, self.location)

    def load(self) -> UnsealMaterial | None:
        """The stored material, or None when the keeper is empty; a bare reservation is an error."""
        current = self.content()
        if isinstance(current, Reservation):
            raise KeeperReserved(reserved_message(self.location, current))
        return current

    def reserve(self) -> Reservation:
        """Before init: write a placeholder create-only, then rewrite it as ``fill`` will.

        Both writes happen while Vault holds nothing, so a keeper that cannot be
        written, or holds something already, stops the run before init. A
        reservation left by a run that stopped before init is taken over.
        """
        self._check_access()
        current = self.content()
        if isinstance(current, UnsealMaterial):
            raise KeeperConflict(f"{self.location} already holds unseal material: refusing to overwrite it")
        reservation = Reservation.new()
        if current is None:
            self._create(reservation.to_json())
        self._update(reservation.to_json())
        return reservation

    def fill(self, material: UnsealMaterial) -> None:
        """Store material for a freshly initialised Vault: over the reservation (or where it was, if it
        vanished), never over material."""
        current = self.content()
        if isinstance(current, UnsealMaterial):
            raise KeeperConflict(f"{self.location} already holds unseal material: refusing to overwrite it")
        if current is None:
            self._create(material.to_json())
        else:
            self._update(material.to_json())

    def set_root_token(self, token: str | None) -> None:
        """Keep (or, with None, forget) the root token beside the shares."""
        material = self.load()
        if material is None:
            raise OperationError(f"{self.location} holds no unseal material")
        self._update(material.with_root_token(token).to_json())


@dataclass(frozen=True)
class WritePolicy:
    """How long a keeper write that must not be lost is retried: the shares of a Vault initialised a
    moment ago exist nowhere else. Exponential backoff, from ``first_wait`` up to ``max_wait``, for at
    least two attempts and ``timeout`` seconds (``$VAULTFLOW_KEEPER_WRITE_TIMEOUT``, default 5 minutes:
    long enough for an operator to fix a permission while the step waits). The waits are jittered
    (``vaultflow.base.retry.backoff``)."""

    timeout: float = 300.0
    first_wait: float = 0.5
    max_wait: float = 30.0

    @classmethod
    def from_env(cls) -> WritePolicy:
        value = os.environ.get(WRITE_TIMEOUT_ENV, "")
        try:
            return cls(timeout=float(value)) if value else cls()
        except ValueError:
            raise OperationError(
                f"${WRITE_TIMEOUT_ENV} must be a number of seconds (got {value!r})"
            ) from None


def write_retrying(keeper: Keeper, write: str, action: Callable[[], None], policy: WritePolicy) -> None:
    """Run ``action`` until it succeeds, retrying every failure but a conflict (which retrying cannot
    change); each failed attempt is reported on stderr (messages never hold a value)."""
    import tenacity

    def report(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        print(
            f"{keeper.location}: could not {write} (attempt {state.attempt_number}: {error}); "
            f"retrying in {wait:.1f}s",
            file=sys.stderr,
        )

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_delay(policy.timeout) & tenacity.stop_after_attempt(2),
        wait=backoff(policy.first_wait, policy.max_wait),
        retry=tenacity.retry_if_exception(
            lambda error: isinstance(error, OperationError) and not isinstance(error, KeeperConflict)
        ),
        before_sleep=report,
        reraise=True,
    )
    try:
        retrying(action)
    except KeeperConflict:
        raise
    except OperationError as error:
        attempts = retrying.statistics.get("attempt_number", 1)
        raise OperationError(f"{error} (gave up after {attempts} attempts)") from None
