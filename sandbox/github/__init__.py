"""GitHub emulator: the REST API v3 endpoints PyGithub uses for pull requests, over the sandbox's bare
repositories (see ``vaultflow.sandbox.github.api`` for what is served, ``pulls`` for the rules).

    emulator = GitHubEmulator(RepositoryDirectory(routes), token=token, authority=ca).start()
    github = Github(base_url=emulator.api_url, auth=Auth.Token(token), verify=ca_file)
"""

from vaultflow.sandbox.github.api import SANDBOX_LOGIN, GitHubEmulator
from vaultflow.sandbox.github.git import BareRepository, GitError, init_bare
from vaultflow.sandbox.github.repositories import HostedRepository, RepositoryDirectory, owner_and_name
from vaultflow.sandbox.github.store import GitHubStore

__all__ = [
    "SANDBOX_LOGIN",
    "BareRepository",
    "GitError",
    "GitHubEmulator",
    "GitHubStore",
    "HostedRepository",
    "RepositoryDirectory",
    "init_bare",
    "owner_and_name",
]
