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

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from vaultflow.base.errors import InputError, OperationError
from vaultflow.gitops.catalog import LoadedCatalog
from vaultflow.gitops.catalog.model import Catalog, ServiceAccountRef
from vaultflow.gitops.delivery_rbac import DELIVERY_ACCOUNT
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
        accesses.append(  # the user named as its context, as onboarding names it (not the admin)
            ClusterAccess(
                context,
                endpoint.url,
                str(issued.status.token),
                account.namespace,
                endpoint.ca_file,
                user=context,
            )
        )
    path = path or SandboxPaths(Path(state.directory)).account_kubeconfigs / f"{account.name}.yaml"
    return write_kubeconfig(path, accesses, current=accesses[0].name if accesses else None)


# The hand-written RBAC of the workflows cluster (the workflows Application syncs it on a platform).
WORKFLOWS_RBAC = Path(__file__).resolve().parents[1] / "argocd-apps" / "workflows" / "rbac"
WORKFLOWS_RBAC_FILES = ("service-accounts.yaml", "bootstrap.yaml", "delivery-pipeline.yaml")


def _admin(state: SandboxState, context: str) -> Any:
    from kubernetes import config

    return config.new_client_from_config(config_file=state.kubeconfig, context=context)


def install_workflows_rbac(state: SandboxState, cluster: str) -> list[str]:
    """``argocd-apps/workflows/rbac`` in ``cluster``, as the workflows Application would sync it (a Role
    whose namespace the cluster lacks is skipped: the sandbox's Argo CD runs in its own cluster)."""
    from vaultflow.steps.kube.onboard import Kube, converge

    kube = Kube(_admin(state, cluster), cluster)
    done = []
    for name in WORKFLOWS_RBAC_FILES:
        for manifest in yaml.safe_load_all((WORKFLOWS_RBAC / name).read_text()):
            outcome = converge(kube, manifest, dry_run=False, required=False)
            meta = manifest["metadata"]
            done.append(
                f"{cluster}: {manifest['kind']} {meta.get('namespace', '')}/{meta['name']}: {outcome}"
            )
    return done


def onboard_clusters(state: SandboxState, loaded: LoadedCatalog) -> list[str]:
    """``vaultflow cluster onboard`` for every catalog cluster, as an admin runs it (the sandbox's admin
    kubeconfig): the pipelines' accounts and RBAC in each, their kubeconfig Secrets in the workflows
    cluster. The workflows cluster first gets what argocd-apps ships for it. Idempotent."""
    from vaultflow.steps.kube.onboard import onboard_cluster

    catalog = loaded.catalog
    workflows = catalog.workflows_cluster()
    lines = install_workflows_rbac(state, workflows.name)
    workflows_client = _admin(state, workflows.name)
    for cluster in [workflows, *(c for c in catalog.clusters if c.name != workflows.name)]:
        endpoint = state.cluster(cluster.name)
        report = onboard_cluster(
            loaded,
            cluster,
            cluster_client=_admin(state, cluster.name),
            workflows_client=workflows_client,
            server=endpoint.url,
            ca_pem=Path(endpoint.ca_file).read_text() if endpoint.ca_file else None,
        )
        lines += [action.line() for action in report.actions]
    return lines


def pipeline_kubeconfig(state: SandboxState, loaded: LoadedCatalog, account: ServiceAccountRef) -> Path:
    """``DIR/kubeconfigs/<account>.yaml``: what a pod of ``account``'s pipeline has, in one file: its own
    (projected, here TokenRequest) token for the workflows cluster, and the contexts of the other
    clusters from the kubeconfig Secret onboarding wrote (``vaultflow-kubeconfig-<account>``). Mode 0600."""
    import base64

    from kubernetes import client

    from vaultflow.steps.kube.onboard import KUBECONFIG_KEY, kubeconfig_secret

    catalog = loaded.catalog
    workflows = catalog.workflows_cluster()
    context = workflows.kube_context or workflows.name
    path = SandboxPaths(Path(state.directory)).account_kubeconfigs / f"{account.name}.yaml"
    account_kubeconfig(state, account, [workflows.name], path=path, contexts={workflows.name: context})
    own = yaml.safe_load(path.read_text())
    if len(catalog.clusters) > 1:
        name = kubeconfig_secret(catalog, account)
        try:
            secret = client.CoreV1Api(_admin(state, workflows.name)).read_namespaced_secret(
                name, account.namespace
            )
        except client.ApiException as error:
            raise OperationError(
                f"cluster {workflows.name}: no kubeconfig Secret {account.namespace}/{name} "
                f"(HTTP {error.status}): the clusters are not onboarded yet; {ONBOARD_HINT}"
            ) from None
        onboarded = yaml.safe_load(base64.b64decode(secret.data[KUBECONFIG_KEY])) or {}
        _require_contexts(loaded, account, {c["name"] for c in onboarded.get("contexts") or []})
        for section in ("clusters", "users", "contexts"):
            own[section] = [*own[section], *(onboarded.get(section) or [])]
    _write_private(path, yaml.safe_dump(own, sort_keys=False))
    return path


