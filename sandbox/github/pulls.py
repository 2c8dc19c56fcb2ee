"""Pull requests over a bare repository, with GitHub's rules (``docs.github.com/rest/pulls/pulls``).

* One open pull request per head and base: a second is a 422 "A pull request
  already exists for owner:branch." A head with nothing the base lacks is a
  422 "No commits between base and head". Head and base must be branches of
  the repository (no forks in the sandbox).
* An open pull request follows its branches: ``head.sha`` and ``base.sha`` are
  the branch tips now (a push to the head shows at once, as GitHub's
  ``synchronize``); a pull request whose head branch is deleted is closed, as
  GitHub closes it. ``refs/pull/<n>/head`` is kept in the repository, as on
  GitHub.
* Mergeability is GitHub's test merge, done for real: ``git merge-tree`` of
  base and head. Clean: ``mergeable: true`` and ``merge_commit_sha`` is a test
  merge commit (``refs/pull/<n>/merge``); conflicting: ``mergeable: false``,
  ``mergeable_state: dirty``; a non-passing commit status on the head makes a
  clean merge ``unstable``; a draft is ``draft``. Closed and merged pull
  requests answer ``mergeable: null`` with state ``unknown``.
* Merging (``merge``, ``squash`` or ``rebase``) writes the commit with git
  plumbing and moves the base branch with a compare-and-swap: a push that
  lands meanwhile makes the merge a 405 "Base branch was modified", never a
  lost commit. A stale ``sha`` is a 409, a pull request that is not mergeable
  (conflicting, closed, merged, draft) a 405.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from vaultflow.sandbox.github import errors
from vaultflow.sandbox.github.git import BareRepository
from vaultflow.sandbox.github.repositories import HostedRepository
from vaultflow.sandbox.github.shapes import Mergeability, PullFigures, combined_state
from vaultflow.sandbox.github.store import GitHubStore, PullRecord, StatusRecord, now

log = logging.getLogger("vaultflow.sandbox.github")

DOCS = "https://docs.github.com/rest/pulls/pulls"
CREATE_DOCS = f"{DOCS}#create-a-pull-request"
UPDATE_DOCS = f"{DOCS}#update-a-pull-request"
MERGE_DOCS = f"{DOCS}#merge-a-pull-request"
MERGE_METHODS = ("merge", "squash", "rebase")


def text(body: dict[str, Any], name: str, documentation_url: str) -> str | None:
    """An optional string field; a value of another type is the 422 GitHub's schema check answers."""
    value = body.get(name)
    if value is None or isinstance(value, str):
        return value
    raise errors.GitHubError(
        422, f"Invalid request.\n\nFor 'properties/{name}', {value!r} is not a string.", documentation_url
    )


def flag(body: dict[str, Any], name: str, documentation_url: str) -> bool | None:
    value = body.get(name)
    if value is None or isinstance(value, bool):
        return value
    raise errors.GitHubError(
        422, f"Invalid request.\n\nFor 'properties/{name}', {value!r} is not a boolean.", documentation_url
    )


