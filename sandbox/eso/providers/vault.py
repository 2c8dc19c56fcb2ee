"""ESO's Vault provider: KV path building, Kubernetes (or token) login, reads with ESO's value rules.

* paths are built exactly as ESO's ``buildPath`` builds them: with ``path:
  secret`` and ``version: v2``, ``prod/db``, ``secret/prod/db`` and
  ``secret/data/prod/db`` all read ``secret/data/prod/db``;
* the Kubernetes auth method logs in with a TokenRequest token of the store's
  ``serviceAccountRef`` (for a ClusterSecretStore, in the account's namespace),
  600 s, the account's ``audiences``; OpenBao reviews it with the cluster, so
  its roles and policies are enforced for real;
* the token's life is ESO's (``providers/v1/vault/provider.go``, ``auth.go``,
  ``client.go``): a client is built for every reconcile that reaches Vault and
  logs in at once (``setAuth``); when the reconcile ends it is closed, and
  closing revokes its token (``revoke-self``, after a ``lookup-self`` says it
  is still valid) unless it came from ``tokenSecretRef``. With ESO's
  ``--enable-vault-token-cache`` the client is kept per store (and store
  ``resourceVersion``; a changed store evicts it and revokes its token) and
  ``setAuth`` looks the token up first: it is reused unless the lookup fails,
  it is a batch token, or it has under 60 s left, and then it logs in again.
  So a changed role policy, a revoked token or a reset OpenBao are seen at the
  next reconcile;
* a 404 is ``NoSecretError`` ("Secret does not exist"), anything else the Go
  client's ``Error making API request.`` message, wrapped as ESO wraps it;
* ``metadataPolicy: Fetch`` (``client_get.go`` ``readSecretMetadata``) reads the
  KV v2 metadata endpoint instead: the map is ``created_time``,
  ``current_version`` and ``delete_version_after`` (as Go's ``%v`` prints them)
  overlaid with ``custom_metadata``, and ``property`` picks a key of it, as for
  data. The path is ``<path>/metadata/<key>`` with the key as written (unlike
  data reads, a key repeating the mount is not cut), or, without ``path``, the
  key with its first ``/data/`` replaced by ``/metadata/`` (a key without
  ``data`` is "provided Path isn't a valid kv v2 path"). A missing secret is
  the plain error "secret not found", not ``NoSecretError``; KV v1 refuses
  ("cannot perform metadata fetch operations with kv version v1").

The server address comes from ``Routes`` (the store names an in-cluster
address, the sandbox's OpenBao listens on loopback); messages name the
store's ``server``, as ESO's do. A failed Kubernetes login reads as the Vault
client words it: ``unable to log in to auth method: unable to log in with
Kubernetes auth: Error making API request. ...`` (``api.Auth.Login`` and
``api/auth/kubernetes``), an empty role ``no role name was provided``. The CA of
``caBundle``/``caProvider`` is read and checked as ESO reads it and, as in ESO's
``configureClientTLS``, becomes the only roots an ``https`` server's certificate
may chain to (without either: the system's roots); the connections to each server
are pooled and kept alive.
"""

from __future__ import annotations

import base64
import datetime
import json
import logging
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import urllib3

from vaultflow.sandbox.eso.gojson import (
    GoNumber,
    KeyNotFound,
    byte_value,
    loads_float64,
    loads_with_numbers,
    marshal,
    property_value,
)
from vaultflow.sandbox.eso.providers.base import (
    ClientError,
    JsonObject,
    NoSecretError,
    ProviderError,
    PushData,
    RemoteRef,
)
from vaultflow.sandbox.faults import FaultInjector, InjectedFault

log = logging.getLogger(__name__)

Login = Callable[["VaultProvider"], str]
MIN_TOKEN_TTL = 60  # checkToken: an expiring token with less left counts as expired
SYSTEM_METADATA_KEYS = ("created_time", "current_version", "delete_version_after")


