"""The secrets catalog: the one YAML file platform engineers edit.

It declares where Vault is, which clusters and clouds exist, and every secret:
its Vault path, how each key is generated, how it rotates, which clusters
consume it (as ESO ``ExternalSecret``) and which clouds receive it (as ESO
``PushSecret``). Everything else (manifests, Vault policies, Argo CD
Applications, workflows) is derived from it.

Field names are camelCase, like the Kubernetes and ESO manifests the same
engineers read every day. Models are strict: unknown fields and type
coercions are errors, so a typo can never be silently ignored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from vaultflow.gitops.catalog.types import (
    CronSchedule,
    DnsLabel,
    DnsSubdomain,
    GoDuration,
    SecretKey,
    VaultPath,
)

API_VERSION = "vaultflow.io/v1alpha1"
KIND = "SecretsCatalog"
CreationPolicy = Literal["Owner", "Orphan", "Merge", "None"]
RefreshPolicy = Literal["Periodic", "CreatedOnce", "OnChange"]
DeletionPolicy = Literal["Delete", "Merge", "Retain"]
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class CatalogModel(BaseModel):
    """Base of every catalog model: camelCase fields, strict, immutable, no unknown fields."""

    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=False,
        strict=True,
        frozen=True,
        validate_default=False,
    )


def _exactly_one(model: BaseModel, *fields: str) -> None:
    given = [name for name in fields if getattr(model, name) is not None]
    if len(given) != 1:
        names = " or ".join(f"'{to_camel(name)}'" for name in fields)
        found = ", ".join(f"'{to_camel(name)}'" for name in given) or "none"
        raise ValueError(f"set exactly one of {names} (found: {found})")


# --- Vault ------------------------------------------------------------------------------------


class ServiceAccountRef(CatalogModel):
    """A Kubernetes service account, by name and namespace."""

    name: DnsSubdomain
    namespace: DnsLabel


class CaProvider(CatalogModel):
    """A CA bundle that already lives in the cluster (ESO ``caProvider``)."""

    type: Literal["Secret", "ConfigMap"]
    name: DnsSubdomain
    namespace: DnsLabel
    key: SecretKey


class VaultTls(CatalogModel):
    """How ESO and the workflows trust Vault's certificate.

    ``caFile`` is a PEM file (relative to the catalog) embedded as ``caBundle``
    in every ClusterSecretStore; ``caProvider`` points at a Secret or ConfigMap
    that already holds it. Without either, the system trust store is used.
    """

    ca_file: str | None = None
    ca_provider: CaProvider | None = None

    @model_validator(mode="after")
    def _one_source(self) -> VaultTls:
        if self.ca_file is not None and self.ca_provider is not None:
            raise ValueError("set 'caFile' or 'caProvider', not both")
        return self


class KubernetesAuth(CatalogModel):
    """Vault's Kubernetes auth: one mount per cluster, and the roles vaultflow uses.

    ESO's role exists on every cluster's mount. The rotation and bootstrap roles
    exist only on the mount of ``workflowsCluster`` (default: the first cluster),
    where Argo Workflows runs. Each mount reviews tokens with the
    ``reviewerServiceAccount`` of its own cluster.
    """

    mount_prefix: DnsLabel = "kubernetes"
    eso_role: DnsLabel = "external-secrets"
    eso_service_account: ServiceAccountRef = ServiceAccountRef.model_construct(
        name="external-secrets", namespace="external-secrets-system"
    )
    rotation_role: DnsLabel = "vaultflow-rotation"
    rotation_service_account: ServiceAccountRef = ServiceAccountRef.model_construct(
        name="vaultflow-rotation", namespace="argo"
    )
    bootstrap_role: DnsLabel = "vaultflow-bootstrap"
    bootstrap_service_account: ServiceAccountRef = ServiceAccountRef.model_construct(
        name="vaultflow-bootstrap", namespace="argo"
    )
    reviewer_service_account: ServiceAccountRef = ServiceAccountRef.model_construct(
        name="vault-token-reviewer", namespace="vault-system"
    )
    # Read-only identity of `vaultflow exporter` and `vaultflow audit`: KV metadata (never data),
    # the rendered policies and ESO's roles. Its role lives on the workflows cluster's mount.
    observer_role: DnsLabel = "vaultflow-observer"
    observer_service_account: ServiceAccountRef = ServiceAccountRef.model_construct(
        name="vaultflow-observer", namespace="vaultflow-monitoring"
    )
    workflows_cluster: DnsLabel | None = None
    token_ttl: GoDuration = "1h"
    token_max_ttl: GoDuration = "4h"
    # The bootstrap's configure step renews a mount's token reviewer JWT (requested for a year) once it
    # expires within this window; the expiry is recorded in Vault (gitops.policies.reviewer_record_path).
    reviewer_renew_before: GoDuration = "720h"


def _http_url(value: str, example: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"{value!r} is not an http(s) URL such as {example!r}")
    return value


class SecretKeyRef(CatalogModel):
    """One key of a Kubernetes Secret in Vault's own namespace (the server pods read it)."""

    name: DnsSubdomain
    key: SecretKey


