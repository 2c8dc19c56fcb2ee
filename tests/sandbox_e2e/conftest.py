"""A whole sandbox for the example catalog: what ``task demo`` runs, end to end, as a fixture.

``vaultflow sandbox up`` (through the Python API) with the catalog's clusters
and Key Vault and the upstream CRDs; the platform's service accounts; OpenBao
initialised, unsealed and configured from the catalog by the bootstrap step's
own ``desired_config``/``apply_config``; every catalog path seeded in Vault; the
sandbox wired to the catalog's addresses. Rendering, committing and syncing
are left to the tests.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import hvac
import pytest
from kubernetes import client, config

from vaultflow.gitops.catalog import LoadedCatalog, load_catalog
from vaultflow.sandbox import lifecycle
from vaultflow.sandbox.catalog_wiring import azure_vault_names, wire_catalog
from vaultflow.sandbox.platform import cluster_reviews, install_platform_accounts
from vaultflow.sandbox.postgres import adopt, postgres_spec, sandbox_postgres_dir
from vaultflow.sandbox.state import SandboxState
from vaultflow.steps.credentials import Credential
from vaultflow.steps.vault.api import VaultApi
from vaultflow.steps.vault.configure import apply_config, desired_config

# what the tests put in Vault: test data only, never a real secret
SEEDS: dict[str, dict[str, str]] = {
    "prod/database": {"username": "api-user-7f3", "password": "db-pass-1"},
    "prod/database-admin": {"username": "dba-7f3", "password": "db-admin-pass-1"},
    "prod/app-credentials": {"username": "app-user-9c1", "password": "app-pass-1"},
    "argocd/admin": {"admin.password": "argo-pass-1"},
    "prod/lambda/db-password": {"password": "lambda-pass-1"},
    "prod/cloudrun/signing-key": {"key": "c2lnbmluZy1rZXk="},
    "shared/stripe": {"api-key": "sk_test_1"},
}


@dataclass
class CatalogSandbox:
    state: SandboxState
    loaded: LoadedCatalog
    vault: hvac.Client  # root, for the tests' own writes
    bare_repo: Path

    def api(self, cluster: str) -> client.ApiClient:
        return config.new_client_from_config(config_file=self.state.kubeconfig, context=cluster)

    @property
    def repo_url(self) -> str:
        return self.bare_repo.resolve().as_uri()


def _initialise(address: str, ca_file: str) -> hvac.Client:
    root = hvac.Client(url=address, verify=ca_file)
    keys = root.sys.initialize(secret_shares=1, secret_threshold=1)
    root.sys.submit_unseal_key(keys["keys"][0])
    root.token = keys["root_token"]
    VaultApi(address, ca_cert=ca_file).wait_until_active(60)
    return root


@contextmanager
def catalog_sandbox_in(repo_root: Path, directory: Path) -> Iterator[CatalogSandbox]:
    """A sandbox for the example catalog in ``directory`` (see the module's docstring), stopped after."""
    loaded = load_catalog(repo_root / "examples" / "catalog.yaml")
    names = [cluster.name for cluster in loaded.catalog.clusters]
    state = lifecycle.up(
        directory,
        cluster_names=names,
        azure_vaults=azure_vault_names(loaded.catalog),
        postgres=postgres_spec(loaded.catalog),  # prod/database's rotation sets and tests it there
    ).state
    try:
        install_platform_accounts(state, loaded.catalog)
        root = _initialise(state.vault_addr, state.ca_file)
        apply_config(
            VaultApi(state.vault_addr, token=root.token, ca_cert=state.ca_file),
            desired_config(loaded, cluster_reviews(state, loaded.catalog)),
        )
        for path, values in SEEDS.items():
            root.secrets.kv.v2.create_or_update_secret(  # check-and-set: configure requires it
                path, secret=values, cas=0, mount_point=loaded.catalog.vault.kv_mount
            )
        # PostgreSQL accepts what Vault holds for prod/database, as its DBA would have set it up
        adopt(state, Credential(**SEEDS["prod/database"]), Credential(**SEEDS["prod/database-admin"]))
        wire_catalog(state, loaded)
        bare = directory.parent / "gitops.git"
        subprocess.run(
            ["git", "init", "--bare", "--initial-branch=main", str(bare)], check=True, capture_output=True
        )
        yield CatalogSandbox(state, loaded, root, bare)
    finally:
        lifecycle.down(directory)
        if not sandbox_postgres_dir(directory).is_relative_to(directory):  # pytest removes the rest
            shutil.rmtree(sandbox_postgres_dir(directory), ignore_errors=True)


@pytest.fixture(scope="session")
def catalog_sandbox(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CatalogSandbox]:
    with catalog_sandbox_in(repo_root, tmp_path_factory.mktemp("e2e") / "sbx") as sandbox:
        yield sandbox
