"""A keeper in a local file, mode 0600: the sandbox default."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from vaultflow.base.errors import OperationError
from vaultflow.steps.keeper.base import Keeper, KeeperConflict, UnsealMaterial


class FileKeeper(Keeper):
    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def location(self) -> str:
        return f"file keeper {self.path}"

    def load(self) -> UnsealMaterial | None:
        try:
            mode = self.path.stat().st_mode
        except FileNotFoundError:
            return None
        if stat.S_IMODE(mode) & 0o077:
            raise OperationError(
                f"{self.location} is readable by others (mode {stat.S_IMODE(mode):o}): "
                "restrict it to 0600 before vaultflow will use it"
            )
        return UnsealMaterial.from_json(self.path.read_text(encoding="utf-8"), self.location)

    def check_writable(self) -> None:
        directory = self.path.parent
        if not directory.is_dir():
            raise OperationError(f"{self.location}: directory {directory} does not exist")
        if not os.access(directory, os.W_OK | os.X_OK):
            raise OperationError(f"{self.location}: directory {directory} is not writable")

    def _write(self, material: UnsealMaterial, *, create: bool) -> None:
        data = material.to_json().encode()
        if create:
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                raise KeeperConflict(f"{self.location} already exists: refusing to overwrite it") from None
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            return
        # Replace atomically: a crash leaves either the old or the new content, never half.
        staging = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}")
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            staging.replace(self.path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                staging.unlink()