class KmsPlugin(CatalogModel):
    """OpenBao 2.6+: the external KMS plugin that provides a cloud seal.

    Rendered as ``plugin "kms" "<name>" { ... }`` beside ``seal "<name>"``: OpenBao
    2.7 no longer builds the cloud KMS seals in. Give ``image`` (an OCI image
    OpenBao downloads) or ``command`` (a binary already in the plugin directory),
    and always the binary's ``sha256sum``. Leave ``plugin`` out on Vault, or on an
    OpenBao that still has the seal built in.
    """

    name: DnsLabel | None = None
    image: Annotated[str, Field(min_length=1)] | None = None
    command: Annotated[str, Field(min_length=1)] | None = None
    version: Annotated[str, Field(pattern=r"^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$")]
    sha256sum: Annotated[str, Field(alias="sha256sum", pattern=r"^[0-9a-f]{64}$")]
    binary_name: Annotated[str, Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> KmsPlugin:
        _exactly_one(self, "image", "command")
        if self.binary_name is not None and self.image is None:
            raise ValueError("'binaryName' applies only with 'image'")
        return self


class ShamirSeal(CatalogModel):
    """Vault's default seal: the root key split into Shamir shares that the bootstrap pipeline keeps
    and submits to every replica after each restart."""

    type: Literal["shamir"]


class TransitSeal(CatalogModel):
    """Auto-unseal with the transit engine of a second Vault (OpenBao: built in).

    The token (``tokenSecretRef``) needs ``update`` on ``<mountPath>/encrypt/<keyName>``
    and ``<mountPath>/decrypt/<keyName>`` only; make it an orphan, periodic token
    (docs/operations.md). ``tlsCaCert`` is a path inside the Vault pods.
    """

    type: Literal["transit"]
    address: str
    mount_path: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*/?$")] = "transit"
    key_name: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]+$")]
    token_secret_ref: SecretKeyRef
    namespace: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*/?$")] | None = None
    tls_ca_cert: Annotated[str, Field(pattern=r"^/")] | None = None
    tls_server_name: str | None = None
    disable_renewal: bool = False
    insecure_http: bool = False

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        return _http_url(value, "https://unsealer.vault-system.svc:8200").rstrip("/")

    @model_validator(mode="after")
    def _tls_required(self) -> TransitSeal:
        host = urlparse(self.address).hostname or ""
        if self.address.startswith("http://") and host not in _LOOPBACK_HOSTS and not self.insecure_http:
            raise ValueError(
                f"address {self.address!r} uses plain http to a non-loopback host: use https, or set "
                "'insecureHttp: true' to accept that the root key crosses the network unencrypted"
            )
        return self


class AwsSealCredentials(CatalogModel):
    """Static access keys in a Secret, given to the server as ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``
    (prefer the pod's identity: leave ``credentials`` out)."""

    secret_name: DnsSubdomain
    access_key_id_key: SecretKey = "access-key-id"
    secret_access_key_key: SecretKey = "secret-access-key"


class AwsKmsSeal(CatalogModel):
    """Auto-unseal with an AWS KMS key. Without ``credentials`` the server uses its pod's identity (IRSA,
    EKS Pod Identity); the principal needs ``kms:Encrypt``, ``kms:Decrypt`` and ``kms:DescribeKey``."""

    type: Literal["awskms"]
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d+$")]
    kms_key_id: Annotated[
        str,
        Field(
            pattern=r"^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32}"
            r"|alias/[A-Za-z0-9/_-]+|arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)/.+)$"
        ),
    ]
    endpoint: str | None = None
    credentials: AwsSealCredentials | None = None
    plugin: KmsPlugin | None = None

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is not None and urlparse(value).scheme != "https":
            raise ValueError(f"{value!r} is not an https URL such as 'https://kms.eu-west-1.amazonaws.com'")
        return value


