"""Fixtures of the GitHub emulator tests: a bare repository with a working clone, the emulator over it
in this process (HTTPS with a test CA), and PyGithub pointed at it the way a pipeline would be."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from github import Auth, Github

from vaultflow.sandbox.github import GitHubEmulator, GitHubStore, RepositoryDirectory, init_bare
from vaultflow.sandbox.pki import CertificateAuthority

REPO_URL = "https://github.com/example-org/platform-gitops.git"  # the example catalog's gitops.repoUrl
FULL_NAME = "example-org/platform-gitops"


def git(*arguments: str, cwd: Path) -> str:
    completed = subprocess.run(["git", *arguments], cwd=cwd, capture_output=True, text=True, check=False)
    assert completed.returncode == 0, completed.stderr
    return completed.stdout.strip()


@dataclass
class Remote:
    """The bare repository the emulator serves, and a clone of it to push from."""

    bare: Path
    work: Path

    @property
    def url(self) -> str:
        return self.bare.resolve().as_uri()

    def sha(self, ref: str) -> str:
        return git("rev-parse", ref, cwd=self.bare)

    def parents(self, ref: str) -> list[str]:
        return git("rev-list", "--parents", "-n", "1", ref, cwd=self.bare).split()[1:]

    def show(self, ref: str, path: str) -> str:
        return git("show", f"{ref}:{path}", cwd=self.bare)

    def commit_on(self, branch: str, files: dict[str, str], message: str, *, start: str = "main") -> str:
        """Commit ``files`` on ``branch`` (created from ``start`` when new) and push it; the commit's SHA."""
        git("fetch", "--quiet", "origin", cwd=self.work)
        remote_branches = git("branch", "-r", cwd=self.work).split()
        source = f"origin/{branch}" if f"origin/{branch}" in remote_branches else f"origin/{start}"
        git("checkout", "--quiet", "-B", branch, source, cwd=self.work)
        for name, content in files.items():
            (self.work / name).write_text(content)
        git("add", "-A", cwd=self.work)
        git("commit", "--quiet", "-m", message, cwd=self.work)
        git("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    bare = tmp_path / "gitops.git"
    init_bare(bare)
    work = tmp_path / "work"
    git("init", "--quiet", "--initial-branch=main", str(work), cwd=tmp_path)
    for key, value in (("user.name", "Platform Engineer"), ("user.email", "engineer@example.com")):
        git("config", key, value, cwd=work)
    git("remote", "add", "origin", bare.resolve().as_uri(), cwd=work)
    (work / "README.md").write_text("GitOps repository\n")
    git("add", "-A", cwd=work)
    git("commit", "--quiet", "-m", "initial", cwd=work)
    git("push", "--quiet", "origin", "HEAD:refs/heads/main", cwd=work)
    return Remote(bare, work)


@pytest.fixture(scope="session")
def authority() -> CertificateAuthority:
    return CertificateAuthority("github emulator test CA")


@pytest.fixture(scope="session")
def ca_file(authority: CertificateAuthority, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("github-ca") / "ca.crt"
    path.write_text(authority.certificate_pem)
    return path


@pytest.fixture
def token() -> str:
    return secrets.token_urlsafe(32)


@pytest.fixture
def store_file(tmp_path: Path) -> Path:
    return tmp_path / "github.json"


@pytest.fixture
def emulator(
    remote: Remote, authority: CertificateAuthority, token: str, store_file: Path
) -> Iterator[GitHubEmulator]:
    routes = {
        REPO_URL: remote.url
    }  # what `sandbox up --catalog` routes: the catalog's repoUrl -> the bare repo
    with GitHubEmulator(
        RepositoryDirectory(lambda: routes), token=token, authority=authority, store=GitHubStore(store_file)
    ) as served:
        yield served


def client(emulator: GitHubEmulator, token: str, ca_file: Path, *, per_page: int = 30) -> Github:
    """PyGithub as a pipeline builds it: the API URL, a token, and the sandbox CA passed explicitly.

    Without PyGithub's own pacing (by default it waits 0.25 s between requests and 1 s between
    writes, for github.com's secondary rate limits, which the emulator does not have)."""
    return Github(
        base_url=emulator.api_url,
        auth=Auth.Token(token),
        verify=str(ca_file),
        per_page=per_page,
        seconds_between_requests=None,
        seconds_between_writes=None,
    )


@pytest.fixture
def github(emulator: GitHubEmulator, token: str, ca_file: Path) -> Iterator[Github]:
    with client(emulator, token, ca_file) as connected:
        yield connected
