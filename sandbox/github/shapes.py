"""The JSON GitHub's REST API answers with, for the objects the emulator serves.

Shapes follow GitHub's OpenAPI description (``github/rest-api-description``,
``descriptions/api.github.com``: the ``simple-user``, ``full-repository``,
``branch-with-protection``, ``commit``, ``pull-request``/``pull-request-simple``,
``issue-comment``, ``status`` and ``combined-commit-status`` schemas) and the
fields PyGithub 2.x reads from them (``PullRequest``, ``Branch``, ``Commit``,
``IssueComment``, ``CommitStatus``, ``CommitCombinedStatus``). Fields that
describe what the sandbox has no notion of (labels, reviewers, milestones,
reactions, teams) are present with GitHub's empty values.

Every URL is absolute and on the emulator's own origin (as the client reached
it), because PyGithub follows them: a lazily fetched pull request, its
``issue_url`` (comments) and its ``statuses_url``. ``html_url`` is the web
address a GitHub Enterprise Server would have on that origin; the sandbox
serves no web pages.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

from vaultflow.sandbox.github.git import CommitInfo, FileChange
from vaultflow.sandbox.github.repositories import HostedRepository
from vaultflow.sandbox.github.store import CommentRecord, PullRecord, StatusRecord

JsonObject = dict[str, Any]
API_PREFIX = "/api/v3"  # GitHub Enterprise Server's REST prefix: GITHUB_API_URL=https://HOST/api/v3


def stable_id(*parts: str) -> int:
    """A positive id derived from a name: the same user or repository keeps its id across restarts."""
    digest = hashlib.sha256("\0".join(parts).encode()).digest()
    return int.from_bytes(digest[:4], "big") % 900_000_000 + 100_000


def node_id(kind: str, number: int) -> str:
    """GitHub's (legacy) global node id: base64 of ``<len>:<Type><id>``."""
    return base64.b64encode(f"{len(kind):03d}:{kind}{number}".encode()).decode()


@dataclass(frozen=True)
class Origin:
    """Where the client reached the emulator: ``https://127.0.0.1:PORT``."""

    web: str

    @property
    def api(self) -> str:
        return self.web + API_PREFIX

    def repo_api(self, repository: HostedRepository) -> str:
        return f"{self.api}/repos/{repository.full_name}"

    def repo_web(self, repository: HostedRepository) -> str:
        return f"{self.web}/{repository.full_name}"


def user(origin: Origin, login: str, *, kind: str = "User") -> JsonObject:
    identifier = stable_id("user", login.lower())
    return {
        "login": login,
        "id": identifier,
        "node_id": node_id(kind, identifier),
        "avatar_url": "",
        "gravatar_id": "",
        "url": f"{origin.api}/users/{login}",
        "html_url": f"{origin.web}/{login}",
        "type": kind,
        "site_admin": False,
    }


def repository(
    origin: Origin, hosted: HostedRepository, *, default_branch: str, open_pulls: int
) -> JsonObject:
    api, web = origin.repo_api(hosted), origin.repo_web(hosted)
    identifier = stable_id("repository", hosted.key)
    return {
        "id": identifier,
        "node_id": node_id("Repository", identifier),
        "name": hosted.name,
        "full_name": hosted.full_name,
        "private": True,
        "visibility": "private",
        "owner": user(origin, hosted.owner, kind="Organization"),
        "html_url": web,
        "description": "vaultflow local sandbox: a bare repository served as a GitHub repository",
        "fork": False,
        "url": api,
        "branches_url": f"{api}/branches{{/branch}}",
        "commits_url": f"{api}/commits{{/sha}}",
        "git_refs_url": f"{api}/git/refs{{/sha}}",
        "issue_comment_url": f"{api}/issues/comments{{/number}}",
        "issues_url": f"{api}/issues{{/number}}",
        "pulls_url": f"{api}/pulls{{/number}}",
        "statuses_url": f"{api}/statuses/{{sha}}",
        "merges_url": f"{api}/merges",
        "clone_url": hosted.clone_url,
        "git_url": hosted.clone_url,
        "svn_url": web,
        "default_branch": default_branch,
        "archived": False,
        "disabled": False,
        "has_issues": True,
        "open_issues_count": open_pulls,
        "open_issues": open_pulls,
        "allow_merge_commit": True,
        "allow_squash_merge": True,
        "allow_rebase_merge": True,
        "delete_branch_on_merge": False,
        "permissions": {"admin": True, "maintain": True, "push": True, "triage": True, "pull": True},
    }


def _signature(name: str, email: str, date: str) -> JsonObject:
    return {"name": name, "email": email, "date": _utc(date)}


