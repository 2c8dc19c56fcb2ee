"""PyGithub, unmodified, against the GitHub emulator over a real bare repository.

Every test drives the flow a GitOps pipeline drives (push a branch, open or
update the one pull request of that branch, comment, report a status, merge)
and checks both what the API answers and what happened in the repository.
"""

from __future__ import annotations

import logging
import stat
from pathlib import Path
from typing import Any

import pytest
import requests
from github import Auth, BadCredentialsException, Github, GithubException, UnknownObjectException

from tests.sandbox_github.conftest import FULL_NAME, REPO_URL, Remote, client
from vaultflow.sandbox.github import BareRepository, GitHubEmulator, GitHubStore, RepositoryDirectory


def test_repository_and_branches_are_the_bare_repository(github: Github, remote: Remote) -> None:
    repo = github.get_repo(FULL_NAME)
    assert (repo.full_name, repo.owner.login, repo.default_branch) == (FULL_NAME, "example-org", "main")
    assert repo.clone_url == REPO_URL  # what `git clone` reaches through the sandbox's insteadOf mapping
    assert repo.get_branch("main").commit.sha == remote.sha("main")
    assert github.get_repo("Example-Org/Platform-GitOps").full_name == FULL_NAME  # case-insensitive
    sha = remote.commit_on("vaultflow/example", {"a.yaml": "a: 1\n"}, "a branch with a slash")
    assert repo.get_branch("vaultflow/example").commit.sha == sha
    assert repo.get_commit("vaultflow/example").commit.message == "a branch with a slash"
    with pytest.raises(UnknownObjectException):
        repo.get_branch("no-such-branch")
    with pytest.raises(UnknownObjectException):
        github.get_repo("example-org/not-served")


def test_a_pull_request_opened_from_a_pushed_branch(github: Github, remote: Remote) -> None:
    head = remote.commit_on("feature", {"app.yaml": "replicas: 2\n"}, "scale the app")
    repo = github.get_repo(FULL_NAME)
    pull = repo.create_pull(base="main", head="feature", title="Scale the app", body="preflight: clean")
    assert (pull.number, pull.state, pull.title, pull.body) == (
        1,
        "open",
        "Scale the app",
        "preflight: clean",
    )
    assert (pull.head.ref, pull.head.sha, pull.base.ref, pull.base.sha) == (
        "feature",
        head,
        "main",
        remote.sha("main"),
    )
    assert pull.head.label == "example-org:feature"
    assert (pull.mergeable, pull.mergeable_state, pull.merged) == (True, "clean", False)
    assert (pull.commits, pull.changed_files, pull.additions) == (1, 1, 1)
    assert remote.sha("refs/pull/1/head") == head  # as GitHub keeps it
    assert remote.parents(pull.merge_commit_sha) == [remote.sha("main"), head]  # the test merge
    assert remote.sha("main") == remote.parents(pull.merge_commit_sha)[0]  # main did not move

    pushed = remote.commit_on("feature", {"app.yaml": "replicas: 3\n"}, "scale further")
    assert repo.get_pull(1).head.sha == pushed  # an open pull request follows its branch


def test_one_open_pull_request_per_head(github: Github, remote: Remote) -> None:
    remote.commit_on("vaultflow/example", {"a.yaml": "a: 1\n"}, "render")
    remote.commit_on("other", {"b.yaml": "b: 1\n"}, "another change")
    repo = github.get_repo(FULL_NAME)
    first = repo.create_pull(base="main", head="vaultflow/example", title="Render the catalog")
    with pytest.raises(GithubException) as refused:
        repo.create_pull(base="main", head="example-org:vaultflow/example", title="Again")
    assert refused.value.status == 422
    assert refused.value.data["message"] == "Validation Failed"
    assert refused.value.data["errors"] == [
        {
            "resource": "PullRequest",
            "code": "custom",
            "message": "A pull request already exists for example-org:vaultflow/example.",
        }
    ]
    repo.create_pull(base="main", head="other", title="Other")

    by_head = repo.get_pulls(state="open", head="example-org:vaultflow/example", base="main")
    assert by_head.totalCount == 1  # asked first: PyGithub drops the filters once a list was iterated
    assert [pull.number for pull in by_head] == [first.number]
    assert repo.get_pulls(head="example-org:no-such-branch").totalCount == 0
    # as GitHub does, a head filter without `owner:` is ignored: every open pull request comes back
    assert sorted(pull.number for pull in repo.get_pulls(head="vaultflow/example")) == [1, 2]
    assert repo.get_pulls(state="closed").totalCount == 0


