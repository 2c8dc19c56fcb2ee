"""The GitHub side of a delivery as a pull request: open it (or update the one open), merge, wait.

Through PyGithub, against ``$GITHUB_API_URL`` (GitHub Enterprise, the sandbox's
emulator; ``https://api.github.com`` otherwise). The token comes from the file
``$VAULTFLOW_GITHUB_TOKEN_FILE`` (what the sandbox exports), else
``$GITHUB_TOKEN`` (what a GitHub Actions job has); it is handed to PyGithub and
never printed, logged or put in a message. A TLS CA for the API, when it is not
a public one, is ``$VAULTFLOW_SANDBOX_CA``, passed to this client only.

One open pull request per proposal branch: an apply finds the one open for
its head and base and updates it instead of opening a second (GitHub refuses
a second anyway, with a 422).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from vaultflow.base.errors import InputError, OperationError
from vaultflow.base.retry import poll_until
from vaultflow.steps.cloud_clients import SANDBOX_CA

API_URL_ENV, TOKEN_FILE_ENV, TOKEN_ENV = "GITHUB_API_URL", "VAULTFLOW_GITHUB_TOKEN_FILE", "GITHUB_TOKEN"
PUBLIC_API = "https://api.github.com"
STATUS_CONTEXT = "vaultflow/preflight"
BODY_LIMIT = 60_000  # GitHub refuses a body over 65,536 characters
MERGE_POLL = (1.0, 10.0)  # first and longest wait between two looks at a pull request, seconds
_MERGE_RACES = 3  # a merge refused because the base moved meanwhile is tried again this many times
_REPO_URL = re.compile(
    r"^(?:https?://[^/]+/|ssh://(?:[^@/]+@)?[^/]+/|[^@/\s]+@[^:/\s]+:)"
    r"(?P<owner>[A-Za-z0-9_.-]+)/(?P<name>[A-Za-z0-9_.-]+?)(?:\.git)?/?$"
)


def repository_name(repo_url: str) -> str:
    """``owner/name`` of a GitHub repository URL (https, ssh or scp-like); ``InputError`` otherwise."""
    match = _REPO_URL.match(repo_url.strip())
    if match is None:
        raise InputError(
            f"--mode pr needs a GitHub repository URL such as https://github.com/OWNER/NAME.git "
            f"(got {_redacted(repo_url)})"
        )
    return f"{match['owner']}/{match['name']}"


def github_token(environ: Mapping[str, str]) -> str:
    """The token, from its file or the environment; ``InputError`` naming where it was looked for."""
    path = environ.get(TOKEN_FILE_ENV)
    if path:
        try:
            token = Path(path).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise InputError(
                f"cannot read the GitHub token file ${TOKEN_FILE_ENV} ({path}): {error.strerror}"
            ) from None
        if not token:
            raise InputError(f"the GitHub token file ${TOKEN_FILE_ENV} ({path}) is empty")
        return token
    token = environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise InputError(f"--mode pr needs a GitHub token: set ${TOKEN_FILE_ENV} (a file) or ${TOKEN_ENV}")
    return token


def _redacted(url: str) -> str:
    return re.sub(r"://[^/@\s]+@", "://***@", url)


@contextlib.contextmanager
def github_errors(action: str) -> Iterator[None]:
    """Whatever PyGithub or the transport raises becomes one ``OperationError`` naming ``action``."""
    import requests
    from github import BadCredentialsException, GithubException

    try:
        yield
    except BadCredentialsException:
        raise OperationError(f"GitHub refused the token (401 Bad credentials) to {action}") from None
    except GithubException as error:
        data = error.data if isinstance(error.data, dict) else {}
        message = str(data.get("message") or error.message or "").strip()
        details = [
            str(e.get("message") or e.get("code") or "")
            for e in data.get("errors") or []
            if isinstance(e, dict)
        ]
        shown = "; ".join(part for part in [message, *details] if part)
        raise OperationError(f"GitHub: cannot {action} ({error.status} {shown})") from None
    except requests.RequestException as error:
        raise OperationError(
            f"GitHub: cannot {action}: the API is unreachable ({type(error).__name__})"
        ) from None


@dataclass(frozen=True)
class PullRequestState:
    number: int
    url: str
    head_sha: str
    state: str  # open, closed
    merged: bool
    merge_commit: str | None


def _state(pull: Any) -> PullRequestState:
    return PullRequestState(
        number=int(pull.number),
        url=str(pull.html_url),
        head_sha=str(pull.head.sha),
        state=str(pull.state),
        merged=bool(pull.merged),
        merge_commit=str(pull.merge_commit_sha) if pull.merged and pull.merge_commit_sha else None,
    )


class GitHubRepository:
    """One repository on GitHub, reached with the token (checked on connect: before anything is pushed)."""

    def __init__(self, client: Any, repo: Any, full_name: str) -> None:
        self._client = client
        self._repo = repo
        self.full_name = full_name

    @classmethod
    def connect(cls, full_name: str, environ: Mapping[str, str]) -> GitHubRepository:
        from github import Auth, Github
        from github.GithubRetry import GithubRetry

        token = github_token(environ)
        api = environ.get(API_URL_ENV) or PUBLIC_API
        client = Github(
            base_url=api.rstrip("/"),
            auth=Auth.Token(token),
            verify=environ.get(SANDBOX_CA) or True,
            retry=GithubRetry(total=3),
            seconds_between_requests=None,  # one apply makes a handful of calls: no pacing needed
            seconds_between_writes=None,
        )
        with github_errors(f"read {full_name} at {api}"):
            repo = client.get_repo(full_name)
            repo.get_pulls(state="open").totalCount  # noqa: B018 (a read that proves the token reads pulls)
        return cls(client, repo, full_name)

    def close(self) -> None:
        self._client.close()

    def open_pull(self, head: str, base: str) -> PullRequestState | None:
        with github_errors(f"list the pull requests of {self.full_name} from {head}"):
            owner = self._repo.owner.login
            for pull in self._repo.get_pulls(state="open", head=f"{owner}:{head}", base=base):
                return _state(pull)
        return None

    def open_or_update(
        self, *, head: str, base: str, title: str, body: str
    ) -> tuple[PullRequestState, Literal["opened", "updated"]]:
        """Update the pull request open from ``head`` into ``base``, or open one."""
        body = _limited(body)
        existing = self.open_pull(head, base)
        if existing is not None:
            with github_errors(f"update pull request #{existing.number}"):
                pull = self._repo.get_pull(existing.number)
                pull.edit(title=title, body=body)
                return _state(self._repo.get_pull(existing.number)), "updated"
        with github_errors(f"open a pull request from {head} into {base}"):
            pull = self._repo.create_pull(base=base, head=head, title=title, body=body)
            return _state(pull), "opened"

    def set_status(self, sha: str, state: Literal["success", "failure", "error"], description: str) -> None:
        """The preflight's verdict on the proposal's commit, as a commit status."""
        with github_errors(f"set the {STATUS_CONTEXT} status of {sha[:12]}"):
            self._repo.get_commit(sha).create_status(
                state=state, description=description[:140], context=STATUS_CONTEXT
            )

    def merge(self, number: int, head_sha: str) -> PullRequestState:
        """Merge now (a merge commit), only if the head is still ``head_sha``; the merged state."""
        from github import GithubException

        for attempt in range(1, _MERGE_RACES + 1):
            with github_errors(f"merge pull request #{number}"):
                pull = self._repo.get_pull(number)
                if pull.merged:
                    return _state(pull)
                if pull.mergeable is False:
                    raise OperationError(
                        f"pull request #{number} cannot be merged: it conflicts with {pull.base.ref} "
                        "(apply again to rebuild it on the base)"
                    )
                try:
                    pull.merge(merge_method="merge", sha=head_sha)
                except GithubException as error:
                    if error.status == 405 and attempt < _MERGE_RACES:  # the base moved meanwhile
                        time.sleep(0.5 * attempt)
                        continue
                    raise
                return _state(self._repo.get_pull(number))
        raise OperationError(f"pull request #{number}: the base branch keeps moving")  # pragma: no cover

    def wait_merged(self, number: int, timeout: float) -> PullRequestState:
        """Poll until the pull request is merged; ``OperationError`` when it is closed unmerged or the
        time is up."""

        def look() -> PullRequestState:
            with github_errors(f"read pull request #{number}"):
                return _state(self._repo.get_pull(number))

        state = poll_until(
            look,
            lambda seen: seen.merged or seen.state == "closed",
            what=f"pull request #{number} to be merged",
            timeout=timeout,
            initial=MERGE_POLL[0],
            maximum=MERGE_POLL[1],
            describe=lambda seen: f"{seen.state}, not merged",
            transient=(OperationError,),
        )
        if not state.merged:
            raise OperationError(f"pull request #{number} was closed without being merged")
        return state


def _limited(body: str) -> str:
    if len(body) <= BODY_LIMIT:
        return body
    return body[:BODY_LIMIT] + "\n\n_(cut: the full report is in the apply's output)_\n"


def connect_for(repo_url: str, environ: Mapping[str, str]) -> GitHubRepository:
    return GitHubRepository.connect(repository_name(repo_url), environ)