class GcpCkmsSeal(CatalogModel):
    """Auto-unseal with a GCP Cloud KMS crypto key. Without ``credentialsSecretRef`` the server uses
    Workload Identity; it needs ``roles/cloudkms.cryptoKeyEncrypterDecrypter`` and
    ``cloudkms.cryptoKeys.get``."""

    type: Literal["gcpckms"]
    project: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")]
    region: Annotated[str, Field(pattern=r"^[a-z0-9-]+$")]
    key_ring: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,63}$")]
    crypto_key: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,63}$")]
    credentials_secret_ref: SecretKeyRef | None = None
    plugin: KmsPlugin | None = None


class AzureSealCredentials(CatalogModel):
    """A service principal's client id and secret in a Secret (given to the server as
    ``AZURE_CLIENT_ID``/``AZURE_CLIENT_SECRET``)."""

    secret_name: DnsSubdomain
    client_id_key: SecretKey = "client-id"
    client_secret_key: SecretKey = "client-secret"


class AzureKeyVaultSeal(CatalogModel):
    """Auto-unseal with a key in Azure Key Vault. Without ``credentials`` the server uses a managed
    identity; it needs the key's wrapKey, unwrapKey and get permissions."""

    type: Literal["azurekeyvault"]
    tenant_id: Annotated[str, Field(pattern=r"^[0-9a-fA-F-]{36}$")]
    vault_name: Annotated[str, Field(pattern=r"^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$")]
    key_name: Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{1,127}$")]
    environment: Literal[
        "AZUREPUBLICCLOUD", "AZURECHINACLOUD", "AZUREUSGOVERNMENTCLOUD", "AZUREGERMANCLOUD"
    ] = "AZUREPUBLICCLOUD"
    resource: Annotated[str, Field(pattern=r"^[a-z0-9.-]+$")] | None = None
    credentials: AzureSealCredentials | None = None
    plugin: KmsPlugin | None = None


Seal = Annotated[
    ShamirSeal | TransitSeal | AwsKmsSeal | GcpCkmsSeal | AzureKeyVaultSeal, Field(discriminator="type")
]
AUTO_UNSEAL_TYPES = ("transit", "awskms", "gcpckms", "azurekeyvault")


class VaultConfig(CatalogModel):
    """Where Vault is and how it is laid out."""

    address: str
    kv_mount: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]+$")] = "secret"
    store_name: DnsSubdomain = "vault-backend"
    insecure_http: bool = False
    tls: VaultTls = VaultTls()
    kubernetes_auth: KubernetesAuth = KubernetesAuth()
    # How Vault's root key is protected: Shamir shares (the default) or an auto-unseal mechanism.
    seal: Seal = ShamirSeal.model_construct(type="shamir")

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        _http_url(value, "https://vault.vault-system.svc:8200")
        parsed = urlparse(value)
        if parsed.path not in ("", "/"):
            raise ValueError(f"{value!r} must not have a path: give the server address only")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _tls_required(self) -> VaultConfig:
        host = urlparse(self.address).hostname or ""
        if self.address.startswith("http://") and host not in _LOOPBACK_HOSTS and not self.insecure_http:
            raise ValueError(
                f"address {self.address!r} uses plain http to a non-loopback host: use https, "
                "or set 'insecureHttp: true' to accept that secrets cross the network unencrypted"
            )
        return self


# --- GitOps -----------------------------------------------------------------------------------


class GitOpsConfig(CatalogModel):
    """Where the rendered tree lives and how Argo CD finds it."""

    repo_url: str
    revision: str = "main"
    path: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")] = "eso-resources"
    argocd_namespace: DnsLabel = "argocd"
    project: DnsSubdomain = "vaultflow-eso-resources"


# --- Clusters ---------------------------------------------------------------------------------


class ArgoDestination(CatalogModel):
    """The cluster as Argo CD names it: its API server URL or its registered name."""

    server: str | None = None
    name: str | None = None

    @model_validator(mode="after")
    def _one(self) -> ArgoDestination:
        _exactly_one(self, "server", "name")
        return self


