"""Fixtures shared by every test package.

The upstream CRDs live beside the checkout in ``../shared/schemas`` (CI has
that folder); ``VAULTFLOW_SCHEMAS`` overrides the location. Tests that need
them fail, never skip, when they are missing: CI must not go green on a
test that did not run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from vaultflow.gitops.crd_schemas import CrdRegistry
from vaultflow.steps.vault.api import VaultApi

REPO_ROOT = Path(__file__).resolve().parent.parent


def upstream_schemas_dir() -> Path:
    return Path(os.environ.get("VAULTFLOW_SCHEMAS", REPO_ROOT.parent / "shared" / "schemas")).resolve()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def schemas_dir() -> Path:
    directory = upstream_schemas_dir()
    if not directory.is_dir():
        pytest.fail(f"upstream schemas not found at {directory}; set VAULTFLOW_SCHEMAS")
    return directory


@pytest.fixture(scope="session")
def upstream_crds(schemas_dir: Path) -> CrdRegistry:
    return CrdRegistry.from_directory(schemas_dir)


def mount_kv(client: Any, path: str) -> None:
    """Mount KV v2 at ``path`` and wait until it serves requests: a fresh mount upgrades its storage
    for a moment and refuses reads and writes meanwhile ("Upgrading from non-versioned ...")."""
    import hvac.exceptions

    from vaultflow.base.retry import poll_until

    client.sys.enable_secrets_engine("kv", path=path, options={"version": "2"})
    poll_until(
        lambda: client.secrets.kv.v2.read_configuration(mount_point=path),
        lambda _: True,
        what=f"the new KV v2 mount {path}/ to serve requests",
        timeout=30,
        transient=(hvac.exceptions.InvalidRequest,),
    )


@dataclass(frozen=True)
class UnsealedVault:
    """A real OpenBao server, initialised (one share) and unsealed, with KV v2 at ``secret/``."""

    address: str
    root_token: str

    def client(self, token: str | None = None) -> Any:
        import hvac

        return hvac.Client(url=self.address, token=token or self.root_token)


@pytest.fixture(scope="session")
def unsealed_vault(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UnsealedVault]:
    """One OpenBao per test session (per xdist worker); tests use their own paths in it."""
    import hvac

    from vaultflow.sandbox.openbao import OpenBaoServer

    server = OpenBaoServer(tmp_path_factory.mktemp("openbao"))
    server.start()
    try:
        client = hvac.Client(url=server.address)
        init = client.sys.initialize(secret_shares=1, secret_threshold=1)
        client.sys.submit_unseal_key(init["keys"][0])
        client.token = init["root_token"]
        VaultApi(server.address).wait_until_active()
        mount_kv(client, "secret")
        yield UnsealedVault(address=server.address, root_token=init["root_token"])
    finally:
        server.stop()
