"""What the platform's Helm charts and Argo CD would have created in each cluster, for the sandbox.

On a real platform, ESO's chart creates its service account, the Argo
Workflows manifests create the workflow service accounts, argocd-apps creates
Vault's token reviewer (bound to ``system:auth-delegator``), application teams
own their namespaces, and the charts own the Secrets that ``creationPolicy:
Merge`` consumers write into (Argo CD's ``argocd-secret``). The sandbox has no
Helm, so this module creates exactly those objects, from the catalog, in the
emulated clusters. Idempotent.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from vaultflow.gitops.catalog.model import Catalog, Cluster, ServiceAccountRef
from vaultflow.sandbox.state import SandboxState
from vaultflow.steps.kube.review import ClusterReview


def _ensure_namespace(core: Any, name: str) -> None:
    from kubernetes.client.exceptions import ApiException

    try:
        core.create_namespace({"metadata": {"name": name}})
    except ApiException as error:
        if error.status != 409:
            raise


def _ensure_service_account(core: Any, account: ServiceAccountRef) -> None:
    from kubernetes.client.exceptions import ApiException

    _ensure_namespace(core, account.namespace)
    try:
        core.create_namespaced_service_account(account.namespace, {"metadata": {"name": account.name}})
    except ApiException as error:
        if error.status != 409:
            raise


def _ensure_secret(core: Any, namespace: str, name: str) -> None:
    """A Secret a Merge consumer writes into, as its owner would make it (argocd-secret: the chart)."""
    from kubernetes.client.exceptions import ApiException

    body = {
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "vaultflow-sandbox"}},
        "type": "Opaque",
        "data": {},
    }
    try:
        core.create_namespaced_secret(namespace, body)
    except ApiException as error:
        if error.status != 409:
            raise


def _ensure_auth_delegator(api_client: Any, account: ServiceAccountRef) -> None:
    """Vault's token reviewer may create TokenReviews: a ClusterRoleBinding to the default
    ``system:auth-delegator`` ClusterRole, as Vault's Kubernetes auth documents (docs/catalog.md)."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    body = {
        "metadata": {"name": f"{account.name}-auth-delegator"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "system:auth-delegator",
        },
        "subjects": [{"kind": "ServiceAccount", "name": account.name, "namespace": account.namespace}],
    }
    try:
        client.RbacAuthorizationV1Api(api_client).create_cluster_role_binding(body)
    except ApiException as error:
        if error.status != 409:
            raise


def install_platform_accounts(state: SandboxState, catalog: Catalog) -> None:
    """Namespaces and service accounts the catalog's clusters are expected to have."""
    from kubernetes import client, config

    auth = catalog.vault.kubernetes_auth
    workflows = catalog.workflows_cluster().name
    for cluster in catalog.clusters:
        core = client.CoreV1Api(
            config.new_client_from_config(config_file=state.kubeconfig, context=cluster.name)
        )
        accounts = [auth.eso_service_account, auth.reviewer_service_account]
        if cluster.name == workflows:
            accounts += [
                auth.rotation_service_account,
                auth.bootstrap_service_account,
                auth.observer_service_account,
            ]
        for account in accounts:
            _ensure_service_account(core, account)
        _ensure_auth_delegator(core.api_client, auth.reviewer_service_account)
        namespaces = {c.namespace for s in catalog.secrets for c in s.consumers if c.cluster == cluster.name}
        namespaces |= {
            p.namespace
            for s in catalog.secrets
            for p in s.pushes
            if p.cluster == cluster.name and p.namespace
        }
        for namespace in sorted(namespaces):
            _ensure_namespace(core, namespace)
        for secret in catalog.secrets:
            for consumer in secret.consumers:
                if consumer.cluster == cluster.name and consumer.creation_policy in ("Merge", "None"):
                    _ensure_secret(core, consumer.namespace, consumer.secret_name)


def cluster_reviews(state: SandboxState, catalog: Catalog) -> Callable[[Cluster], ClusterReview]:
    """How Vault reaches each sandbox cluster to review tokens: its loopback URL and CA, and a reviewer
    JWT from its TokenRequest API (a day long: the sandbox's counterpart of ``cluster_review``)."""
    from kubernetes import client, config

    from vaultflow.steps.vault.login import service_account_token

    reviewer = catalog.vault.kubernetes_auth.reviewer_service_account

    def review(cluster: Cluster) -> ClusterReview:
        endpoint = state.cluster(cluster.name)
        core = client.CoreV1Api(
            config.new_client_from_config(config_file=state.kubeconfig, context=cluster.name)
        )
        return ClusterReview(
            host=endpoint.url,
            ca_pem=Path(endpoint.ca_file).read_text(),
            reviewer_jwt=lambda: service_account_token(
                namespace=reviewer.namespace, name=reviewer.name, core_api=core, expiration_seconds=86400
            ),
        )

    return review
