"""The GitHub REST API (v3) subset that PyGithub uses for a GitOps pull-request flow, over HTTPS.

    emulator = GitHubEmulator(RepositoryDirectory(lambda: routes), token=token, authority=ca).start()
    github = Github(base_url=emulator.api_url, auth=Auth.Token(token), verify=str(ca_file))
    repo = github.get_repo("example-org/platform-gitops")

Served under ``/api/v3`` (GitHub Enterprise Server's prefix), every request
with ``Authorization: Bearer <token>`` or ``token <token>``:

* ``GET /user``; ``GET /repos/{owner}/{repo}``;
* ``GET .../branches``, ``GET .../branches/{branch}``; ``GET .../commits/{ref}``;
  ``GET .../git/ref/{ref}``, ``POST .../git/refs``, ``DELETE .../git/refs/{ref}``;
* ``GET``/``POST .../pulls``, ``GET``/``PATCH .../pulls/{n}``, ``GET``/``PUT .../pulls/{n}/merge``;
* ``GET``/``POST .../issues/{n}/comments``, ``GET``/``PATCH``/``DELETE .../issues/comments/{id}``;
* ``POST .../statuses/{sha}``, ``GET .../statuses/{ref}``, ``GET .../commits/{ref}/statuses``,
  ``GET .../commits/{ref}/status``.

Lists are paginated as GitHub paginates (``per_page`` up to 100, default 30,
``page``, a ``Link`` header with ``next``/``last``/``prev``/``first``).
Requests are never logged with their headers: the token stays out of the log.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from vaultflow.sandbox.github import errors, shapes
from vaultflow.sandbox.github.git import BareRepository, GitError
from vaultflow.sandbox.github.pulls import PullRequests
from vaultflow.sandbox.github.repositories import HostedRepository, RepositoryDirectory
from vaultflow.sandbox.github.shapes import API_PREFIX, JsonObject, Origin
from vaultflow.sandbox.github.store import CommentRecord, GitHubStore, StatusRecord, now
from vaultflow.sandbox.http import HttpServer, Request, Response, Router
from vaultflow.sandbox.pki import CertificateAuthority

log = logging.getLogger("vaultflow.sandbox.github")

SANDBOX_LOGIN = "vaultflow-sandbox"
SANDBOX_EMAIL = f"{SANDBOX_LOGIN}@users.noreply.github.com"
STATUS_STATES = ("error", "failure", "pending", "success")
_REST = "https://docs.github.com/rest"
_DOCS = {
    "user": f"{_REST}/users/users#get-the-authenticated-user",
    "repo": f"{_REST}/repos/repos#get-a-repository",
    "branch": f"{_REST}/branches/branches#get-a-branch",
    "branches": f"{_REST}/branches/branches#list-branches",
    "commit": f"{_REST}/commits/commits#get-a-commit",
    "ref": f"{_REST}/git/refs#get-a-reference",
    "create-ref": f"{_REST}/git/refs#create-a-reference",
    "delete-ref": f"{_REST}/git/refs#delete-a-reference",
    "pulls": f"{_REST}/pulls/pulls#list-pull-requests",
    "create-pull": f"{_REST}/pulls/pulls#create-a-pull-request",
    "update-pull": f"{_REST}/pulls/pulls#update-a-pull-request",
    "merge": f"{_REST}/pulls/pulls#merge-a-pull-request",
    "pull": f"{_REST}/pulls/pulls#get-a-pull-request",
    "merged": f"{_REST}/pulls/pulls#check-if-a-pull-request-has-been-merged",
    "comments": f"{_REST}/issues/comments#list-issue-comments",
    "create-comment": f"{_REST}/issues/comments#create-an-issue-comment",
    "comment": f"{_REST}/issues/comments#get-an-issue-comment",
    "update-comment": f"{_REST}/issues/comments#update-an-issue-comment",
    "delete-comment": f"{_REST}/issues/comments#delete-an-issue-comment",
    "create-status": f"{_REST}/commits/statuses#create-a-commit-status",
    "statuses": f"{_REST}/commits/statuses#list-commit-statuses-for-a-reference",
    "status": f"{_REST}/commits/statuses#get-the-combined-status-for-a-specific-reference",
}
_HEADERS = {"X-GitHub-Media-Type": "github.v3; format=json", "X-OAuth-Scopes": "repo"}
_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")

Handler = Callable[[Request], Response]


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    response = Response.json(payload, status, {**_HEADERS, **(headers or {})})
    response.headers["Content-Type"] = "application/json; charset=utf-8"
    return response


def _error(error: errors.GitHubError) -> Response:
    return _json(error.body, error.status)


def _body(request: Request, documentation_url: str) -> dict[str, Any]:
    try:
        body = request.json() if request.body else {}
    except ValueError:
        raise errors.GitHubError(400, "Problems parsing JSON", documentation_url) from None
    if not isinstance(body, dict):
        raise errors.GitHubError(400, "Problems parsing JSON", documentation_url)
    return body


def _number(value: str, documentation_url: str) -> int:
    if not value.isdigit():
        raise errors.not_found(documentation_url)
    return int(value)


class GitHubEmulator:
    """One HTTPS origin (HTTP without ``authority``) serving the repositories ``repositories`` names."""

    def __init__(
        self,
        repositories: RepositoryDirectory,
        *,
        token: str,
        authority: CertificateAuthority | None = None,
        store: GitHubStore | None = None,
        login: str = SANDBOX_LOGIN,
        port: int = 0,
    ) -> None:
        self.repositories = repositories
        self.store = store or GitHubStore()
        self.login = login
        self.email = SANDBOX_EMAIL if login == SANDBOX_LOGIN else f"{login}@users.noreply.github.com"
        self._token = token.encode()
        self.pulls = PullRequests(self.store, (self.login, self.email), self._latest_statuses)
        context = None
        if authority is not None:
            context = authority.issue_server_certificate(("127.0.0.1", "localhost")).ssl_context()
        self._scheme = "https" if context is not None else "http"
        self._http = HttpServer(self._router(), port=port, ssl_context=context, name="github")

    # ------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        """The origin, ``https://127.0.0.1:PORT``."""
        return self._http.url

    @property
    def api_url(self) -> str:
        """What ``GITHUB_API_URL`` and PyGithub's ``base_url`` are: ``<origin>/api/v3``."""
        return self.url + API_PREFIX

    def start(self) -> GitHubEmulator:
        self._http.start()
        return self

    def stop(self) -> None:
        self._http.stop()

    def __enter__(self) -> GitHubEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ routing

    def _router(self) -> Router:
        router = Router(
            not_found=lambda r: _error(errors.not_found(_REST)),
            method_not_allowed=lambda r: _error(errors.not_found(_REST)),  # GitHub answers 404 here too
        )
        repo = f"{API_PREFIX}/repos/{{owner}}/{{repo}}"
        table: list[tuple[str, str, Handler]] = [
            ("GET", f"{API_PREFIX}/user", self._user),
            ("GET", repo, self._repository),
            ("GET", f"{repo}/branches", self._branches),
            ("GET", f"{repo}/branches/{{branch...}}", self._branch),
            ("GET", f"{repo}/git/ref/{{ref...}}", self._git_ref),
            ("GET", f"{repo}/git/refs/{{ref...}}", self._git_ref),
            ("POST", f"{repo}/git/refs", self._create_git_ref),
            ("DELETE", f"{repo}/git/refs/{{ref...}}", self._delete_git_ref),
            ("GET", f"{repo}/commits/{{ref...}}/status", self._combined_status),
            ("GET", f"{repo}/commits/{{ref...}}/statuses", self._statuses),
            ("GET", f"{repo}/commits/{{ref...}}", self._commit),
            ("GET", f"{repo}/pulls", self._list_pulls),
            ("POST", f"{repo}/pulls", self._create_pull),
            ("GET", f"{repo}/pulls/{{number}}", self._get_pull),
            ("PATCH", f"{repo}/pulls/{{number}}", self._update_pull),
            ("GET", f"{repo}/pulls/{{number}}/merge", self._is_merged),
            ("PUT", f"{repo}/pulls/{{number}}/merge", self._merge_pull),
            ("GET", f"{repo}/issues/comments/{{comment}}", self._get_comment),
            ("PATCH", f"{repo}/issues/comments/{{comment}}", self._update_comment),
            ("DELETE", f"{repo}/issues/comments/{{comment}}", self._delete_comment),
            ("GET", f"{repo}/issues/{{number}}/comments", self._list_comments),
            ("POST", f"{repo}/issues/{{number}}/comments", self._create_comment),
            ("POST", f"{repo}/statuses/{{sha}}", self._create_status),
            ("GET", f"{repo}/statuses/{{ref...}}", self._statuses),
        ]
        for method, pattern, handler in table:
            router.add(method, pattern, self._guarded(handler))
        return router

    def _guarded(self, handler: Handler) -> Handler:
        """Authenticate, then answer; a ``GitHubError`` becomes GitHub's error body, a failed git command
        a 500 naming the command's error (never the request's headers)."""

        def serve(request: Request) -> Response:
            scheme, _, given = request.header("authorization").strip().partition(" ")
            if scheme.lower() not in ("bearer", "token") or not given.strip():
                log.info("refused %s %s: no credentials", request.method, request.path)
                return _error(errors.GitHubError(401, "Requires authentication"))
            if not hmac.compare_digest(given.strip().encode(), self._token):
                log.info("refused %s %s: bad credentials", request.method, request.path)
                return _error(errors.GitHubError(401, "Bad credentials"))
            try:
                with self.store.lock:
                    return handler(request)
            except errors.GitHubError as error:
                return _error(error)
            except GitError as error:
                log.error("git failed serving %s %s: %s", request.method, request.path, error)
                return _json({"message": f"git failed: {error}", "documentation_url": _REST}, 500)

        return serve

    # ------------------------------------------------------------ helpers

    def _origin(self, request: Request) -> Origin:
        host = request.header("host") or f"127.0.0.1:{self._http.port}"
        return Origin(f"{self._scheme}://{host}")

    def _hosted(self, request: Request, documentation_url: str) -> tuple[HostedRepository, BareRepository]:
        hosted = self.repositories.find(request.params["owner"], request.params["repo"])
        if hosted is None or not BareRepository(hosted.path).exists():
            raise errors.not_found(documentation_url)
        return hosted, BareRepository(hosted.path)

    def _repo_json(self, origin: Origin, hosted: HostedRepository, bare: BareRepository) -> JsonObject:
        open_pulls = sum(1 for pull in self.store.records(hosted.key).pulls if pull.state == "open")
        return shapes.repository(origin, hosted, default_branch=bare.default_branch(), open_pulls=open_pulls)

    def _page(self, request: Request, items: list[JsonObject]) -> Response:
        """One page of ``items`` with GitHub's ``Link`` header (what PyGithub's PaginatedList follows)."""
        try:
            per_page = min(max(int(request.query_value("per_page", "30")), 1), 100)
            page = max(int(request.query_value("page", "1")), 1)
        except ValueError:
            per_page, page = 30, 1
        last = max((len(items) + per_page - 1) // per_page, 1)
        origin = self._origin(request)

        def link(number: int) -> str:
            query = {name: values[-1] for name, values in request.query.items()}
            query.update(page=str(number), per_page=str(per_page))
            return f"{origin.web}{request.path}?{urlencode(query)}"

        links = []
        if page < last:
            links += [f'<{link(page + 1)}>; rel="next"', f'<{link(last)}>; rel="last"']
        if page > 1:
            links += [f'<{link(min(page - 1, last))}>; rel="prev"', f'<{link(1)}>; rel="first"']
        headers = {"Link": ", ".join(links)} if links else {}
        return _json(items[(page - 1) * per_page : page * per_page], headers=headers)

    def _latest_statuses(self, key: str, sha: str) -> list[StatusRecord]:
        """The newest status of each context for ``sha``, in the order the contexts first reported."""
        latest: dict[str, StatusRecord] = {}
        for record in self.store.records(key).statuses:
            if record.sha == sha:
                latest[record.context] = record
        return sorted(latest.values(), key=lambda record: record.id)

    def _commit_sha(self, bare: BareRepository, ref: str, documentation_url: str, status: int = 422) -> str:
        sha = bare.resolve(ref)
        if sha is None:
            raise errors.GitHubError(status, f"No commit found for SHA: {ref}", documentation_url)
        return sha

    # ------------------------------------------------------------ user, repository, branches, commits

    def _user(self, request: Request) -> Response:
        shaped = shapes.user(self._origin(request), self.login)
        return _json({**shaped, "name": "vaultflow sandbox", "email": self.email})

    def _repository(self, request: Request) -> Response:
        hosted, bare = self._hosted(request, _DOCS["repo"])
        return _json(self._repo_json(self._origin(request), hosted, bare))

    def _branch_json(
        self, origin: Origin, hosted: HostedRepository, bare: BareRepository, name: str
    ) -> JsonObject:
        sha = bare.branch_sha(name)
        if sha is None:
            raise errors.not_found(_DOCS["branch"], "Branch not found")
        head = shapes.commit(origin, hosted, bare.commit(sha), account=(self.login, self.email))
        return shapes.branch(origin, hosted, name, head)

    def _branch(self, request: Request) -> Response:
        hosted, bare = self._hosted(request, _DOCS["branch"])
        return _json(self._branch_json(self._origin(request), hosted, bare, request.params["branch"]))

    def _branches(self, request: Request) -> Response:
        hosted, bare = self._hosted(request, _DOCS["branches"])
        origin = self._origin(request)
        api = origin.repo_api(hosted)
        listed = [
            {"name": name, "commit": {"sha": sha, "url": f"{api}/commits/{sha}"}, "protected": False}
            for name, sha in sorted(bare.branches().items())
        ]
        return self._page(request, listed)

    def _commit(self, request: Request) -> Response:
        hosted, bare = self._hosted(request, _DOCS["commit"])
        sha = self._commit_sha(bare, request.params["ref"], _DOCS["commit"])
        info = bare.commit(sha)
        changes = bare.changes(info.parents[0] if info.parents else None, sha)
        shaped = shapes.commit(
            self._origin(request), hosted, info, changes=changes, account=(self.login, self.email)
        )
        return _json(shaped)

    def _ref_json(self, origin: Origin, hosted: HostedRepository, ref: str, sha: str) -> JsonObject:
        api = origin.repo_api(hosted)
        return {
            "ref": ref,
            "node_id": shapes.node_id("Ref", shapes.stable_id("ref", hosted.key, ref)),
            "url": f"{api}/git/{ref}",
            "object": {"type": "commit", "sha": sha, "url": f"{api}/git/commits/{sha}"},
        }

    def _git_ref(self, request: Request) -> Response:
        hosted, bare = self._hosted(request, _DOCS["ref"])
        ref = "refs/" + request.params["ref"].removeprefix("refs/")
        sha = bare.resolve(ref) if ref.startswith(("refs/heads/", "refs/tags/", "refs/pull/")) else None
        if sha is None:
            raise errors.not_found(_DOCS["ref"])
        return _json(self._ref_json(self._origin(request), hosted, ref, sha))

    def _create_git_ref(self, request: Request) -> Response:
        hosted, bare = self._hosted(request, _DOCS["create-ref"])
        body = _body(request, _DOCS["create-ref"])
        ref, sha = body.get("ref"), body.get("sha")
        if not isinstance(ref, str) or not ref.startswith("refs/") or ref.count("/") < 2:
            raise errors.GitHubError(
                422,
                "Reference name must start with 'refs/' and have at least two slashes.",
                _DOCS["create-ref"],
            )
        if not isinstance(sha, str) or not _FULL_SHA.match(sha) or bare.resolve(sha) != sha:
            raise errors.GitHubError(422, "Object does not exist", _DOCS["create-ref"])
        if not bare.update_ref(ref, sha, None):
            raise errors.GitHubError(422, "Reference already exists", _DOCS["create-ref"])
        shaped = self._ref_json(self._origin(request), hosted, ref, sha)
        return _json(shaped, 201, {"Location": shaped["url"]})

    def _delete_git_ref(self, request: Request) -> Response:
        _, bare = self._hosted(request, _DOCS["delete-ref"])
        ref = "refs/" + request.params["ref"].removeprefix("refs/")
        sha = bare.resolve(ref) if ref.startswith(("refs/heads/", "refs/tags/")) else None
        if sha is None or not bare.delete_ref(ref, sha):
            raise errors.GitHubError(422, "Reference does not exist", _DOCS["delete-ref"])
        log.info("ref %s deleted", ref)
        return Response.empty(204)

    # ------------------------------------------------------------ pull requests

    def _pull_json(
        self, origin: Origin, hosted: HostedRepository, bare: BareRepository, number: int
    ) -> JsonObject:
        pull = self.pulls.get(hosted, bare, number)
        comments = sum(1 for comment in self.store.records(hosted.key).comments if comment.number == number)
        full = (self.pulls.mergeability(hosted, bare, pull), self.pulls.figures(bare, pull), comments)
        return shapes.pull_request(origin, hosted, pull, self._repo_json(origin, hosted, bare), full=full)

    def _list_pulls(self, request: Request) -> Response:
        hosted, bare = self._hosted(request, _DOCS["pulls"])
        state = request.query_value("state", "open")
        sort = request.query_value("sort", "created")
        direction = request.query_value("direction")
        if state not in ("open", "closed", "all") or sort not in (
            "created",
            "updated",
            "popularity",
            "long-running",
        ):
            raise errors.invalid_field(
                "PullRequest", "state" if state not in ("open", "closed", "all") else "sort", _DOCS["pulls"]
            )
        if direction not in ("", "asc", "desc"):
            raise errors.invalid_field("PullRequest", "direction", _DOCS["pulls"])
        pulls = self.pulls.list(
            hosted,
            bare,
            state=state,
            head=request.query_value("head"),
            base=request.query_value("base"),
            sort=sort,
            direction=direction,
        )
        origin = self._origin(request)
        repo = self._repo_json(origin, hosted, bare)
        return self._page(request, [shapes.pull_request(origin, hosted, pull, repo) for pull in pulls])

    def _create_pull(self, request: Request) -> Response:
        hosted, bare = self._hosted(request, _DOCS["create-pull"])
        pull = self.pulls.create(hosted, bare, _body(request, _DOCS["create-pull"]))
        shaped = self._pull_json(self._origin(request), hosted, bare, pull.number)
        return _json(shaped, 201, {"Location": shaped["url"]})

    def _get_pull(self, request: Request) -> Response:
        hosted, bare = self._hosted(request, _DOCS["pull"])
        number = _number(request.params["number"], _DOCS["pull"])
        return _json(self._pull_json(self._origin(request), hosted, bare, number))

    def _update_pull(self, request: Request) -> Response:
        documentation_url = _DOCS["update-pull"]
        hosted, bare = self._hosted(request, documentation_url)
        number = _number(request.params["number"], documentation_url)
        self.pulls.update(hosted, bare, number, _body(request, documentation_url))
        return _json(self._pull_json(self._origin(request), hosted, bare, number))

    def _is_merged(self, request: Request) -> Response:
        hosted, bare = self._hosted(request, _DOCS["merged"])
        number = _number(request.params["number"], _DOCS["merged"])
        if not self.pulls.get(hosted, bare, number).merged:
            raise errors.not_found(_DOCS["merged"])
        return Response.empty(204)

    def _merge_pull(self, request: Request) -> Response:
        documentation_url = _DOCS["merge"]
        hosted, bare = self._hosted(request, documentation_url)
        number = _number(request.params["number"], documentation_url)
        sha = self.pulls.merge(hosted, bare, number, _body(request, documentation_url))
        return _json({"sha": sha, "merged": True, "message": "Pull Request successfully merged"})

    # ------------------------------------------------------------ issue comments (on pull requests)

    def _comment_record(
        self, request: Request, documentation_url: str
    ) -> tuple[HostedRepository, CommentRecord]:
        hosted, _ = self._hosted(request, documentation_url)
        comment_id = _number(request.params["comment"], documentation_url)
        comment = self.store.records(hosted.key).comment(comment_id)
        if comment is None:
            raise errors.not_found(documentation_url)
        return hosted, comment

    def _comment_body(self, request: Request, documentation_url: str) -> str:
        value = _body(request, documentation_url).get("body")
        if not isinstance(value, str) or not value:
            raise errors.missing_field("IssueComment", "body", documentation_url)
        return value

    def _create_comment(self, request: Request) -> Response:
        documentation_url = _DOCS["create-comment"]
        hosted, bare = self._hosted(request, documentation_url)
        number = _number(request.params["number"], documentation_url)
        pull = self.pulls.get(hosted, bare, number)  # the sandbox's issues are its pull requests
        created = now()
        comment = CommentRecord(
            id=self.store.next_id("comment"),
            number=number,
            body=self._comment_body(request, documentation_url),
            user=self.login,
            created_at=created,
            updated_at=created,
        )
        self.store.records(hosted.key).comments.append(comment)
        pull.updated_at = created
        self.store.save()
        shaped = shapes.issue_comment(self._origin(request), hosted, comment)
        return _json(shaped, 201, {"Location": shaped["url"]})

    def _list_comments(self, request: Request) -> Response:
        hosted, bare = self._hosted(request, _DOCS["comments"])
        number = _number(request.params["number"], _DOCS["comments"])
        self.pulls.get(hosted, bare, number)
        since = request.query_value("since")
        origin = self._origin(request)
        comments = [
            shapes.issue_comment(origin, hosted, comment)
            for comment in self.store.records(hosted.key).comments
            if comment.number == number and (not since or comment.updated_at >= since)
        ]
        return self._page(request, comments)

    def _get_comment(self, request: Request) -> Response:
        hosted, comment = self._comment_record(request, _DOCS["comment"])
        return _json(shapes.issue_comment(self._origin(request), hosted, comment))

    def _update_comment(self, request: Request) -> Response:
        hosted, comment = self._comment_record(request, _DOCS["update-comment"])
        comment.body = self._comment_body(request, _DOCS["update-comment"])
        comment.updated_at = now()
        self.store.save()
        return _json(shapes.issue_comment(self._origin(request), hosted, comment))

    def _delete_comment(self, request: Request) -> Response:
        documentation_url = _DOCS["delete-comment"]
        hosted, comment = self._comment_record(request, documentation_url)
        self.store.records(hosted.key).comments.remove(comment)
        self.store.save()
        return Response.empty(204)

    # ------------------------------------------------------------ commit statuses

    def _create_status(self, request: Request) -> Response:
        documentation_url = _DOCS["create-status"]
        hosted, bare = self._hosted(request, documentation_url)
        given = request.params["sha"]
        sha = bare.resolve(given) if re.fullmatch(r"[0-9a-fA-F]{4,40}", given) else None
        if sha is None or not sha.startswith(given.lower()):
            raise errors.GitHubError(422, f"No commit found for SHA: {given}", documentation_url)
        body = _body(request, documentation_url)
        state = body.get("state")
        if state not in STATUS_STATES:
            raise errors.custom("Status", "state is not included in the list", documentation_url, "state")
        fields = {name: body.get(name) for name in ("target_url", "description", "context")}
        for name, value in fields.items():
            if value is not None and not isinstance(value, str):
                raise errors.invalid_field("Status", name, documentation_url)
        created = now()
        record = StatusRecord(
            id=self.store.next_id("status"),
            sha=sha,
            state=str(state),
            context=fields["context"] or "default",
            description=fields["description"],
            target_url=fields["target_url"],
            creator=self.login,
            created_at=created,
            updated_at=created,
        )
        self.store.records(hosted.key).statuses.append(record)
        self.store.save()
        log.info("commit status %s=%s on %s in %s", record.context, record.state, sha, hosted.full_name)
        shaped = shapes.status(self._origin(request), hosted, record)
        return _json(shaped, 201, {"Location": shaped["url"]})

    def _statuses(self, request: Request) -> Response:
        hosted, bare = self._hosted(request, _DOCS["statuses"])
        sha = self._commit_sha(bare, request.params["ref"], _DOCS["statuses"])
        origin = self._origin(request)
        listed = [
            shapes.status(origin, hosted, record)
            for record in reversed(self.store.records(hosted.key).statuses)
            if record.sha == sha
        ]
        return self._page(request, listed)

    def _combined_status(self, request: Request) -> Response:
        hosted, bare = self._hosted(request, _DOCS["status"])
        sha = self._commit_sha(bare, request.params["ref"], _DOCS["status"])
        origin = self._origin(request)
        latest = self._latest_statuses(hosted.key, sha)
        return _json(
            shapes.combined_status(origin, hosted, sha, latest, self._repo_json(origin, hosted, bare))
        )
