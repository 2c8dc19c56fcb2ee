"""Deliver a rendered tree to the GitOps repository: one commit, pushed, retried on races.

Argo CD only ever applies what is in Git, so delivery is a commit of the
rendered tree under the catalog's ``gitops.path``. It is:

* idempotent: a tree that matches what is committed makes no commit;
* concurrency-safe: when someone else pushed first, the workspace is reset to
  their commit and the (deterministic) tree re-applied on top, then pushed
  again after a backoff with jitter, a bounded number of times;
* secret-free by construction: the tree holds references to Vault paths only.
"""

from __future__ import annotations

import itertools
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vaultflow.base.errors import OperationError
from vaultflow.base.retry import backoff
from vaultflow.gitops.render import RenderedTree
from vaultflow.gitops.tree_writer import TreeChanges, write_tree

DEFAULT_AUTHOR = ("vaultflow", "vaultflow@localhost")
PUSH_BACKOFF = (0.2, 3.0)  # first and longest wait between push attempts, seconds
_URL_CREDENTIALS = re.compile(r"://[^/@\s]+@")


@dataclass(frozen=True)
class Delivery:
    """What a delivery did. ``commit`` is None when the repository already held the tree."""

    commit: str | None
    branch: str
    changes: TreeChanges
    attempts: int


def commit_message(changes: TreeChanges, summary: str, prefix: str = "") -> str:
    """A deterministic message: the summary, then each changed file (under ``prefix``)."""
    counts = f"{len(changes.added)} added, {len(changes.changed)} changed, {len(changes.removed)} removed"
    lines = [f"{summary} ({counts})", ""]
    base = f"{prefix.rstrip('/')}/" if prefix else ""
    lines += [f"A {base}{path}" for path in changes.added]
    lines += [f"M {base}{path}" for path in changes.changed]
    lines += [f"D {base}{path}" for path in changes.removed]
    return "\n".join(lines) + "\n"


class Workspace:
    """A clone of one branch of the GitOps repository, for one delivery."""

    def __init__(self, repo: Any, branch: str, directory: Path) -> None:
        self.repo = repo
        self.branch = branch
        self.directory = directory

    @classmethod
    def clone(cls, repo_url: str, branch: str, directory: Path) -> Workspace:
        import git  # GitPython: imported only by commands that deliver

        try:
            repo = git.Repo.clone_from(repo_url, directory, no_checkout=True)
        except git.GitCommandError as error:
            url = redact_url_credentials(repo_url)
            raise OperationError(f"cannot clone {url}: {_git_reason(error)}") from None
        workspace = cls(repo, branch, directory)
        if f"origin/{branch}" in [ref.name for ref in repo.remotes.origin.refs]:
            repo.git.checkout("-B", branch, f"origin/{branch}")
        else:
            repo.git.checkout("--orphan", branch)  # a new, empty repository or branch
        return workspace

    def apply(self, tree: RenderedTree, path: str) -> TreeChanges:
        """Make ``path`` in the work tree hold exactly ``tree``."""
        return write_tree(tree, self.directory / path)

    def commit(self, message: str, author: tuple[str, str] = DEFAULT_AUTHOR) -> str | None:
        """Commit every change; None when there is nothing to commit."""
        import git

        self.repo.git.add("--all")
        if self.repo.head.is_valid() and not self.repo.index.diff("HEAD"):
            return None
        if not self.repo.head.is_valid() and not self.repo.index.entries:
            return None
        actor = git.Actor(*author)
        commit = self.repo.index.commit(message, author=actor, committer=actor)
        return str(commit.hexsha)

    def push(self) -> bool:
        """Push the branch; False when the remote moved on (non-fast-forward), to be retried."""
        import git

        try:
            self.repo.git.push("origin", f"HEAD:refs/heads/{self.branch}")
        except git.GitCommandError as error:
            if self._remote_moved_on():
                return False
            raise OperationError(f"push to {self.branch} failed: {_git_reason(error)}") from None
        return True

    def _remote_moved_on(self) -> bool:
        """Did the push fail because the remote branch has commits we do not? (Asked of git, not
        parsed from its messages, which change with versions and ``advice.*`` settings.)"""
        import git

        try:
            self.repo.git.fetch("origin", self.branch)
        except git.GitCommandError:
            return False  # the branch is not there (or not readable): not a race
        try:
            self.repo.git.merge_base("--is-ancestor", f"origin/{self.branch}", "HEAD")
        except git.GitCommandError:
            return True
        return False

    def reset_to_remote(self) -> None:
        """Drop the local commit and start again from what the remote has now."""
        self.repo.git.fetch("origin", self.branch)
        self.repo.git.reset("--hard", f"origin/{self.branch}")
        self.repo.git.clean("-fdx")


class _RemoteMovedOn(Exception):
    """A push lost the race: someone else's commit is on the branch now (the workspace holds it)."""


def deliver(
    tree: RenderedTree,
    *,
    repo_url: str,
    path: str,
    branch: str = "main",
    summary: str = "vaultflow: render secrets catalog",
    author: tuple[str, str] = DEFAULT_AUTHOR,
    max_attempts: int = 5,
    workdir: Path | None = None,
) -> Delivery:
    """Commit ``tree`` under ``path`` on ``branch`` of ``repo_url`` and push it.

    A push that lost the race is re-applied on the remote's new commit and pushed again after a
    backoff with jitter (``PUSH_BACKOFF``), so that deliveries racing each other spread out instead
    of colliding again, at most ``max_attempts`` times.
    """
    import tenacity

    scratch = Path(tempfile.mkdtemp(prefix="vaultflow-gitops-", dir=workdir))
    try:
        workspace = Workspace.clone(repo_url, branch, scratch / "repo")
        attempts = itertools.count(1)

        def attempt() -> Delivery:
            number = next(attempts)
            changes = workspace.apply(tree, path)
            sha = workspace.commit(commit_message(changes, summary, path), author)
            if sha is None or workspace.push():
                return Delivery(commit=sha, branch=branch, changes=changes, attempts=number)
            workspace.reset_to_remote()
            raise _RemoteMovedOn

        def rejected(state: tenacity.RetryCallState) -> Delivery:
            raise OperationError(
                f"push to {redact_url_credentials(repo_url)} ({branch}) was rejected {state.attempt_number} "
                "times: the branch keeps moving"
            )

        return tenacity.Retrying(
            stop=tenacity.stop_after_attempt(max_attempts),
            wait=backoff(*PUSH_BACKOFF),
            retry=tenacity.retry_if_exception_type(_RemoteMovedOn),
            retry_error_callback=rejected,
        )(attempt)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _git_reason(error: Any) -> str:
    """The useful last line of git's stderr, never the command line, credentials redacted.

    A repository URL may carry a token (``https://x-access-token:TOKEN@host/...``).
    """
    lines = [line.strip() for line in str(getattr(error, "stderr", "")).splitlines() if line.strip()]
    reason = lines[-1] if lines else f"git exited with {getattr(error, 'status', '?')}"
    return redact_url_credentials(reason.removeprefix("stderr: ").strip("'"))


def redact_url_credentials(text: str) -> str:
    return _URL_CREDENTIALS.sub("://***@", text)
