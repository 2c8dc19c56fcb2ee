"""Step functions written for the tests (no ``from __future__ import annotations``: Hera reads the hints).

They run in-process under the local runner; module-level state lets a test
observe what the steps saw (how many ran at once, how often one was called).
"""

import hashlib
import json
import logging
import secrets
import threading
import time
from pathlib import Path
from typing import Annotated

from hera.workflows import Parameter
from pydantic import BaseModel

from vaultflow.base.errors import InputError, OperationError

log = logging.getLogger(__name__)

_lock = threading.Condition()
_running: dict[str, int] = {}
_peak: dict[str, int] = {}


class SecretRef(BaseModel):
    """Where a generated secret went: a reference, never the value."""

    path: str
    version: int
    sha256_prefix: str


def echo(message: str) -> str:
    return message


def concat(left: str, right: str) -> str:
    return f"{left}{right}"


def fail(reason: str = "boom") -> None:
    raise RuntimeError(reason)


def refuse(reason: str) -> None:
    """An expected failure: the input was wrong."""
    raise InputError(reason)


def give_up(reason: str) -> None:
    """An expected failure: a remote system said no."""
    raise OperationError(reason)


def touch(path: str) -> str:
    Path(path).write_text("ran\n")
    return path


def numbers(count: int) -> list[int]:
    return list(range(1, count + 1))


def square(x: int) -> Annotated[int, Parameter(name="square")]:
    return x * x


def total(values: list[dict[str, str]]) -> int:
    return sum(int(v["square"]) for v in values)


def flaky(counter: str, succeed_on: int) -> int:
    """Fail until called for the ``succeed_on``-th time; the count lives in a file."""
    path = Path(counter)
    calls = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(calls))
    if calls < succeed_on:
        raise RuntimeError(f"attempt {calls} fails on purpose")
    return calls


def hold(group: str, wait_for: int) -> int:
    """Count concurrent callers of ``group``; wait (5 s at most) until ``wait_for`` run at once."""
    with _lock:
        _running[group] = _running.get(group, 0) + 1
        _peak[group] = max(_peak.get(group, 0), _running[group])
        _lock.notify_all()
        _lock.wait_for(lambda: _peak[group] >= wait_for, timeout=5)
        _running[group] -= 1
        return _peak[group]


def peak(group: str) -> int:
    with _lock:
        return _peak.get(group, 0)


def sleep(seconds: float) -> None:
    time.sleep(seconds)


def noisy(message: str) -> str:
    print(f"printed: {message}")
    log.info("logged: %s", message)
    log.warning("warned: %s", message)
    return message


def generate_secret(store: str, name: str) -> SecretRef:
    """Generate a secret, store it (0600) and return only where it is."""
    value = secrets.token_urlsafe(32)
    path = Path(store) / name
    path.write_text(value)
    path.chmod(0o600)
    log.info("stored a new secret at %s", path)
    return SecretRef(path=str(path), version=1, sha256_prefix=hashlib.sha256(value.encode()).hexdigest()[:8])


def verify_secret(ref: SecretRef) -> str:
    """Check the stored secret against its reference, without ever returning it."""
    value = Path(ref.path).read_text()
    if hashlib.sha256(value.encode()).hexdigest()[:8] != ref.sha256_prefix:
        raise RuntimeError("stored secret does not match its reference")
    log.info("secret at %s verified (version %d)", ref.path, ref.version)
    return json.dumps({"path": ref.path, "version": ref.version, "verified": True})


def leak_secret(ref: SecretRef) -> str:
    """A broken step for the negative control: it logs and returns the value."""
    value = Path(ref.path).read_text()
    log.info("the secret is %s", value)
    return value


def report(status: str, marker: str) -> str:
    Path(marker).write_text(status)
    return status
