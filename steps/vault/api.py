"""A thin adapter over Vault's HTTP API (hvac), with errors an operator can act on.

Every call goes through ``vault_errors``, which turns transport and API
failures into one ``OperationError`` sentence naming the server and the
action: unreachable, sealed, permission denied, or what Vault said. Vault's
error texts never contain secret values; request bodies (which may) are never
echoed.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vaultflow.base.errors import OperationError

DEFAULT_TIMEOUT = 10.0
# A replica that is still starting refuses connections for a few seconds: connecting is
# retried with exponential backoff (0.5 s, 1 s, 2 s, ... about 30 s for 6 attempts) before the
# step gives up. Only connecting is retried, never a request that reached Vault: those are
# not all idempotent (init is not).
CONNECT_RETRIES_ENV = "VAULTFLOW_VAULT_CONNECT_RETRIES"
DEFAULT_CONNECT_RETRIES = 6


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


@contextmanager
def vault_errors(address: str, action: str) -> Iterator[None]:
    import hvac.exceptions
    import requests

    try:
        yield
    except requests.exceptions.SSLError:
        raise OperationError(
            f"Vault at {address}: TLS verification failed, could not {action} (set the CA bundle)"
        ) from None
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as error:
        reason = type(error).__name__.replace("Error", " error").strip()
        raise OperationError(f"Vault at {address} is unreachable ({reason}): could not {action}") from None
    except hvac.exceptions.VaultDown:
        raise OperationError(f"Vault at {address} is sealed: cannot {action}") from None
    except hvac.exceptions.Forbidden:
        raise OperationError(f"Vault at {address} denied permission to {action}") from None
    except hvac.exceptions.VaultError as error:
        errors = "; ".join(str(e).strip() for e in (error.errors or [])) or type(error).__name__
        raise OperationError(f"Vault at {address} refused to {action}: {errors}") from None


class VaultApi:
    """One Vault (or OpenBao) server, optionally with a token."""

    def __init__(
        self,
        address: str,
        *,
        token: str | None = None,
        ca_cert: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        import hvac

        self.address = address.rstrip("/")
        self.ca_cert = ca_cert
        self.timeout = timeout
        self.client = hvac.Client(
            url=self.address, token=token, verify=ca_cert or True, timeout=timeout, session=_session()
        )

    def with_token(self, token: str) -> VaultApi:
        return VaultApi(self.address, token=token, ca_cert=self.ca_cert, timeout=self.timeout)

    # --- seal and init ------------------------------------------------------------------------

    def seal_status(self) -> SealStatus:
        with vault_errors(self.address, "read the seal status"):
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
        )

    def initialize(self, shares: int, threshold: int, pgp_keys: list[str] | None) -> tuple[list[str], str]:
        """Initialise; return (shares as returned: base64, or PGP-encrypted base64) and the root token."""
        with vault_errors(self.address, "initialise"):
            result = self.client.sys.initialize(
                secret_shares=shares, secret_threshold=threshold, pgp_keys=pgp_keys or None
            )
        return list(result["keys_base64"]), str(result["root_token"])

    def submit_unseal_share(self, share: str) -> SealStatus:
        with vault_errors(self.address, "accept an unseal share"):
            self.client.sys.submit_unseal_key(key=share)
        return self.seal_status()

    def reset_unseal(self) -> None:
        with vault_errors(self.address, "reset the unseal progress"):
            self.client.sys.submit_unseal_key(reset=True)

    def is_active(self) -> bool:
        """Unsealed and the active node (not a standby, not still electing a raft leader)."""
        with vault_errors(self.address, "read its health"):
            health = self.client.sys.read_health_status(method="GET")
        if not isinstance(health, dict):  # hvac hands back the raw response for unexpected codes
            return False
        return (
            health.get("initialized") is True and health.get("sealed") is False and not health.get("standby")
        )

    def wait_until_active(self, timeout: float = 30.0) -> None:
        """Unsealed is not yet usable: raft must elect a leader before the node serves requests."""
        deadline = time.monotonic() + timeout
        while not self.is_active():
            if time.monotonic() > deadline:
                raise OperationError(
                    f"Vault at {self.address} did not become the active node within {timeout:.0f}s"
                )
            time.sleep(0.1)

    @property
    def ca_cert_pem(self) -> str | None:
        """The CA bundle this client trusts, as PEM (raft followers need it to reach the leader)."""
        if self.ca_cert is None:
            return None
        return Path(self.ca_cert).read_text(encoding="ascii")

    def raft_join(self, leader_address: str, leader_ca_cert: str | None = None) -> None:
        with vault_errors(self.address, f"join the raft cluster of {leader_address}"):
            self.client.sys.join_raft_cluster(leader_api_addr=leader_address, leader_ca_cert=leader_ca_cert)

    # --- tokens -------------------------------------------------------------------------------

    def token_works(self) -> bool:
        """Does the client's token still authenticate? (False when revoked or expired.)"""
        import hvac.exceptions

        with vault_errors(self.address, "look up its own token"):
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
        with vault_errors(self.address, "generate a root token"):
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
        with vault_errors(self.address, "revoke its own token"):
            self.client.auth.token.revoke_self()


def _session() -> Any:
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    retries = int(os.environ.get(CONNECT_RETRIES_ENV, DEFAULT_CONNECT_RETRIES))
    policy = Retry(total=None, connect=retries, read=0, status=0, other=0, backoff_factor=0.5)
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=policy)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def decode_root_token(encoded: str, otp: str) -> str:
    """Vault XORs the new root token with the one-time password and base64-encodes the result."""
    raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4))
    return bytes(a ^ b for a, b in zip(raw, otp.encode(), strict=True)).decode()
