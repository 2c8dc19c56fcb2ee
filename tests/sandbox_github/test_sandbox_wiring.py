"""The GitHub emulator inside a real sandbox: `sandbox up --catalog`, `sandbox env`, `git clone <repoUrl>`.

One sandbox for the module, started as a platform engineer would
(``vaultflow sandbox up --catalog examples/catalog.yaml``); the shell's view is
taken from ``eval "$(vaultflow sandbox env)"`` itself, and everything after
that uses only those variables: plain ``git`` against the catalog's
``repoUrl`` and PyGithub against ``GITHUB_API_URL``.
"""

from __future__ import annotations

import shlex
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from github import Auth, BadCredentialsException, Github
from typer.testing import CliRunner

from tests.sandbox_github.conftest import FULL_NAME, git
from vaultflow.cli.sandbox import app
from vaultflow.sandbox import lifecycle
from vaultflow.sandbox.state import SandboxState

CATALOG_REPO_URL = (
    "https://github.com/example-org/platform-gitops.git"  # examples/catalog.yaml gitops.repoUrl
)


@pytest.fixture(scope="module")
def sandbox(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxState]:
    directory = tmp_path_factory.mktemp("github-sandbox") / "sbx"
    catalog = repo_root / "examples" / "catalog.yaml"
    result = CliRunner().invoke(
        app, ["up", "--dir", str(directory), "--catalog", str(catalog), "--builtin-crds", "--output", "json"]
    )
    assert result.exit_code == 0, result.output
    yield lifecycle.load_state(directory)
    lifecycle.down(directory)


def shell_environment(state: SandboxState) -> dict[str, str]:
    """The environment a shell has after ``eval "$(vaultflow sandbox env --dir DIR)"``."""
    printer = f"{shlex.quote(sys.executable)} -m vaultflow sandbox env --dir {shlex.quote(state.directory)}"
    command = f'eval "$({printer})" && env -0'
    completed = subprocess.run(["bash", "-c", command], capture_output=True, check=True)
    return dict(entry.split("=", 1) for entry in completed.stdout.decode().split("\0") if "=" in entry)


def connect(environment: dict[str, str]) -> Github:
    """PyGithub from the sandbox's variables only: the API URL, the token's file, the sandbox CA."""
    token = Path(environment["VAULTFLOW_GITHUB_TOKEN_FILE"]).read_text().strip()
    return Github(
        base_url=environment["GITHUB_API_URL"],
        auth=Auth.Token(token),
        verify=environment["VAULTFLOW_SANDBOX_CA"],
        seconds_between_requests=None,
        seconds_between_writes=None,
    )


def test_the_emulator_runs_with_the_sandbox_and_shows_in_status(sandbox: SandboxState) -> None:
    rows = {(c.component, c.name): c for c in lifecycle.status(Path(sandbox.directory)).components}
    github = rows[("github (emulator)", "rest api v3")]
    assert github.healthy and github.endpoint == sandbox.github_api_url
    assert sandbox.github_api_url.startswith("https://127.0.0.1:") and sandbox.github_api_url.endswith(
        "/api/v3"
    )
    assert stat.S_IMODE(Path(sandbox.github_token_file).stat().st_mode) == 0o600
    bare = Path(sandbox.directory) / "gitops.git"
    assert sandbox.gitops_repo == bare.resolve().as_uri() and (bare / "HEAD").is_file()
    # `up --catalog` routed the catalog's repoUrl to the sandbox's GitOps remote
    assert rows[("route (sandbox)", "git")].endpoint == CATALOG_REPO_URL


