"""Step *configure*: Vault configuration as code, rendered from the secrets catalog.

Desired state:

* the KV v2 mount of the catalog, requiring check-and-set on every write
  (``cas_required``), so that no pipeline overwrites a version it has not seen;
* one Kubernetes auth mount per cluster, reviewing that cluster's own
  service-account tokens (API server URL, CA, reviewer token);
* on every mount the ESO role (bound to ESO's service account, policy
  ``eso-<cluster>``); on the workflows cluster's mount also the rotation,
  bootstrap and observer (exporter, audit: read-only) roles;
* the least-privilege policies rendered from the catalog, and none of the
  rotation policy's shards (``vaultflow-rotation-<k>``) it no longer renders:
  those are deleted once no role names them;
* an active audit device: enabled through the API on Vault; on OpenBao, which
  refuses API-created audit devices, declared in the server configuration, so
  the step only checks that one is active.

The step compares desired with actual and changes only the difference,
reporting each change; a second run reports none. The reviewer token is
write-only in Vault, so it is (re)set when a mount is created, when Vault
reports none set, and when it expires within ``kubernetesAuth.reviewerRenewBefore``
(30 days by default): its expiry (the JWT's ``exp``, read when it is requested)
is recorded in the KV metadata of ``vaultflow/kubernetes-auth/<cluster>``
(never the JWT), after Vault took it, so an interrupted run renews again.
"""

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from vaultflow.base.errors import OperationError
from vaultflow.base.retry import poll_until
from vaultflow.base.times import parse_time
from vaultflow.gitops.catalog import LoadedCatalog
from vaultflow.gitops.catalog.model import Catalog, Cluster
from vaultflow.gitops.catalog.types import duration_seconds
from vaultflow.gitops.policies import (
    OBSERVER_POLICY,
    REVIEWER_EXPIRY,
    all_policies,
    reviewer_record_path,
    rotation_policies,
)
from vaultflow.gitops.rotation_shards import is_shard_policy
from vaultflow.steps.catalog_source import load_catalog_source
from vaultflow.steps.kube.review import ClusterReview, cluster_review
from vaultflow.steps.vault.api import KvUpgrading, VaultApi
from vaultflow.steps.vault.login import unverified_claims
from vaultflow.steps.vault.root_token import root_client


@dataclass(frozen=True)
class RoleSpec:
    service_account_names: tuple[str, ...]
    service_account_namespaces: tuple[str, ...]
    policies: tuple[str, ...]
    token_ttl: int
    token_max_ttl: int
    # Without Vault's ``default`` policy on its tokens (the observer's and the rotation's: each revokes its
    # own token, the rotation also looks itself up, through its own policy): each request then costs
    # Vault about half the CPU (0.5 against 1 ms per metadata read, OpenBao 2.7, docs/observability.md).
    no_default_policy: bool = False


@dataclass
class AuthMountSpec:
    path: str
    cluster: str
    review: ClusterReview
    roles: dict[str, RoleSpec] = field(default_factory=dict)


@dataclass
class DesiredConfig:
    kv_mount: str
    policies: dict[str, str]
    auth_mounts: list[AuthMountSpec]
    reviewer_renew_before: float = 30 * 24 * 3600.0  # seconds


NEVER = "never"  # the recorded expiry of a reviewer token without one (a legacy token Secret's)


class ConfigureResult(BaseModel):
    product: str
    changes: list[str]


