"""The HTTP face of the Azure Key Vault emulator: one HTTPS origin per vault, the secrets REST API.

Each vault listens on its own port of 127.0.0.1 (a real vault is its own
origin, ``https://<name>.vault.azure.net``, and the SDK parses ids that must
start with the vault URL), with a certificate from the sandbox CA: clients
pass ``connection_verify=<CA file>``; nothing trusts the CA globally.

Authentication is Key Vault's challenge protocol: a request without a bearer
token gets ``401`` and ``WWW-Authenticate: Bearer authorization="https://
login.microsoftonline.com/<tenant>", resource="https://vault.azure.net"``, as
the real service answers; the SDK's challenge policy then asks its credential
for a token for that resource and repeats the request. The sandbox has no
identity platform, so any non-empty bearer token is accepted (say so in docs).
``verify_challenge_resource=False`` is needed because 127.0.0.1 is not a
``*.vault.azure.net`` host.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass

from vaultflow.sandbox.azure.vault import AzureError, JsonObject, KeyVaultStore, bad_parameter
from vaultflow.sandbox.http import HttpServer, Request, Response, Router
from vaultflow.sandbox.pki import CertificateAuthority

SANDBOX_TENANT = "5a9d1f0c-0000-4000-8000-5a4db0c5a4db"
KEY_VAULT_RESOURCE = "https://vault.azure.net"
_DEFAULT_PAGE = 25


def _challenge(tenant: str) -> str:
    return (
        f'Bearer authorization="https://login.microsoftonline.com/{tenant}", resource="{KEY_VAULT_RESOURCE}"'
    )


def _body(request: Request) -> JsonObject:
    try:
        body = request.json()
    except ValueError:
        raise bad_parameter("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise bad_parameter("The request body must be a JSON object.")
    return body


class KeyVaultServer:
    """One vault served over HTTPS: ``url`` is its vault URL."""

    def __init__(self, name: str, authority: CertificateAuthority, *, tenant: str = SANDBOX_TENANT) -> None:
        self.name = name
        self.tenant = tenant
        self.store = KeyVaultStore()
        self.router = Router(not_found=self._no_route, method_not_allowed=self._no_method)
        self._register()
        context = authority.issue_server_certificate(("127.0.0.1", "localhost")).ssl_context()
        self._server = HttpServer(self._serve, ssl_context=context, name=f"azure-keyvault-{name}")

    @property
    def url(self) -> str:
        return self._server.url

    def start(self) -> KeyVaultServer:
        self._server.start()
        self.store.base_url = self.url
        return self

    def stop(self) -> None:
        self._server.stop()

    @staticmethod
    def _no_route(request: Request) -> Response:
        return Response.json(AzureError(404, "NotFound", f"No route for {request.path}").body(), 404)

    @staticmethod
    def _no_method(request: Request) -> Response:
        return Response.json(AzureError(405, "MethodNotAllowed", f"{request.method} not allowed").body(), 405)

    def _serve(self, request: Request) -> Response:
        scheme, _, token = request.header("authorization").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            response = Response.json(
                {
                    "error": {
                        "code": "Unauthorized",
                        "message": "AKV10000: Request is missing a Bearer or PoP token.",
                    }
                },
                401,
            )
            response.headers["WWW-Authenticate"] = _challenge(self.tenant)
            return response
        if not request.query_value("api-version"):
            error = bad_parameter(
                "The api-version query parameter (?api-version=) is required for all requests."
            )
            return Response.json(error.body(), error.status)
        try:
            return self.router(request)
        except AzureError as error:
            return Response.json(error.body(), error.status)

    def _page(self, request: Request, items: list[JsonObject]) -> Response:
        """Key Vault's paging: ``maxresults`` per page, ``nextLink`` to the rest (``$skiptoken``)."""
        size_text = request.query_value("maxresults", str(_DEFAULT_PAGE))
        if not size_text.isdigit() or not 1 <= int(size_text) <= 25:
            raise bad_parameter("maxresults must be a number between 1 and 25.")
        size = int(size_text)
        token = request.query_value("$skiptoken")
        try:
            start = int(base64.urlsafe_b64decode(token.encode()).decode()) if token else 0
        except ValueError:
            raise bad_parameter(f"Invalid $skiptoken {token!r}.") from None
        page = items[start : start + size]
        next_link = None
        if start + size < len(items):
            skip = base64.urlsafe_b64encode(str(start + size).encode()).decode()
            next_link = (
                f"{self.url}{request.path}?api-version={request.query_value('api-version')}"
                f"&maxresults={size}&$skiptoken={skip}"
            )
        return Response.json({"value": page, "nextLink": next_link})

    def _register(self) -> None:
        store = self.store
        add: Callable[[str, str, Callable[[Request], Response]], None] = self.router.add

        def ok(payload: JsonObject) -> Response:
            return Response.json(payload)

        add("GET", "/secrets", lambda r: self._page(r, store.list_secrets()))
        add("GET", "/secrets/{name}/versions", lambda r: self._page(r, store.list_versions(r.params["name"])))
        add("PUT", "/secrets/{name}", lambda r: ok(store.set_secret(r.params["name"], _body(r))))
        add("DELETE", "/secrets/{name}", lambda r: ok(store.delete_secret(r.params["name"])))
        add("GET", "/secrets/{name}", lambda r: ok(store.get_secret(r.params["name"])))
        add("GET", "/secrets/{name}/", lambda r: ok(store.get_secret(r.params["name"])))
        add(
            "GET",
            "/secrets/{name}/{version}",
            lambda r: ok(store.get_secret(r.params["name"], r.params["version"])),
        )
        add(
            "PATCH",
            "/secrets/{name}/{version}",
            lambda r: ok(store.update_secret(r.params["name"], r.params["version"], _body(r))),
        )
        add("PATCH", "/secrets/{name}/", lambda r: ok(store.update_secret(r.params["name"], "", _body(r))))
        add("GET", "/deletedsecrets", lambda r: self._page(r, store.list_deleted_secrets()))
        add("GET", "/deletedsecrets/{name}", lambda r: ok(store.get_deleted_secret(r.params["name"])))
        add(
            "POST",
            "/deletedsecrets/{name}/recover",
            lambda r: ok(store.recover_deleted_secret(r.params["name"])),
        )
        add("DELETE", "/deletedsecrets/{name}", self._purge)

    def _purge(self, request: Request) -> Response:
        self.store.purge_deleted_secret(request.params["name"])
        return Response.empty(204)


@dataclass(frozen=True)
class VaultEndpoint:
    name: str
    url: str


class AzureKeyVaultEmulator:
    """Several vaults, each its own ``KeyVaultServer``, all with certificates from one CA."""

    def __init__(self, authority: CertificateAuthority, *, tenant: str = SANDBOX_TENANT) -> None:
        self.authority = authority
        self.tenant = tenant
        self._vaults: dict[str, KeyVaultServer] = {}

    def add_vault(self, name: str) -> KeyVaultServer:
        """Create and start vault ``name`` (like ``az keyvault create``); an existing one is returned."""
        if name not in self._vaults:
            self._vaults[name] = KeyVaultServer(name, self.authority, tenant=self.tenant).start()
        return self._vaults[name]

    def vault(self, name: str) -> KeyVaultServer:
        return self._vaults[name]

    @property
    def vaults(self) -> list[VaultEndpoint]:
        return [VaultEndpoint(name, server.url) for name, server in sorted(self._vaults.items())]

    def stop(self) -> None:
        for server in self._vaults.values():
            server.stop()
