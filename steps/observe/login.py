"""How the exporter and the audit reach Vault: a read-only identity, never root.

``$VAULT_TOKEN`` when the caller gives one (their own read-only token), else a
Kubernetes login as the catalog's observer service account on the workflows
cluster's auth mount (role ``kubernetesAuth.observerRole``, policy
``vaultflow-observer``: KV metadata, the rendered policies, ESO's roles).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from vaultflow.base.errors import OperationError
from vaultflow.gitops.catalog import LoadedCatalog
from vaultflow.steps.kube.clusters import kube_context
from vaultflow.steps.vault.active import active_node
from vaultflow.steps.vault.api import VaultApi
from vaultflow.steps.vault.login import kubernetes_login, service_account_token

log = logging.getLogger(__name__)


def observer_login(loaded: LoadedCatalog, addresses: str = "", ca_cert: str = "") -> VaultApi:
    """A client holding a fresh observer token (Kubernetes auth), or ``$VAULT_TOKEN``'s when set."""
    catalog = loaded.catalog
    node = active_node(addresses or catalog.vault.address, ca_cert=ca_cert)
    token = os.environ.get("VAULT_TOKEN", "")
    if token:
        return node.with_token(token)
    auth = catalog.vault.kubernetes_auth
    workflows = catalog.workflows_cluster()
    account = auth.observer_service_account
    jwt = service_account_token(
        namespace=account.namespace, name=account.name, context=kube_context(loaded, workflows)
    )
    return kubernetes_login(node, mount=workflows.auth_mount(auth), role=auth.observer_role, jwt=jwt)


@contextmanager
def observer_vault(loaded: LoadedCatalog, addresses: str = "", ca_cert: str = "") -> Iterator[VaultApi]:
    """``observer_login`` for one command; a token it logged in for is revoked at the end."""
    own = not os.environ.get("VAULT_TOKEN")
    vault = observer_login(loaded, addresses, ca_cert)
    try:
        yield vault
    finally:
        if own:
            revoke_quietly(vault)


def revoke_quietly(vault: VaultApi) -> None:
    """Revoke a token this process logged in for; it expires with its TTL if Vault cannot be told."""
    try:
        vault.revoke_self()
    except OperationError as error:
        log.warning("could not revoke the observer token: %s", error)