def desired_config(catalog: LoadedCatalog, review_of: Callable[[Cluster], ClusterReview]) -> DesiredConfig:
    """What Vault must look like for ``catalog``. ``review_of`` says how to reach each cluster."""
    model: Catalog = catalog.catalog
    auth = model.vault.kubernetes_auth
    ttl, max_ttl = int(duration_seconds(auth.token_ttl)), int(duration_seconds(auth.token_max_ttl))

    def role(account_name: str, namespace: str, *policies: str) -> RoleSpec:
        return RoleSpec((account_name,), (namespace,), policies, ttl, max_ttl)

    mounts = []
    workflows = model.workflows_cluster().name
    for cluster in model.clusters:
        spec = AuthMountSpec(path=cluster.auth_mount(auth), cluster=cluster.name, review=review_of(cluster))
        eso = auth.eso_service_account
        spec.roles[auth.eso_role] = role(eso.name, eso.namespace, f"eso-{cluster.name}")
        if cluster.name == workflows:
            rotation, bootstrap = auth.rotation_service_account, auth.bootstrap_service_account
            spec.roles[auth.rotation_role] = replace(
                role(
                    rotation.name, rotation.namespace, *(policy.name for policy in rotation_policies(model))
                ),
                no_default_policy=True,  # the rotation policy grants what it used of ``default``
            )
            spec.roles[auth.bootstrap_role] = role(bootstrap.name, bootstrap.namespace, "vaultflow-bootstrap")
            observer = auth.observer_service_account
            spec.roles[auth.observer_role] = replace(
                role(observer.name, observer.namespace, OBSERVER_POLICY), no_default_policy=True
            )
        mounts.append(spec)
    policies = {policy.name: policy.hcl for policy in all_policies(model, catalog.plan)}
    return DesiredConfig(
        kv_mount=model.vault.kv_mount,
        policies=policies,
        auth_mounts=mounts,
        reviewer_renew_before=duration_seconds(auth.reviewer_renew_before),
    )


