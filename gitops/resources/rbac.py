"""Typed models of the Kubernetes objects vaultflow renders that are not custom resources.

``rbac.authorization.k8s.io/v1`` Roles, ClusterRoles and their bindings, and
core ``v1`` ServiceAccounts and Namespaces, with the API's own field names and
nothing else. These kinds have no CRD to validate against, so the models are
their contract: a binding's ``roleRef`` must fit its kind, a rule must name
groups, resources and verbs, and a namespaced kind must have a namespace. The
tests also check every rendered one against Kubernetes' OpenAPI schemas.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import Field, model_validator

from vaultflow.gitops.resources.meta import K8sModel, ObjectMeta

RBAC_GROUP: Final = "rbac.authorization.k8s.io"
RBAC_API_VERSION: Final = "rbac.authorization.k8s.io/v1"
# (apiVersion, kind) of every built-in kind modelled here: served by every API server, no CRD.
BUILT_IN_KINDS: Final = frozenset(
    {
        ("v1", "Namespace"),
        ("v1", "ServiceAccount"),
        (RBAC_API_VERSION, "Role"),
        (RBAC_API_VERSION, "ClusterRole"),
        (RBAC_API_VERSION, "RoleBinding"),
        (RBAC_API_VERSION, "ClusterRoleBinding"),
    }
)
NonEmpty = Annotated[list[str], Field(min_length=1)]


def _scoped(kind: str, metadata: ObjectMeta, cluster_kind: str) -> None:
    """A cluster-scoped kind has no namespace; a namespaced one must have one."""
    if (kind == cluster_kind) != (metadata.namespace is None):
        where = "no namespace" if kind == cluster_kind else "a namespace"
        raise ValueError(f"a {kind} needs {where} (metadata.name {metadata.name!r})")


class PolicyRule(K8sModel):
    """One RBAC rule; ``resourceNames`` narrows it to those objects (get, patch: never list or create)."""

    api_groups: NonEmpty
    resources: NonEmpty
    resource_names: NonEmpty | None = None
    verbs: NonEmpty


class Role(K8sModel):
    api_version: Literal["rbac.authorization.k8s.io/v1"] = RBAC_API_VERSION
    kind: Literal["Role", "ClusterRole"]
    metadata: ObjectMeta
    rules: Annotated[list[PolicyRule], Field(min_length=1)]

    @model_validator(mode="after")
    def _scope(self) -> Role:
        _scoped(self.kind, self.metadata, "ClusterRole")
        return self


class RoleRef(K8sModel):
    api_group: Literal["rbac.authorization.k8s.io"] = RBAC_GROUP
    kind: Literal["Role", "ClusterRole"]
    name: str


class ServiceAccountSubject(K8sModel):
    """The only subject vaultflow binds: a service account, always with its namespace."""

    kind: Literal["ServiceAccount"] = "ServiceAccount"
    name: str
    namespace: str


class RoleBinding(K8sModel):
    api_version: Literal["rbac.authorization.k8s.io/v1"] = RBAC_API_VERSION
    kind: Literal["RoleBinding", "ClusterRoleBinding"]
    metadata: ObjectMeta
    role_ref: RoleRef
    subjects: Annotated[list[ServiceAccountSubject], Field(min_length=1)]

    @model_validator(mode="after")
    def _scope(self) -> RoleBinding:
        _scoped(self.kind, self.metadata, "ClusterRoleBinding")
        if self.kind == "ClusterRoleBinding" and self.role_ref.kind == "Role":
            raise ValueError("a ClusterRoleBinding can only refer to a ClusterRole")
        return self


class ServiceAccount(K8sModel):
    api_version: Literal["v1"] = "v1"
    kind: Literal["ServiceAccount"] = "ServiceAccount"
    metadata: ObjectMeta
    automount_service_account_token: bool | None = None

    @model_validator(mode="after")
    def _scope(self) -> ServiceAccount:
        _scoped(self.kind, self.metadata, "")
        return self


class Namespace(K8sModel):
    api_version: Literal["v1"] = "v1"
    kind: Literal["Namespace"] = "Namespace"
    metadata: ObjectMeta

    @model_validator(mode="after")
    def _scope(self) -> Namespace:
        _scoped(self.kind, self.metadata, "Namespace")
        return self