def _go_value_text(value: Any) -> str:
    """``fmt.Sprintf("%v", v)`` of a JSON value the Vault client decoded (numbers kept as written)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, GoNumber | str):
        return str(value)
    if value is None:
        return "<nil>"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go_value_text(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_go_value_text(item) for item in value) + "]"
    return str(value)


def build_path(key: str, mount: str | None, version: str) -> str:
    """ESO's ``buildPath``: the Vault API path (without ``/v1/``) a remote key reads."""
    out = key
    if mount is not None:
        cut = mount + "/"
        if out.startswith(cut):
            out = out.split(cut, 1)[1]
            if out.startswith("data/") and version == "v2":
                out = out.split("data/", 1)[1]
        parts = mount.split("/") + (["data"] if version == "v2" else []) + out.split("/")
        return "/".join(parts)
    if "/data/" not in out and version == "v2":
        parts = out.split("/")
        return "/".join([parts[0], "data", *parts[1:]])
    return out


@dataclass(frozen=True)
class VaultResponse:
    status: int
    body: Any


def response_error(method: str, url: str, response: VaultResponse) -> str:
    """The Go Vault client's ``ResponseError`` text."""
    errors = response.body.get("errors", []) if isinstance(response.body, dict) else []
    listed = "".join(f"\n* {error}" for error in errors)
    return f"Error making API request.\n\nURL: {method} {url}\nCode: {response.status}. Errors:\n{listed}"


def check_ca(pem: str) -> None:
    try:
        ssl.create_default_context(cadata=pem)
    except (ssl.SSLError, ValueError):
        raise ProviderError("failed to append caBundle") from None