def _utc(date: str) -> str:
    """Git's ``%aI`` (``2026-12-01T10:00:00+01:00``) as GitHub prints it (UTC, ``Z``)."""
    from datetime import UTC, datetime

    return datetime.fromisoformat(date).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def commit(
    origin: Origin,
    hosted: HostedRepository,
    info: CommitInfo,
    *,
    changes: list[FileChange] | None = None,
    account: tuple[str, str] | None = None,
) -> JsonObject:
    """The ``commit`` schema; ``author``/``committer`` are GitHub users only for the sandbox's own
    account (``account`` = (login, email)), ``null`` as GitHub answers for an unknown email."""
    api, web = origin.repo_api(hosted), origin.repo_web(hosted)

    def person(email: str) -> JsonObject | None:
        return user(origin, account[0]) if account is not None and email == account[1] else None

    shaped: JsonObject = {
        "sha": info.sha,
        "node_id": node_id("Commit", stable_id("commit", info.sha)),
        "url": f"{api}/commits/{info.sha}",
        "html_url": f"{web}/commit/{info.sha}",
        "comments_url": f"{api}/commits/{info.sha}/comments",
        "commit": {
            "url": f"{api}/git/commits/{info.sha}",
            "author": _signature(info.author.name, info.author.email, info.author.date),
            "committer": _signature(info.committer.name, info.committer.email, info.committer.date),
            "message": info.message,
            "tree": {"sha": info.tree, "url": f"{api}/git/trees/{info.tree}"},
            "comment_count": 0,
            "verification": {"verified": False, "reason": "unsigned", "signature": None, "payload": None},
        },
        "author": person(info.author.email),
        "committer": person(info.committer.email),
        "parents": [
            {"sha": parent, "url": f"{api}/commits/{parent}", "html_url": f"{web}/commit/{parent}"}
            for parent in info.parents
        ],
    }
    if changes is not None:
        additions = sum(change.additions for change in changes)
        deletions = sum(change.deletions for change in changes)
        shaped["stats"] = {"additions": additions, "deletions": deletions, "total": additions + deletions}
        shaped["files"] = [_file(api, info.sha, change) for change in changes]
    return shaped


def _file(api: str, sha: str, change: FileChange) -> JsonObject:
    shaped: JsonObject = {
        "filename": change.filename,
        "status": change.status,
        "additions": change.additions,
        "deletions": change.deletions,
        "changes": change.additions + change.deletions,
        "contents_url": f"{api}/contents/{change.filename}?ref={sha}",
    }
    if change.previous_filename:
        shaped["previous_filename"] = change.previous_filename
    return shaped


def branch(origin: Origin, hosted: HostedRepository, name: str, head: JsonObject) -> JsonObject:
    api, web = origin.repo_api(hosted), origin.repo_web(hosted)
    return {
        "name": name,
        "commit": head,
        "_links": {"self": f"{api}/branches/{name}", "html": f"{web}/tree/{name}"},
        "protected": False,
        "protection": {
            "enabled": False,
            "required_status_checks": {"enforcement_level": "off", "contexts": [], "checks": []},
        },
        "protection_url": f"{api}/branches/{name}/protection",
    }


@dataclass(frozen=True)
class Mergeability:
    """What GitHub's test merge says: ``mergeable`` None while unknown (closed or merged pull requests)."""

    mergeable: bool | None
    state: str  # clean | dirty | unstable | unknown
    test_merge_sha: str | None = None


@dataclass(frozen=True)
class PullFigures:
    commits: int
    additions: int
    deletions: int
    changed_files: int


def _ref(origin: Origin, hosted: HostedRepository, ref: str, sha: str, repo: JsonObject) -> JsonObject:
    return {
        "label": f"{hosted.owner}:{ref}",
        "ref": ref,
        "sha": sha,
        "user": user(origin, hosted.owner, kind="Organization"),
        "repo": repo,
    }


