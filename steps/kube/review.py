"""How Vault reaches a cluster to review its service-account tokens (TokenReview).

Vault's Kubernetes auth mount for a cluster needs the cluster's API server
URL, its CA (to verify it) and a reviewer token (of a service account bound to
``system:auth-delegator``). The URL and CA come from the kubeconfig context
(or ``kubernetesHost`` in the catalog when Vault sees the API server under
another name); the reviewer token from TokenRequest, only when Vault needs a
new one.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from vaultflow.base.errors import OperationError
from vaultflow.gitops.catalog.model import Catalog, Cluster, ServiceAccountRef
from vaultflow.steps.kube import api_client
from vaultflow.steps.kube.clusters import cluster_context
from vaultflow.steps.vault.login import service_account_token

IN_CLUSTER_CA = Path("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt")
REVIEWER_TOKEN_SECONDS = 365 * 24 * 3600  # the API server may shorten it; bootstrap renews it on re-run


@dataclass(frozen=True)
class ClusterReview:
    """How Vault reaches a cluster to review its tokens. The reviewer JWT is fetched only if needed."""

    host: str
    ca_pem: str
    reviewer_jwt: Callable[[], str]


def cluster_review(
    cluster: Cluster, reviewer: ServiceAccountRef, catalog: Catalog | None = None
) -> ClusterReview:
    """``catalog``: the cluster's catalog, so that a pod reaches its own cluster in-cluster
    (``clusters.cluster_context``); without it, the cluster's context unless it is ``inCluster``."""
    context = (
        cluster_context(catalog, cluster) if catalog else None if cluster.in_cluster else cluster.kube_context
    )
    configuration = api_client(context).configuration
    ca_pem = kubeconfig_ca_pem(context) if context else _in_cluster_ca()
    if ca_pem is None:
        raise OperationError(
            f"cluster {cluster.name}: the kubeconfig context has no CA certificate; "
            "Vault needs it to verify the API server when reviewing tokens"
        )

    def reviewer_jwt() -> str:
        return service_account_token(
            namespace=reviewer.namespace,
            name=reviewer.name,
            context=context,
            expiration_seconds=REVIEWER_TOKEN_SECONDS,
        )

    return ClusterReview(
        host=cluster.kubernetes_host or str(configuration.host),
        ca_pem=ca_pem,
        reviewer_jwt=reviewer_jwt,
    )


def _in_cluster_ca() -> str | None:
    return IN_CLUSTER_CA.read_text(encoding="ascii") if IN_CLUSTER_CA.is_file() else None


def kubeconfig_ca_pem(context: str) -> str | None:
    """The CA of ``context``'s cluster in ``$KUBECONFIG`` (data or file), whatever the server's scheme.

    Read from the file itself: the client library drops the CA of http servers.
    """
    for config_path in os.environ.get("KUBECONFIG", str(Path.home() / ".kube" / "config")).split(os.pathsep):
        path = Path(config_path).expanduser()
        if not path.is_file():
            continue
        document = yaml.safe_load(path.read_text()) or {}
        contexts = {c["name"]: c.get("context", {}) for c in document.get("contexts") or []}
        clusters = {c["name"]: c.get("cluster", {}) for c in document.get("clusters") or []}
        if context not in contexts:
            continue
        cluster = clusters.get(contexts[context].get("cluster", ""), {})
        if "certificate-authority-data" in cluster:
            return base64.b64decode(cluster["certificate-authority-data"]).decode("ascii")
        if "certificate-authority" in cluster:
            ca_file = (path.parent / cluster["certificate-authority"]).expanduser()
            return ca_file.read_text(encoding="ascii") if ca_file.is_file() else None
        return None
    return None
