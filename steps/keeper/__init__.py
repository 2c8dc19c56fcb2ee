"""Keepers hold Vault's unseal shares and root token, so that they never touch stdout or Git.

A keeper is named by a URI (a workflow parameter: it says *where*, not *what*):

* ``file:///var/lib/vaultflow/unseal.json``: a local file written with mode 0600 (the sandbox default);
* ``kubernetes://<namespace>/<secret>[?context=<kube-context>]``: a Kubernetes Secret
  (the in-cluster default);
* ``aws-sm://<secret-name>[?region=<region>]``: AWS Secrets Manager;
* ``gcp-sm://<project>/<secret-id>``: GCP Secret Manager;
* ``azure-kv://<vault-host>/<secret-name>``: Azure Key Vault.

Before init a keeper is *reserved* (a placeholder, written create-only and then
rewritten), so that it is proven writable by writing while Vault holds nothing;
see ``base``.
"""

from vaultflow.steps.keeper.base import (
    RESERVED_PROCEDURE,
    Keeper,
    KeeperConflict,
    KeeperCorrupt,
    KeeperReserved,
    Reservation,
    UnsealMaterial,
    WritePolicy,
    write_retrying,
)
from vaultflow.steps.keeper.uri import open_keeper

__all__ = [
    "RESERVED_PROCEDURE",
    "Keeper",
    "KeeperConflict",
    "KeeperCorrupt",
    "KeeperReserved",
    "Reservation",
    "UnsealMaterial",
    "WritePolicy",
    "open_keeper",
    "write_retrying",
]