def test_env_exports_the_api_the_token_file_and_git_s_own_url_mapping(sandbox: SandboxState) -> None:
    printed = CliRunner().invoke(app, ["env", "--dir", sandbox.directory]).output
    token = Path(sandbox.github_token_file).read_text().strip()
    assert token not in printed  # the path is exported, never the token
    environment = shell_environment(sandbox)
    assert environment["GITHUB_API_URL"] == sandbox.github_api_url
    assert environment["VAULTFLOW_GITHUB_TOKEN_FILE"] == sandbox.github_token_file
    exported = {line.split("=", 1)[0].removeprefix("export ") for line in printed.splitlines()}
    assert not exported & {"GITHUB_TOKEN", "GH_TOKEN", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"}
    mapping = {
        environment[f"GIT_CONFIG_VALUE_{index}"]: environment[f"GIT_CONFIG_KEY_{index}"]
        for index in range(int(environment["GIT_CONFIG_COUNT"]))
    }
    assert mapping[CATALOG_REPO_URL] == f"url.{sandbox.gitops_repo}.insteadOf"


def test_git_clone_of_the_catalog_repo_url_and_a_pull_request_merged_through_the_api(
    sandbox: SandboxState, tmp_path: Path
) -> None:
    environment = shell_environment(sandbox)
    clone = tmp_path / "clone"

    def shell_git(*arguments: str) -> str:
        completed = subprocess.run(
            ["git", *arguments], cwd=clone, env=environment, capture_output=True, text=True, check=False
        )
        assert completed.returncode == 0, completed.stderr
        return completed.stdout.strip()

    subprocess.run(["git", "clone", "--quiet", CATALOG_REPO_URL, str(clone)], env=environment, check=True)
    assert shell_git("config", "remote.origin.url") == CATALOG_REPO_URL  # the clone knows the catalog's URL
    assert shell_git("remote", "get-url", "origin") == sandbox.gitops_repo  # ... which git rewrites
    for key, value in (("user.name", "Platform Engineer"), ("user.email", "engineer@example.com")):
        shell_git("config", key, value)
    shell_git("symbolic-ref", "HEAD", "refs/heads/main")  # the clone of an empty repository
    (clone / "README.md").write_text("GitOps repository\n")
    shell_git("add", "-A")
    shell_git("commit", "--quiet", "-m", "initial")
    shell_git("push", "--quiet", "origin", "main")
    bare = Path(sandbox.directory) / "gitops.git"
    base = git("rev-parse", "main", cwd=bare)
    assert base == shell_git("rev-parse", "HEAD")  # the push reached the sandbox's bare repository
    shell_git("checkout", "--quiet", "-b", "vaultflow/example")
    (clone / "eso.yaml").write_text("kind: ExternalSecret\n")
    shell_git("add", "-A")
    shell_git("commit", "--quiet", "-m", "render")
    shell_git("push", "--quiet", "origin", "vaultflow/example")
    head = shell_git("rev-parse", "HEAD")

    with connect(environment) as github:
        repo = github.get_repo(FULL_NAME)
        assert repo.get_branch("main").commit.sha == base
        pull = repo.create_pull(base="main", head="vaultflow/example", title="Render the catalog")
        assert pull.mergeable and pull.head.sha == head
        merged = pull.merge()
    assert git("rev-list", "--parents", "-n", "1", "main", cwd=bare).split() == [merged.sha, base, head]


def test_pull_requests_survive_down_and_up_and_the_token_is_new(sandbox: SandboxState) -> None:
    old_token = Path(sandbox.github_token_file).read_text().strip()
    with connect(shell_environment(sandbox)) as github:
        repo = github.get_repo(FULL_NAME)
        before = sorted((pull.number, pull.title, pull.state) for pull in repo.get_pulls(state="all"))
    assert before, "the previous test opened a pull request"
    lifecycle.down(Path(sandbox.directory))
    restarted = lifecycle.resume(Path(sandbox.directory)).state
    environment = shell_environment(restarted)
    assert environment["GIT_CONFIG_COUNT"]  # the routes came back, and with them git's mapping
    with connect(environment) as github:
        after = sorted(
            (p.number, p.title, p.state) for p in github.get_repo(FULL_NAME).get_pulls(state="all")
        )
    assert after == before
    new_token = Path(restarted.github_token_file).read_text().strip()
    assert new_token != old_token
    stale = Github(
        base_url=restarted.github_api_url, auth=Auth.Token(old_token), verify=restarted.ca_file, retry=None
    )
    with stale, pytest.raises(BadCredentialsException):
        stale.get_repo(FULL_NAME)
    log = (Path(restarted.directory) / "logs" / "supervisor.log").read_text()
    assert "GitHub emulator listens on" in log
    assert old_token not in log and new_token not in log
