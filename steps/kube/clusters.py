"""How a step reaches each cluster of the catalog: its kubeconfig context, or in-cluster."""

from __future__ import annotations

import os
from typing import Any

from vaultflow.gitops.catalog import LoadedCatalog
from vaultflow.gitops.catalog.model import Cluster
from vaultflow.steps.kube import api_client
from vaultflow.steps.vault.login import PROJECTED_TOKEN


def kube_context(loaded: LoadedCatalog, cluster: Cluster) -> str | None:
    """``cluster``'s kubeconfig context, or None for in-cluster.

    In a pod of the workflows cluster without a kubeconfig, that cluster is the
    pod's own: in-cluster, even where the catalog names its context for the
    operator's laptop. Other clusters need a kubeconfig with their contexts.
    """
    own = cluster.name == loaded.catalog.workflows_cluster().name
    if cluster.in_cluster or (own and PROJECTED_TOKEN.is_file() and not os.environ.get("KUBECONFIG")):
        return None
    return cluster.kube_context


def cluster_clients(loaded: LoadedCatalog) -> dict[str, Any]:
    """A Kubernetes client for every catalog cluster."""
    return {cluster.name: api_client(kube_context(loaded, cluster)) for cluster in loaded.catalog.clusters}
