"""Steps *lock* and the exit handler *revoke-root*: one bootstrap at a time.

Two bootstraps against one Vault would configure at once, and each would
revoke root under the other. The first step takes a Kubernetes Lease
(``vaultflow.steps.kube.lease``) in the bootstrap service account's namespace
of the catalog's workflows cluster (``argo`` in the cluster where Argo
Workflows runs); a second run waits for it (``lock-wait``), then fails naming
the holder. The lease lasts ``duration`` after its last renewal, so a run whose
pods crash (or whose workflow is deleted) frees it by itself that long after;
every later step renews it when it starts and, while it runs, every third of
the duration (``lock_held``, in ``vaultflow.steps.vault.locked``), so a run that
takes longer than the duration keeps it, and a step that finds it lost stops
before touching Vault. In Argo the WorkflowTemplate also carries a
``synchronization`` mutex, which queues a second workflow before any pod starts;
the lease also covers runs that bypass it (the local runner, a copy of the
template).

The exit handler acts only for the lock's holder: a run that never got the
lock (or lost it) must not revoke the root token the running one is using.
"""

import contextlib
import sys
from collections.abc import Iterator

from pydantic import BaseModel

from vaultflow.base.durations import parse_argo_duration
from vaultflow.base.errors import InputError
from vaultflow.steps.catalog_source import load_catalog_source
from vaultflow.steps.kube.clusters import cluster_context
from vaultflow.steps.kube.lease import LeaseLock, LeaseLost
from vaultflow.steps.vault.root_token import revoke_root_token

LEASE_NAME = "vaultflow-vault-bootstrap"
# Longer than the pipeline's timeout (30m) and its exit handler: even a run that could not renew (its API
# server unreachable for a while) keeps the lock to the end; only a crashed run frees it.
DEFAULT_DURATION = "45m"


class LockResult(BaseModel):
    lease: str
    holder: str
    expires: str  # UTC, ISO 8601


class FinishResult(BaseModel):
    """What the exit handler did. ``lock_held`` false: another run holds the lock; nothing was touched."""

    lock_held: bool
    revoked: bool = False
    keeper: str = ""
    kept_because: str = ""


def _seconds(value: str, what: str) -> float:
    try:
        return parse_argo_duration(value)
    except ValueError as error:
        raise InputError(f"{what}: {error}") from None


def bootstrap_lease(catalog: str, holder: str, duration: str = DEFAULT_DURATION) -> LeaseLock:
    """The lease of the catalog's bootstrap: in the bootstrap service account's namespace, in the
    workflows cluster (in-cluster, or its kubeconfig context)."""
    model = load_catalog_source(catalog).catalog
    cluster = model.workflows_cluster()
    account = model.vault.kubernetes_auth.bootstrap_service_account
    return LeaseLock(
        account.namespace,
        LEASE_NAME,
        holder,
        duration_seconds=int(_seconds(duration, "lock duration")),
        context=cluster_context(model, cluster),
    )


def lock_bootstrap(
    catalog: str, holder: str, *, wait: str = "10m", duration: str = DEFAULT_DURATION
) -> LockResult:
    """The pipeline's first step: take the bootstrap lease as ``holder`` (the workflow's name),
    waiting up to ``wait`` for another run to finish."""
    lease = bootstrap_lease(catalog, holder, duration)
    lease.acquire(_seconds(wait, "lock-wait"))
    record = lease.current()
    expires = record.expires if record is not None else None
    return LockResult(
        lease=lease.location,
        holder=holder,
        expires=expires.isoformat(timespec="seconds") if expires else "",
    )


@contextlib.contextmanager
def lock_held(catalog: str, holder: str) -> Iterator[None]:
    """Around a bootstrap step: renew the lock first (``LeaseLost``, naming who holds it now, if this
    run no longer does: nothing is touched), and keep renewing it while the step runs."""
    with bootstrap_lease(catalog, holder).kept():
        yield


def finish_bootstrap(
    addresses: str, keeper: str, catalog: str, holder: str, *, ca_cert: str = ""
) -> FinishResult:
    """The exit handler (after success and failure alike): as the lock's holder, revoke root if the
    bootstrap identity can generate another (``revoke_root_token``), then release the lock."""
    lease = bootstrap_lease(catalog, holder)
    holding = False
    try:
        with lease.kept():
            holding = True
            revoke = revoke_root_token(addresses, keeper, catalog=catalog, ca_cert=ca_cert)
    except LeaseLost as lost:
        if holding:  # lost while revoking: another run is at work, which is worth a failure
            raise
        print(
            f"{lost}; leaving the root token alone (this run never got the lock, or lost it)", file=sys.stderr
        )
        return FinishResult(lock_held=False)
    finally:
        lease.release()
    return FinishResult(
        lock_held=True, revoked=revoke.revoked, keeper=revoke.keeper, kept_because=revoke.kept_because
    )
