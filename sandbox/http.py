"""A small threaded HTTP/1.1 server and router that every sandbox emulator shares.

The emulators (Kubernetes API, and later GCP Secret Manager, Azure Key Vault,
the Argo Server) each describe their wire protocol as routes on a ``Router``
and are served by one ``HttpServer`` on 127.0.0.1. It is plain stdlib
(``http.server``) so the sandbox needs no web framework, with the details that
matter for real SDK clients:

* HTTP/1.1 keep-alive, so a client's connection pool is reused (10,000 requests
  do not mean 10,000 TCP handshakes);
* the status line, headers and body go out in one write with ``TCP_NODELAY``,
  which avoids the 40 ms Nagle/delayed-ACK stall a two-write response causes;
* streamed responses (chunked transfer encoding) for watch-style endpoints;
* optional TLS (an ``ssl.SSLContext``) for emulators whose SDK insists on HTTPS;
  the handshake runs in the connection's thread, never in the accept loop;
* ``stop()`` closes the listening socket *and* every open connection, so a
  stopped emulator leaves no port behind.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import ssl
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

log = logging.getLogger(__name__)

JSON_CONTENT_TYPE = "application/json"


@dataclass
class Request:
    """One parsed HTTP request. ``params`` holds the values a route captured."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    params: dict[str, str] = field(default_factory=dict)

    def header(self, name: str, default: str = "") -> str:
        """A request header by case-insensitive name."""
        return self.headers.get(name.lower(), default)

    def query_value(self, name: str, default: str = "") -> str:
        """The last value of a query parameter (what Go's and Python's servers do)."""
        values = self.query.get(name)
        return values[-1] if values else default

    def json(self) -> Any:
        """The body decoded as JSON; ``ValueError`` when it is not JSON."""
        return json.loads(self.body) if self.body else None

    @property
    def content_type(self) -> str:
        """The media type of the body without parameters (``; charset=...``)."""
        return self.header("content-type").split(";", 1)[0].strip().lower()


@dataclass
class Response:
    """What a handler answers: a body, or ``stream`` for a chunked response."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    stream: Iterable[bytes] | None = None

    @classmethod
    def json(cls, payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return cls.raw_json(json.dumps(payload, separators=(",", ":")).encode(), status, headers)

    @classmethod
    def raw_json(cls, body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        """A response whose body is already-encoded JSON (lets hot paths skip re-encoding)."""
        return cls(status=status, body=body, headers={"Content-Type": JSON_CONTENT_TYPE, **(headers or {})})

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain; charset=utf-8") -> Response:
        return cls(status=status, body=text.encode(), headers={"Content-Type": content_type})

    @classmethod
    def empty(cls, status: int = 204) -> Response:
        return cls(status=status)


Handler = Callable[[Request], Response]

_PARAM = re.compile(r"\{(\w+)(\.\.\.)?\}")


@dataclass(frozen=True)
class _Route:
    method: str
    regex: re.Pattern[str]
    handler: Handler


def _compile(pattern: str) -> re.Pattern[str]:
    """``/a/{name}/b:{verb}`` -> a regex; ``{rest...}`` captures the remaining path."""
    parts: list[str] = []
    position = 0
    for match in _PARAM.finditer(pattern):
        parts.append(re.escape(pattern[position : match.start()]))
        name, greedy = match.group(1), match.group(2)
        parts.append(f"(?P<{name}>.*)" if greedy else f"(?P<{name}>[^/]+?)")
        position = match.end()
    parts.append(re.escape(pattern[position:]))
    return re.compile("^" + "".join(parts) + "$")


class Router:
    """Method + path-pattern routing; the first matching route wins.

    Patterns match the raw (percent-encoded) path; captured values are decoded.
    A path that matches with another method answers 405, no match 404, both as
    JSON bodies built by ``not_found`` / ``method_not_allowed`` so an emulator
    can answer in its own protocol's error shape.
    """

    def __init__(
        self,
        not_found: Callable[[Request], Response] | None = None,
        method_not_allowed: Callable[[Request], Response] | None = None,
    ) -> None:
        self._routes: list[_Route] = []
        self._not_found = not_found or (lambda r: Response.json({"error": f"no route for {r.path}"}, 404))
        self._method_not_allowed = method_not_allowed or (
            lambda r: Response.json({"error": f"{r.method} not allowed on {r.path}"}, 405)
        )

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append(_Route(method.upper(), _compile(pattern), handler))

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        """Decorator form of ``add``."""

        def register(handler: Handler) -> Handler:
            self.add(method, pattern, handler)
            return handler

        return register

    def __call__(self, request: Request) -> Response:
        path_matched = False
        for route in self._routes:
            match = route.regex.match(request.path)
            if match is None:
                continue
            if route.method != request.method and not (route.method == "GET" and request.method == "HEAD"):
                path_matched = True
                continue
            request.params = {name: unquote(value) for name, value in match.groupdict().items()}
            return route.handler(request)
        return self._method_not_allowed(request) if path_matched else self._not_found(request)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging: URLs can carry names a log should not."""

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()  # the empty line after the last chunk
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        split = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=self._read_body(),
        )
        try:
            response = self.server.app(request)
        except Exception:
            log.exception("unhandled error serving %s %s", request.method, request.path)
            response = Response.json({"error": "internal server error"}, 500)
        if response.stream is not None:
            self._write_stream(response)
        else:
            self._write(response, include_body=request.method != "HEAD")

    def _head(self, status: int, headers: dict[str, str]) -> bytes:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = ""
        lines = [f"HTTP/1.1 {status} {reason}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _write(self, response: Response, *, include_body: bool) -> None:
        headers = {**response.headers, "Content-Length": str(len(response.body))}
        self.wfile.write(self._head(response.status, headers) + (response.body if include_body else b""))

    def _write_stream(self, response: Response) -> None:
        headers = {**response.headers, "Transfer-Encoding": "chunked"}
        self.wfile.write(self._head(response.status, headers))
        assert response.stream is not None
        try:
            for chunk in response.stream:
                if chunk:
                    self.wfile.write(f"{len(chunk):X}\r\n".encode() + chunk + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: Handler, ssl_context: ssl.SSLContext | None) -> None:
        self.app = app
        self.ssl_context = ssl_context
        self.open_connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _RequestHandler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        raw: socket.socket = request
        with self.connections_lock:
            self.open_connections.add(raw)
        try:
            if self.ssl_context is not None:
                try:
                    request = self.ssl_context.wrap_socket(raw, server_side=True)
                except (ssl.SSLError, OSError):
                    return
            super().finish_request(request, client_address)
        finally:
            with self.connections_lock:
                self.open_connections.discard(raw)

    def close_all_connections(self) -> None:
        with self.connections_lock:
            connections = list(self.open_connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class HttpServer:
    """Serve one ``Handler`` (usually a ``Router``) on 127.0.0.1 in a background thread.

    ``port=0`` (the default) binds a free port; ``port`` tells which one after
    ``start()``. Binding happens in ``start()``, so a taken port fails there with
    ``OSError`` rather than later in the thread.
    """

    def __init__(
        self,
        app: Handler,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        name: str = "http",
    ) -> None:
        self._app = app
        self._address = (host, port)
        self._ssl_context = ssl_context
        self._name = name
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{self._name} server is not started")
        return int(self._server.server_address[1])

    @property
    def host(self) -> str:
        return self._address[0]

    @property
    def url(self) -> str:
        scheme = "https" if self._ssl_context is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def start(self) -> HttpServer:
        self._server = _Server(self._address, self._app, self._ssl_context)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name=f"{self._name}-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server.close_all_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> HttpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
