"""Why a connection failed, in the operator's words: DNS, refused, timed out, TLS, reset.

requests (hvac, Hera) and the Kubernetes client both sit on urllib3, which
wraps the socket or TLS error that actually happened in ``MaxRetryError``,
``NewConnectionError`` and friends (and requests wraps those once more). An
error message that says "ConnectionError" for all of them leaves the operator
guessing whether to fix a name, a port, a firewall or a CA bundle; the cause is
in the chain, so it is dug out here, once, for every client.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Iterator
from typing import Any


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and everything it wraps: causes, contexts, urllib3's ``reason``, requests' ``args[0]``,
    azure-core's ``inner_exception``."""
    pending, seen = [error], set()
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        # azure-core's AzureError keeps what it wraps in ``inner_exception`` (not as a cause).
        linked = [
            current.__cause__,
            current.__context__,
            getattr(current, "reason", None),
            getattr(current, "inner_exception", None),
        ]
        linked += [arg for arg in current.args if isinstance(arg, BaseException)]
        pending += [link for link in linked if isinstance(link, BaseException)]


def transport_cause(error: BaseException, *, host: str = "", timeout: float | None = None) -> str:
    """A few words on why ``error`` (a requests, urllib3 or socket error) left no answer.

    ``host`` is named in a DNS failure, ``timeout`` (seconds) in a read that never got an answer.
    The first wording (in this order) that matches anything in the chain of wrapped errors wins.
    """
    import urllib3.exceptions as u3

    name = f"DNS name {host}" if host else "the DNS name"
    wordings: list[tuple[Callable[[BaseException], bool], Callable[[Any], str]]] = [
        (
            lambda e: isinstance(e, socket.gaierror) and e.errno == socket.EAI_NONAME,
            lambda e: f"{name} not found",
        ),
        (
            lambda e: isinstance(e, socket.gaierror),
            lambda e: f"DNS lookup of {host or 'the name'} failed: {e.strerror}",
        ),
        (lambda e: isinstance(e, u3.NameResolutionError), lambda e: f"{name} not found"),
        (
            lambda e: isinstance(e, ssl.SSLCertVerificationError),
            lambda e: f"TLS certificate not trusted: {e.verify_message or e.reason}",
        ),
        (lambda e: isinstance(e, ssl.SSLError), lambda e: f"TLS handshake failed: {e.reason or e}"),
        (lambda e: isinstance(e, ConnectionRefusedError), lambda e: "connection refused"),
        (lambda e: isinstance(e, ConnectionResetError), lambda e: "connection reset by the server"),
        (
            lambda e: isinstance(e, u3.ReadTimeoutError),
            lambda e: f"no answer within {timeout:g}s" if timeout else "no answer: the read timed out",
        ),
        (
            lambda e: isinstance(e, u3.ConnectTimeoutError) and not isinstance(e, u3.NewConnectionError),
            lambda e: "connecting timed out",
        ),
        (lambda e: isinstance(e, TimeoutError), lambda e: "timed out"),
        (lambda e: isinstance(e, OSError) and bool(e.strerror), lambda e: str(e.strerror).lower()),
        (lambda e: isinstance(e, u3.ProtocolError), lambda e: "the connection closed without an answer"),
    ]
    chain = list(_chain(error))
    for matches, words in wordings:
        for link in chain:
            if matches(link):
                return words(link)
    return type(error).__name__
