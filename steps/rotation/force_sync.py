"""Ask ESO to reconcile an ExternalSecret or PushSecret now, instead of at its next refreshInterval.

ESO reconciles an object whose annotations changed (its resource-version check
covers labels and annotations, pkg/controllers/externalsecret and pushsecret),
so the rotation sets ``force-sync=<run id>``: a retried step sets the same value
and triggers nothing twice. A PushSecret does not watch its source Secret: it is
annotated only once that Secret is verified to hold the new value.

An ExternalSecret controlled by a ClusterExternalSecret cannot be annotated:
the ClusterExternalSecret controller replaces its annotations with its own
template's. It copies ``external-secrets.io/force-sync`` from itself onto every
ExternalSecret it owns (pkg/controllers/clusterexternalsecret), so that is
where the rotation puts it.
"""

from __future__ import annotations

from typing import Any, Literal

from vaultflow.steps.kube.errors import kube_errors
from vaultflow.steps.rotation.discover import ESO_GROUP, ConsumingExternalSecret

FORCE_SYNC = "force-sync"
CES_FORCE_SYNC = "external-secrets.io/force-sync"
_PLURAL = {"ExternalSecret": ("v1", "externalsecrets"), "PushSecret": ("v1alpha1", "pushsecrets")}


def force_sync(
    api_client: Any,
    *,
    cluster: str,
    kind: Literal["ExternalSecret", "PushSecret"],
    namespace: str,
    name: str,
    run_id: str,
) -> None:
    """Annotate one object ``force-sync=<run id>`` (a JSON merge patch of its annotations only)."""
    from kubernetes import client

    version, plural = _PLURAL[kind]
    with kube_errors(f"{kind} {namespace}/{name} in cluster {cluster}", "annotate it force-sync"):
        client.CustomObjectsApi(api_client).patch_namespaced_custom_object(
            ESO_GROUP, version, namespace, plural, name, {"metadata": {"annotations": {FORCE_SYNC: run_id}}}
        )


def force_sync_consumer(api_client: Any, consumer: ConsumingExternalSecret, run_id: str) -> None:
    """Make ESO refresh one consuming ExternalSecret now: itself, or through its ClusterExternalSecret."""
    from kubernetes import client

    if consumer.cluster_external_secret is None:
        force_sync(
            api_client,
            cluster=consumer.cluster,
            kind="ExternalSecret",
            namespace=consumer.namespace,
            name=consumer.name,
            run_id=run_id,
        )
        return
    name = consumer.cluster_external_secret
    with kube_errors(f"ClusterExternalSecret {name} in cluster {consumer.cluster}", "annotate it force-sync"):
        client.CustomObjectsApi(api_client).patch_cluster_custom_object(
            ESO_GROUP,
            "v1",
            "clusterexternalsecrets",
            name,
            {"metadata": {"annotations": {CES_FORCE_SYNC: run_id}}},
        )
