"""What the RBAC rendered for vaultflow's service accounts has in common (``rotation_rbac``,
``delivery_rbac``): a Role and its binding under one name, each object saying why it exists, and,
outside the workflows cluster, the accounts themselves and the Namespace that holds them.

The pipelines run in the workflows cluster and reach every other catalog cluster through a
kubeconfig; there the account exists only to be bound (no pod runs as it), and its Namespace
is one Argo CD never prunes or deletes (it may hold more than vaultflow's accounts).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from vaultflow.gitops.catalog.model import ServiceAccountRef
from vaultflow.gitops.resources.meta import K8sModel, ObjectMeta
from vaultflow.gitops.resources.rbac import (
    Namespace,
    PolicyRule,
    Role,
    RoleBinding,
    RoleRef,
    ServiceAccount,
    ServiceAccountSubject,
)

ESO_GROUP = "external-secrets.io"
# The annotation Kubernetes documents for saying what an object is for (kubectl describe shows it).
DESCRIPTION = "kubernetes.io/description"
SYNC_OPTIONS = "argocd.argoproj.io/sync-options"

# (name, namespace or None) -> the object's metadata (labels, sync wave), as the renderer makes it.
MetaFactory = Callable[[str, str | None], ObjectMeta]
# A rendered object and its path relative to the cluster's directory (clusters/<cluster>/).
PlacedObject = tuple[str, K8sModel]

_ACCOUNT_WHY = "{what}; its pipeline runs in the workflows cluster {cluster}, no pod runs as it here."
_NAMESPACE_WHY = "Holds vaultflow's service accounts {names}; Argo CD never prunes or deletes it."


def described(meta: ObjectMeta, why: str) -> ObjectMeta:
    return meta.model_copy(update={"annotations": {**(meta.annotations or {}), DESCRIPTION: why}})


def role_pair(
    account: ServiceAccountRef,
    meta: MetaFactory,
    *,
    name: str,
    namespace: str | None,
    why: str,
    rules: list[PolicyRule],
) -> list[PlacedObject]:
    """A Role (a ClusterRole without ``namespace``) and ``account``'s binding to it, one name, both
    placed: ``[<namespace>/]role-<name>.yaml`` and ``role-binding-<name>.yaml`` (``cluster-`` first)."""
    metadata = described(meta(name, namespace), why)
    subjects = [ServiceAccountSubject(name=account.name, namespace=account.namespace)]
    if namespace is None:
        ref = RoleRef(kind="ClusterRole", name=name)
        return [
            (f"cluster-role-{name}.yaml", Role(kind="ClusterRole", metadata=metadata, rules=rules)),
            (
                f"cluster-role-binding-{name}.yaml",
                RoleBinding(kind="ClusterRoleBinding", metadata=metadata, role_ref=ref, subjects=subjects),
            ),
        ]
    ref = RoleRef(kind="Role", name=name)
    return [
        (f"{namespace}/role-{name}.yaml", Role(kind="Role", metadata=metadata, rules=rules)),
        (
            f"{namespace}/role-binding-{name}.yaml",
            RoleBinding(kind="RoleBinding", metadata=metadata, role_ref=ref, subjects=subjects),
        ),
    ]


def remote_account(account: ServiceAccountRef, meta: MetaFactory, *, what: str, cluster: str) -> PlacedObject:
    """``account`` in a cluster other than the workflows cluster ``cluster``: bound to, never run as."""
    why = _ACCOUNT_WHY.format(what=what, cluster=cluster)
    return (
        f"{account.namespace}/service-account-{account.name}.yaml",
        # No pod runs as it here: the pipeline reaches this cluster from the workflows one.
        ServiceAccount(
            metadata=described(meta(account.name, account.namespace), why),
            automount_service_account_token=False,
        ),
    )


def account_namespaces(objects: Iterable[PlacedObject], meta: MetaFactory) -> list[PlacedObject]:
    """The Namespace of every ServiceAccount among ``objects`` (each once, naming the accounts it holds),
    with ``Prune=false,Delete=false``: Argo CD never deletes it, nor what else it holds."""
    held: dict[str, list[str]] = {}
    for _, resource in objects:
        if isinstance(resource, ServiceAccount):
            namespace = resource.metadata.namespace
            assert namespace is not None  # the model requires one
            held.setdefault(namespace, []).append(resource.metadata.name)
    placed: list[PlacedObject] = []
    for namespace, names in sorted(held.items()):
        metadata = described(meta(namespace, None), _NAMESPACE_WHY.format(names=", ".join(sorted(names))))
        annotations = {**(metadata.annotations or {}), SYNC_OPTIONS: "Prune=false,Delete=false"}
        placed.append(
            (
                f"namespace-{namespace}.yaml",
                Namespace(metadata=metadata.model_copy(update={"annotations": annotations})),
            )
        )
    return placed
