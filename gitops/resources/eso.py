"""Typed models of the External Secrets Operator resources vaultflow renders.

They cover the subset of ``external-secrets.io`` that vaultflow emits, with
the exact field names of the CRDs (``projectID``, ``accessKeyIDSecretRef``),
and forbid anything else: a renderer bug becomes a validation error before a
file is written, not a field the API server silently prunes. The tests check
every rendered object against the upstream CRDs as well.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import Field

from vaultflow.gitops.resources.meta import K8sModel, ObjectMeta

ESO_API_VERSION: Final = "external-secrets.io/v1"
PUSH_API_VERSION: Final = "external-secrets.io/v1alpha1"


class SecretKeySelector(K8sModel):
    name: str
    key: str | None = None
    namespace: str | None = None


class ServiceAccountSelector(K8sModel):
    name: str
    namespace: str | None = None
    audiences: list[str] | None = None


class CaProvider(K8sModel):
    type: Literal["Secret", "ConfigMap"]
    name: str
    namespace: str | None = None
    key: str | None = None


# --- providers --------------------------------------------------------------------------------


class VaultKubernetesAuth(K8sModel):
    mount_path: str
    role: str
    service_account_ref: ServiceAccountSelector | None = None


class VaultAuth(K8sModel):
    kubernetes: VaultKubernetesAuth


class VaultProvider(K8sModel):
    server: str
    path: str
    version: Literal["v1", "v2"] = "v2"
    ca_bundle: str | None = None
    ca_provider: CaProvider | None = None
    auth: VaultAuth


class AwsSecretRef(K8sModel):
    access_key_id_secret_ref: SecretKeySelector = Field(alias="accessKeyIDSecretRef")
    secret_access_key_secret_ref: SecretKeySelector


class AwsJwtAuth(K8sModel):
    service_account_ref: ServiceAccountSelector


class AwsAuth(K8sModel):
    secret_ref: AwsSecretRef | None = None
    jwt: AwsJwtAuth | None = None


class AwsProvider(K8sModel):
    service: Literal["SecretsManager"] = "SecretsManager"
    region: str
    role: str | None = None
    auth: AwsAuth


class GcpSecretRef(K8sModel):
    secret_access_key_secret_ref: SecretKeySelector


class GcpWorkloadIdentity(K8sModel):
    service_account_ref: ServiceAccountSelector
    cluster_location: str
    cluster_name: str
    cluster_project_id: str | None = Field(default=None, alias="clusterProjectID")


class GcpAuth(K8sModel):
    secret_ref: GcpSecretRef | None = None
    workload_identity: GcpWorkloadIdentity | None = None


class GcpProvider(K8sModel):
    project_id: str = Field(alias="projectID")
    auth: GcpAuth


class AzureAuthSecretRef(K8sModel):
    client_id: SecretKeySelector
    client_secret: SecretKeySelector


class AzureProvider(K8sModel):
    vault_url: str
    tenant_id: str | None = None
    auth_type: Literal["ServicePrincipal", "ManagedIdentity", "WorkloadIdentity"]
    auth_secret_ref: AzureAuthSecretRef | None = None
    service_account_ref: ServiceAccountSelector | None = None
    identity_id: str | None = None


class Provider(K8sModel):
    vault: VaultProvider | None = None
    aws: AwsProvider | None = None
    gcpsm: GcpProvider | None = None
    azurekv: AzureProvider | None = None


class SecretStoreSpec(K8sModel):
    provider: Provider


class SecretStore(K8sModel):
    """A ``SecretStore`` (namespaced) or ``ClusterSecretStore``."""

    api_version: Literal["external-secrets.io/v1"] = ESO_API_VERSION
    kind: Literal["SecretStore", "ClusterSecretStore"]
    metadata: ObjectMeta
    spec: SecretStoreSpec


# --- ExternalSecret ---------------------------------------------------------------------------


class StoreRef(K8sModel):
    name: str
    kind: Literal["SecretStore", "ClusterSecretStore"]


class RemoteRef(K8sModel):
    key: str
    property: str | None = None


class ExternalSecretData(K8sModel):
    secret_key: str
    remote_ref: RemoteRef


class ExtractRef(K8sModel):
    key: str


class DataFrom(K8sModel):
    extract: ExtractRef


class Target(K8sModel):
    name: str
    creation_policy: Literal["Owner", "Orphan", "Merge", "None"]
    deletion_policy: Literal["Delete", "Merge", "Retain"]


class ExternalSecretSpec(K8sModel):
    refresh_interval: str
    refresh_policy: Literal["Periodic", "CreatedOnce", "OnChange"] | None = None
    secret_store_ref: StoreRef
    target: Target
    data: list[ExternalSecretData] | None = None
    data_from: list[DataFrom] | None = None


class ExternalSecret(K8sModel):
    api_version: Literal["external-secrets.io/v1"] = ESO_API_VERSION
    kind: Literal["ExternalSecret"] = "ExternalSecret"
    metadata: ObjectMeta
    spec: ExternalSecretSpec


# --- PushSecret -------------------------------------------------------------------------------


class PushRemoteRef(K8sModel):
    remote_key: str
    property: str | None = None


class PushMatch(K8sModel):
    secret_key: str | None = None
    remote_ref: PushRemoteRef


class PushData(K8sModel):
    """``conversionStrategy`` is the CRD's default, rendered: the API server fills it into these list
    items, and Argo CD's diff replaces lists whole, so leaving it out is OutOfSync forever."""

    match: PushMatch
    conversion_strategy: Literal["None", "ReverseUnicode"] = "None"


class SecretName(K8sModel):
    name: str


class PushSelector(K8sModel):
    secret: SecretName


class PushSecretSpec(K8sModel):
    refresh_interval: str
    update_policy: Literal["Replace", "IfNotExists"]
    deletion_policy: Literal["Delete", "None"]
    secret_store_refs: list[StoreRef]
    selector: PushSelector
    data: list[PushData]


class PushSecret(K8sModel):
    api_version: Literal["external-secrets.io/v1alpha1"] = PUSH_API_VERSION
    kind: Literal["PushSecret"] = "PushSecret"
    metadata: ObjectMeta
    spec: PushSecretSpec
