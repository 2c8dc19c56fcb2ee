"""How a step reaches each cluster of the catalog: its kubeconfig context, or in-cluster."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from vaultflow.gitops.catalog import LoadedCatalog
from vaultflow.gitops.catalog.model import Catalog, Cluster
from vaultflow.steps.kube import api_client
from vaultflow.steps.vault.login import PROJECTED_TOKEN


def cluster_context(catalog: Catalog, cluster: Cluster) -> str | None:
    """``cluster``'s kubeconfig context, or None for in-cluster.

    In a pod of the workflows cluster, that cluster is the pod's own: in-cluster, with the pod's
    projected token, even where the catalog names its context for the operator's laptop and the pod
    has a kubeconfig (``KUBECONFIG``: the onboarded kubeconfig Secret the templates mount, which holds
    the *other* clusters' contexts), unless that kubeconfig names the context too. Other clusters need
    their contexts in the kubeconfig (``vaultflow cluster onboard`` writes them).
    """
    own = cluster.name == catalog.workflows_cluster().name
    if cluster.in_cluster:
        return None
    if own and PROJECTED_TOKEN.is_file() and not _kubeconfig_names(cluster.kube_context):
        return None
    return cluster.kube_context


def kube_context(loaded: LoadedCatalog, cluster: Cluster) -> str | None:
    """``cluster_context`` of a loaded catalog."""
    return cluster_context(loaded.catalog, cluster)


def _kubeconfig_names(context: str | None) -> bool:
    """Does a file of ``$KUBECONFIG`` name ``context``? (Missing files are skipped, as by the clients.)"""
    for entry in os.environ.get("KUBECONFIG", "").split(os.pathsep):
        path = Path(entry).expanduser() if entry else None
        if path is None or not path.is_file():
            continue
        try:
            document = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        contexts = document.get("contexts") if isinstance(document, dict) else None
        if any(isinstance(c, dict) and c.get("name") == context for c in contexts or []):
            return True
    return False


def cluster_clients(loaded: LoadedCatalog) -> dict[str, Any]:
    """A Kubernetes client for every catalog cluster."""
    return {cluster.name: api_client(kube_context(loaded, cluster)) for cluster in loaded.catalog.clusters}
