"""The few controllers whose effects a client of the API can observe.

A real cluster runs kube-controller-manager and the apiextensions controllers;
the emulator runs, synchronously after each write, the part of them a pipeline
sees through the API:

* CRD registration: a new CRD's kinds are served (defaulted and validated by
  its schemas) at once; a changed CRD's defaults apply to objects already
  stored; deleting it deletes its custom resources;
* the service-account controller: every namespace gets a ``default`` ServiceAccount;
* the token controller: a ``kubernetes.io/service-account-token`` Secret gets a
  long-lived token, ``ca.crt`` and ``namespace``;
* an instant rollout: Deployments and StatefulSets report every replica
  updated, ready and available for their current generation, in the status
  fields ``kubectl rollout status`` reads; DaemonSets report their pods on
  ``NODES`` nodes as the daemon set controller does, rolling them batch by
  batch within the write that changed the template (``OnDelete``: not at all).
  No pod runs.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging

from vaultflow.base.errors import InputError
from vaultflow.sandbox.kube.errors import ApiError, JsonObject
from vaultflow.sandbox.kube.resources import ResourceCatalog, types_from_crd
from vaultflow.sandbox.kube.store import Event, ObjectStore
from vaultflow.sandbox.kube.strategies import (
    SERVICE_ACCOUNT_TOKEN_TYPE,
    CustomResourceSchemas,
    condition,
    int_or_percent,
    now_rfc3339,
)
from vaultflow.sandbox.kube.tokens import TokenIssuer

log = logging.getLogger(__name__)

CRD_KEY = ("apiextensions.k8s.io", "customresourcedefinitions")
WORKLOAD_KEYS = {("apps", "deployments"), ("apps", "statefulsets")}
DAEMON_SET_KEY = ("apps", "daemonsets")
# The emulated cluster has no Node objects; a DaemonSet runs one pod on each of this many nodes
# (no taints, selectors or affinities exclude any): docs/sandbox.md says why three.
NODES = 3


class CrdController:
    """Serve the kinds a CRD defines and validate their objects against its schemas."""

    def __init__(self, catalog: ResourceCatalog, schemas: CustomResourceSchemas) -> None:
        self._catalog = catalog
        self._schemas = schemas
        self._registered: dict[str, int] = {}

    def __call__(self, store: ObjectStore, event: Event) -> None:
        if event.rtype.storage_key != CRD_KEY:
            return
        crd = event.entry.obj
        name = crd["metadata"]["name"]
        if event.type == "DELETED":
            for rtype in types_from_crd(crd):
                store.drop_all(rtype)
            self._catalog.remove_crd(name)
            self._schemas.remove(name)
            self._registered.pop(name, None)
            return
        generation = int(crd["metadata"].get("generation", 1))
        if self._registered.get(name) == generation:
            return
        try:
            self._schemas.set(crd)
        except InputError:
            log.warning("CRD %s has a schema that cannot be translated; its kinds are not served", name)
            return
        served = types_from_crd(crd)
        self._catalog.set_crd(name, served)
        if name in self._registered:  # changed schemas: stored objects are read with the new defaults
            for rtype in {t.storage_key: t for t in served}.values():  # one bucket for every version
                store.redecode(rtype)
        self._registered[name] = generation


def _copy(obj: JsonObject) -> JsonObject:
    result: JsonObject = json.loads(json.dumps(obj))
    return result


class ServiceAccountController:
    """Create the ``default`` ServiceAccount of each new namespace."""

    def __init__(self, catalog: ResourceCatalog) -> None:
        service_accounts = catalog.lookup("", "v1", "serviceaccounts")
        assert service_accounts is not None
        self._service_accounts = service_accounts

    def __call__(self, store: ObjectStore, event: Event) -> None:
        if event.rtype.storage_key != ("", "namespaces") or event.type != "ADDED":
            return
        namespace = event.entry.obj["metadata"]["name"]
        if not store.exists(self._service_accounts, namespace, "default"):
            store.create(self._service_accounts, namespace, {"metadata": {"name": "default"}})


class TokenSecretController:
    """Fill ``kubernetes.io/service-account-token`` Secrets, as kube-controller-manager does."""

    def __init__(self, catalog: ResourceCatalog, issuer: TokenIssuer, ca_pem: str) -> None:
        service_accounts = catalog.lookup("", "v1", "serviceaccounts")
        assert service_accounts is not None
        self._service_accounts = service_accounts
        self._issuer = issuer
        self._ca_pem = ca_pem

    def __call__(self, store: ObjectStore, event: Event) -> None:
        if event.rtype.storage_key != ("", "secrets") or event.type == "DELETED":
            return
        secret = event.entry.obj
        if secret.get("type") != SERVICE_ACCOUNT_TOKEN_TYPE or (secret.get("data") or {}).get("token"):
            return
        namespace = secret["metadata"]["namespace"]
        account_name = (secret["metadata"].get("annotations") or {}).get(
            "kubernetes.io/service-account.name", ""
        )
        try:
            account = store.get(self._service_accounts, namespace, account_name).obj
        except ApiError:
            return  # a real token controller waits for the account too
        token = self._issuer.issue_legacy(
            namespace=namespace,
            service_account=account_name,
            service_account_uid=account["metadata"]["uid"],
            secret_name=secret["metadata"]["name"],
        )
        filled = _copy(secret)
        filled["metadata"].setdefault("annotations", {})["kubernetes.io/service-account.uid"] = account[
            "metadata"
        ]["uid"]
        filled["data"] = {
            **(filled.get("data") or {}),
            "token": base64.b64encode(token.encode()).decode(),
            "ca.crt": base64.b64encode(self._ca_pem.encode()).decode(),
            "namespace": base64.b64encode(namespace.encode()).decode(),
        }
        store.update(event.rtype, namespace, secret["metadata"]["name"], filled)


class RolloutController:
    """Report a Deployment or StatefulSet as fully rolled out for its current generation.

    A spec change bumps ``metadata.generation`` (the store); this controller then writes the status
    the real ones reach once every pod of the new template is available: ``observedGeneration``
    and all replicas updated, ready and available (pkg/controller/deployment sync.go
    calculateStatus; pkg/controller/statefulset). A Deployment's conditions are those of
    deployment/util: ``Available`` (MinimumReplicasAvailable) and ``Progressing``
    (NewReplicaSetAvailable, naming the new ReplicaSet); ``lastUpdateTime`` moves with every
    rollout, ``lastTransitionTime`` only when a condition's status changes (SetDeploymentCondition).
    The rollout completes in the write that changed the spec, so a client sees
    ``generation > observedGeneration`` only in the answer to that write.
    """

    def __call__(self, store: ObjectStore, event: Event) -> None:
        if event.rtype.storage_key not in WORKLOAD_KEYS or event.type == "DELETED":
            return
        obj = event.entry.obj
        generation = int(obj["metadata"].get("generation", 1))
        status = obj.get("status") or {}
        if status.get("observedGeneration") == generation or obj["metadata"].get("deletionTimestamp"):
            return
        replicas = int((obj.get("spec") or {}).get("replicas", 1))
        revision = hashlib.sha256(
            json.dumps(obj["spec"].get("template", {}), sort_keys=True).encode()
        ).hexdigest()[:10]
        new_status: JsonObject = {
            "observedGeneration": generation,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
        }
        revision_name = f"{obj['metadata']['name']}-{revision}"
        if event.rtype.kind == "Deployment":
            previous = {c.get("type"): c for c in status.get("conditions") or []}
            new_status["conditions"] = [
                _deployment_condition(
                    previous, "Available", "MinimumReplicasAvailable", "Deployment has minimum availability."
                ),
                _deployment_condition(
                    previous,
                    "Progressing",
                    "NewReplicaSetAvailable",
                    f'ReplicaSet "{revision_name}" has successfully progressed.',
                ),
            ]
        else:
            new_status.update(
                currentReplicas=replicas, currentRevision=revision_name, updateRevision=revision_name
            )
            new_status["collisionCount"] = 0
        store.update(
            event.rtype,
            obj["metadata"]["namespace"],
            obj["metadata"]["name"],
            {**_copy(obj), "status": new_status},
            subresource="status",
        )


def _deployment_condition(
    previous: dict[str, JsonObject], kind: str, reason: str, message: str
) -> JsonObject:
    """A true Deployment condition; its ``lastTransitionTime`` kept if it was already true."""
    fresh = {**condition(kind, reason, message), "lastUpdateTime": now_rfc3339()}
    before = previous.get(kind)
    if before is not None and before.get("status") == "True" and before.get("lastTransitionTime"):
        fresh["lastTransitionTime"] = before["lastTransitionTime"]
    return fresh


class DaemonSetController:
    """A DaemonSet's status as the daemon set controller writes it, over ``nodes`` nodes.

    The fields and their meaning are updateDaemonSetStatus/storeDaemonSetStatus's
    (pkg/controller/daemon/daemon_controller.go): each node runs one pod, counted in
    ``currentNumberScheduled``, ``numberReady``/``numberAvailable`` once it is ready, and in
    ``updatedNumberScheduled`` when it runs the current template. A new DaemonSet's pods start
    on the current template. After a template change the pods are old; ``RollingUpdate``
    replaces them as update.go's rollingUpdate does, ``maxUnavailable`` (or ``maxSurge``) pods
    at a time, both scaled against the node count rounding up, and each batch's status is
    written in turn (a watch sees the new pods not yet ready: with ``maxUnavailable`` the batch
    is unavailable meanwhile), ending with every pod updated and available. ``OnDelete``
    replaces a pod only when it is deleted, and no pod is: the old pods stay, not updated.
    Like the other rollouts this completes within the write that changed the spec.
    """

    def __init__(self, nodes: int = NODES) -> None:
        self._nodes = nodes

    def __call__(self, store: ObjectStore, event: Event) -> None:
        if event.rtype.storage_key != DAEMON_SET_KEY or event.type == "DELETED":
            return
        obj = event.entry.obj
        generation = int(obj["metadata"].get("generation", 1))
        status = obj.get("status") or {}
        if status.get("observedGeneration") == generation or obj["metadata"].get("deletionTimestamp"):
            return  # the real controller does not compute the status of a DaemonSet being deleted
        updated = self._updated_before(event, status)
        strategy = (obj.get("spec") or {}).get("updateStrategy") or {}
        if strategy.get("type") == "RollingUpdate":
            rolling = strategy.get("rollingUpdate") or {}
            surge = int_or_percent(rolling.get("maxSurge", 0), self._nodes)
            batch = surge or int_or_percent(rolling.get("maxUnavailable", 1), self._nodes)
            while updated < self._nodes:
                step = min(max(batch, 1), self._nodes - updated)
                updated += step
                # a surge pod starts beside the old one, which stays available until it is ready
                self._write(store, event, generation, updated, self._nodes - (0 if surge else step))
        self._write(store, event, generation, updated, self._nodes)

    def _updated_before(self, event: Event, status: JsonObject) -> int:
        """How many nodes run a pod of the current template before this sync."""
        if not status:
            return self._nodes  # first sync: every pod is created from the current template
        previous = event.previous
        template = (event.entry.obj.get("spec") or {}).get("template")
        if previous is not None and (previous.get("spec") or {}).get("template") != template:
            return 0  # this write changed the template: every pod runs an older one
        return min(int(status.get("updatedNumberScheduled") or 0), self._nodes)

    def _write(self, store: ObjectStore, event: Event, generation: int, updated: int, available: int) -> None:
        """One status write; zero counts the API marks ``omitempty`` are left out, as it serves them."""
        status: JsonObject = {
            "currentNumberScheduled": self._nodes,
            "numberMisscheduled": 0,
            "desiredNumberScheduled": self._nodes,
            "numberReady": available,
            "observedGeneration": generation,
        }
        optional = {
            "updatedNumberScheduled": updated,
            "numberAvailable": available,
            "numberUnavailable": self._nodes - available,
        }
        status.update({key: value for key, value in optional.items() if value})
        metadata = event.entry.obj["metadata"]
        current = store.get(event.rtype, metadata["namespace"], metadata["name"]).copy()
        store.update(
            event.rtype,
            metadata["namespace"],
            metadata["name"],
            {**current, "status": status},
            subresource="status",
        )


def install(store: ObjectStore, issuer: TokenIssuer, schemas: CustomResourceSchemas, ca_pem: str) -> None:
    """Attach every controller to ``store``."""
    store.add_hook(CrdController(store.catalog, schemas))
    store.add_hook(ServiceAccountController(store.catalog))
    store.add_hook(TokenSecretController(store.catalog, issuer, ca_pem))
    store.add_hook(RolloutController())
    store.add_hook(DaemonSetController())
