"""A pipeline's own identity in the sandbox: a kubeconfig of its service account, not the admin's.

On a platform a pipeline's pod reaches its own cluster with its projected service-account token,
and the other catalog clusters with a kubeconfig of the same account there (the account the render
places in every cluster, ``gitops/rbac_objects.remote_account``), so every request it makes is
authorised by the RBAC that argocd-apps and the render ship. This module writes that kubeconfig for
the sandbox: the same context names as the admin kubeconfig (one per cluster), each user a
TokenRequest token of the account in that cluster, so the emulated API servers enforce the
shipped RBAC on the pipeline exactly as kube-apiserver would. Written atomically, mode 0600.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from vaultflow.base.errors import OperationError
from vaultflow.gitops.catalog.model import ServiceAccountRef
from vaultflow.sandbox.kubeconfig import ClusterAccess, write_kubeconfig
from vaultflow.sandbox.layout import SandboxPaths
from vaultflow.sandbox.state import SandboxState

TOKEN_SECONDS = 3600  # a projected token's default life; a pipeline run is shorter


def account_kubeconfig(
    state: SandboxState,
    account: ServiceAccountRef,
    clusters: Sequence[str],
    *,
    path: Path | None = None,
    expiration_seconds: int = TOKEN_SECONDS,
    contexts: Mapping[str, str] | None = None,
) -> Path:
    """``path`` (default ``DIR/kubeconfigs/<account>.yaml``): a context per cluster of ``clusters``
    (named as the cluster, or as ``contexts`` maps it), as ``account``.

    The account must exist in each of them (its namespace and ServiceAccount are what the
    platform's charts and the render create); a missing one is named, nothing is written."""
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    accesses = []
    for name in clusters:
        endpoint = state.cluster(name)
        with config.new_client_from_config(config_file=state.kubeconfig, context=name) as admin:
            request = client.AuthenticationV1TokenRequest(
                spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=expiration_seconds)
            )
            try:
                issued = client.CoreV1Api(admin).create_namespaced_service_account_token(
                    account.name, account.namespace, request
                )
            except ApiException as error:
                raise OperationError(
                    f"cluster {name}: no token for service account {account.namespace}/{account.name} "
                    f"(HTTP {error.status}): is the platform installed there?"
                ) from None
        context = (contexts or {}).get(name, name)
        accesses.append(
            ClusterAccess(
                context, endpoint.url, str(issued.status.token), account.namespace, endpoint.ca_file
            )
        )
    path = path or SandboxPaths(Path(state.directory)).account_kubeconfigs / f"{account.name}.yaml"
    return write_kubeconfig(path, accesses, current=accesses[0].name if accesses else None)
