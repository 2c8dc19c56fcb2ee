"""Read an Application's source from a bare Git repository, as Argo CD's repo server does.

Only what a sync needs: resolve ``targetRevision`` (a branch, tag, ``HEAD`` or
a commit SHA) to a commit, and read the files under ``path`` at that commit.
It runs ``git`` itself (two processes per new commit: ``ls-tree`` and one
``cat-file --batch``), so the repository is read exactly as pushed, never from
a work tree; file trees are cached by commit, since a commit never changes.
"""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit


class RepoError(Exception):
    """The repository or revision cannot be read (the message says why)."""


def repo_path(url: str) -> Path:
    """The directory of a ``file://`` repository URL."""
    parts = urlsplit(url)
    if parts.scheme != "file":
        raise RepoError(f"{url}: only file:// repositories are served by the sandbox")
    return Path(unquote(parts.path))


def _git(repository: Path, *args: str, stdin: bytes | None = None) -> bytes:
    try:
        completed = subprocess.run(
            ["git", "-C", str(repository), *args],
            input=stdin,
            capture_output=True,
            check=False,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise RepoError(f"git failed on {repository}: {error}") from None
    if completed.returncode != 0:
        reason = completed.stderr.decode(errors="replace").strip().splitlines()
        raise RepoError(reason[-1] if reason else f"git {args[0]} failed on {repository}")
    return completed.stdout


class GitRepository:
    """One bare (or ordinary) repository on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._trees: dict[tuple[str, str], dict[str, bytes]] = {}
        self._lock = threading.Lock()

    def resolve(self, revision: str) -> str:
        """The commit SHA ``revision`` names now (``""`` and ``HEAD`` mean the default branch)."""
        if not (self.path / "HEAD").exists() and not (self.path / ".git").exists():
            raise RepoError(f"repository not found: {self.path}")
        wanted = revision or "HEAD"
        candidates = (
            [wanted]
            if wanted == "HEAD" or "/" in wanted
            else [f"refs/heads/{wanted}", f"refs/tags/{wanted}", wanted]
        )
        for candidate in candidates:
            try:
                return (
                    _git(self.path, "rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}")
                    .decode()
                    .strip()
                )
            except RepoError:
                continue
        raise RepoError(f"unable to resolve '{wanted}' to a commit SHA")

    def files(self, commit: str, path: str) -> dict[str, bytes]:
        """Every file under ``path`` at ``commit``: path relative to ``path`` -> content."""
        base = str(PurePosixPath(path.strip("/"))) if path.strip("/") not in ("", ".") else ""
        key = (commit, base)
        with self._lock:
            cached = self._trees.get(key)
        if cached is not None:
            return cached
        listing = _git(
            self.path, "ls-tree", "-r", "-z", "--full-tree", commit, *([f"{base}/"] if base else [])
        )
        entries: list[tuple[str, str]] = []
        for record in listing.split(b"\0"):
            if not record:
                continue
            meta, _, name = record.partition(b"\t")
            _mode, kind, sha = meta.decode().split()
            if kind == "blob":
                entries.append((name.decode(), sha))
        if base and not entries:
            raise RepoError(f"app path does not exist: {base} (at {commit[:12]})")
        contents = self._read_blobs([sha for _, sha in entries])
        tree = {
            (name[len(base) + 1 :] if base else name): content
            for (name, _), content in zip(entries, contents, strict=True)
        }
        with self._lock:
            self._trees[key] = tree
        return tree

    def _read_blobs(self, shas: list[str]) -> list[bytes]:
        if not shas:
            return []
        output = _git(self.path, "cat-file", "--batch", stdin="".join(f"{sha}\n" for sha in shas).encode())
        contents: list[bytes] = []
        position = 0
        for _ in shas:
            header_end = output.index(b"\n", position)
            size = int(output[position:header_end].split()[2])
            start = header_end + 1
            contents.append(output[start : start + size])
            position = start + size + 1  # the newline after each object
        return contents
