"""``vaultflow gitops apply`` without a sandbox: bad input exits 2 before anything is touched, and a push
to a plain bare repository (no Argo CD: ``--no-wait``) commits once."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vaultflow.cli import app

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml"


@pytest.fixture
def bare(tmp_path: Path) -> Path:
    path = tmp_path / "gitops.git"
    subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(path)], check=True)
    return path


def apply(*arguments: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Exit code and stdout (the JSON report; progress and errors go to stderr)."""
    result = CliRunner().invoke(app, ["gitops", "apply", "--catalog", str(EXAMPLE), *arguments], env=env)
    return result.exit_code, result.stdout if "--output" in arguments else result.output


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--merge"], "error: --merge merges the pull request: it needs --mode pr"),
        (["--timeout", "ten"], "error: --timeout: 'ten' is not a duration"),
        (["--timeout", "0s"], "error: --timeout must be positive (got 0s)"),
        (["--path", "../elsewhere"], "error: --path '../elsewhere': a relative directory of the repository"),
        (
            ["--mode", "pr", "--repo", "file:///nowhere/gitops.git"],
            "error: --mode pr needs a GitHub repository URL such as https://github.com/OWNER/NAME.git",
        ),
    ],
)
def test_bad_input_exits_2_before_any_git(arguments: list[str], message: str) -> None:
    code, output = apply(*arguments)
    assert code == 2, output
    assert output.startswith(message)


def test_pr_mode_without_a_token_is_bad_input(bare: Path) -> None:
    code, output = apply(
        "--mode", "pr", env={"GITHUB_TOKEN": "", "VAULTFLOW_GITHUB_TOKEN_FILE": "", "GITHUB_API_URL": ""}
    )
    assert code == 2
    assert output.startswith("error: --mode pr needs a GitHub token")


def test_push_no_wait_commits_once_then_says_there_is_nothing_to_change(bare: Path) -> None:
    code, output = apply("--repo", bare.as_uri(), "--no-wait", "--output", "json")
    assert code == 0, output
    report = json.loads(output)
    head = subprocess.run(
        ["git", "--git-dir", str(bare), "rev-parse", "main"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert report["commit"] == head == report["revision"] and report["wait"] is None
    assert {
        "change": "added",
        "path": "eso-resources/vault/policies/eso-prod-eu.hcl",
        "objects": ["VaultPolicy eso-prod-eu"],
    } in report["files"]
    code, output = apply("--repo", bare.as_uri(), "--no-wait")
    assert code == 0, output
    assert "nothing to change: main already holds what the catalog renders (no commit)" in output