class PullRequests:
    """The pull requests of every served repository; all methods run under ``store.lock``."""

    def __init__(
        self, store: GitHubStore, account: tuple[str, str], statuses: Callable[[str, str], list[StatusRecord]]
    ) -> None:
        self.store = store
        self.login, self.email = account
        self._latest_statuses = statuses  # (repository key, sha) -> latest status per context
        self._test_merges: dict[tuple[str, str, str], tuple[str | None, str | None]] = {}
        self._figures: dict[tuple[str, str], PullFigures] = {}  # (base, head) -> counts: commits never change

    # ------------------------------------------------------------ reading

    def refresh(self, bare: BareRepository, pull: PullRecord) -> bool:
        """Follow the branches of an open pull request; True when the record changed."""
        if pull.state != "open":
            return False
        head = bare.branch_sha(pull.head_ref)
        if head is None:  # GitHub closes a pull request whose head branch is gone
            self._freeze(bare, pull)
            pull.state, pull.closed_at = "closed", now()
            pull.updated_at = pull.closed_at
            log.info("pull request #%d closed: its head branch %s was deleted", pull.number, pull.head_ref)
            return True
        base = bare.branch_sha(pull.base_ref) or pull.base_sha
        changed = (head, base) != (pull.head_sha, pull.base_sha)
        if head != pull.head_sha:
            pull.updated_at = now()
            bare.git("update-ref", f"refs/pull/{pull.number}/head", head)
        pull.head_sha, pull.base_sha = head, base
        return changed

    def get(self, hosted: HostedRepository, bare: BareRepository, number: int) -> PullRecord:
        records = self.store.records(hosted.key)
        pull = records.pull(number)
        if pull is None:
            raise errors.not_found(f"{DOCS}#get-a-pull-request")
        if self.refresh(bare, pull):
            self.store.save()
        return pull

    def list(
        self,
        hosted: HostedRepository,
        bare: BareRepository,
        *,
        state: str,
        head: str,
        base: str,
        sort: str,
        direction: str,
    ) -> list[PullRecord]:
        records = self.store.records(hosted.key)
        changed = [self.refresh(bare, pull) for pull in records.pulls]  # every one, not up to the first
        if any(changed):
            self.store.save()
        pulls = [pull for pull in records.pulls if state in ("all", pull.state)]
        if ":" in head:  # GitHub ignores a head filter that is not `owner:branch`
            owner, _, ref = head.partition(":")
            pulls = [p for p in pulls if owner.lower() == hosted.owner.lower() and p.head_ref == ref]
        if base:
            pulls = [pull for pull in pulls if pull.base_ref == base]
        key = {
            "created": lambda p: (p.created_at, p.number),
            "updated": lambda p: (p.updated_at, p.number),
            "popularity": lambda p: (len([c for c in records.comments if c.number == p.number]), p.number),
            "long-running": lambda p: (p.created_at, p.number),
        }[sort]
        descending = direction == "desc" if direction else sort == "created"
        return sorted(pulls, key=key, reverse=descending)

    def mergeability(self, hosted: HostedRepository, bare: BareRepository, pull: PullRecord) -> Mergeability:
        if pull.state != "open":
            return Mergeability(None, "unknown")
        tree, test_merge = self._test_merge(hosted, bare, pull)
        if tree is None:
            return Mergeability(False, "dirty")
        if pull.draft:
            return Mergeability(True, "draft", test_merge)
        latest = self._latest_statuses(hosted.key, pull.head_sha)
        state = "unstable" if latest and combined_state(latest) != "success" else "clean"
        return Mergeability(True, state, test_merge)

    def figures(self, bare: BareRepository, pull: PullRecord) -> PullFigures:
        if pull.figures is not None:
            return PullFigures(*pull.figures)
        return self._count(bare, pull)

    # ------------------------------------------------------------ writing

    def create(self, hosted: HostedRepository, bare: BareRepository, body: dict[str, Any]) -> PullRecord:
        title = text(body, "title", CREATE_DOCS)
        head_spec = text(body, "head", CREATE_DOCS)
        base_ref = text(body, "base", CREATE_DOCS)
        description = text(body, "body", CREATE_DOCS)
        head_repo = text(body, "head_repo", CREATE_DOCS)
        draft = flag(body, "draft", CREATE_DOCS) or False
        maintainer_can_modify = flag(body, "maintainer_can_modify", CREATE_DOCS) or False
        for name, value in (("head", head_spec), ("base", base_ref), ("title", title)):
            if not value:
                raise errors.missing_field("PullRequest", name, CREATE_DOCS)
        assert head_spec is not None and base_ref is not None and title is not None
        owner, _, head_ref = head_spec.rpartition(":")
        foreign_owner = owner and owner.lower() != hosted.owner.lower()
        if foreign_owner or (head_repo and head_repo.lower() != hosted.key):
            raise errors.invalid_field("PullRequest", "head", CREATE_DOCS)  # no forks in the sandbox
        head_sha, base_sha = bare.branch_sha(head_ref), bare.branch_sha(base_ref)
        if head_sha is None:
            raise errors.invalid_field("PullRequest", "head", CREATE_DOCS)
        if base_sha is None:
            raise errors.invalid_field("PullRequest", "base", CREATE_DOCS)
        records = self.store.records(hosted.key)
        self._refuse_duplicate(
            hosted, bare, head_ref=head_ref, base_ref=base_ref, documentation_url=CREATE_DOCS
        )
        if bare.is_ancestor(head_sha, base_sha):
            raise errors.custom("PullRequest", f"No commits between {base_ref} and {head_ref}", CREATE_DOCS)
        created = now()
        pull = PullRecord(
            number=max((p.number for p in records.pulls), default=0) + 1,
            id=self.store.next_id("pull"),
            title=title,
            body=description,
            user=self.login,
            head_ref=head_ref,
            head_sha=head_sha,
            base_ref=base_ref,
            base_sha=base_sha,
            created_at=created,
            updated_at=created,
            draft=draft,
            maintainer_can_modify=maintainer_can_modify,
        )
        records.pulls.append(pull)
        bare.git("update-ref", f"refs/pull/{pull.number}/head", head_sha)
        self.store.save()
        log.info("pull request %s#%d opened: %s -> %s", hosted.full_name, pull.number, head_ref, base_ref)
        return pull

    def update(
        self, hosted: HostedRepository, bare: BareRepository, number: int, body: dict[str, Any]
    ) -> PullRecord:
        pull = self.get(hosted, bare, number)
        title, description = text(body, "title", UPDATE_DOCS), text(body, "body", UPDATE_DOCS)
        state, base_ref = text(body, "state", UPDATE_DOCS), text(body, "base", UPDATE_DOCS)
        maintainer_can_modify = flag(body, "maintainer_can_modify", UPDATE_DOCS)
        if state is not None and state not in ("open", "closed"):
            raise errors.invalid_field("PullRequest", "state", UPDATE_DOCS)
        if base_ref is not None and base_ref != pull.base_ref:
            base_sha = bare.branch_sha(base_ref)
            if base_sha is None or pull.state != "open":
                raise errors.invalid_field("PullRequest", "base", UPDATE_DOCS)
            self._refuse_duplicate(
                hosted, bare, head_ref=pull.head_ref, base_ref=base_ref, documentation_url=UPDATE_DOCS
            )
            pull.base_ref, pull.base_sha = base_ref, base_sha
        if state == "closed" and pull.state == "open":
            self._freeze(bare, pull)
            pull.state, pull.closed_at = "closed", now()
            log.info("pull request %s#%d closed", hosted.full_name, pull.number)
        elif state == "open" and pull.state == "closed":
            self._reopen(hosted, bare, pull)
        if title is not None:
            pull.title = title
        if "body" in body:
            pull.body = description
        if maintainer_can_modify is not None:
            pull.maintainer_can_modify = maintainer_can_modify
        pull.updated_at = now()
        self.store.save()
        return pull

    def merge(self, hosted: HostedRepository, bare: BareRepository, number: int, body: dict[str, Any]) -> str:
        """Merge as GitHub's merge button does; the new tip of the base branch."""
        pull = self.get(hosted, bare, number)
        title, message = text(body, "commit_title", MERGE_DOCS), text(body, "commit_message", MERGE_DOCS)
        expected, method = text(body, "sha", MERGE_DOCS), text(body, "merge_method", MERGE_DOCS) or "merge"
        if method not in MERGE_METHODS:
            raise errors.invalid_field("PullRequest", "merge_method", MERGE_DOCS)
        if pull.state != "open":
            raise errors.GitHubError(405, "Pull Request is not mergeable", MERGE_DOCS)
        if expected is not None and expected != pull.head_sha:
            raise errors.GitHubError(
                409, "Head branch was modified. Review and try the merge again.", MERGE_DOCS
            )
        if pull.draft:
            raise errors.GitHubError(405, "Pull Request is still a draft", MERGE_DOCS)
        base = pull.base_sha
        figures = self._count(bare, pull)
        author = (self.login, self.email)
        if method == "rebase":
            merged = bare.rebase(base, pull.head_sha, author)
            if merged is None:
                raise errors.GitHubError(405, "This branch can't be rebased", MERGE_DOCS)
        else:
            tree = bare.merge_tree(base, pull.head_sha)
            if tree is None:
                raise errors.GitHubError(405, "Pull Request is not mergeable", MERGE_DOCS)
            if method == "merge":
                subject = title or f"Merge pull request #{pull.number} from {hosted.owner}/{pull.head_ref}"
                merge_message = f"{subject}\n\n{message if message is not None else pull.title}"
                merged = bare.commit_tree(tree, [base, pull.head_sha], merge_message, author)
            else:
                subject = title or f"{pull.title} (#{pull.number})"
                listed = "\n\n".join(
                    f"* {bare.commit(sha).message.splitlines()[0]}"
                    for sha in bare.commits_between(base, pull.head_sha)
                )
                merged = bare.commit_tree(tree, [base], f"{subject}\n\n{message or listed}", author)
        if not bare.update_ref(f"refs/heads/{pull.base_ref}", merged, base):
            raise errors.GitHubError(
                405, "Base branch was modified. Review and try the merge again.", MERGE_DOCS
            )
        stamp = now()
        pull.figures = [figures.commits, figures.additions, figures.deletions, figures.changed_files]
        pull.state, pull.closed_at, pull.merged_at, pull.updated_at = "closed", stamp, stamp, stamp
        pull.merged_by, pull.merge_commit_sha = self.login, merged
        self.store.save()
        log.info(
            "pull request %s#%d merged (%s) into %s at %s",
            hosted.full_name,
            number,
            method,
            pull.base_ref,
            merged,
        )
        return merged

    # ------------------------------------------------------------ internals

    def _refuse_duplicate(
        self,
        hosted: HostedRepository,
        bare: BareRepository,
        *,
        head_ref: str,
        base_ref: str,
        documentation_url: str,
    ) -> None:
        """GitHub keeps one open pull request per head and base."""
        for other in self.store.records(hosted.key).pulls:
            self.refresh(bare, other)
            if other.state == "open" and other.head_ref == head_ref and other.base_ref == base_ref:
                raise errors.custom(
                    "PullRequest",
                    f"A pull request already exists for {hosted.owner}:{head_ref}.",
                    documentation_url,
                )

    def _reopen(self, hosted: HostedRepository, bare: BareRepository, pull: PullRecord) -> None:
        if pull.merged:
            raise errors.custom(
                "PullRequest",
                "state cannot be changed. The pull request has been merged.",
                UPDATE_DOCS,
                "state",
            )
        head = bare.branch_sha(pull.head_ref)
        if head is None:
            raise errors.custom(
                "PullRequest",
                "state cannot be changed. The head branch has been deleted.",
                UPDATE_DOCS,
                "state",
            )
        self._refuse_duplicate(
            hosted, bare, head_ref=pull.head_ref, base_ref=pull.base_ref, documentation_url=UPDATE_DOCS
        )
        pull.state, pull.closed_at, pull.figures = "open", None, None
        self.refresh(bare, pull)

    def _freeze(self, bare: BareRepository, pull: PullRecord) -> None:
        figures = self._count(bare, pull)
        pull.figures = [figures.commits, figures.additions, figures.deletions, figures.changed_files]

    def _count(self, bare: BareRepository, pull: PullRecord) -> PullFigures:
        cached = self._figures.get((pull.base_sha, pull.head_sha))
        if cached is not None:
            return cached
        fork_point = bare.merge_base(pull.base_sha, pull.head_sha)
        commits = bare.commits_between(pull.base_sha, pull.head_sha)
        changes = bare.changes(fork_point, pull.head_sha) if fork_point else []
        figures = PullFigures(
            commits=len(commits),
            additions=sum(change.additions for change in changes),
            deletions=sum(change.deletions for change in changes),
            changed_files=len(changes),
        )
        self._figures[(pull.base_sha, pull.head_sha)] = figures
        return figures

    def _test_merge(
        self, hosted: HostedRepository, bare: BareRepository, pull: PullRecord
    ) -> tuple[str | None, str | None]:
        """(tree, test merge commit) of merging head into base, computed once per pair of tips."""
        key = (hosted.key, pull.base_sha, pull.head_sha)
        cached = self._test_merges.get(key)
        if cached is not None:
            return cached
        tree = bare.merge_tree(pull.base_sha, pull.head_sha)
        test_merge = None
        if tree is not None:
            message = f"Merge {pull.head_sha} into {pull.base_sha}"
            test_merge = bare.commit_tree(
                tree, [pull.base_sha, pull.head_sha], message, (self.login, self.email)
            )
            bare.git("update-ref", f"refs/pull/{pull.number}/merge", test_merge)
        self._test_merges[key] = (tree, test_merge)
        return tree, test_merge