def pull_request(
    origin: Origin,
    hosted: HostedRepository,
    pull: PullRecord,
    repo: JsonObject,
    *,
    full: tuple[Mergeability, PullFigures, int] | None = None,
) -> JsonObject:
    """``pull-request-simple`` (a list's items), or ``pull-request`` with ``full`` = (mergeability,
    figures, number of comments), what the single-object endpoints answer."""
    api, web = origin.repo_api(hosted), origin.repo_web(hosted)
    url, issue = f"{api}/pulls/{pull.number}", f"{api}/issues/{pull.number}"
    html = f"{web}/pull/{pull.number}"
    statuses = f"{api}/statuses/{pull.head_sha}"
    shaped: JsonObject = {
        "url": url,
        "id": pull.id,
        "node_id": node_id("PullRequest", pull.id),
        "html_url": html,
        "diff_url": f"{html}.diff",
        "patch_url": f"{html}.patch",
        "issue_url": issue,
        "commits_url": f"{url}/commits",
        "review_comments_url": f"{url}/comments",
        "review_comment_url": f"{api}/pulls/comments{{/number}}",
        "comments_url": f"{issue}/comments",
        "statuses_url": statuses,
        "number": pull.number,
        "state": pull.state,
        "locked": False,
        "title": pull.title,
        "user": user(origin, pull.user),
        "body": pull.body,
        "labels": [],
        "milestone": None,
        "active_lock_reason": None,
        "created_at": pull.created_at,
        "updated_at": pull.updated_at,
        "closed_at": pull.closed_at,
        "merged_at": pull.merged_at,
        "merge_commit_sha": pull.merge_commit_sha,
        "assignee": None,
        "assignees": [],
        "requested_reviewers": [],
        "requested_teams": [],
        "head": _ref(origin, hosted, pull.head_ref, pull.head_sha, repo),
        "base": _ref(origin, hosted, pull.base_ref, pull.base_sha, repo),
        "_links": {
            "self": {"href": url},
            "html": {"href": html},
            "issue": {"href": issue},
            "comments": {"href": f"{issue}/comments"},
            "review_comments": {"href": f"{url}/comments"},
            "review_comment": {"href": f"{api}/pulls/comments{{/number}}"},
            "commits": {"href": f"{url}/commits"},
            "statuses": {"href": statuses},
        },
        "author_association": "MEMBER",
        "auto_merge": None,
        "draft": pull.draft,
    }
    if full is not None:
        mergeability, figures, comments = full
        if not pull.merged and mergeability.test_merge_sha is not None:
            shaped["merge_commit_sha"] = mergeability.test_merge_sha
        shaped.update(
            merged=pull.merged,
            mergeable=mergeability.mergeable,
            rebaseable=None,  # not computed: it would take a trial rebase
            mergeable_state=mergeability.state,
            merged_by=user(origin, pull.merged_by) if pull.merged_by else None,
            comments=comments,
            review_comments=0,
            maintainer_can_modify=pull.maintainer_can_modify,
            commits=figures.commits,
            additions=figures.additions,
            deletions=figures.deletions,
            changed_files=figures.changed_files,
        )
    return shaped


def issue_comment(origin: Origin, hosted: HostedRepository, comment: CommentRecord) -> JsonObject:
    api, web = origin.repo_api(hosted), origin.repo_web(hosted)
    return {
        "id": comment.id,
        "node_id": node_id("IssueComment", comment.id),
        "url": f"{api}/issues/comments/{comment.id}",
        "html_url": f"{web}/pull/{comment.number}#issuecomment-{comment.id}",
        "body": comment.body,
        "user": user(origin, comment.user),
        "created_at": comment.created_at,
        "updated_at": comment.updated_at,
        "issue_url": f"{api}/issues/{comment.number}",
        "author_association": "MEMBER",
    }


def status(origin: Origin, hosted: HostedRepository, record: StatusRecord) -> JsonObject:
    return {
        "url": f"{origin.repo_api(hosted)}/statuses/{record.sha}",
        "avatar_url": None,
        "id": record.id,
        "node_id": node_id("StatusContext", record.id),
        "state": record.state,
        "description": record.description,
        "target_url": record.target_url,
        "context": record.context,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "creator": user(origin, record.creator),
    }


def combined_state(latest: list[StatusRecord]) -> str:
    """GitHub's rule: failure if any context is error or failure, pending if none reported or any is
    pending, success when every context's latest status is success."""
    states = {record.state for record in latest}
    if states & {"error", "failure"}:
        return "failure"
    if not latest or "pending" in states:
        return "pending"
    return "success"


def combined_status(
    origin: Origin, hosted: HostedRepository, sha: str, latest: list[StatusRecord], repo: JsonObject
) -> JsonObject:
    api = origin.repo_api(hosted)
    minimal = {
        key: repo[key]
        for key in ("id", "node_id", "name", "full_name", "private", "owner", "html_url", "url")
    }
    return {
        "state": combined_state(latest),
        "statuses": [status(origin, hosted, record) for record in latest],
        "sha": sha,
        "total_count": len(latest),
        "repository": minimal,
        "commit_url": f"{api}/commits/{sha}",
        "url": f"{api}/commits/{sha}/status",
    }
