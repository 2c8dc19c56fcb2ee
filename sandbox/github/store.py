"""What the GitHub emulator remembers beside Git itself: pull requests, their comments, commit statuses.

Branches and commits live in the bare repositories; everything GitHub keeps
in its own database lives here, per repository (``owner/name`` lower-cased, as
GitHub's names are case-insensitive). The store is written to one JSON file
after every change (atomically, mode 0600), so a sandbox that goes ``down``
and ``up`` finds its pull requests where it left them, and a supervisor killed
mid-way loses nothing that was answered.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vaultflow.sandbox.state import write_json_atomically

FORMAT = "vaultflow-sandbox-github/v1"


def now() -> str:
    """GitHub's timestamps: UTC, whole seconds, ``Z``."""
    return datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class PullRecord:
    number: int
    id: int
    title: str
    body: str | None
    user: str
    head_ref: str
    head_sha: str
    base_ref: str
    base_sha: str
    created_at: str
    updated_at: str
    state: str = "open"  # open | closed
    draft: bool = False
    maintainer_can_modify: bool = False
    closed_at: str | None = None
    merged_at: str | None = None
    merged_by: str | None = None
    merge_commit_sha: str | None = None
    # commits, additions, deletions, changed files: counted while open, kept once merged or closed
    figures: list[int] | None = None

    @property
    def merged(self) -> bool:
        return self.merged_at is not None


@dataclass
class CommentRecord:
    id: int
    number: int  # the issue (here: pull request) it is on
    body: str
    user: str
    created_at: str
    updated_at: str


@dataclass
class StatusRecord:
    id: int
    sha: str
    state: str  # error | failure | pending | success
    context: str
    description: str | None
    target_url: str | None
    creator: str
    created_at: str
    updated_at: str


@dataclass
class RepositoryRecords:
    pulls: list[PullRecord] = field(default_factory=list)
    comments: list[CommentRecord] = field(default_factory=list)
    statuses: list[StatusRecord] = field(default_factory=list)

    def pull(self, number: int) -> PullRecord | None:
        return next((pull for pull in self.pulls if pull.number == number), None)

    def comment(self, comment_id: int) -> CommentRecord | None:
        return next((comment for comment in self.comments if comment.id == comment_id), None)


class GitHubStore:
    """Every repository's records, and the id counters (ids are global on GitHub, numbers per repository).

    Callers hold ``lock`` around a read-modify-``save`` sequence; ``save`` writes the file.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.lock = threading.RLock()
        self._repositories: dict[str, RepositoryRecords] = {}
        self._next_ids: dict[str, int] = {"pull": 1, "comment": 1, "status": 1}
        if path is not None and path.is_file():
            self._load(path)

    def records(self, key: str) -> RepositoryRecords:
        with self.lock:
            return self._repositories.setdefault(key, RepositoryRecords())

    def next_id(self, kind: str) -> int:
        with self.lock:
            value = self._next_ids[kind]
            self._next_ids[kind] = value + 1
            return value

    def save(self) -> None:
        if self.path is None:
            return
        with self.lock:
            document = {
                "format": FORMAT,
                "next_ids": self._next_ids,
                "repositories": {key: asdict(records) for key, records in self._repositories.items()},
            }
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomically(self.path, json.dumps(document, indent=1) + "\n", mode=0o600)

    def _load(self, path: Path) -> None:
        document: dict[str, Any] = json.loads(path.read_text())
        if document.get("format") != FORMAT:
            raise ValueError(f"{path}: not a {FORMAT} file")
        self._next_ids.update(document["next_ids"])
        for key, saved in document["repositories"].items():
            self._repositories[key] = RepositoryRecords(
                pulls=[PullRecord(**pull) for pull in saved["pulls"]],
                comments=[CommentRecord(**comment) for comment in saved["comments"]],
                statuses=[StatusRecord(**status) for status in saved["statuses"]],
            )