def test_refused_pull_requests_name_the_field(github: Github, remote: Remote) -> None:
    repo = github.get_repo(FULL_NAME)
    with pytest.raises(GithubException) as no_head:
        repo.create_pull(base="main", head="not-pushed", title="x")
    assert no_head.value.status == 422
    assert no_head.value.data["errors"] == [{"resource": "PullRequest", "field": "head", "code": "invalid"}]
    remote.commit_on("feature", {"c.yaml": "c: 1\n"}, "c")
    with pytest.raises(GithubException) as no_base:
        repo.create_pull(base="develop", head="feature", title="x")
    assert no_base.value.data["errors"][0]["field"] == "base"
    with pytest.raises(GithubException) as no_commits:
        repo.create_pull(base="feature", head="main", title="x")
    assert no_commits.value.data["errors"][0]["message"] == "No commits between feature and main"


def test_title_and_body_are_updated(github: Github, remote: Remote) -> None:
    remote.commit_on("feature", {"a.yaml": "a: 1\n"}, "a")
    pull = github.get_repo(FULL_NAME).create_pull(
        base="main", head="feature", title="First", body="old report"
    )
    pull.edit(title="Second", body="new report")
    assert (pull.title, pull.body) == ("Second", "new report")
    again = github.get_repo(FULL_NAME).get_pull(pull.number)
    assert (again.title, again.body, again.state) == ("Second", "new report", "open")
    listed = github.get_repo(FULL_NAME).get_pulls(head="example-org:feature")[0]
    assert listed.body == "new report"


def test_comments_are_created_and_edited(github: Github, remote: Remote) -> None:
    remote.commit_on("feature", {"a.yaml": "a: 1\n"}, "a")
    pull = github.get_repo(FULL_NAME).create_pull(base="main", head="feature", title="t")
    comment = pull.create_issue_comment("| finding | line |\n| --- | --- |")
    assert comment.user.login == "vaultflow-sandbox"
    comment.edit("preflight: no findings")
    assert comment.body == "preflight: no findings"
    assert [c.body for c in pull.get_issue_comments()] == ["preflight: no findings"]
    assert pull.get_issue_comment(comment.id).body == "preflight: no findings"
    assert github.get_repo(FULL_NAME).get_pull(pull.number).comments == 1
    comment.delete()
    assert pull.get_issue_comments().totalCount == 0
    with pytest.raises(UnknownObjectException):
        github.get_repo(FULL_NAME).get_pull(99).create_issue_comment("on nothing")


def test_commit_statuses_are_created_and_combined(github: Github, remote: Remote) -> None:
    head = remote.commit_on("feature", {"a.yaml": "a: 1\n"}, "a")
    repo = github.get_repo(FULL_NAME)
    pull = repo.create_pull(base="main", head="feature", title="t")
    commit = repo.get_commit(head)
    assert commit.get_combined_status().state == "pending"  # nothing reported yet
    commit.create_status("pending", context="vaultflow/preflight", description="running")
    created = commit.create_status(
        "success",
        target_url="https://ci.example.com/1",
        description="no findings",
        context="vaultflow/preflight",
    )
    assert (created.state, created.context, created.target_url) == (
        "success",
        "vaultflow/preflight",
        "https://ci.example.com/1",
    )
    combined = repo.get_commit("feature").get_combined_status()
    assert (combined.state, combined.sha, combined.total_count) == ("success", head, 1)
    assert [s.state for s in commit.get_statuses()] == ["success", "pending"]  # newest first
    assert repo.get_pull(pull.number).mergeable_state == "clean"

    commit.create_status("failure", context="vaultflow/render-check")
    assert commit.get_combined_status().state == "failure"
    assert repo.get_pull(pull.number).mergeable_state == "unstable"  # mergeable, with a failing status

    with pytest.raises(GithubException) as bad_state:
        commit.create_status("green")
    assert bad_state.value.status == 422
    with pytest.raises(GithubException) as unknown:
        repo.get_commit("0" * 40)
    assert (
        unknown.value.status == 422
        and unknown.value.data["message"] == f"No commit found for SHA: {'0' * 40}"
    )


def test_merge_moves_the_base_branch_to_a_merge_commit(github: Github, remote: Remote) -> None:
    base = remote.sha("main")
    head = remote.commit_on("feature", {"eso.yaml": "kind: ExternalSecret\n"}, "render ExternalSecrets")
    repo = github.get_repo(FULL_NAME)
    pull = repo.create_pull(base="main", head="feature", title="Render")
    assert not pull.is_merged()
    status = pull.merge()
    assert status.merged and status.message == "Pull Request successfully merged"
    assert remote.sha("main") == status.sha
    assert remote.parents("main") == [base, head]
    assert remote.show("main", "eso.yaml") == "kind: ExternalSecret"
    merged = repo.get_pull(pull.number)
    assert (merged.merged, merged.state, merged.merge_commit_sha, merged.merged_by.login) == (
        True,
        "closed",
        status.sha,
        "vaultflow-sandbox",
    )
    assert merged.mergeable is None and merged.commits == 1  # counted before the merge, kept
    assert pull.is_merged()
    assert repo.get_commit(status.sha).commit.committer.name == "GitHub"
    assert repo.get_commit(status.sha).commit.message.startswith(
        "Merge pull request #1 from example-org/feature"
    )
    with pytest.raises(GithubException) as again:
        pull.merge()
    assert again.value.status == 405


