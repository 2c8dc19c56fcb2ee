"""A thin adapter over Vault's HTTP API (hvac), with errors an operator can act on.

Every call goes through ``vault_errors``, which turns transport and API
failures into one ``OperationError`` sentence naming the server, the action and
the cause: unreachable (and why: DNS name not found, connection refused, no
answer in time), TLS not trusted, sealed, permission denied, or what Vault
said. Vault's error texts never contain secret values; request bodies (which
may) are never echoed.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from vaultflow.base.errors import InputError, OperationError
from vaultflow.base.retry import backoff, poll_until
from vaultflow.steps.transport import transport_cause

DEFAULT_TIMEOUT = 10.0
# A replica that is still starting refuses connections for a few seconds: connecting is
# retried with exponential backoff and jitter (waits of about 1, 2, 4, 8, 10, 10 s: up to about
# 30 s for 6 retries) before the step gives up. Only connecting is retried, never a request that
# reached Vault: those are not all idempotent (init is not).
CONNECT_RETRIES_ENV = "VAULTFLOW_VAULT_CONNECT_RETRIES"
DEFAULT_CONNECT_RETRIES = 6
CONNECT_BACKOFF = (1.0, 10.0)  # first and longest wait, seconds
# hashicorp/raft-autopilot AddServer (raft.go): the raft leader refuses to add a server whose
# cluster address a voter of another node ID already has, when removing that voter would cost
# quorum (numVoters - removals < quorum). OpenBao passes the sentence through unchanged.
AUTOPILOT_REFUSAL = "Preventing server addition that would require removal of too many servers"


# Plain http carries tokens, unseal shares and secret values in the clear: a step refuses it to any
# host but loopback unless the user says so explicitly (``insecure_http=True``, or this variable in
# the step's environment).
INSECURE_HTTP_ENV = "VAULTFLOW_VAULT_INSECURE_HTTP"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def _truthy(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def refuse_plain_http(address: str, *, insecure_http: bool | None = None) -> None:
    """``InputError`` (one line) for ``http://`` to a host that is not loopback, unless allowed.

    ``insecure_http=None`` reads ``$VAULTFLOW_VAULT_INSECURE_HTTP``.
    """
    split = urlsplit(address)
    if split.scheme != "http" or (split.hostname or "") in LOOPBACK_HOSTS:
        return
    allowed = _truthy(os.environ.get(INSECURE_HTTP_ENV, "")) if insecure_http is None else insecure_http
    if not allowed:
        raise InputError(
            f"Vault at {address}: plain http to a host that is not loopback sends tokens and secrets "
            f"unencrypted; use https (with --ca-cert / $VAULT_CACERT for a private CA), or set "
            f"{INSECURE_HTTP_ENV}=true to accept that"
        )


# A KV mount just enabled as (or upgraded to) version 2 answers 400 with this for a moment while
# it upgrades its storage (OpenBao internal/builtin/logical/kv/upgrade.go, as Vault's kv plugin).
KV_UPGRADING = "Upgrading from non-versioned to versioned data"


class RaftJoinRefused(OperationError):
    """The raft leader refused to add a joining node (``AUTOPILOT_REFUSAL``)."""


class KvUpgrading(OperationError):
    """A KV v2 mount is still upgrading (``KV_UPGRADING``): it serves requests again shortly."""


@dataclass(frozen=True)
class SealStatus:
    address: str
    initialized: bool
    sealed: bool
    threshold: int
    shares: int
    progress: int
    version: str
    product: str  # "openbao" or "vault"
    storage_type: str
    seal_type: str = "shamir"  # "shamir", or the auto-unseal mechanism ("transit", "awskms", ...)
    recovery_seal: bool = False  # auto-unseal: the shares are recovery keys, never unseal keys

    @property
    def auto_unseal(self) -> bool:
        return self.recovery_seal or self.seal_type not in ("", "shamir")


@contextmanager
def vault_errors(address: str, action: str, *, timeout: float | None = None) -> Iterator[None]:
    """One ``OperationError`` for whatever hvac or requests raise inside: what, where and why."""
    import hvac.exceptions
    import requests

    try:
        yield
    except requests.exceptions.SSLError as error:
        cause = transport_cause(error)
        raise OperationError(
            f"Vault at {address}: TLS verification failed ({cause}): could not {action} (set the CA bundle)"
        ) from None
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as error:
        cause = transport_cause(error, host=urlsplit(address).hostname or address, timeout=timeout)
        raise OperationError(f"Vault at {address} is unreachable ({cause}): could not {action}") from None
    except hvac.exceptions.VaultDown:
        raise OperationError(f"Vault at {address} is sealed: cannot {action}") from None
    except hvac.exceptions.Forbidden:
        raise OperationError(f"Vault at {address} denied permission to {action}") from None
    except hvac.exceptions.VaultError as error:
        # One line: a follower passes on its leader's answer as a multi-line "Error making API request".
        errors = "; ".join(" ".join(str(e).split()) for e in (error.errors or [])) or type(error).__name__
        if AUTOPILOT_REFUSAL in errors:
            raise RaftJoinRefused(
                f"Vault at {address}: the raft leader refused to add it (another member has the same "
                f"cluster address, or removing one would cost quorum): could not {action}: {errors}"
            ) from None
        if KV_UPGRADING in errors:
            raise KvUpgrading(f"Vault at {address} could not {action} yet: {errors}") from None
        raise OperationError(f"Vault at {address} refused to {action}: {errors}") from None


# What sys/health's status code means when hvac hands back the raw response instead of its body.
_HEALTH_CODES = {
    200: "active",
    429: "standby",
    473: "performance standby",
    501: "uninitialised",
    503: "sealed",
}


def _health_state(health: Mapping[str, Any] | Any) -> str:
    """One word for ``sys/health``: active, standby, sealed, uninitialised (or what the code was)."""
    if not isinstance(health, Mapping):
        code = getattr(health, "status_code", None)
        return _HEALTH_CODES.get(code, f"HTTP {code}") if isinstance(code, int) else "no answer"
    if health.get("initialized") is not True:
        return "uninitialised"
    if health.get("sealed") is not False:
        return "sealed"
    return "standby" if health.get("standby") else "active"


class VaultApi:
    """One Vault (or OpenBao) server, optionally with a token."""

    def __init__(
        self,
        address: str,
        *,
        token: str | None = None,
        ca_cert: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        insecure_http: bool | None = None,
    ) -> None:
        """``insecure_http``: accept ``http://`` to a host that is not loopback (``None``: as
        ``$VAULTFLOW_VAULT_INSECURE_HTTP`` says; refused by default, see ``refuse_plain_http``)."""
        import hvac

        self.address = address.rstrip("/")
        refuse_plain_http(self.address, insecure_http=insecure_http)
        self.insecure_http = insecure_http
        self.ca_cert = ca_cert
        self.timeout = timeout
        # hvac takes a given session's ``verify`` over its own argument (hvac issue 991): the CA is set
        # on the session, or a ``ca_cert`` would be silently replaced by the system's roots.
        session = _session()
        session.verify = ca_cert or True
        self.client = hvac.Client(
            url=self.address, token=token, verify=ca_cert or True, timeout=timeout, session=session
        )

    def with_token(self, token: str) -> VaultApi:
        return VaultApi(
            self.address,
            token=token,
            ca_cert=self.ca_cert,
            timeout=self.timeout,
            insecure_http=self.insecure_http,
        )

    def errors(self, action: str) -> AbstractContextManager[None]:
        """``vault_errors`` for this server (its address and timeout) around a call that does ``action``."""
        return vault_errors(self.address, action, timeout=self.timeout)

    # --- seal and init ------------------------------------------------------------------------

    def seal_status(self) -> SealStatus:
        with self.errors("read the seal status"):
            raw = self.client.sys.read_seal_status()
        # OpenBao reports commit_date where Vault reports build_date.
        product = "openbao" if "commit_date" in raw and "build_date" not in raw else "vault"
        return SealStatus(
            address=self.address,
            initialized=bool(raw["initialized"]),
            sealed=bool(raw["sealed"]),
            threshold=int(raw.get("t", 0)),
            shares=int(raw.get("n", 0)),
            progress=int(raw.get("progress", 0)),
            version=str(raw.get("version", "")),
            product=product,
            storage_type=str(raw.get("storage_type", "")),
            seal_type=str(raw.get("type", "shamir")),
            recovery_seal=bool(raw.get("recovery_seal", False)),
        )

    def initialize(
        self, shares: int, threshold: int, pgp_keys: list[str] | None, *, recovery: bool = False
    ) -> tuple[list[str], str]:
        """Initialise; return (shares as returned: base64, or PGP-encrypted base64) and the root token.

        ``recovery``: the server auto-unseals, so the shares asked for are recovery keys
        (``recovery_shares``/``recovery_threshold``; OpenBao refuses ``secret_shares`` then,
        internal/http/sys_init.go ``validateInitParameters``) and come back as ``recovery_keys_base64``.
        """
        with self.errors("initialise"):
            if recovery:
                result = self.client.sys.initialize(
                    recovery_shares=shares, recovery_threshold=threshold, recovery_pgp_keys=pgp_keys or None
                )
                return list(result["recovery_keys_base64"]), str(result["root_token"])
            result = self.client.sys.initialize(
                secret_shares=shares, secret_threshold=threshold, pgp_keys=pgp_keys or None
            )
        return list(result["keys_base64"]), str(result["root_token"])

    def submit_unseal_share(self, share: str) -> SealStatus:
        with self.errors("accept an unseal share"):
            self.client.sys.submit_unseal_key(key=share)
        return self.seal_status()

    def reset_unseal(self) -> None:
        with self.errors("reset the unseal progress"):
            self.client.sys.submit_unseal_key(reset=True)

    def health(self) -> str:
        """``active``, ``standby``, ``sealed`` or ``uninitialised``, from ``sys/health``."""
        with self.errors("read its health"):
            return _health_state(self.client.sys.read_health_status(method="GET"))

    def is_active(self) -> bool:
        """Unsealed and the active node (not a standby, not still electing a raft leader)."""
        return self.health() == "active"

    def wait_until_active(self, timeout: float = 30.0) -> None:
        """Unsealed is not yet usable: raft must elect a leader before the node serves requests."""
        poll_until(
            self.health,
            lambda state: state == "active",
            what=f"Vault at {self.address} to become the active node",
            timeout=timeout,
            maximum=0.5,
            describe=str,
        )

    @property
    def ca_cert_pem(self) -> str | None:
        """The CA bundle this client trusts, as PEM (raft followers need it to reach the leader)."""
        if self.ca_cert is None:
            return None
        return Path(self.ca_cert).read_text(encoding="ascii")

    def raft_join(self, leader_address: str, leader_ca_cert: str | None = None) -> None:
        with self.errors(f"join the raft cluster of {leader_address}"):
            self.client.sys.join_raft_cluster(leader_api_addr=leader_address, leader_ca_cert=leader_ca_cert)

    # --- tokens -------------------------------------------------------------------------------

    def token_works(self) -> bool:
        """Does the client's token still authenticate? (False when revoked or expired.)"""
        import hvac.exceptions

        with self.errors("look up its own token"):
            try:
                self.client.auth.token.lookup_self()
            except hvac.exceptions.Forbidden:
                return False
        return True

    def generate_root_token(self, shares: list[str]) -> str:
        """A new root token from a quorum of ``shares``, with the client's token.

        OpenBao 2.6+ serves this on the authenticated ``sys/generate-root-token``
        endpoints only (the unauthenticated ``sys/generate-root`` ones are off by
        default); the caller's token needs a policy on that path and still needs
        the shares: neither alone yields root.
        """
        base = "/v1/sys/generate-root-token"
        with self.errors("generate a root token"):
            self.client.adapter.delete(f"{base}/attempt")  # a stale attempt would hold a foreign nonce
            started = self.client.adapter.put(f"{base}/attempt", json={})["data"]
            nonce, otp = started["nonce"], started["otp"]
            response: dict[str, Any] = {}
            for share in shares:
                response = self.client.adapter.put(f"{base}/update", json={"key": share, "nonce": nonce})[
                    "data"
                ]
                if response.get("complete"):
                    break
        if not response.get("complete"):
            raise OperationError(
                f"Vault at {self.address}: the shares in the keeper did not reach the threshold"
            )
        return decode_root_token(str(response["encoded_token"]), str(otp))

    def revoke_self(self) -> None:
        with self.errors("revoke its own token"):
            self.client.auth.token.revoke_self()