class Cluster(CatalogModel):
    """A Kubernetes cluster that runs ESO and consumes secrets."""

    name: DnsLabel
    kube_context: str | None = None
    in_cluster: bool = False
    argocd: ArgoDestination
    vault_auth_mount: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")] | None = None
    kubernetes_host: str | None = None

    @model_validator(mode="after")
    def _reachable(self) -> Cluster:
        if (self.kube_context is not None) == self.in_cluster:
            raise ValueError("set exactly one of 'kubeContext' or 'inCluster: true'")
        return self

    def auth_mount(self, auth: KubernetesAuth) -> str:
        """The Vault auth mount that reviews this cluster's service-account tokens."""
        return self.vault_auth_mount or f"{auth.mount_prefix}-{self.name}"


# --- Clouds -----------------------------------------------------------------------------------


class AwsSecretRefAuth(CatalogModel):
    """Static access keys in a Kubernetes Secret (ESO ``auth.secretRef``)."""

    secret_name: DnsSubdomain
    access_key_id_key: SecretKey = "access-key-id"
    secret_access_key_key: SecretKey = "secret-access-key"


class AwsJwtAuth(CatalogModel):
    """IRSA / pod identity through a service account (ESO ``auth.jwt``)."""

    service_account: DnsSubdomain


class AwsAuth(CatalogModel):
    secret_ref: AwsSecretRefAuth | None = None
    jwt: AwsJwtAuth | None = None

    @model_validator(mode="after")
    def _one(self) -> AwsAuth:
        _exactly_one(self, "secret_ref", "jwt")
        return self


class AwsCloud(CatalogModel):
    """AWS Secrets Manager in one account and region."""

    name: DnsLabel
    provider: Literal["aws"]
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d+$")]
    role: Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")] | None = None
    auth: AwsAuth


class GcpSecretRefAuth(CatalogModel):
    """A service-account key JSON in a Kubernetes Secret."""

    secret_name: DnsSubdomain
    key: SecretKey = "secret-access-credentials"


class GcpWorkloadIdentityAuth(CatalogModel):
    """GKE Workload Identity through a Kubernetes service account."""

    service_account: DnsSubdomain
    cluster_location: str
    cluster_name: str
    cluster_project_id: str | None = None


class GcpAuth(CatalogModel):
    secret_ref: GcpSecretRefAuth | None = None
    workload_identity: GcpWorkloadIdentityAuth | None = None

    @model_validator(mode="after")
    def _one(self) -> GcpAuth:
        _exactly_one(self, "secret_ref", "workload_identity")
        return self


class GcpCloud(CatalogModel):
    """GCP Secret Manager in one project."""

    name: DnsLabel
    provider: Literal["gcp"]
    project_id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")]
    auth: GcpAuth


class AzureServicePrincipalAuth(CatalogModel):
    """Client id and secret of a service principal in a Kubernetes Secret."""

    secret_name: DnsSubdomain
    client_id_key: SecretKey = "client-id"
    client_secret_key: SecretKey = "client-secret"


class AzureWorkloadIdentityAuth(CatalogModel):
    service_account: DnsSubdomain


class AzureManagedIdentityAuth(CatalogModel):
    identity_id: str | None = None


class AzureAuth(CatalogModel):
    service_principal: AzureServicePrincipalAuth | None = None
    workload_identity: AzureWorkloadIdentityAuth | None = None
    managed_identity: AzureManagedIdentityAuth | None = None

    @model_validator(mode="after")
    def _one(self) -> AzureAuth:
        _exactly_one(self, "service_principal", "workload_identity", "managed_identity")
        return self


