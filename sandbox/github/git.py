"""Git plumbing on a bare repository: what the GitHub emulator needs to read branches and to merge.

Everything runs the real ``git`` (2.39 here) on the bare repository, never on a
work tree the user could see: a merge is ``git merge-tree --write-tree`` (the
merge GitHub's own test merge is) plus ``git commit-tree`` with the base and
head as parents, and the branch moves with ``git update-ref <ref> <new> <old>``,
which refuses when someone pushed meanwhile (GitHub's "Base branch was
modified"). Only a rebase merge needs a checkout: a temporary linked worktree,
removed afterwards.

Each command runs with a clean Git environment: no global or system config
(no signing, hooks or aliases of the machine's user), and none of the
``GIT_CONFIG_*`` variables ``vaultflow sandbox env`` exports.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

# GitHub commits merges as this committer; the author is the user who merged.
GITHUB_COMMITTER = ("GitHub", "noreply@github.com")
_TIMEOUT = 60


class GitError(Exception):
    """A git command failed (the message is git's last line of stderr)."""


@dataclass(frozen=True)
class Signature:
    name: str
    email: str
    date: str  # ISO 8601 with offset, as git prints %aI


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    tree: str
    parents: tuple[str, ...]
    author: Signature
    committer: Signature
    message: str


@dataclass(frozen=True)
class FileChange:
    filename: str
    status: str  # GitHub's words: added, removed, modified, renamed, copied, changed
    additions: int
    deletions: int
    previous_filename: str = ""


_STATUS_WORDS = {"A": "added", "D": "removed", "M": "modified", "R": "renamed", "C": "copied", "T": "changed"}


def _environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("GIT_CONFIG", "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"))
    }
    environment.update(GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1", GIT_TERMINAL_PROMPT="0")
    environment.update(extra or {})
    return environment


def _run(
    arguments: list[str], *, cwd: Path | None = None, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["git", *arguments],
            cwd=cwd,
            capture_output=True,
            check=False,
            timeout=_TIMEOUT,
            env=_environment(extra_env),
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise GitError(f"git {arguments[0]} failed: {error}") from None


def _failure(completed: subprocess.CompletedProcess[bytes], what: str) -> GitError:
    lines = completed.stderr.decode(errors="replace").strip().splitlines()
    return GitError(lines[-1] if lines else f"git {what} failed (exit {completed.returncode})")


def init_bare(path: Path, *, initial_branch: str = "main") -> str:
    """A bare repository at ``path`` (created when missing); its ``file://`` URL."""
    if not (path / "HEAD").is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        completed = _run(["init", "--quiet", "--bare", f"--initial-branch={initial_branch}", str(path)])
        if completed.returncode != 0:
            raise _failure(completed, "init")
    return path.resolve().as_uri()


def _identity(author: tuple[str, str], committer: tuple[str, str]) -> dict[str, str]:
    return {
        "GIT_AUTHOR_NAME": author[0],
        "GIT_AUTHOR_EMAIL": author[1],
        "GIT_COMMITTER_NAME": committer[0],
        "GIT_COMMITTER_EMAIL": committer[1],
    }


class BareRepository:
    """One bare repository on disk, read and written with git plumbing."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def exists(self) -> bool:
        return (self.path / "HEAD").is_file()

    def git(self, *arguments: str, extra_env: dict[str, str] | None = None) -> str:
        completed = _run(["--git-dir", str(self.path), *arguments], extra_env=extra_env)
        if completed.returncode != 0:
            raise _failure(completed, arguments[0])
        return completed.stdout.decode(errors="replace")

    def _succeeds(self, *arguments: str) -> bool:
        return _run(["--git-dir", str(self.path), *arguments]).returncode == 0

    # ------------------------------------------------------------ reading

    def default_branch(self) -> str:
        """The branch HEAD names (``main`` for a repository ``git init --initial-branch=main`` made)."""
        completed = _run(["--git-dir", str(self.path), "symbolic-ref", "--quiet", "--short", "HEAD"])
        return completed.stdout.decode().strip() if completed.returncode == 0 else "main"

    def branch_sha(self, branch: str) -> str | None:
        """The commit ``refs/heads/<branch>`` points at, None when there is no such branch."""
        completed = _run(
            [
                "--git-dir",
                str(self.path),
                "rev-parse",
                "--verify",
                "--quiet",
                f"refs/heads/{branch}^{{commit}}",
            ]
        )
        return completed.stdout.decode().strip() if completed.returncode == 0 else None

    def branches(self) -> dict[str, str]:
        output = self.git("for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads/")
        return dict(line.split(" ", 1) for line in output.splitlines() if line)

    def resolve(self, ref: str) -> str | None:
        """The commit a SHA (full or abbreviated), branch or tag names, as GitHub's ``{ref}`` parameters."""
        if not ref or ref.startswith("-"):
            return None
        for candidate in (f"refs/heads/{ref}", f"refs/tags/{ref}", ref):
            completed = _run(
                ["--git-dir", str(self.path), "rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}"]
            )
            if completed.returncode == 0:
                return completed.stdout.decode().strip()
        return None

    def commit(self, sha: str) -> CommitInfo:
        fields = "%H%x00%T%x00%P%x00%an%x00%ae%x00%aI%x00%cn%x00%ce%x00%cI%x00%B"
        output = self.git("show", "-s", f"--format={fields}", sha, "--")
        parts = output.split("\0", 9)
        return CommitInfo(
            sha=parts[0],
            tree=parts[1],
            parents=tuple(parts[2].split()),
            author=Signature(parts[3], parts[4], parts[5]),
            committer=Signature(parts[6], parts[7], parts[8]),
            message=parts[9].rstrip("\n"),
        )

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        return self._succeeds("merge-base", "--is-ancestor", ancestor, descendant)

    def merge_base(self, one: str, other: str) -> str | None:
        completed = _run(["--git-dir", str(self.path), "merge-base", one, other])
        return completed.stdout.decode().strip() if completed.returncode == 0 else None

    def commits_between(self, base: str, head: str) -> list[str]:
        """The commits of ``head`` not in ``base``, oldest first (what a pull request lists)."""
        return self.git("rev-list", "--reverse", f"{base}..{head}").split()

    def changes(self, old: str | None, new: str) -> list[FileChange]:
        """The files ``new`` changes against ``old`` (its first parent, or nothing for a root commit)."""
        range_ = [old, new] if old else ["--root", new]
        numstat = self.git("diff-tree", "-r", "-M", "--no-commit-id", "-z", "--numstat", *range_)
        status = self.git("diff-tree", "-r", "-M", "--no-commit-id", "-z", "--name-status", *range_)
        counts = _parse_numstat(numstat)
        changes = []
        tokens = status.split("\0")
        index = 0
        while index < len(tokens) and tokens[index]:
            code = tokens[index][0]
            if code in "RC":
                previous, filename = tokens[index + 1], tokens[index + 2]
                index += 3
            else:
                previous, filename = "", tokens[index + 1]
                index += 2
            added, deleted = counts.get(filename, (0, 0))
            changes.append(
                FileChange(filename, _STATUS_WORDS.get(code, "modified"), added, deleted, previous)
            )
        return changes

    # ------------------------------------------------------------ merging

    def merge_tree(self, base: str, head: str) -> str | None:
        """The tree of merging ``head`` into ``base``; None when they conflict."""
        completed = _run(["--git-dir", str(self.path), "merge-tree", "--write-tree", base, head])
        if completed.returncode == 0:
            return completed.stdout.decode().split("\n", 1)[0].strip()
        if completed.returncode == 1:
            return None
        raise _failure(completed, "merge-tree")

    def commit_tree(self, tree: str, parents: list[str], message: str, author: tuple[str, str]) -> str:
        arguments = ["commit-tree", tree]
        for parent in parents:
            arguments += ["-p", parent]
        environment = _identity(author, GITHUB_COMMITTER)
        return self.git(*arguments, "-m", message, extra_env=environment).strip()

    def update_ref(self, ref: str, new: str, old: str | None) -> bool:
        """Move ``ref`` to ``new`` only if it still points at ``old`` (None: only if it does not exist)."""
        expected = old if old is not None else "0" * 40
        completed = _run(["--git-dir", str(self.path), "update-ref", ref, new, expected])
        return completed.returncode == 0

    def delete_ref(self, ref: str, old: str) -> bool:
        return _run(["--git-dir", str(self.path), "update-ref", "-d", ref, old]).returncode == 0

    def rebase(self, base: str, head: str, committer: tuple[str, str]) -> str | None:
        """Replay ``head``'s commits on ``base`` (in a temporary worktree); the new tip, None on conflict."""
        with tempfile.TemporaryDirectory(prefix="vaultflow-github-rebase-") as scratch:
            worktree = Path(scratch) / "tree"
            self.git("worktree", "add", "--quiet", "--detach", str(worktree), head)
            try:
                environment = {
                    "GIT_COMMITTER_NAME": committer[0],
                    "GIT_COMMITTER_EMAIL": committer[1],
                }
                rebased = _run(
                    ["rebase", "--quiet", "--no-autostash", base], cwd=worktree, extra_env=environment
                )
                if rebased.returncode != 0:
                    _run(["rebase", "--abort"], cwd=worktree)
                    return None
                tip = _run(["rev-parse", "HEAD"], cwd=worktree)
                return tip.stdout.decode().strip()
            finally:
                _run(["--git-dir", str(self.path), "worktree", "remove", "--force", str(worktree)])
                _run(["--git-dir", str(self.path), "worktree", "prune"])


def _parse_numstat(output: str) -> dict[str, tuple[int, int]]:
    """``git diff-tree -z --numstat``: ``added\\tdeleted\\tpath\\0`` (renames: ``\\t\\0old\\0new\\0``)."""
    counts: dict[str, tuple[int, int]] = {}
    tokens = output.split("\0")
    index = 0
    while index < len(tokens) and tokens[index]:
        added, deleted, path = tokens[index].split("\t", 2)
        index += 1
        if not path:  # a rename or copy: the two paths follow
            path = tokens[index + 1]
            index += 2
        counts[path] = (int(added) if added != "-" else 0, int(deleted) if deleted != "-" else 0)
    return counts
