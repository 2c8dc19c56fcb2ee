"""Deliver a rendered tree to the GitOps repository: one commit, pushed, retried on races.

Argo CD only ever applies what is in Git, so delivery is a commit of the
rendered tree under the catalog's ``gitops.path``. It is:

* cheap: a shallow fetch of the one branch delivered to (the tree is
  deterministic, so no history is needed to rebuild it), checked out only when
  the rendered tree differs from the commit's (blob ids compared first: a run
  with nothing to change writes no file);
* idempotent: a tree that matches what is committed makes no commit;
* concurrency-safe: when someone else pushed first, the workspace is reset to
  their commit and the (deterministic) tree re-applied on top, then pushed
  again after a backoff with jitter, a bounded number of times;
* secret-free by construction: the tree holds references to Vault paths only,
  and a commit message names the kinds and names of what changed, never a value.

Two shapes: ``push_tree`` commits on the branch itself; ``propose_tree`` puts
the same commit on a proposal branch of its own (for a pull request), always
one commit on top of the base branch's current head.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import shlex
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vaultflow.base.errors import OperationError
from vaultflow.base.retry import backoff
from vaultflow.gitops.render import RenderedFile, RenderedTree
from vaultflow.gitops.tree_writer import (
    FileObject,
    TreeChanges,
    changed_objects,
    objects_in,
    read_tree,
    write_tree,
)

DEFAULT_AUTHOR = ("vaultflow", "vaultflow@localhost")
DEFAULT_SUMMARY = "vaultflow: render secrets catalog"
PUSH_BACKOFF = (0.2, 3.0)  # first and longest wait between push attempts, seconds
_URL_CREDENTIALS = re.compile(r"://[^/@\s]+@")
_OBJECTS_SHOWN = 5  # per file in a commit message: a kustomization lists many, the path says the rest

FileObjects = dict[str, list[FileObject]]


@dataclass(frozen=True)
class Delivery:
    """What a delivery did. ``commit`` is None when the repository already held the tree."""

    commit: str | None
    branch: str
    changes: TreeChanges
    attempts: int
    objects: FileObjects = field(default_factory=dict)  # each changed file's objects (kinds, names)
    base: str | None = None  # the branch's commit the tree was compared with (None: a new branch)


@dataclass(frozen=True)
class Proposal:
    """A proposal branch holding the tree as one commit on top of ``base`` (the base branch's head).

    ``commit`` is the proposal branch's head, ``None`` when the base branch already holds the tree
    (nothing to propose); ``pushed`` says whether this run pushed it (False: it was already there).
    """

    branch: str
    base_branch: str
    base: str
    commit: str | None
    pushed: bool
    changes: TreeChanges
    attempts: int
    objects: FileObjects = field(default_factory=dict)


def commit_message(
    changes: TreeChanges, summary: str, prefix: str = "", objects: FileObjects | None = None
) -> str:
    """A deterministic message: the summary, then each changed file (under ``prefix``) with the kinds
    and names of the objects it holds or held (never a value)."""
    counts = f"{len(changes.added)} added, {len(changes.changed)} changed, {len(changes.removed)} removed"
    lines = [f"{summary} ({counts})", ""]
    base = f"{prefix.rstrip('/')}/" if prefix else ""
    found = objects or {}
    for letter, paths in (("A", changes.added), ("M", changes.changed), ("D", changes.removed)):
        lines += [f"{letter} {base}{path}{_objects_suffix(found.get(path, []))}" for path in paths]
    return "\n".join(lines) + "\n"


def _objects_suffix(objects: list[FileObject]) -> str:
    if not objects:
        return ""
    shown = ", ".join(str(obj) for obj in objects[:_OBJECTS_SHOWN])
    more = len(objects) - _OBJECTS_SHOWN
    return f": {shown}" + (f" and {more} more" if more > 0 else "")


class Workspace:
    """A shallow clone of one branch of the GitOps repository, for one delivery."""

    def __init__(self, repo: Any, branch: str, directory: Path, default_branch: str | None = None) -> None:
        self.repo = repo
        self.branch = branch
        self.directory = directory
        self.default_branch = default_branch  # the remote's HEAD, None for an empty repository
        self._checked_out = False  # a clone fetches without checking out (``holds`` needs no files)

    @property
    def url(self) -> str:
        """The remote's URL as given (credentials redacted), for messages."""
        return redact_url_credentials(str(self.repo.remotes.origin.url))

    @classmethod
    def clone(
        cls, repo_url: str, branch: str, directory: Path, *, environment: Mapping[str, str] | None = None
    ) -> Workspace:
        """Fetch ``branch`` only, one commit deep; a branch the remote does not have starts empty.

        ``environment`` is added to every git command's (Git's own configuration through
        ``GIT_CONFIG_*``: a credential helper, ``credential_helper_environment``)."""
        import git  # GitPython: imported only by commands that deliver

        directory.mkdir(parents=True, exist_ok=True)
        repo = git.Repo.init(directory)
        if environment:
            repo.git.update_environment(**environment)
        repo.create_remote("origin", repo_url)
        try:
            # One round trip says whether the branch exists and what the default branch is; an
            # unreachable remote or refused credentials fail here, before anything is written.
            listing = repo.git.ls_remote("--symref", "origin", "HEAD", f"refs/heads/{branch}")
        except git.GitCommandError as error:
            url = redact_url_credentials(repo_url)
            raise OperationError(f"cannot clone {url}: {_git_reason(error)}") from None
        default, heads = _parse_ls_remote(str(listing))
        workspace = cls(repo, branch, directory, default)
        if f"refs/heads/{branch}" in heads:
            try:
                workspace._fetch(branch)
            except git.GitCommandError as error:
                url = redact_url_credentials(repo_url)
                raise OperationError(f"cannot clone {url}: {_git_reason(error)}") from None
            # The branch at the fetched commit, nothing checked out yet (``_check_out``).
            repo.git.update_ref(f"refs/heads/{branch}", f"origin/{branch}")
            repo.git.symbolic_ref("HEAD", f"refs/heads/{branch}")
        else:
            repo.git.symbolic_ref("HEAD", f"refs/heads/{branch}")  # a new, empty repository or branch
        return workspace

    def _fetch(self, branch: str, *, depth: int | None = 1) -> None:
        deepen = [f"--depth={depth}"] if depth else []
        self.repo.git.fetch(*deepen, "origin", f"+refs/heads/{branch}:refs/remotes/origin/{branch}")

    def remote_head(self, branch: str) -> str | None:
        """The commit ``branch`` is at on the remote now, None when it does not exist."""
        import git

        try:
            listing = self.repo.git.ls_remote("origin", f"refs/heads/{branch}")
        except git.GitCommandError as error:
            raise OperationError(f"cannot read {branch} of {self.url}: {_git_reason(error)}") from None
        return _parse_ls_remote(str(listing))[1].get(f"refs/heads/{branch}")

    def head(self) -> str | None:
        """The commit checked out (None on a new branch)."""
        return str(self.repo.head.commit.hexsha) if self.repo.head.is_valid() else None

    def _check_out(self) -> None:
        """The branch's files in the work tree and the index, once, before anything reads or writes them."""
        if not self._checked_out:
            if self.head() is not None:
                self.repo.git.reset("--hard", "HEAD")
            self._checked_out = True

    def holds(self, tree: RenderedTree, path: str) -> bool:
        """Whether the checked-out commit holds exactly ``tree`` under ``path``, by the blob ids of
        ``git ls-tree`` (no file is read or written). False when unsure: the full comparison decides."""
        if self.head() is None:
            return False
        prefix = f"{path.strip('/')}/"
        listing = str(self.repo.git.ls_tree("-r", "-z", "--full-tree", "HEAD", "--", prefix))
        committed: dict[str, str] = {}
        for entry in listing.split("\0"):
            if not entry:
                continue
            header, _, name = entry.partition("\t")
            _, kind, object_id = header.split(" ")
            if kind != "blob" or not name.startswith(prefix):
                return False  # a submodule or something unexpected: let the full comparison see it
            committed[name.removeprefix(prefix)] = object_id
        return committed == {f.path: blob_id(f.content) for f in tree.files}

    def apply(self, tree: RenderedTree, path: str) -> TreeChanges:
        """Make ``path`` in the work tree hold exactly ``tree``."""
        self._check_out()
        return write_tree(tree, self.directory / path)

    def apply_described(self, tree: RenderedTree, path: str) -> tuple[TreeChanges, FileObjects]:
        """``apply``, and the kinds and names of the objects of every file it added, changed or removed."""
        self._check_out()
        old = read_tree(self.directory / path)
        changes = write_tree(tree, self.directory / path)
        new = tree.by_path()
        added = set(changes.added)
        objects: FileObjects = {f.path: _rendered_objects(f) for f in tree.files if f.path in added}
        for p in [*changes.changed, *changes.removed]:
            objects[p] = changed_objects(p, old.get(p), new.get(p))
        return changes, objects

    def commit(self, message: str, author: tuple[str, str] = DEFAULT_AUTHOR) -> str | None:
        """Commit every change; None when there is nothing to commit."""
        import git

        self._check_out()
        self.repo.git.add("--all")
        if self.repo.head.is_valid() and not self.repo.index.diff("HEAD"):
            return None
        if not self.repo.head.is_valid() and not self.repo.index.entries:
            return None
        actor = git.Actor(*author)
        commit = self.repo.index.commit(message, author=actor, committer=actor)
        return str(commit.hexsha)

    def staged_tree(self) -> str:
        """The tree object the work tree would commit as (written, not committed)."""
        self._check_out()
        self.repo.git.add("--all")
        return str(self.repo.git.write_tree())

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

    def push_to(self, branch: str, expected: str | None) -> bool:
        """Push HEAD to ``branch`` (a proposal branch vaultflow owns), replacing what it holds only if
        that is still ``expected`` (None: it must not exist): False when someone else pushed it meanwhile.
        """
        import git

        try:
            self.repo.git.push(
                f"--force-with-lease=refs/heads/{branch}:{expected or ''}",
                "origin",
                f"HEAD:refs/heads/{branch}",
            )
        except git.GitCommandError as error:
            if self.remote_head(branch) != expected:
                return False
            raise OperationError(f"push to {branch} failed: {_git_reason(error)}") from None
        return True

    def proposal_matches(self, commit: str, base: str, tree: str) -> bool:
        """Whether ``commit`` (fetched) is exactly one commit on ``base`` holding ``tree``."""
        raw = str(self.repo.git.cat_file("commit", commit))  # the object itself: shallow grafts hide parents
        parents = [line.split()[1] for line in raw.splitlines() if line.startswith("parent ")]
        return parents == [base] and str(self.repo.git.rev_parse(f"{commit}^{{tree}}")) == tree

    def fetch_branch(self, branch: str) -> None:
        self._fetch(branch)

    def _remote_moved_on(self) -> bool:
        """Did the push fail because the remote branch has commits we do not? (Asked of git, not
        parsed from its messages, which change with versions and ``advice.*`` settings.)"""
        import git

        try:
            self._fetch(self.branch)
        except git.GitCommandError:
            return False  # the branch is not there (or not readable): not a race
        try:
            self.repo.git.merge_base("--is-ancestor", f"origin/{self.branch}", "HEAD")
        except git.GitCommandError:
            return True
        return False

    def reset_to_remote(self) -> None:
        """Drop the local commit and start again from what the remote has now."""
        self._fetch(self.branch)
        self.repo.git.reset("--hard", f"origin/{self.branch}")
        self.repo.git.clean("-fdx")
        self._checked_out = True

    def contains(self, commit: str, revision: str) -> bool:
        """Whether ``revision`` (a commit of the branch, as Argo CD reports it) is ``commit`` or comes
        after it. The branch is fetched (only what is new) when ``revision`` is not known yet."""
        import git

        if commit == revision:
            return True
        for fetched in (False, True):
            try:
                self.repo.git.merge_base("--is-ancestor", commit, revision)
            except git.GitCommandError as error:
                if error.status == 1:
                    return False  # both known: not an ancestor
                if fetched:
                    return False  # still unknown: not a commit of this branch
                try:
                    self._fetch(self.branch, depth=None)
                except git.GitCommandError:
                    return False
                continue
            return True
        return False


def blob_id(content: str) -> str:
    """The id Git gives a file holding ``content`` (SHA-1 object format): ``git hash-object``."""
    data = content.encode("utf-8")
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def _rendered_objects(rendered: RenderedFile) -> list[FileObject]:
    """A rendered file's objects from its manifest (no YAML parsing: a first apply of a large catalog
    adds every file), else from its text (a Vault policy is named by its path)."""
    manifest = rendered.manifest
    if manifest is None:
        return objects_in(rendered.path, rendered.content)
    metadata = manifest.get("metadata") or {}
    return [FileObject(str(manifest["kind"]), str(metadata.get("name") or ""), metadata.get("namespace"))]


def _parse_ls_remote(listing: str) -> tuple[str | None, dict[str, str]]:
    """(the default branch, {ref: sha}) from ``git ls-remote --symref`` output."""
    default = None
    heads: dict[str, str] = {}
    for line in listing.splitlines():
        left, _, ref = line.partition("\t")
        if left.startswith("ref: "):
            if ref == "HEAD":
                default = left.removeprefix("ref: ").removeprefix("refs/heads/")
        elif ref:
            heads[ref] = left
    return default, heads


@contextmanager
def open_workspace(
    repo_url: str,
    branch: str,
    *,
    workdir: Path | None = None,
    environment: Mapping[str, str] | None = None,
) -> Iterator[Workspace]:
    """A shallow clone of ``branch`` in a scratch directory, removed afterwards."""
    scratch = Path(tempfile.mkdtemp(prefix="vaultflow-gitops-", dir=workdir))
    try:
        yield Workspace.clone(repo_url, branch, scratch / "repo", environment=environment)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


class _RemoteMovedOn(Exception):
    """A push lost the race: someone else's commit is on the branch now (the workspace holds it)."""


def _retrying(max_attempts: int, rejected_message: str) -> Any:
    import tenacity

    def rejected(state: tenacity.RetryCallState) -> None:
        raise OperationError(
            f"{rejected_message} was rejected {state.attempt_number} times: the branch keeps moving"
        )

    return tenacity.Retrying(
        stop=tenacity.stop_after_attempt(max_attempts),
        wait=backoff(*PUSH_BACKOFF),
        retry=tenacity.retry_if_exception_type(_RemoteMovedOn),
        retry_error_callback=rejected,
    )


def deliver(
    tree: RenderedTree,
    *,
    repo_url: str,
    path: str,
    branch: str = "main",
    summary: str = DEFAULT_SUMMARY,
    author: tuple[str, str] = DEFAULT_AUTHOR,
    max_attempts: int = 5,
    workdir: Path | None = None,
) -> Delivery:
    """Commit ``tree`` under ``path`` on ``branch`` of ``repo_url`` and push it (``push_tree``)."""
    with open_workspace(repo_url, branch, workdir=workdir) as workspace:
        return push_tree(
            workspace, tree, path=path, summary=summary, author=author, max_attempts=max_attempts
        )


def push_tree(
    workspace: Workspace,
    tree: RenderedTree,
    *,
    path: str,
    summary: str = DEFAULT_SUMMARY,
    author: tuple[str, str] = DEFAULT_AUTHOR,
    max_attempts: int = 5,
) -> Delivery:
    """Commit ``tree`` under ``path`` on the workspace's branch and push it.

    A push that lost the race is re-applied on the remote's new commit and pushed again after a
    backoff with jitter (``PUSH_BACKOFF``), so that deliveries racing each other spread out instead
    of colliding again, at most ``max_attempts`` times.
    """
    attempts = itertools.count(1)

    def attempt() -> Delivery:
        number = next(attempts)
        base = workspace.head()
        if workspace.holds(tree, path):
            return Delivery(None, workspace.branch, _unchanged(tree), number, {}, base)
        changes, objects = workspace.apply_described(tree, path)
        sha = workspace.commit(commit_message(changes, summary, path, objects), author)
        if sha is None or workspace.push():
            return Delivery(sha, workspace.branch, changes, number, objects, base)
        workspace.reset_to_remote()
        raise _RemoteMovedOn

    delivery: Delivery = _retrying(max_attempts, f"push to {workspace.url} ({workspace.branch})")(attempt)
    return delivery


def _unchanged(tree: RenderedTree) -> TreeChanges:
    return TreeChanges(added=[], changed=[], removed=[], unchanged=len(tree.files))


def proposal_branch(path: str) -> str:
    """The stable branch a pull request for ``path`` comes from: ``vaultflow/<path as a slug>``."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", path.strip("/")).strip("-.") or "root"
    return f"vaultflow/{slug}"


def propose_tree(
    workspace: Workspace,
    tree: RenderedTree,
    *,
    path: str,
    branch: str,
    summary: str = DEFAULT_SUMMARY,
    author: tuple[str, str] = DEFAULT_AUTHOR,
    max_attempts: int = 5,
) -> Proposal:
    """Put ``tree`` under ``path`` on ``branch`` as one commit on top of the workspace's (base) branch.

    The proposal branch is vaultflow's own: each run rebuilds it on the base's current head and
    replaces it (``--force-with-lease``, so a concurrent run's push is never overwritten unseen: the
    run that lost starts again). Nothing is pushed when the branch already is exactly that commit,
    and no branch is needed when the base already holds the tree.
    """
    base = workspace.head()
    if base is None:
        raise OperationError(
            f"{workspace.branch} does not exist in {workspace.url}: a pull request needs a base branch "
            "(apply --mode push creates it)"
        )
    attempts = itertools.count(1)

    def attempt() -> Proposal:
        number = next(attempts)
        start = workspace.head()
        assert start is not None  # the base branch exists (checked above) and is never deleted by us
        if workspace.holds(tree, path):
            return Proposal(branch, workspace.branch, start, None, False, _unchanged(tree), number)
        changes, objects = workspace.apply_described(tree, path)

        def proposal(commit: str | None, pushed: bool) -> Proposal:
            return Proposal(branch, workspace.branch, start, commit, pushed, changes, number, objects)

        if changes.total_changes == 0:
            return proposal(None, False)
        existing = workspace.remote_head(branch)
        if existing is not None:
            workspace.fetch_branch(branch)
            if workspace.proposal_matches(existing, start, workspace.staged_tree()):
                return proposal(existing, False)
        sha = workspace.commit(commit_message(changes, summary, path, objects), author)
        assert sha is not None  # the tree differs from the base's
        if workspace.push_to(branch, existing):
            return proposal(sha, True)
        workspace.reset_to_remote()  # the base may have moved on too
        raise _RemoteMovedOn

    proposed: Proposal = _retrying(max_attempts, f"push to {workspace.url} ({branch})")(attempt)
    return proposed


def _git_reason(error: Any) -> str:
    """The useful line of git's stderr, never the command line, credentials redacted.

    The server's own words (``remote: Permission ... denied``) or git's first ``fatal:`` line when
    there is one, else the last line. A repository URL may carry a token
    (``https://x-access-token:TOKEN@host/...``).
    """
    lines = [
        line.strip().removeprefix("stderr: ").strip("'").strip()
        for line in str(getattr(error, "stderr", "")).splitlines()
    ]
    lines = [line for line in lines if line]
    fatal = [line for line in lines if line.startswith("fatal: ")]
    remote = [line.removeprefix("remote: ").strip() for line in lines if line.startswith("remote: ")]
    remote = [line for line in remote if line]
    rejected = [line for line in lines if line.startswith("! [")]
    if fatal:
        reason = fatal[0].removeprefix("fatal: ")  # the first says what; the next ones what to check
    elif remote:
        reason = remote[-1] + (f" {rejected[-1]}" if rejected else "")
    elif rejected:
        reason = rejected[-1]
    elif lines:
        reason = lines[-1]
    else:
        reason = f"git exited with {getattr(error, 'status', '?')}"
    return redact_url_credentials(reason)


# GitHub takes any user name with a token as the password; x-access-token is the one it documents.
TOKEN_USER = "x-access-token"


def credential_helper_environment(token_file: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """Git configuration, through the environment (``GIT_CONFIG_COUNT``/``KEY_n``/``VALUE_n``, after
    any ``environ`` already has), adding a credential helper that answers with the token in
    ``token_file``: read when git asks, never in a URL, a command line or the environment.

    The helper is a shell function (git runs a helper starting with ``!`` through the shell); the
    token goes from ``cat`` to the shell's own ``printf``, so no process is ever given it as an
    argument."""
    count = int(environ.get("GIT_CONFIG_COUNT") or 0)
    helper = (
        '!f() { test "$1" = get || exit 0; '
        f"printf 'username={TOKEN_USER}\\npassword=%s\\n' \"$(cat {shlex.quote(str(token_file))})\"; }}; f"
    )
    return {
        "GIT_CONFIG_COUNT": str(count + 1),
        f"GIT_CONFIG_KEY_{count}": "credential.helper",
        f"GIT_CONFIG_VALUE_{count}": helper,
    }


def redact_url_credentials(text: str) -> str:
    return _URL_CREDENTIALS.sub("://***@", text)