class VaultProvider:
    """One Vault client as ESO builds it for a store (``static_token``: from ``tokenSecretRef``)."""

    name = "vault"

    def __init__(
        self,
        *,
        address: str,
        mount: str | None,
        version: str,
        login: Login,
        faults: FaultInjector,
        http: urllib3.PoolManager,
        vault_namespace: str = "",
        static_token: bool = False,
        token_cache: bool = False,
        server: str = "",
        ca_pem: str = "",
    ) -> None:
        self.address = address.rstrip("/")
        self.ca_pem = ca_pem
        self.server = (server or address).rstrip("/")  # what the store names; messages use it
        self.mount = mount
        self.version = version
        self.static_token = static_token
        self._login = login
        self._faults = faults
        self._http = http
        self._vault_namespace = vault_namespace
        self._token_cache = token_cache
        self._token = ""
        self._token_expiry: datetime.datetime | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------ HTTP

    def request(
        self, method: str, path: str, *, body: JsonObject | None = None, token: str | None = None
    ) -> VaultResponse:
        url = f"{self.address}/v1/{path}"
        shown = f"{self.server}/v1/{path}"
        try:
            self._faults.before_call("vault", self.address)
        except InjectedFault as fault:
            raise ProviderError(f"{method} {shown}: {fault}") from None
        headers = {"X-Vault-Request": "true"}
        if token:
            headers["X-Vault-Token"] = token
        if self._vault_namespace:
            headers["X-Vault-Namespace"] = self._vault_namespace
        # One pool per (server, CA): the handshake is paid once per kept-alive connection.
        pool_kwargs = {"ca_cert_data": self.ca_pem} if self.ca_pem else None
        try:
            pool = self._http.connection_from_url(url, pool_kwargs=pool_kwargs)
            response = pool.urlopen(
                method,
                url,
                body=json.dumps(body).encode() if body is not None else None,
                headers=headers,
                timeout=urllib3.Timeout(connect=5, read=30),
                retries=False,
            )
        except urllib3.exceptions.SSLError as error:
            # Go's crypto/tls wording, as ESO's log and the store's status show it.
            why = (
                "x509: certificate signed by unknown authority"
                if "CERTIFICATE_VERIFY_FAILED" in str(error)
                else str(error)
            )
            raise ProviderError(f"{method} {shown}: tls: failed to verify certificate: {why}") from None
        except urllib3.exceptions.HTTPError as error:
            raise ProviderError(f"{method} {shown}: {error}") from None
        text = response.data
        try:
            parsed = loads_with_numbers(text) if text else None
        except ValueError:
            parsed = None
        return VaultResponse(response.status, parsed)

    # ------------------------------------------------------------ the token's life

    def set_auth(self) -> None:
        """ESO's ``setAuth``: keep a token that ``lookup-self`` vouches for, otherwise log in.

        A fresh client has no token and logs in at once; only a cached one
        (``--enable-vault-token-cache``) has a token to look up.
        """
        with self._lock:
            exists, expiry = False, None
            if self._token:
                try:
                    exists, expiry = self._check_token()
                except ProviderError:
                    exists = False  # a failed lookup (revoked, unknown, server reset): log in again
            self._token_expiry = expiry
            if exists and (expiry is None or expiry > _now()):
                return
            try:
                self._token = self._login(self)
            except ClientError:
                raise
            except ProviderError as error:
                raise ClientError(str(error)) from None

    def token(self) -> str:
        if not self._token:
            raise ClientError("cannot initialize Vault client: no valid auth method specified")
        return self._token

    def _check_token(self) -> tuple[bool, datetime.datetime | None]:
        """ESO's ``checkToken``: does the token exist, and until when (None: it does not expire)."""
        response = self.request("GET", "auth/token/lookup-self", token=self._token)
        if response.status != 200 or not isinstance(response.body, dict):
            raise ProviderError(response_error("GET", f"{self.server}/v1/auth/token/lookup-self", response))
        data = response.body.get("data")
        if not isinstance(data, dict):
            raise ProviderError("no response nor error for token lookup")
        if "type" not in data:
            raise ProviderError("could not assert token type")
        if data["type"] == "batch":
            return False, None
        if "ttl" not in data:
            raise ProviderError("no TTL found in response")
        try:
            ttl = int(str(data["ttl"]))
        except ValueError:
            raise ProviderError(f"invalid token TTL: {data['ttl']}") from None
        if "expire_time" not in data:
            raise ProviderError("no expiration time found in response")
        expire_time = data["expire_time"]
        if ttl < MIN_TOKEN_TTL and expire_time is not None:
            return False, None
        if expire_time is None:
            return True, None
        try:
            return True, datetime.datetime.fromisoformat(str(expire_time))
        except ValueError:
            raise ProviderError(f"invalid token expiration time: {expire_time}") from None

    def revoke_if_valid(self) -> None:
        """ESO's ``revokeTokenIfValid``: ``revoke-self`` when ``lookup-self`` says the token is valid."""
        with self._lock:
            try:
                valid, _ = self._check_token()
            except ProviderError as error:
                raise ProviderError(f"error while revoking token: {error}") from None
            if not valid:
                return
            response = self.request("PUT", "auth/token/revoke-self", token=self._token)
            if response.status not in (200, 204):
                url = f"{self.server}/v1/auth/token/revoke-self"
                raise ProviderError(f"error while revoking token: {response_error('PUT', url, response)}")
            self._token = ""

    def close(self) -> None:
        """ESO's ``Close``: without the token cache a token it logged in for is revoked (errors ignored)."""
        if self._token_cache or self.static_token or not self._token:
            return
        try:
            self.revoke_if_valid()
        except ProviderError as error:
            log.debug("vault client close: %s", error)

    def kubernetes_login(self, mount_path: str, role: str, jwt: str) -> str:
        """``auth.Login`` with ``api/auth/kubernetes``: errors carry both of the Vault client's prefixes."""
        if not role:
            raise ProviderError("no role name was provided")
        path = f"auth/{mount_path}/login"
        prefix = "unable to log in to auth method: unable to log in with Kubernetes auth: "
        try:
            response = self.request("PUT", path, body={"role": role, "jwt": jwt})
        except ProviderError as error:
            raise ProviderError(prefix + str(error)) from None
        if response.status not in (200, 204):
            raise ProviderError(prefix + response_error("PUT", f"{self.server}/v1/{path}", response))
        auth = response.body.get("auth") if isinstance(response.body, dict) else None
        if not isinstance(auth, dict) or not auth.get("client_token"):
            raise ProviderError("response did not return ClientToken, client token not set")
        return str(auth["client_token"])

    # ------------------------------------------------------------ reading

    def validate(self) -> None:
        """ESO's ``Validate``: a token whose expiry is known to lie ahead is enough, else a lookup."""
        if self._token_expiry is not None and self._token_expiry > _now():
            return
        try:
            self._check_token()
        except ProviderError as error:
            raise ProviderError(f"invalid vault credentials: {error}") from None

    def read(self, key: str, version: str = "") -> dict[str, Any]:
        data_path = build_path(key, self.mount, self.version)
        query = f"?version={version}" if version else ""
        response = self.request("GET", data_path + query, token=self.token())
        url = f"{self.server}/v1/{data_path}{query}"
        if response.status == 404:
            raise NoSecretError()
        if response.status != 200 or not isinstance(response.body, dict):
            raise ProviderError(f"cannot read secret data from Vault: {response_error('GET', url, response)}")
        data = response.body.get("data")
        if self.version == "v2":
            if not isinstance(data, dict) or "data" not in data:
                raise ProviderError("failed to find data field")
            data = data["data"]
            if data is None:
                raise NoSecretError()
        if not isinstance(data, dict):
            raise ProviderError("failed to unmarshall JSON")
        return data

    def read_metadata(self, key: str) -> dict[str, str]:
        """ESO's ``readSecretMetadata``: the KV v2 version keys and ``custom_metadata`` as strings."""
        if self.mount is None:
            if "data" not in key:
                raise ProviderError("provided Path isn't a valid kv v2 path")
            path = key.replace("/data/", "/metadata/", 1)
        else:
            path = f"{self.mount}/metadata/{key}"
        response = self.request("GET", path, token=self.token())
        if response.status == 404:
            raise ProviderError("secret not found")
        if response.status != 200 or not isinstance(response.body, dict):
            url = f"{self.server}/v1/{path}"
            raise ProviderError(f"cannot read secret data from Vault: {response_error('GET', url, response)}")
        data = response.body.get("data")
        data = data if isinstance(data, dict) else {}
        metadata = {
            name: _go_value_text(data[name]) for name in SYSTEM_METADATA_KEYS if data.get(name) is not None
        }
        custom = data.get("custom_metadata")
        if isinstance(custom, dict):
            metadata.update(
                {str(k): v if isinstance(v, str) else _go_value_text(v) for k, v in custom.items()}
            )
        return metadata

    def get_secret(self, ref: RemoteRef) -> bytes:
        data: Mapping[str, Any]
        if ref.metadata_policy == "Fetch":
            if self.version == "v1":
                raise ProviderError("cannot perform metadata fetch operations with kv version v1")
            data = self.read_metadata(ref.key)
            if not data:
                return b""  # ESO returns no value and no error
        else:
            data = self.read(ref.key, ref.version)
        if not ref.prop:
            return marshal(data).encode()
        try:
            return property_value(data, ref.prop)
        except KeyNotFound as error:
            raise ProviderError(str(error)) from None

    def get_secret_map(self, ref: RemoteRef) -> dict[str, bytes]:
        raw = self.get_secret(ref)
        try:
            decoded = loads_float64(raw)
        except ValueError as error:
            raise ProviderError(f"invalid character in JSON: {error}") from None
        if not isinstance(decoded, dict):
            kind = "string" if isinstance(decoded, str) else type(decoded).__name__
            raise ProviderError(
                f"json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"
            )
        return {key: byte_value(value) for key, value in decoded.items()}

    # ------------------------------------------------------------ writing (not offered)

    def push_secret(self, data: Mapping[str, bytes], push: PushData) -> None:
        raise ProviderError("pushing to Vault is not emulated by the sandbox (Vault is the source of truth)")

    def secret_exists(self, push: PushData) -> bool:
        try:
            self.read(push.remote_key)
        except NoSecretError:
            return False
        return True

    def delete_secret(self, push: PushData) -> None:
        raise ProviderError("deleting from Vault is not emulated by the sandbox")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def decode_ca_bundle(encoded: str) -> str:
    try:
        return base64.b64decode(encoded).decode()
    except (ValueError, UnicodeDecodeError):
        raise ProviderError("failed to decode caBundle") from None
