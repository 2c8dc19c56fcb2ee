"""A sandbox PostgreSQL data directory outside its sandbox directory (the server's user cannot reach
DIR) is removed once its sandbox directory is gone and its server stopped, and never otherwise."""

from __future__ import annotations

import os
from pathlib import Path

from vaultflow.sandbox.postgres import OUTSIDE_PREFIX, OWNER_MARK, sweep_orphaned_postgres_dirs


def _outside(parent: Path, name: str, owner: Path | None, server_pid: int | None = None) -> Path:
    base = parent / f"{OUTSIDE_PREFIX}{name}"
    (base / "data").mkdir(parents=True)
    if owner is not None:
        (base / OWNER_MARK).write_text(f"{owner}\n")
    if server_pid is not None:
        (base / "data" / "postmaster.pid").write_text(f"{server_pid}\n/some/data\n")
    return base


def test_only_directories_of_deleted_sandboxes_with_no_server_running_are_removed(tmp_path: Path) -> None:
    live_sandbox = tmp_path / "live"
    live_sandbox.mkdir()
    gone = tmp_path / "deleted-sandbox"  # never created: `rm -rf DIR` without `down --purge`
    orphan = _outside(tmp_path, "aaa", gone)
    stopped = _outside(tmp_path, "bbb", gone, server_pid=2**22 + 1)  # beyond pid_max's default: no process
    running = _outside(tmp_path, "ccc", gone, server_pid=os.getpid())
    owned = _outside(tmp_path, "ddd", live_sandbox)
    unmarked = _outside(tmp_path, "eee", None)  # not ours to judge: written before marks existed
    unrelated = tmp_path / "some-other-dir"
    unrelated.mkdir()

    removed = sweep_orphaned_postgres_dirs(tmp_path)

    assert removed == [orphan, stopped]
    assert not orphan.exists() and not stopped.exists()
    assert running.is_dir() and owned.is_dir() and unmarked.is_dir() and unrelated.is_dir()
    assert sweep_orphaned_postgres_dirs(tmp_path) == []  # a second sweep finds nothing