class AzureCloud(CatalogModel):
    """One Azure Key Vault."""

    name: DnsLabel
    provider: Literal["azure"]
    vault_url: str
    tenant_id: Annotated[str, Field(pattern=r"^[0-9a-fA-F-]{36}$")] | None = None
    auth: AzureAuth

    @field_validator("vault_url")
    @classmethod
    def _vault_url(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme != "https" or not parsed.hostname:
            raise ValueError(f"{value!r} is not an https URL such as 'https://my-vault.vault.azure.net'")
        return value

    @model_validator(mode="after")
    def _tenant_for_service_principal(self) -> AzureCloud:
        if self.auth.service_principal is not None and self.tenant_id is None:
            raise ValueError("'tenantId' is required with servicePrincipal authentication")
        return self


Cloud = Annotated[AwsCloud | GcpCloud | AzureCloud, Field(discriminator="provider")]


# --- Secrets ----------------------------------------------------------------------------------


class PasswordGenerator(CatalogModel):
    """A random password drawn with ``secrets`` from the enabled character classes."""

    type: Literal["password"]
    length: Annotated[int, Field(ge=8, le=1024)] = 32
    lowercase: bool = True
    uppercase: bool = True
    digits: bool = True
    symbols: bool = False
    symbol_set: Annotated[str, Field(min_length=1, pattern=r"^[!-/:-@\[-`{-~]+$")] = "!#$%&*+-=?@^_"

    @model_validator(mode="after")
    def _some_class(self) -> PasswordGenerator:
        if not (self.lowercase or self.uppercase or self.digits or self.symbols):
            raise ValueError("enable at least one character class (lowercase, uppercase, digits, symbols)")
        return self


class RandomGenerator(CatalogModel):
    """Random bytes, encoded as hex or base64 (keys, tokens, salts)."""

    type: Literal["random"]
    bytes: Annotated[int, Field(ge=16, le=4096)] = 32
    encoding: Literal["hex", "base64", "base64url"] = "hex"


class UuidGenerator(CatalogModel):
    """A random (version 4) UUID."""

    type: Literal["uuid"]


class StaticGenerator(CatalogModel):
    """A value set by a human in Vault and never generated (a username, an upstream API key)."""

    type: Literal["static"]


Generator = Annotated[
    PasswordGenerator | RandomGenerator | UuidGenerator | StaticGenerator, Field(discriminator="type")
]


class SecretField(CatalogModel):
    """One key of a Vault secret, with how its value is produced."""

    name: SecretKey
    generator: Generator


class WorkloadRef(CatalogModel):
    """A workload to restart once its secret has a new value."""

    cluster: DnsLabel
    namespace: DnsLabel
    kind: Literal["Deployment", "StatefulSet", "DaemonSet"] = "Deployment"
    name: DnsSubdomain


class SecretKeyValue(CatalogModel):
    """A value read from one key of the secret itself (``host: {key: host}``)."""

    key: SecretKey


class AdminSecretRef(CatalogModel):
    """Another Vault secret (relative to the KV mount) holding a login that may ``ALTER ROLE`` the users."""

    path: VaultPath
    username_key: SecretKey = "username"
    password_key: SecretKey = "password"


# libpq's sslmode values that encrypt, plus 'disable' (refused for a host that is not loopback).
SslMode = Literal["disable", "require", "verify-ca", "verify-full"]
CredentialStrategy = Literal["single-user", "alternating-users"]


class PostgresCredential(CatalogModel):
    """The PostgreSQL server that checks the secret's username and password.

    A rotation *sets* the new password there and *tests* a login with it before
    any consumer sees it (steps/credentials). ``single-user`` changes the user's
    own password, logged in as that user (``admin``, when given, is used only to
    put the old password back if the user can no longer log in).
    ``alternating-users`` keeps two users, ``<user>`` and ``<user>_clone``, and
    sets the one not in use, logged in as ``admin``: a consumer still holding the
    previous credential keeps working until the next rotation.
    """

    type: Literal["postgres"]
    strategy: CredentialStrategy
    host: Annotated[str, Field(min_length=1, max_length=253)] | SecretKeyValue
    port: Annotated[int, Field(ge=1, le=65535)] = 5432
    database: Annotated[str, Field(min_length=1, max_length=63)]
    username_key: SecretKey = "username"
    password_key: SecretKey = "password"
    admin: AdminSecretRef | None = None
    sslmode: SslMode = "verify-full"
    ca_file: str | None = None  # PEM of the CA that signed the server's certificate, relative to the catalog

    def host_is_loopback_literal(self) -> bool:
        return isinstance(self.host, str) and self.host in _LOOPBACK_HOSTS


Credential = Annotated[PostgresCredential, Field(discriminator="type")]


class Rotation(CatalogModel):
    """When a secret rotates and what happens if the new value does not arrive everywhere."""

    schedule: CronSchedule
    verify_timeout: GoDuration = "10m"
    on_failure: Literal["alert", "rollback"] = "alert"
    restart: list[WorkloadRef] = []
    # The system that checks the credential, where a new value is set and tested before it is promoted.
    credential: Credential | None = None


class ConsumerKey(CatalogModel):
    """One key of the target Secret, read from one property of the Vault secret."""

    property: SecretKey
    secret_key: SecretKey | None = None

    def target_key(self) -> str:
        """The key in the Kubernetes Secret: ``secretKey``, else the property's own name."""
        return self.secret_key or self.property


def _keys_accept_strings(schema: dict[str, Any]) -> None:
    """Publish the ``keys: [password]`` shorthand in the JSON Schema too (editors would flag it)."""
    for option in schema["properties"]["keys"].get("anyOf", []):
        if option.get("type") == "array":
            option["items"] = {"anyOf": [option["items"], {"type": "string"}]}


class Consumer(CatalogModel):
    """A Kubernetes Secret in one cluster that ESO keeps in sync with the Vault secret."""

    model_config = ConfigDict(json_schema_extra=_keys_accept_strings)

    cluster: DnsLabel
    namespace: DnsLabel
    secret_name: DnsSubdomain
    name: DnsSubdomain | None = None
    creation_policy: CreationPolicy = "Owner"
    deletion_policy: DeletionPolicy = "Retain"
    refresh_interval: GoDuration = "1h"
    # ESO's refreshPolicy; unset means ESO's default, Periodic. CreatedOnce, and Periodic with a
    # refreshInterval of 0, never pick up a new value: a rotated secret cannot have such a consumer.
    refresh_policy: RefreshPolicy | None = None
    keys: Annotated[list[ConsumerKey], Field(min_length=1)] | None = None

    @field_validator("keys", mode="before")
    @classmethod
    def _shorthand(cls, value: object) -> object:
        """Allow ``keys: [password]`` as shorthand for ``[{property: password}]``."""
        if isinstance(value, list):
            return [{"property": item} if isinstance(item, str) else item for item in value]
        return value

    @model_validator(mode="after")
    def _policy_combination(self) -> Consumer:
        # ESO's admission webhook refuses these: they would delete a Secret ESO does not own.
        forbidden = {("Merge", "Delete"), ("None", "Delete"), ("None", "Merge")}
        if (self.creation_policy, self.deletion_policy) in forbidden:
            raise ValueError(
                f"creationPolicy {self.creation_policy} with deletionPolicy {self.deletion_policy} "
                "is refused by ESO: it would delete a Secret ESO does not own"
            )
        return self


class Push(CatalogModel):
    """A copy of the secret (or one key of it) in a cloud secret manager, kept by a PushSecret.

    The PushSecret runs in ``cluster``/``namespace`` and reads the Kubernetes
    Secret that an ExternalSecret keeps there; both default to the secret's
    first consumer.
    """

    cloud: DnsLabel
    remote_key: Annotated[str, Field(min_length=1, max_length=512)]
    key: SecretKey | None = None
    property: Annotated[str, Field(min_length=1)] | None = None
    cluster: DnsLabel | None = None
    namespace: DnsLabel | None = None
    update_policy: Literal["Replace", "IfNotExists"] = "Replace"
    deletion_policy: Literal["Delete", "None"] = "None"
    refresh_interval: GoDuration = "1h"


class Secret(CatalogModel):
    """A secret in Vault's KV v2 engine and everywhere it goes."""

    path: VaultPath
    description: str = ""
    keys: Annotated[list[SecretField], Field(min_length=1)]
    rotation: Rotation | None = None
    consumers: list[Consumer] = []
    pushes: list[Push] = []

    def key_names(self) -> list[str]:
        return [field.name for field in self.keys]

    def generated_keys(self) -> list[SecretField]:
        return [field for field in self.keys if field.generator.type != "static"]


class Catalog(CatalogModel):
    """The root of the secrets catalog."""

    api_version: Literal["vaultflow.io/v1alpha1"]
    kind: Literal["SecretsCatalog"]
    vault: VaultConfig
    gitops: GitOpsConfig
    clusters: Annotated[list[Cluster], Field(min_length=1)]
    clouds: list[Cloud] = []
    secrets: list[Secret] = []

    def cluster(self, name: str) -> Cluster:
        return next(cluster for cluster in self.clusters if cluster.name == name)

    def cloud(self, name: str) -> AwsCloud | GcpCloud | AzureCloud:
        return next(cloud for cloud in self.clouds if cloud.name == name)

    def workflows_cluster(self) -> Cluster:
        """The cluster where Argo Workflows (rotation, bootstrap) runs."""
        name = self.vault.kubernetes_auth.workflows_cluster
        return self.cluster(name) if name else self.clusters[0]