def test_a_conflicting_pull_request_is_not_mergeable(github: Github, remote: Remote) -> None:
    remote.commit_on("feature", {"README.md": "changed on the branch\n"}, "branch edit")
    repo = github.get_repo(FULL_NAME)
    pull = repo.create_pull(base="main", head="feature", title="Conflicting")
    assert repo.get_pull(pull.number).mergeable is True
    main_before = remote.commit_on("main", {"README.md": "changed on main\n"}, "main edit")
    conflicting = repo.get_pull(pull.number)
    assert (conflicting.mergeable, conflicting.mergeable_state) == (False, "dirty")
    assert conflicting.merge_commit_sha is None
    with pytest.raises(GithubException) as refused:
        conflicting.merge()
    assert refused.value.status == 405 and refused.value.data["message"] == "Pull Request is not mergeable"
    assert remote.sha("main") == main_before  # nothing moved


def test_a_push_that_lands_during_a_merge_is_never_lost(
    github: Github, remote: Remote, monkeypatch: pytest.MonkeyPatch
) -> None:
    head = remote.commit_on("feature", {"a.yaml": "a: 1\n"}, "a")
    pull = github.get_repo(FULL_NAME).create_pull(base="main", head="feature", title="t")
    write_commit = BareRepository.commit_tree
    concurrent: list[str] = []

    def push_meanwhile(self: BareRepository, *arguments: Any, **options: Any) -> str:
        written = write_commit(self, *arguments, **options)
        if not concurrent:  # someone pushes to main after the merge commit is written, before main moves
            concurrent.append(remote.commit_on("main", {"other.yaml": "o: 1\n"}, "a concurrent push"))
        return written

    monkeypatch.setattr(BareRepository, "commit_tree", push_meanwhile)
    with pytest.raises(GithubException) as refused:
        pull.merge()
    assert refused.value.status == 405
    assert refused.value.data["message"] == "Base branch was modified. Review and try the merge again."
    assert remote.sha("main") == concurrent[0]
    monkeypatch.undo()
    assert pull.merge().merged  # tried again, it merges onto the base as it is now
    assert remote.parents("main") == [concurrent[0], head]


def test_a_merge_of_a_stale_head_is_refused(github: Github, remote: Remote) -> None:
    first = remote.commit_on("feature", {"a.yaml": "a: 1\n"}, "a")
    pull = github.get_repo(FULL_NAME).create_pull(base="main", head="feature", title="t")
    remote.commit_on("feature", {"a.yaml": "a: 2\n"}, "a again")
    with pytest.raises(GithubException) as refused:
        pull.merge(sha=first)
    assert refused.value.status == 409
    assert refused.value.data["message"] == "Head branch was modified. Review and try the merge again."
    assert not github.get_repo(FULL_NAME).get_pull(pull.number).merged


def test_squash_and_rebase_merges(github: Github, remote: Remote) -> None:
    repo = github.get_repo(FULL_NAME)
    base = remote.sha("main")
    remote.commit_on("squashed", {"a.yaml": "a: 1\n"}, "one")
    remote.commit_on("squashed", {"b.yaml": "b: 1\n"}, "two")
    squashed = repo.create_pull(base="main", head="squashed", title="Squash me").merge(merge_method="squash")
    assert remote.parents("main") == [base]
    assert remote.show("main", "b.yaml") == "b: 1"
    assert repo.get_commit(squashed.sha).commit.message.startswith("Squash me (#1)")

    remote.commit_on("rebased", {"c.yaml": "c: 1\n"}, "three", start="main")
    remote.commit_on("rebased", {"d.yaml": "d: 1\n"}, "four")
    rebased = repo.create_pull(base="main", head="rebased", title="Rebase me").merge(merge_method="rebase")
    assert remote.sha("main") == rebased.sha
    assert remote.parents("main") == [remote.sha("main~1")] and remote.parents("main~1") == [squashed.sha]
    assert repo.get_commit("main").commit.message == "four"
    with pytest.raises(GithubException) as unknown:
        remote.commit_on("x", {"x.yaml": "x\n"}, "x")
        repo.create_pull(base="main", head="x", title="x").merge(merge_method="octopus")
    assert unknown.value.status == 422


