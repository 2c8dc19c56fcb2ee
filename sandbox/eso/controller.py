"""The ESO emulator for one cluster: watches, a work queue and workers per controller, the reconcilers.

    controller = EsoController(cluster, environment).start()

What triggers a reconcile, as in ESO (controller-runtime predicates):

* an ExternalSecret or PushSecret created, or changed in generation,
  labels, annotations (``force-sync``), finalizers or deletion (not in
  status alone); its own ``RequeueAfter`` at the end of ``refreshInterval``;
* a Secret labelled ``reconcile.external-secrets.io/managed=true`` changed or
  deleted: the ExternalSecrets targeting it (drift is repaired at once);
* a SecretStore or ClusterSecretStore created or changed; every store again
  after its ``refreshInterval`` (default 5 minutes);
* a failed reconcile (or ``Requeue``): retried with ESO's rate limiter (1 s
  doubling to 7 min, and at most 10 a second after a burst of 100).

As in ESO, each controller (ExternalSecret, PushSecret, SecretStore,
ClusterSecretStore) has its own queue, its own rate limiter and
``concurrent`` workers (ESO's ``--concurrent``, default 1: one object of a
kind at a time); a key is never reconciled twice at once
(``cmd/controller/root.go``, ``pkg/controllers/common/common.go``).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import Any

import urllib3

from vaultflow.base.durations import parse_go_duration
from vaultflow.sandbox.eso.clusterexternalsecret import KIND as CLUSTER_EXTERNAL_SECRET
from vaultflow.sandbox.eso.clusterexternalsecret import ClusterExternalSecretController
from vaultflow.sandbox.eso.environment import EsoEnvironment
from vaultflow.sandbox.eso.externalsecret import ExternalSecretReconciler
from vaultflow.sandbox.eso.kube import ESO_ALPHA_API, ESO_API, FieldOwners, KubeAccess, OwnerIndex
from vaultflow.sandbox.eso.metrics import ExternalSecretMetrics
from vaultflow.sandbox.eso.pushsecret import PushSecretReconciler
from vaultflow.sandbox.eso.stores import CLUSTER_STORE, STORE, StoreResolver, ready_condition
from vaultflow.sandbox.kube import KubeCluster
from vaultflow.sandbox.kube.errors import ApiError
from vaultflow.sandbox.kube.store import Event, ObjectStore
from vaultflow.sandbox.workqueue import DONE, EsoRateLimiter, Result, Workers, WorkQueue

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]
Key = tuple[str, str, str]  # kind, namespace, name

EXTERNAL_SECRET, PUSH_SECRET = "ExternalSecret", "PushSecret"
_MANAGED_LABEL = "reconcile.external-secrets.io/managed"


def _spec_changed(kind: str, previous: JsonObject | None, current: JsonObject) -> bool:
    """ESO's update predicates (status-only writes are ignored).

    ExternalSecrets (``shouldEnqueueExternalSecretUpdate``) and the stores here:
    generation, labels, annotations, finalizers, deletion. PushSecrets
    (``shouldReconcilePushSecretUpdate``): the same without finalizers.
    """
    if previous is None:
        return True
    old, new = previous["metadata"], current["metadata"]
    return (
        old.get("generation") != new.get("generation")
        or old.get("labels") != new.get("labels")
        or old.get("annotations") != new.get("annotations")
        or (kind != PUSH_SECRET and old.get("finalizers") != new.get("finalizers"))
        or bool(old.get("deletionTimestamp")) != bool(new.get("deletionTimestamp"))
    )


class _Loop:
    """One of ESO's controllers: a work queue with ESO's rate limiter and its workers."""

    def __init__(self, name: str, reconcile: Callable[[Key], Result], concurrent: int) -> None:
        self.queue: WorkQueue[Key] = WorkQueue(EsoRateLimiter())
        self.workers = Workers(name, self.queue, reconcile, count=concurrent)


class EsoController:
    """ESO installed in ``cluster``.

    ``concurrent`` is ESO's ``--concurrent`` (workers per controller);
    ``vault_token_cache`` its ``--enable-vault-token-cache``.
    """

    def __init__(
        self,
        cluster: KubeCluster,
        environment: EsoEnvironment,
        *,
        concurrent: int = 1,
        vault_token_cache: bool = False,
        store_requeue: float = 300.0,
    ) -> None:
        if concurrent < 1:
            raise ValueError(f"concurrent must be at least 1, not {concurrent}")
        self.cluster = cluster
        self.environment = environment
        self.concurrent = concurrent
        self._http = urllib3.PoolManager(num_pools=16, maxsize=max(concurrent * 4, 4))
        self.kube = KubeAccess(cluster, self._http)
        self.stores = StoreResolver(self.kube, environment, self._http, vault_token_cache=vault_token_cache)
        self.owned = OwnerIndex()
        self.field_owners = FieldOwners()
        self.metrics = ExternalSecretMetrics()  # what ESO's /metrics would show for this cluster
        self.external_secrets = ExternalSecretReconciler(
            self.kube, self.stores, self.owned, self.field_owners, self.metrics
        )
        self.push_secrets = PushSecretReconciler(self.kube, self.stores)
        self.cluster_external_secrets = ClusterExternalSecretController(
            self.kube, lambda name: self.enqueue((CLUSTER_EXTERNAL_SECRET, "", name))
        )
        self.store_requeue = store_requeue
        self._loops = {
            kind: _Loop(f"eso-{cluster.name}-{kind.lower()}", self._reconcile, concurrent)
            for kind in (EXTERNAL_SECRET, PUSH_SECRET, STORE, CLUSTER_STORE, CLUSTER_EXTERNAL_SECRET)
        }
        self._kinds = {
            cluster.type_of(ESO_API, EXTERNAL_SECRET).storage_key: EXTERNAL_SECRET,
            cluster.type_of(ESO_ALPHA_API, PUSH_SECRET).storage_key: PUSH_SECRET,
            cluster.type_of(ESO_API, STORE).storage_key: STORE,
            cluster.type_of(ESO_API, CLUSTER_STORE).storage_key: CLUSTER_STORE,
        }
        self._secrets_key = cluster.type_of("v1", "Secret").storage_key
        self._targets: dict[tuple[str, str], set[str]] = {}
        self._targets_lock = threading.Lock()

    # ------------------------------------------------------------ lifecycle

    def start(self) -> EsoController:
        """Start the informers and the workers. The informers' list and watch are authorised first
        (ESO's manager does not start when its cache cannot sync: a 403 here is that failure)."""
        secrets = self.cluster.type_of("v1", "Secret")
        informed = [secrets, *(t for t in self.cluster.catalog.types() if t.storage_key in self._kinds)]
        for rtype in informed:
            self.kube.store.require_watch(rtype)
        self.cluster.store.add_hook(self._on_event)
        for entry in self.kube.store.list(secrets, None).entries:
            self.owned.observe(None, entry.obj)
        for storage_key, kind in self._kinds.items():
            rtype = next(t for t in self.cluster.catalog.types() if t.storage_key == storage_key)
            for entry in self.kube.store.list(rtype, None).entries:
                self._index_target(kind, None, entry.obj)
                metadata = entry.obj["metadata"]
                self.enqueue((kind, metadata.get("namespace", ""), metadata["name"]))
        self.cluster_external_secrets.resync()
        for loop in self._loops.values():
            loop.workers.start()
        log.info("ESO emulator watches cluster %s", self.cluster.name)
        return self

    def stop(self) -> None:
        for loop in self._loops.values():
            loop.workers.stop()
        self._http.clear()

    def enqueue(self, key: Key) -> None:
        """A watch event for ``key``: into its controller's queue (not rate-limited, as informers add)."""
        self._loops[key[0]].queue.add(key)

    def queue_of(self, kind: str) -> WorkQueue[Key]:
        return self._loops[kind].queue

    @property
    def queued(self) -> int:
        """Keys to be worked on now, across the controllers (client-go's queue depth)."""
        return sum(loop.queue.depth for loop in self._loops.values())

    @property
    def scheduled(self) -> int:
        """Keys waiting for their next refresh or backoff."""
        return sum(loop.queue.scheduled for loop in self._loops.values())

    @property
    def reconciles(self) -> int:
        return sum(loop.workers.reconciles for loop in self._loops.values())

    @property
    def errors(self) -> int:
        return sum(loop.workers.errors for loop in self._loops.values())

    # ------------------------------------------------------------ events (run under the store's lock)

    def _on_event(self, _: ObjectStore, event: Event) -> None:
        self.cluster_external_secrets.on_event(event)  # its own For/Owns/Watches mapping
        storage_key = event.rtype.storage_key
        if storage_key == self._secrets_key:
            self._on_secret(event)
            return
        kind = self._kinds.get(storage_key)
        if kind is None:
            return
        obj = event.entry.obj
        self._index_target(kind, event.previous, None if event.type == "DELETED" else obj)
        if event.type == "DELETED" or (
            event.type == "MODIFIED" and not _spec_changed(kind, event.previous, obj)
        ):
            return
        self.enqueue((kind, obj["metadata"].get("namespace", ""), obj["metadata"]["name"]))

    def _index_target(self, kind: str, previous: JsonObject | None, current: JsonObject | None) -> None:
        """ExternalSecrets by (namespace, target Secret name): who to wake when a Secret changes."""
        if kind != EXTERNAL_SECRET:
            return
        with self._targets_lock:
            for obj, add in ((previous, False), (current, True)):
                if obj is None:
                    continue
                metadata = obj["metadata"]
                target = ((obj.get("spec") or {}).get("target") or {}).get("name") or metadata["name"]
                names = self._targets.setdefault((metadata.get("namespace", ""), str(target)), set())
                if add:
                    names.add(metadata["name"])
                else:
                    names.discard(metadata["name"])

    def _on_secret(self, event: Event) -> None:
        obj = event.entry.obj
        self.owned.observe(event.previous, None if event.type == "DELETED" else obj)
        self.field_owners.observe(event.previous, None if event.type == "DELETED" else obj)
        labelled = [o for o in (obj, event.previous) if o is not None]
        if not any((o["metadata"].get("labels") or {}).get(_MANAGED_LABEL) == "true" for o in labelled):
            return
        namespace = obj["metadata"].get("namespace", "")
        with self._targets_lock:
            names = sorted(self._targets.get((namespace, obj["metadata"]["name"]), ()))
        for name in names:
            self.enqueue((EXTERNAL_SECRET, namespace, name))

    # ------------------------------------------------------------ reconciling

    def _reconcile(self, key: Key) -> Result:
        kind, namespace, name = key
        if kind == EXTERNAL_SECRET:
            return self.external_secrets.reconcile(namespace, name)
        if kind == PUSH_SECRET:
            return self.push_secrets.reconcile(namespace, name)
        if kind == CLUSTER_EXTERNAL_SECRET:
            return self.cluster_external_secrets.reconcile(name)
        return self._reconcile_store(kind, namespace, name)

    def _reconcile_store(self, kind: str, namespace: str, name: str) -> Result:
        rtype = self.stores.cluster_store_type if kind == CLUSTER_STORE else self.stores.store_type
        store = self.kube.get(rtype, namespace, name)
        if store is None or store["metadata"].get("deletionTimestamp"):
            return DONE
        if (store.get("spec") or {}).get("controller"):
            return DONE  # another controller class: not ours, as ESO's default controller skips it
        refresh = store_refresh_interval(store)  # before validating, as ESO reads it
        status, reason, message = self.stores.validate(store)
        previous = (store.get("status") or {}).get("conditions") or []
        new_status: JsonObject = {"conditions": [ready_condition(status, reason, message, previous)]}
        if status == "True":
            new_status["capabilities"] = "ReadWrite"
            self.kube.record_event(store, "Normal", "Valid", message)
        if new_status != (store.get("status") or {}):

            def replace(document: JsonObject) -> JsonObject:
                document["status"] = new_status
                return document

            try:
                self.kube.store.patch(rtype, namespace, name, replace, subresource="status")
            except ApiError as error:
                if error.code != 404:
                    raise
        if status != "True":
            raise RuntimeError(f"{kind} {name}: {message}")
        return Result(requeue_after=refresh if refresh > 0 else self.store_requeue)


def store_refresh_interval(store: JsonObject) -> float:
    """``SecretStoreSpec.GetRefreshInterval``: whole seconds or a Go duration; 0 (unset) is the default.

    A bad value fails the reconcile before validation (``invalid refreshInterval: ...``), so the
    store keeps its status and is retried with backoff, as in ESO's ``secretstore/common.go``.
    """
    value = (store.get("spec") or {}).get("refreshInterval")
    if value is None:
        return 0.0
    if isinstance(value, int):
        if value < 0:
            raise RuntimeError(
                f"invalid refreshInterval: invalid refreshInterval {value}: must not be negative"
            )
        return float(value)
    try:
        seconds = parse_go_duration(str(value))
    except ValueError:
        why = "missing unit in duration" if re.fullmatch(r"[-+]?[0-9.]+", str(value)) else "invalid duration"
        raise RuntimeError(
            f'invalid refreshInterval: invalid refreshInterval "{value}": time: {why} "{value}"'
        ) from None
    if seconds < 0:
        raise RuntimeError(
            f'invalid refreshInterval: invalid refreshInterval "{value}": must not be negative'
        )
    return seconds