def _not_connected(error: BaseException) -> bool:
    """Did the request fail before a connection existed (so that nothing reached Vault)?

    urllib3 raises ``NewConnectionError`` (refused, DNS) or ``ConnectTimeoutError`` while
    connecting, wrapped by requests; a TLS failure, a reset or a read timeout come later and
    are not retried.
    """
    import requests
    import urllib3.exceptions

    if isinstance(error, requests.exceptions.SSLError) or not isinstance(
        error, requests.exceptions.ConnectionError
    ):
        return False
    wrapped = error.args[0] if error.args else None
    reason = getattr(wrapped, "reason", wrapped)
    return isinstance(reason, urllib3.exceptions.ConnectTimeoutError)


def _session() -> Any:
    """A requests session that retries connecting (only connecting) with backoff and jitter."""
    import requests
    import tenacity
    from requests.adapters import HTTPAdapter

    retries = int(os.environ.get(CONNECT_RETRIES_ENV, DEFAULT_CONNECT_RETRIES))

    class ConnectRetryAdapter(HTTPAdapter):
        def send(self, request: Any, *args: Any, **kwargs: Any) -> Any:
            retrying = tenacity.Retrying(
                stop=tenacity.stop_after_attempt(retries + 1),
                wait=backoff(*CONNECT_BACKOFF),
                retry=tenacity.retry_if_exception(_not_connected),
                reraise=True,
            )
            return retrying(super().send, request, *args, **kwargs)

    session = requests.Session()
    adapter = ConnectRetryAdapter(max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def decode_root_token(encoded: str, otp: str) -> str:
    """Vault XORs the new root token with the one-time password and base64-encodes the result."""
    raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4))
    return bytes(a ^ b for a, b in zip(raw, otp.encode(), strict=True)).decode()
