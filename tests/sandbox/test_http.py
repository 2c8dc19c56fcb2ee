"""The shared HTTP layer of the emulators: routing, keep-alive, streaming, TLS, clean stop."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from vaultflow.sandbox.http import HttpServer, Request, Response, Router
from vaultflow.sandbox.pki import CertificateAuthority
from vaultflow.sandbox.processes import port_is_listening


def echo_router() -> Router:
    router = Router()
    router.add("GET", "/v1/projects/{project}/secrets/{secret}:access", lambda r: Response.json(r.params))
    router.add("POST", "/v1/items", lambda r: Response.json({"got": r.json(), "type": r.content_type}, 201))
    router.add("GET", "/files/{path...}", lambda r: Response.json({"path": r.params["path"], "q": r.query}))
    router.add("GET", "/stream", lambda r: Response(stream=(f"line {n}\n".encode() for n in range(3))))
    return router


@pytest.fixture
def server() -> Iterator[HttpServer]:
    with HttpServer(echo_router(), name="test") as running:
        yield running


def request(
    server: HttpServer, method: str, path: str, body: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request(method, path, body=body, headers={"Content-Type": "application/json; charset=utf-8"})
    response = connection.getresponse()
    payload = response.read()
    connection.close()
    return response.status, dict(response.getheaders()), payload


def test_routes_capture_decoded_parameters_inside_segments(server: HttpServer) -> None:
    status, _, body = request(server, "GET", "/v1/projects/p%201/secrets/db:access")
    assert status == 200
    assert json.loads(body) == {"project": "p 1", "secret": "db"}


def test_rest_parameter_query_and_json_body(server: HttpServer) -> None:
    status, _, body = request(server, "GET", "/files/a/b/c.txt?x=1&x=2&empty=")
    assert json.loads(body) == {"path": "a/b/c.txt", "q": {"x": ["1", "2"], "empty": [""]}}
    status, _, body = request(server, "POST", "/v1/items", b'{"k": 1}')
    assert status == 201 and json.loads(body) == {"got": {"k": 1}, "type": "application/json"}


def test_unknown_path_is_404_and_wrong_method_405(server: HttpServer) -> None:
    assert request(server, "GET", "/nowhere")[0] == 404
    assert request(server, "DELETE", "/v1/items")[0] == 405
    assert request(server, "HEAD", "/files/x")[0] == 200  # HEAD is served by GET routes


def test_a_failing_handler_is_a_500_and_the_server_keeps_serving() -> None:
    router = Router()

    def broken(_: Request) -> Response:
        raise RuntimeError("boom")

    router.add("GET", "/broken", broken)
    router.add("GET", "/ok", lambda _: Response.text("ok"))
    with HttpServer(router) as running:
        assert request(running, "GET", "/broken")[0] == 500
        assert request(running, "GET", "/ok")[2] == b"ok"


def test_keep_alive_reuses_one_connection(server: HttpServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    for _ in range(3):
        connection.request("GET", "/files/x")
        assert connection.getresponse().read()
    connection.close()


def test_streamed_response_is_chunked(server: HttpServer) -> None:
    status, headers, body = request(server, "GET", "/stream")
    assert status == 200 and headers["Transfer-Encoding"] == "chunked"
    assert body == b"line 0\nline 1\nline 2\n"


def test_tls_with_the_sandbox_ca() -> None:
    authority = CertificateAuthority()
    certificate = authority.issue_server_certificate()
    with HttpServer(echo_router(), ssl_context=certificate.ssl_context()) as running:
        assert running.url.startswith("https://127.0.0.1:")
        with tempfile.TemporaryDirectory() as directory:
            bundle = Path(directory) / "ca.pem"
            bundle.write_text(authority.certificate_pem)
            context = ssl.create_default_context(cafile=str(bundle))
        connection = http.client.HTTPSConnection("127.0.0.1", running.port, context=context, timeout=5)
        connection.request("GET", "/files/secure")
        assert json.loads(connection.getresponse().read())["path"] == "secure"
        connection.close()
        untrusted = http.client.HTTPSConnection(
            "127.0.0.1", running.port, context=ssl.create_default_context(), timeout=5
        )
        with pytest.raises(ssl.SSLCertVerificationError):
            untrusted.request("GET", "/files/secure")


def test_stop_closes_the_port_and_open_connections() -> None:
    running = HttpServer(echo_router()).start()
    port = running.port
    idle = socket.create_connection(("127.0.0.1", port))
    idle.sendall(b"GET /files/x HTTP/1.1\r\nHost: x\r\n\r\n")
    assert idle.recv(1024).startswith(b"HTTP/1.1 200")
    running.stop()
    assert not port_is_listening(port)
    idle.settimeout(5)
    assert idle.recv(1024) == b""  # the server closed the kept-alive connection
    idle.close()
