"""Fresh OpenBao servers for steps that change a Vault's lifecycle (init, unseal, revoke)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from vaultflow.sandbox.openbao import OpenBaoServer


@pytest.fixture
def fresh_openbao(tmp_path: Path) -> Iterator[Callable[..., OpenBaoServer]]:
    """Start sealed, uninitialised OpenBao servers (raft) on loopback; all are stopped after the test."""
    started: list[OpenBaoServer] = []

    def start(name: str = "node-1") -> OpenBaoServer:
        server = OpenBaoServer(tmp_path / name, node_id=name)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
