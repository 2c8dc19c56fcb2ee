"""Shallow workspaces, proposal branches and what git says when a remote refuses: real bare repositories."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from vaultflow.base.errors import OperationError
from vaultflow.gitops.git_delivery import (
    Workspace,
    commit_message,
    deliver,
    open_workspace,
    proposal_branch,
    propose_tree,
)
from vaultflow.gitops.render import RenderedTree
from vaultflow.gitops.tree_writer import FileObject, TreeChanges


def git(repository: Path, *arguments: str) -> str:
    done = subprocess.run(
        ["git", "--git-dir", str(repository), *arguments], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture
def bare(tmp_path: Path) -> Path:
    path = tmp_path / "gitops.git"
    subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(path)], check=True)
    return path


def tree_of(name: str, kind: str = "ExternalSecret") -> RenderedTree:
    tree = RenderedTree()
    tree.add_text(".vaultflow-rendered", "# marker\n")
    tree.add_text(f"{name}.yaml", f"kind: {kind}\nmetadata: {{name: {name}, namespace: team}}\n")
    return tree


def test_the_workspace_is_a_shallow_clone_of_the_one_branch(bare: Path, tmp_path: Path) -> None:
    url = bare.as_uri()
    for index in range(3):
        deliver(tree_of(f"s{index}"), repo_url=url, path="p")
    deliver(tree_of("other"), repo_url=url, path="q", branch="other")
    workspace = Workspace.clone(url, "main", tmp_path / "clone")
    assert workspace.default_branch == "main"
    assert (tmp_path / "clone" / ".git" / "shallow").is_file()
    assert workspace.repo.git.rev_list("--count", "HEAD") == "1"  # one commit of history, not three
    assert [ref.name for ref in workspace.repo.remotes.origin.refs] == ["origin/main"]  # not "other"
    assert workspace.head() == git(bare, "rev-parse", "main")


def test_commit_message_names_kinds_and_names(bare: Path) -> None:
    delivery = deliver(tree_of("db"), repo_url=bare.as_uri(), path="eso")
    assert delivery.objects["db.yaml"] == [FileObject("ExternalSecret", "db", "team")]
    message = git(bare, "log", "-1", "--format=%B")
    assert "A eso/db.yaml: ExternalSecret team/db" in message
    changes = TreeChanges(added=["k.yaml"], changed=[], removed=[], unchanged=0)
    many = {"k.yaml": [FileObject("ConfigMap", f"c{i}") for i in range(7)]}
    assert "A k.yaml: ConfigMap c0, ConfigMap c1, ConfigMap c2, ConfigMap c3, ConfigMap c4 and 2 more" in (
        commit_message(changes, "s", objects=many)
    )


def test_a_proposal_is_one_commit_on_the_base_and_a_repeat_pushes_nothing(bare: Path) -> None:
    url = bare.as_uri()
    base = deliver(tree_of("base"), repo_url=url, path="eso").commit
    branch = proposal_branch("eso")
    assert branch == "vaultflow/eso" and proposal_branch("teams/a b/eso") == "vaultflow/teams-a-b-eso"
    with open_workspace(url, "main") as workspace:
        first = propose_tree(workspace, tree_of("new"), path="eso", branch=branch)
    assert first.pushed and first.base == base and first.commit == git(bare, "rev-parse", branch)
    assert git(bare, "rev-parse", f"{branch}^") == base and git(bare, "rev-parse", "main") == base
    assert first.changes.added == ["new.yaml"] and first.changes.removed == ["base.yaml"]
    with open_workspace(url, "main") as workspace:
        again = propose_tree(workspace, tree_of("new"), path="eso", branch=branch)
    assert not again.pushed and again.commit == first.commit  # idempotent: no new commit, no push
    with open_workspace(url, "main") as workspace:
        same = propose_tree(workspace, tree_of("base"), path="eso", branch=branch)
    assert same.commit is None and not same.pushed  # main already holds it: nothing to propose


def test_a_proposal_is_rebuilt_on_the_base_when_the_base_moved(bare: Path) -> None:
    url = bare.as_uri()
    deliver(tree_of("base"), repo_url=url, path="eso")
    branch = proposal_branch("eso")
    with open_workspace(url, "main") as workspace:
        first = propose_tree(workspace, tree_of("new"), path="eso", branch=branch)
    moved = deliver(tree_of("elsewhere"), repo_url=url, path="other").commit  # someone else's change
    with open_workspace(url, "main") as workspace:
        second = propose_tree(workspace, tree_of("new"), path="eso", branch=branch)
    assert second.pushed and second.commit != first.commit
    assert git(bare, "rev-parse", f"{branch}^") == moved  # one commit on the new base (replaced)
    assert git(bare, "ls-tree", "-r", "--name-only", branch).split() == [
        "eso/.vaultflow-rendered",
        "eso/new.yaml",
        "other/.vaultflow-rendered",
        "other/elsewhere.yaml",
    ]


def test_a_proposal_push_never_overwrites_a_push_it_did_not_see(bare: Path, tmp_path: Path) -> None:
    url = bare.as_uri()
    deliver(tree_of("base"), repo_url=url, path="eso")
    one = Workspace.clone(url, "main", tmp_path / "one")
    two = Workspace.clone(url, "main", tmp_path / "two")
    for workspace, name in ((one, "one"), (two, "two")):
        workspace.apply(tree_of(name), "eso")
        assert workspace.commit(name)
    assert one.push_to("vaultflow/eso", None) is True
    assert two.push_to("vaultflow/eso", None) is False  # it expected no branch: someone else pushed
    assert git(bare, "rev-parse", "vaultflow/eso") == one.head()


def test_a_proposal_needs_a_base_branch(bare: Path) -> None:
    with open_workspace(bare.as_uri(), "main") as workspace, pytest.raises(OperationError) as caught:
        propose_tree(workspace, tree_of("a"), path="eso", branch="vaultflow/eso")
    assert str(caught.value) == (
        f"main does not exist in {bare.as_uri()}: a pull request needs a base branch "
        "(apply --mode push creates it)"
    )


def test_contains_follows_the_branch_past_the_commit(bare: Path, tmp_path: Path) -> None:
    url = bare.as_uri()
    first = deliver(tree_of("a"), repo_url=url, path="eso").commit
    assert first is not None
    with open_workspace(url, "main") as workspace:
        later = deliver(tree_of("b"), repo_url=url, path="other").commit  # pushed after the clone
        assert later is not None
        assert workspace.contains(first, first)
        assert workspace.contains(first, later)  # fetched: a later commit of the branch contains it
        assert not workspace.contains(later, first)
        assert not workspace.contains(first, "0" * 40)


def test_a_remote_that_refuses_the_push_is_one_line_with_the_server_s_words(bare: Path) -> None:
    hook = bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'Permission to org/repo.git denied to bot.' >&2\nexit 1\n")
    hook.chmod(0o755)
    with pytest.raises(OperationError) as caught:
        deliver(tree_of("a"), repo_url=bare.as_uri(), path="eso")
    assert str(caught.value) == (
        "push to main failed: Permission to org/repo.git denied to bot. "
        "! [remote rejected] HEAD -> main (pre-receive hook declined)"
    )
    assert git(bare, "for-each-ref") == ""
