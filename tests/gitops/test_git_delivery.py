"""Delivery into a real (bare) Git repository: one commit, idempotent, safe under concurrent pushes."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import git
import pytest

from vaultflow.base.errors import OperationError
from vaultflow.gitops.catalog import load_catalog
from vaultflow.gitops.git_delivery import Workspace, deliver
from vaultflow.gitops.render import RenderedTree, render_catalog

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml"


@pytest.fixture
def bare_repo(tmp_path: Path) -> Path:
    path = tmp_path / "gitops.git"
    subprocess.run(
        ["git", "init", "--bare", "--initial-branch=main", str(path)], check=True, capture_output=True
    )
    return path


def files_at(bare: Path, ref: str = "main") -> set[str]:
    out = subprocess.run(
        ["git", "--git-dir", str(bare), "ls-tree", "-r", "--name-only", ref],
        check=True,
        capture_output=True,
        text=True,
    )
    return set(out.stdout.split())


def small_tree(name: str) -> RenderedTree:
    tree = RenderedTree()
    tree.add_text(".vaultflow-rendered", "# marker\n")
    tree.add_text(f"{name}.txt", f"{name}\n")
    return tree


def test_first_delivery_commits_and_a_repeat_commits_nothing(bare_repo: Path) -> None:
    tree = render_catalog(load_catalog(EXAMPLE))
    first = deliver(tree, repo_url=str(bare_repo), path="eso-resources")
    assert first.commit is not None and first.attempts == 1
    assert git.Repo(bare_repo).commit("main").hexsha == first.commit
    assert {f"eso-resources/{p}" for p in tree.by_path()} == files_at(bare_repo)
    again = deliver(render_catalog(load_catalog(EXAMPLE)), repo_url=str(bare_repo), path="eso-resources")
    assert again.commit is None
    assert len(list(git.Repo(bare_repo).iter_commits("main"))) == 1


def test_commit_message_lists_the_changes(bare_repo: Path) -> None:
    deliver(small_tree("a"), repo_url=str(bare_repo), path="p")
    tree = small_tree("b")
    result = deliver(tree, repo_url=str(bare_repo), path="p")
    message = str(git.Repo(bare_repo).commit(result.commit).message)
    assert message.splitlines()[0].endswith("(1 added, 0 changed, 1 removed)")
    assert "A p/b.txt" in message and "D p/a.txt" in message


def test_files_outside_the_path_are_left_alone(bare_repo: Path, tmp_path: Path) -> None:
    other = git.Repo.clone_from(str(bare_repo), tmp_path / "human")
    (tmp_path / "human" / "README.md").write_text("owned by humans\n")
    other.index.add(["README.md"])
    other.index.commit("readme")
    other.git.push("origin", "HEAD:refs/heads/main")
    deliver(small_tree("a"), repo_url=str(bare_repo), path="rendered")
    assert files_at(bare_repo) == {"README.md", "rendered/.vaultflow-rendered", "rendered/a.txt"}


def test_a_push_that_lost_the_race_is_reapplied_on_top(bare_repo: Path, tmp_path: Path) -> None:
    deliver(small_tree("base"), repo_url=str(bare_repo), path="shared")
    first = Workspace.clone(str(bare_repo), "main", tmp_path / "one")
    second = Workspace.clone(str(bare_repo), "main", tmp_path / "two")
    first.apply(small_tree("one"), "team-one")
    second.apply(small_tree("two"), "team-two")
    assert first.commit("one") and second.commit("two")
    assert first.push() is True
    assert second.push() is False  # non-fast-forward: the remote moved on
    second.reset_to_remote()
    second.apply(small_tree("two"), "team-two")
    assert second.commit("two again")
    assert second.push() is True
    assert {"team-one/one.txt", "team-two/two.txt", "shared/base.txt"} <= files_at(bare_repo)


def test_concurrent_deliveries_all_land(bare_repo: Path) -> None:
    deliver(small_tree("base"), repo_url=str(bare_repo), path="base")
    results: dict[int, object] = {}

    def run(index: int) -> None:
        results[index] = deliver(small_tree(f"t{index}"), repo_url=str(bare_repo), path=f"team-{index}")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4
    assert {f"team-{i}/t{i}.txt" for i in range(4)} <= files_at(bare_repo)
    history = list(git.Repo(bare_repo).iter_commits("main"))
    assert len(history) == 5 and all(len(c.parents) <= 1 for c in history)  # linear, no merge commits


def test_unreachable_repository_is_one_clear_error_without_credentials(tmp_path: Path) -> None:
    with pytest.raises(OperationError) as caught:
        deliver(small_tree("a"), repo_url="https://bot:s3cr3t-token@127.0.0.1:9/none.git", path="p")
    message = str(caught.value)
    assert message.startswith("cannot clone https://***@127.0.0.1:9/none.git")
    assert "s3cr3t-token" not in message


def test_a_branch_that_keeps_moving_is_given_up_after_max_attempts(bare_repo: Path) -> None:
    deliver(small_tree("base"), repo_url=str(bare_repo), path="base")
    # Every push loses the race: the hook commits someone else's change first, then rejects ours.
    hook = bare_repo / "hooks" / "pre-receive"
    hook.write_text(
        "#!/bin/sh\n"
        "unset GIT_QUARANTINE_PATH GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES\n"
        "export GIT_AUTHOR_NAME=other GIT_AUTHOR_EMAIL=other@x\n"
        "export GIT_COMMITTER_NAME=other GIT_COMMITTER_EMAIL=other@x\n"
        "head=$(git rev-parse refs/heads/main)\n"
        'next=$(git commit-tree "$head^{tree}" -p "$head" -m "someone else")\n'
        'git update-ref refs/heads/main "$next" "$head"\n'
        "exit 1\n"
    )
    hook.chmod(0o755)
    with pytest.raises(OperationError) as caught:
        deliver(small_tree("mine"), repo_url=str(bare_repo), path="mine", max_attempts=3)
    assert str(caught.value) == f"push to {bare_repo} (main) was rejected 3 times: the branch keeps moving"
    history = [c.message.strip() for c in git.Repo(bare_repo).iter_commits("main")]
    assert history[:3] == ["someone else"] * 3 and len(history) == 4  # three races lost, nothing of ours
    assert "mine/mine.txt" not in files_at(bare_repo)


def test_a_repeat_is_decided_from_the_commit_without_checking_a_file_out(
    bare_repo: Path, tmp_path: Path
) -> None:
    """Blob ids are compared first (``Workspace.holds``): a no-change run of a large catalog writes no file;
    any difference (content, an extra file, a missing one) still goes through the full comparison."""
    deliver(small_tree("a"), repo_url=str(bare_repo), path="p")
    workspace = Workspace.clone(str(bare_repo), "main", tmp_path / "clone")
    assert workspace.holds(small_tree("a"), "p")
    assert not (tmp_path / "clone" / "p").exists()  # nothing checked out to decide it
    changed = small_tree("a")
    changed.add_text("a.txt", "a, edited\n")
    changed.files.pop(1)
    extra = small_tree("a")
    extra.add_text("b.txt", "b\n")
    missing = RenderedTree(files=small_tree("a").files[:1])
    assert not any(workspace.holds(tree, "p") for tree in (changed, extra, missing))
    assert not workspace.holds(small_tree("a"), "elsewhere")
    # And a change still commits, from a checked-out tree (the old content says what changed).
    result = deliver(changed, repo_url=str(bare_repo), path="p")
    assert result.commit is not None and result.changes.changed == ["a.txt"]
