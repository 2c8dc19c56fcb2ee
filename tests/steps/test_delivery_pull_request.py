"""The GitHub repository a pull request goes to, and where its token comes from (never shown)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vaultflow.base.errors import InputError
from vaultflow.steps.delivery.pull_request import github_token, repository_name


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/example-org/platform-gitops.git",
        "https://github.com/example-org/platform-gitops",
        "https://x-access-token:t0ken@github.example.com/example-org/platform-gitops.git/",
        "git@github.com:example-org/platform-gitops.git",
        "ssh://git@github.com/example-org/platform-gitops.git",
    ],
)
def test_the_repository_name_of_each_url_spelling(url: str) -> None:
    assert repository_name(url) == "example-org/platform-gitops"


def test_a_url_that_names_no_github_repository_is_bad_input_without_its_credentials() -> None:
    with pytest.raises(InputError) as caught:
        repository_name("file:///srv/gitops.git")
    assert "--mode pr needs a GitHub repository URL" in str(caught.value)
    with pytest.raises(InputError) as caught:
        repository_name("https://bot:s3cret@github.com/only-owner")
    assert "s3cret" not in str(caught.value)


def test_the_token_file_wins_over_the_environment(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    environ = {"VAULTFLOW_GITHUB_TOKEN_FILE": str(token_file), "GITHUB_TOKEN": "from-env"}
    assert github_token(environ) == "from-file"
    assert github_token({"GITHUB_TOKEN": "from-env"}) == "from-env"


def test_no_token_or_an_unreadable_one_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        github_token({})
    assert str(caught.value) == (
        "--mode pr needs a GitHub token: set $VAULTFLOW_GITHUB_TOKEN_FILE (a file) or $GITHUB_TOKEN"
    )
    with pytest.raises(InputError, match="cannot read the GitHub token file"):
        github_token({"VAULTFLOW_GITHUB_TOKEN_FILE": str(tmp_path / "missing")})
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(InputError, match="is empty"):
        github_token({"VAULTFLOW_GITHUB_TOKEN_FILE": str(empty)})