class _Configurer:
    def __init__(self, vault: VaultApi, desired: DesiredConfig, now: datetime) -> None:
        self.vault = vault
        self.client = vault.client
        self.desired = desired
        self.now = now
        self.changes: list[str] = []

    def call(self, action: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with self.vault.errors(action):
            return function(*args, **kwargs)

    def read(self, action: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Like ``call``, but "not found" (404) is ``None``. Only a 404 means absent: a denied, sealed
        or failing read stops the step (taken as absent, it would rewrite what it cannot see)."""
        import hvac.exceptions

        with self.vault.errors(action):
            try:
                return function(*args, **kwargs)
            except hvac.exceptions.InvalidPath:
                return None

    def kv_mount(self, path: str) -> None:
        mounts = self.call("list secrets engines", self.client.sys.list_mounted_secrets_engines)
        mounts = mounts.get("data", mounts)
        existing = mounts.get(f"{path}/")
        if existing is None:
            self.call(
                f"mount KV v2 at {path}/",
                self.client.sys.enable_secrets_engine,
                "kv",
                path=path,
                options={"version": "2"},
                description="vaultflow: secrets of the catalog",
            )
            self.changes.append(f"mounted KV v2 at {path}/")
        else:
            version = str((existing.get("options") or {}).get("version", "1"))
            if existing.get("type") != "kv" or version != "2":
                raise OperationError(
                    f"Vault at {self.vault.address}: {path}/ is a {existing.get('type')} v{version} mount, "
                    "not KV v2; refusing to replace it"
                )
        self._cas_required(path)

    def _cas_required(self, path: str) -> None:
        """Every write to the mount must carry check-and-set: a write that did not read first (or
        raced another) is refused by Vault instead of silently overwriting a newer version."""
        kv_v2 = self.client.secrets.kv.v2

        def require() -> bool:
            current = self.call(
                f"read the configuration of {path}/", kv_v2.read_configuration, mount_point=path
            )
            if (current.get("data") or {}).get("cas_required") is True:
                return False
            self.call(
                f"require check-and-set on {path}/", kv_v2.configure, cas_required=True, mount_point=path
            )
            return True

        # A mount just created upgrades its storage for a moment, refusing reads and writes meanwhile.
        changed = poll_until(
            require,
            lambda _: True,
            what=f"the KV v2 mount {path}/ to serve requests",
            timeout=30,
            transient=(KvUpgrading,),
        )
        if changed:
            self.changes.append(f"required check-and-set on every write to {path}/")

    def policies(self, desired: dict[str, str]) -> None:
        for name, hcl in sorted(desired.items()):
            found = self.read(f"read policy {name}", self.client.sys.read_acl_policy, name)
            current = found["data"]["policy"] if found is not None else None
            if current != hcl:
                self.call(f"write policy {name}", self.client.sys.create_or_update_acl_policy, name, hcl)
                self.changes.append(f"{'updated' if current is not None else 'created'} policy {name}")

    def stale_shards(self, desired: dict[str, str]) -> None:
        """Delete the rotation shards the catalog no longer has (its shard count fell): after the
        roles, so that no role names them any more."""
        listed = self.call("list policies", self.client.sys.list_acl_policies)
        names = (listed.get("data") or listed).get("keys") or []
        for name in sorted(n for n in names if is_shard_policy(n) and n not in desired):
            self.call(f"delete policy {name}", self.client.sys.delete_acl_policy, name)
            self.changes.append(f"deleted policy {name} (a rotation shard the catalog no longer has)")

    def auth_mount(self, spec: AuthMountSpec) -> None:
        methods = self.call("list auth methods", self.client.sys.list_auth_methods)
        methods = methods.get("data", methods)
        existing = methods.get(f"{spec.path}/")
        created = existing is None
        if created:
            self.call(
                f"enable Kubernetes auth at {spec.path}/",
                self.client.sys.enable_auth_method,
                "kubernetes",
                path=spec.path,
                description=f"vaultflow: service accounts of cluster {spec.cluster}",
            )
            self.changes.append(f"enabled Kubernetes auth at auth/{spec.path} for cluster {spec.cluster}")
        elif existing.get("type") != "kubernetes":
            raise OperationError(
                f"Vault at {self.vault.address}: auth/{spec.path} is a {existing.get('type')} mount, "
                "not kubernetes; refusing to replace it"
            )
        self._auth_config(spec, fresh=created)
        for name, role in sorted(spec.roles.items()):
            self._role(spec.path, name, role)

    def _auth_config(self, spec: AuthMountSpec, *, fresh: bool) -> None:
        current: dict[str, Any] = {}
        if not fresh:
            response = self.read(
                f"read auth/{spec.path}/config",
                self.client.auth.kubernetes.read_config,
                mount_point=spec.path,
            )
            current = response or {}
        desired = {"kubernetes_host": spec.review.host, "kubernetes_ca_cert": spec.review.ca_pem}
        same = all((current.get(key) or "").strip() == value.strip() for key, value in desired.items())
        reviewer_set = bool(current.get("token_reviewer_jwt_set"))
        expiry = None if fresh else self._reviewer_expiry(spec.cluster)
        renew = expiry is None or (
            expiry != NEVER
            and (parse_time(expiry) - self.now).total_seconds() < self.desired.reviewer_renew_before
        )
        if same and reviewer_set and current.get("disable_local_ca_jwt") and not renew:
            return
        jwt = spec.review.reviewer_jwt()
        self.call(
            f"configure auth/{spec.path}",
            self.client.auth.kubernetes.configure,
            kubernetes_host=spec.review.host,
            kubernetes_ca_cert=spec.review.ca_pem,
            token_reviewer_jwt=jwt,
            disable_local_ca_jwt=True,
            mount_point=spec.path,
        )
        expires = _expiry(jwt)
        self._record_reviewer_expiry(spec.cluster, expires)
        if same and reviewer_set and current.get("disable_local_ca_jwt"):
            was = f"it expires at {expiry}" if expiry else "its expiry was not recorded"
            renewed = f"renewed the token reviewer JWT of auth/{spec.path}"
            self.changes.append(f"{renewed} ({was}; the new one expires at {expires})")
        else:
            self.changes.append(f"configured auth/{spec.path} to review tokens at {spec.review.host}")

    def _reviewer_expiry(self, cluster: str) -> str | None:
        """The recorded expiry of ``cluster``'s reviewer JWT (RFC 3339 or ``never``), None if unrecorded."""
        found = self.read(
            f"read the reviewer record of cluster {cluster}",
            self.client.secrets.kv.v2.read_secret_metadata,
            reviewer_record_path(cluster),
            mount_point=self.desired.kv_mount,
        )
        value = ((found or {}).get("data", {}).get("custom_metadata") or {}).get(REVIEWER_EXPIRY)
        return str(value) if value else None

    def _record_reviewer_expiry(self, cluster: str, expires: str) -> None:
        self.call(
            f"record the reviewer token's expiry of cluster {cluster}",
            self.client.secrets.kv.v2.update_metadata,
            reviewer_record_path(cluster),
            custom_metadata={REVIEWER_EXPIRY: expires},
            mount_point=self.desired.kv_mount,
        )

    def _role(self, mount: str, name: str, role: RoleSpec) -> None:
        current: dict[str, Any] | None = self.read(
            f"read role {name} on auth/{mount}",
            self.client.auth.kubernetes.read_role,
            name,
            mount_point=mount,
        )
        desired = {
            "bound_service_account_names": list(role.service_account_names),
            "bound_service_account_namespaces": list(role.service_account_namespaces),
            "token_policies": list(role.policies),
            "token_ttl": role.token_ttl,
            "token_max_ttl": role.token_max_ttl,
            "token_no_default_policy": role.no_default_policy,
        }
        if current is not None and all(_same(current.get(key), value) for key, value in desired.items()):
            return
        # Written raw: hvac's create_role predates the token_* field names.
        self.call(
            f"write role {name} on auth/{mount}",
            self.client.write_data,
            f"auth/{mount}/role/{name}",
            data=desired,
        )
        self.changes.append(f"{'updated' if current is not None else 'created'} role {name} on auth/{mount}")

    def audit(self, product: str, audit_file: str) -> None:
        devices = self.call("list audit devices", self.client.sys.list_enabled_audit_devices)
        devices = devices.get("data", devices)
        if devices:
            return
        if product == "openbao":
            raise OperationError(
                f"OpenBao at {self.vault.address} has no active audit device: declare one in the server "
                'configuration (audit "file" "file" { options { file_path = ... } }); '
                "OpenBao refuses audit devices created through the API"
            )
        self.call(
            "enable the file audit device",
            self.client.sys.enable_audit_device,
            "file",
            options={"file_path": audit_file},
        )
        self.changes.append(f"enabled file audit device ({audit_file})")


def _expiry(jwt: str) -> str:
    """The JWT's ``exp`` as RFC 3339 UTC, or ``never`` for a token without one."""
    exp = unverified_claims(jwt).get("exp")
    if not isinstance(exp, int | float):
        return NEVER
    return datetime.fromtimestamp(exp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _same(actual: Any, desired: Any) -> bool:
    if isinstance(desired, list):
        return sorted(map(str, actual or [])) == sorted(map(str, desired))
    return bool(actual == desired)


def apply_config(
    vault: VaultApi,
    desired: DesiredConfig,
    *,
    audit_file: str = "/vault/audit/audit.log",
    product: str = "",
    now: datetime | None = None,
) -> list[str]:
    """Make ``vault`` match ``desired``; return what changed, in order. ``product`` (openbao or
    vault) is read from the server unless the caller already knows it; ``now`` decides whether a
    reviewer JWT is due for renewal."""
    product = product or vault.seal_status().product
    configurer = _Configurer(vault, desired, now or datetime.now(UTC))
    configurer.audit(product, audit_file)
    configurer.kv_mount(desired.kv_mount)
    configurer.policies(desired.policies)
    for mount in desired.auth_mounts:
        configurer.auth_mount(mount)
    configurer.stale_shards(desired.policies)
    return configurer.changes


def configure_vault(
    addresses: str,
    keeper: str,
    catalog: str,
    *,
    ca_cert: str = "",
    audit_file: str = "/vault/audit/audit.log",
) -> ConfigureResult:
    """The workflow step: configure Vault from the catalog at ``catalog`` with the keeper's root token."""
    loaded = load_catalog_source(catalog)
    vault = root_client(addresses, keeper, ca_cert)
    auth = loaded.catalog.vault.kubernetes_auth
    desired = desired_config(
        loaded, lambda cluster: cluster_review(cluster, auth.reviewer_service_account, loaded.catalog)
    )
    product = vault.seal_status().product
    changes = apply_config(vault, desired, audit_file=audit_file, product=product)
    return ConfigureResult(product=product, changes=changes)
