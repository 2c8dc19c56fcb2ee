"""A keeper in a local file, mode 0600: the sandbox default.

Creation is ``O_CREAT | O_EXCL``, which fails on anything at the path, a
dangling symlink included; updates replace the file atomically (write a
sibling, rename it over). Every ``OSError`` (a directory at the path, a
missing or read-only directory, a full disk) becomes one message naming the
file.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from vaultflow.base.errors import OperationError
from vaultflow.steps.keeper.base import Keeper, KeeperConflict


class FileKeeper(Keeper):
    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def location(self) -> str:
        return f"file keeper {self.path}"

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except IsADirectoryError:
            raise OperationError(f"{self.location}: cannot {action}: the path is a directory") from None
        except OSError as error:
            reason = error.strerror or type(error).__name__
            raise OperationError(f"{self.location}: cannot {action} ({reason})") from None

    def _read(self) -> bytes | None:
        with self._errors("read it"):
            try:
                mode = self.path.stat().st_mode
            except FileNotFoundError:
                return None
            if stat.S_ISDIR(mode):
                raise IsADirectoryError(str(self.path))
            if stat.S_IMODE(mode) & 0o077:
                raise OperationError(
                    f"{self.location} is readable by others (mode {stat.S_IMODE(mode):o}): "
                    "restrict it to 0600 before vaultflow will use it"
                )
            return self.path.read_bytes()

    def _exists_message(self) -> str:
        if self.path.is_symlink() and not self.path.exists():
            return (
                f"{self.location} is a symlink to {self.path.readlink()}, which does not exist: "
                "refusing to write through it"
            )
        return f"{self.location} already exists: refusing to overwrite it"

    def _create(self, text: str) -> None:
        with self._errors("create it"):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                raise KeeperConflict(self._exists_message()) from None
            with os.fdopen(fd, "wb") as handle:
                handle.write(text.encode())
                handle.flush()
                os.fsync(handle.fileno())

    def _update(self, text: str) -> None:
        # Replace atomically: a crash leaves either the old or the new content, never half.
        staging = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        with self._errors("write it"):
            try:
                fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(text.encode())
                    handle.flush()
                    os.fsync(handle.fileno())
                staging.replace(self.path)
            finally:
                with contextlib.suppress(OSError):
                    staging.unlink()
