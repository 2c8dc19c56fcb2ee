"""Steps *root-token* and *revoke-root*: a root token exists only while the bootstrap pipeline runs.

Every call with a token goes to the active node (``active.active_node``), which
need not be the first address once raft elected another leader.

The first run uses the root token that init put in the keeper. Later runs
(after revoke-root) generate a fresh one: on OpenBao 2.6+ through the
authenticated ``sys/generate-root-token`` endpoints, which need a token of the
``vaultflow-bootstrap`` role (Kubernetes auth: the bootstrap workflow's own
service account) *and* a quorum of unseal shares from the keeper; neither
alone yields root. Under auto-unseal the keeper holds recovery shares, and those
are what Vault takes here (internal/vault/generate_root.go reads the recovery config).
The token goes into the keeper, never into an output.

revoke-root (the pipeline's exit handler, so it also runs after a failure)
revokes the kept root token only once the bootstrap identity has been proven
to log in and to be allowed to generate root: revoking the only root token of a
Vault whose bootstrap role does not exist yet (a run that failed before
*configure*) would leave no identity able to generate another, and every
re-run would fail. Otherwise the root token stays in the keeper, and the step
says why; the next run uses it.
"""

import sys

from pydantic import BaseModel

from vaultflow.base.errors import OperationError
from vaultflow.gitops.catalog.model import Catalog
from vaultflow.steps.catalog_source import load_catalog_source
from vaultflow.steps.keeper import UnsealMaterial, WritePolicy, open_keeper, write_retrying
from vaultflow.steps.kube.clusters import cluster_context
from vaultflow.steps.vault.active import active_node
from vaultflow.steps.vault.api import VaultApi, vault_errors
from vaultflow.steps.vault.login import kubernetes_login, service_account_token

# What generating a root token takes (VaultApi.generate_root_token): start/cancel an attempt, submit shares.
GENERATE_ROOT_PATHS = {
    "sys/generate-root-token/attempt": ("update", "delete"),
    "sys/generate-root-token/update": ("update",),
}


class RootTokenResult(BaseModel):
    source: str  # "keeper" (still valid) or "generated"
    keeper: str


class RevokeResult(BaseModel):
    revoked: bool
    keeper: str
    kept_because: str = ""  # why a working root token was left in the keeper ("" when none was)


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
            kube_context=cluster_context(catalog, cluster),
        )

    def jwt(self) -> str:
        namespace, _, name = self.service_account.partition("/")
        return service_account_token(namespace=namespace, name=name, context=self.kube_context)

    def login(self, leader: VaultApi) -> VaultApi:
        return kubernetes_login(leader, mount=self.auth_mount, role=self.role, jwt=self.jwt())


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
    A generated token that cannot be kept is revoked at once: a root token nobody holds
    must not stay valid.
    """
    material, location = _material(keeper)
    leader = active_node(addresses, ca_cert=ca_cert)
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
    token = identity.login(leader).generate_root_token(material.shares[: material.threshold])
    store = open_keeper(keeper)
    try:
        write_retrying(
            store, "keep the new root token", lambda: store.set_root_token(token), WritePolicy.from_env()
        )
    except OperationError:
        leader.with_token(token).revoke_self()
        raise
    return RootTokenResult(source="generated", keeper=location)


def root_client(addresses: str, keeper: str, ca_cert: str = "") -> VaultApi:
    """A client of the active node with the keeper's root token (for configure, smoke-test, seed)."""
    material, location = _material(keeper)
    if not material.root_token:
        raise OperationError(f"{location} holds no root token: run the root-token step first")
    return active_node(addresses, token=material.root_token, ca_cert=ca_cert)


def _missing_capabilities(client: VaultApi) -> list[str]:
    """``path:capability`` pairs of ``GENERATE_ROOT_PATHS`` the client's token does not have."""
    with vault_errors(client.address, "read its own capabilities"):
        response = client.client.adapter.post(
            "/v1/sys/capabilities-self", json={"paths": sorted(GENERATE_ROOT_PATHS)}
        )
    granted = response.get("data", response)
    missing = []
    for path, needed in sorted(GENERATE_ROOT_PATHS.items()):
        have = set(granted.get(path) or [])
        if "root" not in have:
            missing += [f"{path}:{capability}" for capability in needed if capability not in have]
    return missing


def bootstrap_identity_problem(leader: VaultApi, catalog: str) -> str:
    """Why the catalog's bootstrap identity could not generate a root token ("" when it could):
    it must log in, and its token must be allowed the generate-root paths."""
    if not catalog:
        return "no catalog names the bootstrap identity"
    try:
        identity = BootstrapIdentity.from_catalog(load_catalog_source(catalog).catalog)
        bootstrap = identity.login(leader)
    except OperationError as error:
        return f"the bootstrap identity cannot log in: {error}"
    try:
        missing = _missing_capabilities(bootstrap)
    finally:
        bootstrap.revoke_self()  # the proof is done; its token is not needed
    if missing:
        return f"the bootstrap identity may not generate a root token (missing {', '.join(missing)})"
    return ""


def revoke_root_token(addresses: str, keeper: str, *, catalog: str = "", ca_cert: str = "") -> RevokeResult:
    """Revoke the kept root token and forget it, once the bootstrap identity is proven able to generate
    another (``bootstrap_identity_problem``); otherwise keep it and say why. A keeper that holds no
    material (empty, or only reserved: init failed) has nothing to revoke."""
    store = open_keeper(keeper)
    location = store.location
    material = store.content()
    if not isinstance(material, UnsealMaterial) or not material.root_token:
        return RevokeResult(revoked=False, keeper=location)
    try:
        leader = active_node(addresses, ca_cert=ca_cert)
        root = leader.with_token(material.root_token)
        works = root.token_works()
    except OperationError as error:
        return _kept(location, f"cannot check it ({error})")
    if not works:
        store.set_root_token(None)  # revoked or expired already: nothing to keep
        return RevokeResult(revoked=False, keeper=location)
    problem = bootstrap_identity_problem(leader, catalog)
    if problem:
        return _kept(location, problem)
    root.revoke_self()
    store.set_root_token(None)
    return RevokeResult(revoked=True, keeper=location)


def _kept(location: str, reason: str) -> RevokeResult:
    print(
        f"kept the root token in {location}: {reason}. Revoking it now could leave no way to generate "
        "another; the next run of the pipeline uses it and revokes it once the bootstrap identity works",
        file=sys.stderr,
    )
    return RevokeResult(revoked=False, keeper=location, kept_because=reason)
