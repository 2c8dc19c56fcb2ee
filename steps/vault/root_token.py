"""Steps *root-token* and *revoke-root*: a root token exists only while the bootstrap pipeline runs.

The first run uses the root token that init put in the keeper. Later runs
(after revoke-root) generate a fresh one: on OpenBao 2.6+ through the
authenticated ``sys/generate-root-token`` endpoints, which need a token of the
``vaultflow-bootstrap`` role (Kubernetes auth: the bootstrap workflow's own
service account) *and* a quorum of unseal shares from the keeper; neither
alone yields root. The token goes into the keeper, never into an output, and
revoke-root (the pipeline's exit handler, so it runs even after a failure)
revokes it and removes it from the keeper.
"""

from pydantic import BaseModel

from vaultflow.base.errors import OperationError
from vaultflow.gitops.catalog.model import Catalog
from vaultflow.steps.catalog_source import load_catalog_source
from vaultflow.steps.keeper import UnsealMaterial, open_keeper
from vaultflow.steps.vault.api import VaultApi
from vaultflow.steps.vault.login import kubernetes_login, service_account_token
from vaultflow.steps.vault.status import parse_addresses


class RootTokenResult(BaseModel):
    source: str  # "keeper" (still valid) or "generated"
    keeper: str


class RevokeResult(BaseModel):
    revoked: bool
    keeper: str


class BootstrapIdentity(BaseModel):
    """Who the pipeline is when it must ask Vault for a new root token."""

    auth_mount: str
    role: str = "vaultflow-bootstrap"
    service_account: str = "argo/vaultflow-bootstrap"  # namespace/name
    kube_context: str | None = None

    @classmethod
    def from_catalog(cls, catalog: Catalog) -> "BootstrapIdentity":
        auth = catalog.vault.kubernetes_auth
        cluster = catalog.workflows_cluster()
        account = auth.bootstrap_service_account
        return cls(
            auth_mount=cluster.auth_mount(auth),
            role=auth.bootstrap_role,
            service_account=f"{account.namespace}/{account.name}",
            kube_context=None if cluster.in_cluster else cluster.kube_context,
        )

    def jwt(self) -> str:
        namespace, _, name = self.service_account.partition("/")
        return service_account_token(namespace=namespace, name=name, context=self.kube_context)


def _material(keeper_uri: str) -> tuple[UnsealMaterial, str]:
    store = open_keeper(keeper_uri)
    material = store.load()
    if material is None:
        raise OperationError(f"{store.location} is empty: the bootstrap pipeline needs its unseal shares")
    return material, store.location


def ensure_root_token(
    addresses: str, keeper: str, *, catalog: str = "", ca_cert: str = ""
) -> RootTokenResult:
    """Make the keeper hold a working root token, generating one if the kept one is gone.

    Generating one logs in as the catalog's bootstrap identity (see ``BootstrapIdentity``).
    """
    leader = VaultApi(parse_addresses(addresses)[0], ca_cert=ca_cert or None)
    material, location = _material(keeper)
    if material.root_token and leader.with_token(material.root_token).token_works():
        return RootTokenResult(source="keeper", keeper=location)
    if material.pgp_encrypted:
        raise OperationError(f"the shares in {location} are PGP-encrypted: generate a root token by hand")
    if not catalog:
        raise OperationError(
            f"{location} holds no working root token, and no catalog names the bootstrap identity "
            "that could generate one"
        )
    identity = BootstrapIdentity.from_catalog(load_catalog_source(catalog).catalog)
    bootstrap = kubernetes_login(leader, mount=identity.auth_mount, role=identity.role, jwt=identity.jwt())
    token = bootstrap.generate_root_token(material.shares[: material.threshold])
    open_keeper(keeper).set_root_token(token)
    return RootTokenResult(source="generated", keeper=location)


def root_client(addresses: str, keeper: str, ca_cert: str = "") -> VaultApi:
    """A client with the keeper's root token (for configure and smoke-test only)."""
    material, location = _material(keeper)
    if not material.root_token:
        raise OperationError(f"{location} holds no root token: run the root-token step first")
    return VaultApi(parse_addresses(addresses)[0], token=material.root_token, ca_cert=ca_cert or None)


def revoke_root_token(addresses: str, keeper: str, *, ca_cert: str = "") -> RevokeResult:
    """Revoke the kept root token (if it still works) and forget it. The pipeline's exit handler:
    it runs after success and failure alike, so an empty keeper is simply nothing to revoke."""
    store = open_keeper(keeper)
    material, location = store.load(), store.location
    revoked = False
    if material is None:
        return RevokeResult(revoked=False, keeper=location)
    if material.root_token:
        client = VaultApi(parse_addresses(addresses)[0], token=material.root_token, ca_cert=ca_cert or None)
        if client.token_works():
            client.revoke_self()
            revoked = True
        open_keeper(keeper).set_root_token(None)
    return RevokeResult(revoked=revoked, keeper=location)