def test_merge_and_delete_the_branch(github: Github, remote: Remote) -> None:
    """``merge(delete_branch=True)`` lists by head, reads and deletes the ref through the git refs API."""
    remote.commit_on("feature", {"a.yaml": "a: 1\n"}, "a")
    remote.commit_on("abandoned", {"z.yaml": "z: 1\n"}, "z")
    repo = github.get_repo(FULL_NAME)
    pull = repo.create_pull(base="main", head="feature", title="t")
    abandoned = repo.create_pull(base="main", head="abandoned", title="never merged")
    pull.merge(delete_branch=True)
    assert "feature" not in [branch.name for branch in repo.get_branches()]
    repo.get_git_ref("heads/abandoned").delete()
    closed = repo.get_pull(abandoned.number)  # GitHub closes a pull request whose head branch is gone
    assert (closed.state, closed.merged) == ("closed", False)


def test_lists_are_paginated_as_github_paginates(
    emulator: GitHubEmulator, token: str, ca_file: Path, remote: Remote
) -> None:
    for index in range(5):
        remote.commit_on(f"change-{index}", {f"{index}.yaml": "x\n"}, f"change {index}")
    with client(emulator, token, ca_file, per_page=2) as paged:
        repo = paged.get_repo(FULL_NAME)
        for index in range(5):
            repo.create_pull(base="main", head=f"change-{index}", title=f"change {index}")
        pulls = repo.get_pulls(sort="created", direction="asc")
        assert pulls.totalCount == 5
        assert [pull.number for pull in pulls] == [1, 2, 3, 4, 5]  # three pages, following the Link header
        assert [pull.number for pull in repo.get_pulls()] == [5, 4, 3, 2, 1]  # newest first by default


def test_a_wrong_token_is_401_and_no_token_is_logged(
    emulator: GitHubEmulator, token: str, ca_file: Path, remote: Remote, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # everything, PyGithub's and urllib3's request logs included
    wrong = "ghp_" + "x" * 36
    with client(emulator, wrong, ca_file) as intruder, pytest.raises(BadCredentialsException) as refused:
        intruder.get_repo(FULL_NAME)
    assert refused.value.status == 401 and refused.value.data["message"] == "Bad credentials"
    assert refused.value.data["documentation_url"].startswith("https://docs.github.com/rest")
    anonymous = requests.get(f"{emulator.api_url}/repos/{FULL_NAME}", verify=str(ca_file), timeout=10)
    assert anonymous.status_code == 401 and anonymous.json()["message"] == "Requires authentication"
    bearer = requests.get(
        f"{emulator.api_url}/repos/{FULL_NAME}",
        headers={"Authorization": f"Bearer {token}"},
        verify=str(ca_file),
        timeout=10,
    )
    assert bearer.status_code == 200  # `Bearer` and `token` are both accepted, as GitHub accepts them
    with client(emulator, token, ca_file) as github:
        remote.commit_on("feature", {"a.yaml": "a: 1\n"}, "a")
        github.get_repo(FULL_NAME).create_pull(base="main", head="feature", title="t").merge()
    emulator_logs = [r.getMessage() for r in caplog.records if r.name.startswith("vaultflow.sandbox")]
    assert any("merged" in line for line in emulator_logs)  # the emulator did log its work
    assert token not in caplog.text and wrong not in caplog.text


def test_pull_requests_comments_and_statuses_survive_a_restart(
    emulator: GitHubEmulator, token: str, ca_file: Path, remote: Remote, store_file: Path
) -> None:
    head = remote.commit_on("feature", {"a.yaml": "a: 1\n"}, "a")
    with client(emulator, token, ca_file) as github:
        repo = github.get_repo(FULL_NAME)
        pull = repo.create_pull(base="main", head="feature", title="Kept")
        pull.create_issue_comment("kept comment")
        repo.get_commit(head).create_status("success", context="kept")
    emulator.stop()
    assert stat.S_IMODE(store_file.stat().st_mode) == 0o600
    routes = {REPO_URL: remote.url}
    with (
        GitHubEmulator(
            RepositoryDirectory(lambda: routes), token=token, store=GitHubStore(store_file)
        ) as restarted,
        Github(
            base_url=restarted.api_url,
            auth=Auth.Token(token),
            seconds_between_requests=None,
            seconds_between_writes=None,
        ) as github,
    ):
        repo = github.get_repo(FULL_NAME)
        kept = repo.get_pulls(head="example-org:feature")[0]
        assert (kept.number, kept.title) == (1, "Kept")
        assert [c.body for c in kept.get_issue_comments()] == ["kept comment"]
        assert repo.get_commit(head).get_combined_status().state == "success"
        remote.commit_on("second", {"b.yaml": "b: 1\n"}, "b")
        assert repo.create_pull(base="main", head="second", title="after restart").number == 2
