"""The supervisor's admin API: change injected faults and routes at run time, see the controllers.

Served by the supervisor on 127.0.0.1; every request needs the bearer token
the supervisor writes to ``DIR/run/admin.token`` (mode 0600): a route decides
where ESO sends its service-account tokens, so not any local process may
change it.

    GET    /faults                      {"vault": {"latency":..,"error_rate":..,"down":..}, ...}
    PUT    /faults/{provider}           body: a fault          (vault, aws, gcp, azure)
    DELETE /faults[/{provider}]
    GET    /routes                      {"vault": {...}, "git": {...}, "clusters": {...}}
    PUT    /routes/{kind}               body: {"source": .., "target": ..}
    DELETE /routes/{kind}?source=..
    GET    /controllers                 [{"controller", "cluster", "reconciles", "errors", "queued"}, ...]

``AdminClient`` is how the CLI, the demo and the tests call it.
"""

from __future__ import annotations

import hmac
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vaultflow.base.errors import InputError, OperationError
from vaultflow.sandbox.faults import PROVIDERS, Fault, FaultInjector
from vaultflow.sandbox.http import Request, Response, Router
from vaultflow.sandbox.routes import ROUTE_KINDS, Routes

JsonObject = dict[str, Any]
ControllerReport = Callable[[], list[JsonObject]]


def _error(status: int, message: str) -> Response:
    return Response.json({"error": message}, status)


class AdminApi:
    """The routes of the admin API over the supervisor's fault injector and route tables."""

    def __init__(
        self, faults: FaultInjector, routes: Routes, controllers: ControllerReport, token: str
    ) -> None:
        self.faults = faults
        self.routes = routes
        self._controllers = controllers
        self._token = token
        self.router = Router()
        add = self.router.add
        add("GET", "/healthz", lambda r: Response.json({"ok": True}))
        add("GET", "/faults", lambda r: Response.json(self._faults_json()))
        add("PUT", "/faults/{provider}", self._set_fault)
        add("DELETE", "/faults/{provider}", self._clear_fault)
        add("DELETE", "/faults", self._clear_fault)
        add("GET", "/routes", lambda r: Response.json(self.routes.to_json()))
        add("PUT", "/routes/{kind}", self._set_route)
        add("DELETE", "/routes/{kind}", self._remove_route)
        add("GET", "/controllers", lambda r: Response.json(self._controllers()))

    def __call__(self, request: Request) -> Response:
        if request.path != "/healthz":
            scheme, _, token = request.header("authorization").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip(), self._token):
                return _error(401, "the admin API needs the token in DIR/run/admin.token")
        return self.router(request)

    def _faults_json(self) -> JsonObject:
        return {provider: fault.to_json() for provider, fault in self.faults.snapshot().items()}

    def _set_fault(self, request: Request) -> Response:
        try:
            fault = Fault.from_json(request.json())
            self.faults.set(request.params["provider"], fault)
        except ValueError as error:
            return _error(400, str(error))
        return Response.json(self._faults_json())

    def _clear_fault(self, request: Request) -> Response:
        try:
            self.faults.clear(request.params.get("provider"))
        except ValueError as error:
            return _error(400, str(error))
        return Response.json(self._faults_json())

    def _set_route(self, request: Request) -> Response:
        try:
            body = request.json()
            if not isinstance(body, dict):
                raise ValueError('the body is {"source": ..., "target": ...}')
            self.routes.set(request.params["kind"], str(body.get("source", "")), str(body.get("target", "")))
        except ValueError as error:
            return _error(400, str(error))
        return Response.json(self.routes.to_json())

    def _remove_route(self, request: Request) -> Response:
        try:
            self.routes.remove(request.params["kind"], request.query_value("source"))
        except ValueError as error:
            return _error(400, str(error))
        return Response.json(self.routes.to_json())


class AdminClient:
    """Calls a running sandbox's admin API (``state.admin_endpoint``, token from the run directory)."""

    def __init__(self, endpoint: str, token_file: Path) -> None:
        if not endpoint:
            raise OperationError("this sandbox has no admin API (it was started by an older vaultflow)")
        self.endpoint = endpoint.rstrip("/")
        self._token_file = token_file

    @classmethod
    def for_state(cls, state: Any) -> AdminClient:
        from vaultflow.sandbox.layout import SandboxPaths

        return cls(state.admin_endpoint, SandboxPaths(Path(state.directory)).admin_token)

    def _call(self, method: str, path: str, body: JsonObject | None = None) -> Any:
        try:
            token = self._token_file.read_text().strip()
        except OSError:
            raise OperationError(f"cannot read the admin token {self._token_file}") from None
        request = urllib.request.Request(  # noqa: S310 (a loopback http URL from the sandbox state)
            self.endpoint + path,
            data=json.dumps(body).encode() if body is not None else None,
            method=method,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            message = json.loads(error.read() or b"{}").get("error", error.reason)
            raise (InputError if error.code == 400 else OperationError)(message) from None
        except (urllib.error.URLError, OSError) as error:
            raise OperationError(
                f"the sandbox admin API at {self.endpoint} does not answer: {error}"
            ) from None

    def faults(self) -> dict[str, Fault]:
        return {name: Fault.from_json(value) for name, value in self._call("GET", "/faults").items()}

    def set_fault(self, provider: str, fault: Fault) -> None:
        if provider not in PROVIDERS:
            raise InputError(f"unknown provider {provider!r} (one of {', '.join(PROVIDERS)})")
        self._call("PUT", f"/faults/{provider}", fault.to_json())

    def clear_faults(self, provider: str | None = None) -> None:
        self._call("DELETE", f"/faults/{provider}" if provider else "/faults")

    def routes(self) -> dict[str, dict[str, str]]:
        result: dict[str, dict[str, str]] = self._call("GET", "/routes")
        return result

    def set_route(self, kind: str, source: str, target: str) -> None:
        if kind not in ROUTE_KINDS:
            raise InputError(f"unknown route kind {kind!r} (one of {', '.join(ROUTE_KINDS)})")
        self._call("PUT", f"/routes/{kind}", {"source": source, "target": target})

    def remove_route(self, kind: str, source: str) -> None:
        from urllib.parse import quote

        self._call("DELETE", f"/routes/{kind}?source={quote(source, safe='')}")

    def controllers(self) -> list[JsonObject]:
        result: list[JsonObject] = self._call("GET", "/controllers")
        return result
