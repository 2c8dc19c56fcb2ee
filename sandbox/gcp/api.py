"""The HTTP face of the GCP Secret Manager emulator: Secret Manager's REST v1 routes and JSON shapes.

Served on 127.0.0.1 over plain HTTP with anonymous access (the sandbox has no
Google identity): the real client works with ``transport="rest"``,
``client_options={"api_endpoint": url}`` and ``AnonymousCredentials()``.
Global (``projects/P/secrets``) and regional (``projects/P/locations/L/secrets``)
resources are both served. Errors are Google's JSON error body
(``{"error": {"code", "message", "status"}}``), which ``google-api-core`` turns
into ``NotFound``, ``AlreadyExists``, ``BadRequest`` (FAILED_PRECONDITION) ...
"""

from __future__ import annotations

from collections.abc import Callable

from vaultflow.sandbox.gcp.secrets import GcpError, JsonObject, SecretManagerStore, SecretPath, invalid
from vaultflow.sandbox.http import HttpServer, Request, Response, Router

_PREFIXES = ("/v1/projects/{project}", "/v1/projects/{project}/locations/{location}")


def _path(request: Request) -> SecretPath:
    return SecretPath(request.params["project"], request.params["secret"], request.params.get("location"))


def _body(request: Request) -> JsonObject:
    try:
        body = request.json()
    except ValueError:
        raise invalid("Invalid JSON payload received.") from None
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise invalid("Invalid JSON payload received: expected an object.")
    return body


def _page_size(request: Request) -> int:
    value = request.query_value("pageSize", "0")
    if not value.lstrip("-").isdigit() or int(value) < 0:
        raise invalid(f"Invalid pageSize {value!r}.")
    return int(value)


class GcpSecretManagerEmulator:
    """Serves a ``SecretManagerStore`` (its own, or a shared one) on a free port."""

    def __init__(self, store: SecretManagerStore | None = None, *, port: int = 0) -> None:
        self.store = store or SecretManagerStore()
        self.router = Router(not_found=self._no_route, method_not_allowed=self._no_method)
        self._register()
        self._server = HttpServer(self._serve, port=port, name="gcp-secret-manager")

    @property
    def url(self) -> str:
        return self._server.url

    def start(self) -> GcpSecretManagerEmulator:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> GcpSecretManagerEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @staticmethod
    def _no_route(request: Request) -> Response:
        return Response.json(
            GcpError(404, "NOT_FOUND", f"Requested entity was not found: {request.path}").body(), 404
        )

    @staticmethod
    def _no_method(request: Request) -> Response:
        error = GcpError(405, "UNIMPLEMENTED", f"Method {request.method} is not allowed on {request.path}.")
        return Response.json(error.body(), 405)

    def _serve(self, request: Request) -> Response:
        try:
            return self.router(request)
        except GcpError as error:
            return Response.json(error.body(), error.code)

    def _route(self, method: str, suffix: str, handler: Callable[[Request], JsonObject]) -> None:
        def respond(request: Request) -> Response:
            return Response.json(handler(request))

        for prefix in _PREFIXES:
            self.router.add(method, prefix + suffix, respond)

    def _register(self) -> None:
        store = self.store
        # the most specific patterns first: "{secret}" would also match "name:addVersion"
        self._route(
            "GET",
            "/secrets/{secret}/versions/{version}:access",
            lambda r: store.access_version(_path(r), r.params["version"]),
        )
        for action in ("enable", "disable", "destroy"):
            self._route(
                "POST", f"/secrets/{{secret}}/versions/{{version}}:{action}", self._state_change(action)
            )
        self._route(
            "GET",
            "/secrets/{secret}/versions/{version}",
            lambda r: store.get_version(_path(r), r.params["version"]),
        )
        self._route(
            "GET",
            "/secrets/{secret}/versions",
            lambda r: store.list_versions(
                _path(r), _page_size(r), r.query_value("pageToken"), r.query_value("filter")
            ),
        )
        self._route("POST", "/secrets/{secret}:addVersion", lambda r: store.add_version(_path(r), _body(r)))
        self._route("GET", "/secrets/{secret}", lambda r: store.get_secret(_path(r)))
        self._route(
            "PATCH",
            "/secrets/{secret}",
            lambda r: store.update_secret(
                _path(r), _body(r), [p for p in r.query_value("updateMask").split(",") if p]
            ),
        )
        self._route("DELETE", "/secrets/{secret}", self._delete)
        self._route("GET", "/secrets", self._list)
        self._route("POST", "/secrets", self._create)

    def _state_change(self, action: str) -> Callable[[Request], JsonObject]:
        def change(request: Request) -> JsonObject:
            etag = str(_body(request).get("etag") or "")
            return self.store.set_version_state(_path(request), request.params["version"], action, etag)

        return change

    def _delete(self, request: Request) -> JsonObject:
        self.store.delete_secret(_path(request), request.query_value("etag"))
        return {}

    def _list(self, request: Request) -> JsonObject:
        return self.store.list_secrets(
            request.params["project"],
            request.params.get("location"),
            _page_size(request),
            request.query_value("pageToken"),
            request.query_value("filter"),
        )

    def _create(self, request: Request) -> JsonObject:
        secret_id = request.query_value("secretId")
        if not secret_id:
            raise invalid("secret_id is required.")
        path = SecretPath(request.params["project"], secret_id, request.params.get("location"))
        return self.store.create_secret(path, _body(request))
