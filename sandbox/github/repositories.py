"""Which GitHub repositories the emulator serves, and which bare repository each one is.

The sandbox has one place that says "the repository a manifest names is this
bare repository on disk": the ``git`` routes (``vaultflow.sandbox.routes``,
set by ``sandbox up --catalog``, the demo's ``wire_catalog`` or ``vaultflow
sandbox route git URL file://...``). The GitHub emulator reads the same table:
a route from ``https://github.com/<owner>/<repo>.git`` (any host, with or
without ``.git``) to ``file:///.../x.git`` makes ``<owner>/<repo>`` a
repository of the API, backed by that bare repository. So the Argo CD
emulator, ``git clone <repoUrl>`` (through the ``insteadOf`` mapping
``vaultflow sandbox env`` exports) and the pull-request API all reach the one
repository. Owner and name match case-insensitively, as GitHub's do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True)
class HostedRepository:
    """``owner/name`` of the API, the bare repository behind it, and the URL clients clone it by."""

    owner: str
    name: str
    path: Path
    clone_url: str

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def key(self) -> str:
        """What records are filed under: GitHub's names are case-insensitive."""
        return self.full_name.lower()


def owner_and_name(url: str) -> tuple[str, str] | None:
    """``(owner, repo)`` of an ``http(s)://host/<owner>/<repo>[.git]`` URL; None for anything else."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    segments = [segment for segment in parts.path.split("/") if segment]
    if len(segments) != 2:
        return None
    owner, name = segments[0], segments[1].removesuffix(".git")
    return (owner, name) if owner and name else None


def _bare_path(target: str) -> Path | None:
    parts = urlsplit(target)
    return Path(unquote(parts.path)) if parts.scheme == "file" else None


class RepositoryDirectory:
    """The repositories ``routes()`` (repository URL -> ``file://`` URL) name, read anew on each lookup."""

    def __init__(self, routes: Callable[[], Mapping[str, str]]) -> None:
        self._routes = routes

    def all(self) -> list[HostedRepository]:
        hosted: dict[str, HostedRepository] = {}
        for source, target in sorted(self._routes().items()):
            named, path = owner_and_name(source), _bare_path(target)
            if named is None or path is None:
                continue
            repository = HostedRepository(named[0], named[1], path, source)
            hosted.setdefault(repository.key, repository)
        return list(hosted.values())

    def find(self, owner: str, name: str) -> HostedRepository | None:
        key = f"{owner}/{name.removesuffix('.git')}".lower()
        return next((repository for repository in self.all() if repository.key == key), None)