ONBOARD_HINT = (
    "run `task cluster:onboard -- --cluster NAME` for each catalog cluster, "
    "or `vaultflow sandbox up --catalog CATALOG`, which onboards them all"
)


def _require_contexts(loaded: LoadedCatalog, account: ServiceAccountRef, held: set[str]) -> None:
    """Every other catalog cluster has a context in ``account``'s onboarded kubeconfig: a cluster
    not onboarded yet would otherwise surface as an unknown context in the middle of a run."""
    catalog = loaded.catalog
    workflows = catalog.workflows_cluster().name
    missing = [
        c.name for c in catalog.clusters if c.name != workflows and (c.kube_context or c.name) not in held
    ]
    if missing:
        raise OperationError(
            f"service account {account.namespace}/{account.name} has no kubeconfig for "
            f"{', '.join(missing)}: not onboarded yet; {ONBOARD_HINT}"
        )


def _write_private(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    temporary.replace(path)


def delivery_kubeconfig(state: SandboxState, loaded: LoadedCatalog) -> Path:
    """The delivery's ``pipeline_kubeconfig`` plus the sandbox's Argo CD cluster (``mgmt``).

    On a platform Argo CD runs in the workflows cluster, where ``delivery-pipeline.yaml`` lets the delivery
    read and refresh its Applications; the sandbox runs Argo CD in a cluster of its own, so that file's
    account and Roles are installed there too and the delivery reaches it with its own token."""
    from vaultflow.steps.kube.onboard import Kube, converge

    management = state.management_cluster.name
    kube = Kube(_admin(state, management), management)
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": DELIVERY_ACCOUNT.namespace}}
    converge(kube, namespace, dry_run=False)
    for manifest in yaml.safe_load_all((WORKFLOWS_RBAC / "delivery-pipeline.yaml").read_text()):
        converge(kube, manifest, dry_run=False, required=False)
    path = pipeline_kubeconfig(state, loaded, DELIVERY_ACCOUNT)
    argocd = account_kubeconfig(
        state, DELIVERY_ACCOUNT, [management], path=path.with_name(f".{path.name}.argocd")
    )
    merged, extra = yaml.safe_load(path.read_text()), yaml.safe_load(argocd.read_text())
    argocd.unlink()
    for section in ("clusters", "users", "contexts"):
        merged[section] = [*merged[section], *extra[section]]
    _write_private(path, yaml.safe_dump(merged, sort_keys=False))
    return path


def pipeline_accounts(catalog: Catalog) -> dict[str, ServiceAccountRef]:
    """Each pipeline, by its WorkflowTemplate's name, and the service account its pods run as."""
    auth = catalog.vault.kubernetes_auth
    return {
        "vault-bootstrap": auth.bootstrap_service_account,
        "apply-eso-resources": DELIVERY_ACCOUNT,
        "rotate-secrets": auth.rotation_service_account,
    }


def find_account(catalog: Catalog, name: str) -> ServiceAccountRef:
    """The pipeline account ``name`` means: a pipeline's name, its account as ``NAMESPACE/NAME``, or the
    account's bare name. Anything else: InputError naming the choices."""
    for pipeline, account in pipeline_accounts(catalog).items():
        if name in (pipeline, f"{account.namespace}/{account.name}", account.name):
            return account
    choices = ", ".join(f"{a.namespace}/{a.name} ({p})" for p, a in pipeline_accounts(catalog).items())
    raise InputError(f"no pipeline runs as {name!r}; name one of {choices}")


def kubeconfig_as(state: SandboxState, loaded: LoadedCatalog, account: ServiceAccountRef) -> Path:
    """The kubeconfig a pod of ``account``'s pipeline holds (the delivery's with the sandbox's Argo CD
    cluster too), freshly written, mode 0600. A sandbox that was not started with this catalog, or
    whose clusters are not onboarded, is one clear OperationError saying what to run."""
    have = {endpoint.name for endpoint in state.clusters}
    absent = [c.name for c in loaded.catalog.clusters if c.name not in have]
    if absent:
        raise OperationError(
            f"the sandbox in {state.directory} has no cluster {', '.join(absent)} of {loaded.source}: "
            f"it was started without this catalog; start it with `vaultflow sandbox up --catalog CATALOG`"
        )
    try:
        if account == DELIVERY_ACCOUNT:
            return delivery_kubeconfig(state, loaded)
        return pipeline_kubeconfig(state, loaded, account)
    except OperationError as error:
        if ONBOARD_HINT in str(error):
            raise
        # the account itself is missing in the workflows cluster: what onboarding creates
        raise OperationError(f"{error} (not onboarded yet? {ONBOARD_HINT})") from None
