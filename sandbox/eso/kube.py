"""What the ESO emulator needs of its cluster: objects, referenced Secret keys, tokens and Events.

The reconcilers work on the in-process object store of the emulated cluster
(exact watch events, no polling, and the throughput the benchmark asks for);
service-account tokens go through the cluster's real TokenRequest API over
HTTP, as ESO's do, so OpenBao's review of them is the real thing.

ESO acts as its own service account (``external-secrets`` in
``external-secrets-system``, the chart's), under the RBAC its Helm chart
installs (``chart-rbac.yaml``, installed when missing as ``helm install`` would):
every store call is authorised as the API request it stands for
(``sandbox/kube/acting.py``), and its TokenRequests carry the account's own
token, so a rule the chart lacks fails here as it fails on a real cluster.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import urllib3
import yaml

from vaultflow.sandbox.eso.providers.base import ProviderError
from vaultflow.sandbox.kube import KubeCluster
from vaultflow.sandbox.kube.acting import ActingStore
from vaultflow.sandbox.kube.authz import service_account_user
from vaultflow.sandbox.kube.errors import ApiError
from vaultflow.sandbox.kube.resources import ResourceType
from vaultflow.sandbox.kube.strategies import now_rfc3339

JsonObject = dict[str, Any]
Field = tuple[str, str]  # ("labels" | "annotations" | "data", key)

ESO_API = "external-secrets.io/v1"
ESO_ALPHA_API = "external-secrets.io/v1alpha1"
COMPONENT = "external-secrets"
# The controller's identity: the chart's ServiceAccount (fullname ``external-secrets``) in the
# namespace argocd-apps installs the chart into.
ACCOUNT_NAMESPACE, ACCOUNT_NAME = "external-secrets-system", "external-secrets"
CHART_RBAC = Path(__file__).resolve().parent / "chart-rbac.yaml"
# Each ESO controller records Events under its own name (``mgr.GetEventRecorderFor`` in
# ``pkg/controllers/externalsecret``, ``pushsecret`` and ``secretstore``); the source of an Event
# is the component that reported it, which ``kubectl get events`` shows.
COMPONENTS = {
    "ExternalSecret": COMPONENT,
    "PushSecret": "pushsecret",
    "SecretStore": "secret-store",
    "ClusterSecretStore": "cluster-secret-store",
}


class KubeAccess:
    """One cluster, seen by ESO."""

    def __init__(self, cluster: KubeCluster, http: urllib3.PoolManager) -> None:
        self.cluster = cluster
        install_chart_rbac(cluster)
        self.store = ActingStore(cluster.store, service_account_user(ACCOUNT_NAMESPACE, ACCOUNT_NAME))
        self._http = http
        self._event_lock = threading.Lock()
        self._event_names: dict[tuple[str, str, str, str], str] = {}

    def type_of(self, api_version: str, kind: str) -> ResourceType:
        return self.cluster.type_of(api_version, kind)

    @property
    def secrets(self) -> ResourceType:
        return self.cluster.type_of("v1", "Secret")

    def get(self, rtype: ResourceType, namespace: str, name: str) -> JsonObject | None:
        try:
            return self.store.get(rtype, namespace, name).copy()
        except ApiError as error:
            if error.code == 404:
                return None
            raise

    def secret_key(self, namespace: str, name: str, key: str) -> bytes:
        """A key of a Secret, with ESO's messages when the Secret or the key is missing."""
        secret = self.get(self.secrets, namespace, name)
        if secret is None:
            raise ProviderError(f'cannot get Kubernetes secret "{name}": secrets "{name}" not found')
        encoded = (secret.get("data") or {}).get(key)
        if encoded is None:
            raise ProviderError(f"cannot find secret data for key: {json.dumps(key)}")
        return base64.b64decode(encoded)

    def configmap_key(self, namespace: str, name: str, key: str) -> str:
        configmap = self.get(self.cluster.type_of("v1", "ConfigMap"), namespace, name)
        if configmap is None:
            raise ProviderError(f'failed to get configmap "{name}": configmaps "{name}" not found')
        value = (configmap.get("data") or {}).get(key)
        if value is None:
            raise ProviderError(f'failed to get data from configmap "{name}": key {key!r} not found')
        return str(value)

    def own_token(self) -> str:
        """The controller pod's projected service-account token (kubelet keeps one fresh; a new one
        per call is the same to the API server)."""
        account = self.cluster.store.get(
            self.cluster.type_of("v1", "ServiceAccount"), ACCOUNT_NAMESPACE, ACCOUNT_NAME
        )
        token, _ = self.cluster.issuer.issue(
            namespace=ACCOUNT_NAMESPACE,
            service_account=ACCOUNT_NAME,
            service_account_uid=str(account.obj["metadata"]["uid"]),
            expiration_seconds=3600,
        )
        return token

    def token_request(self, namespace: str, account: str, audiences: list[str], expiration: int = 600) -> str:
        """A TokenRequest for ``namespace/account`` through the cluster's API (ESO's ``CreateToken``)."""
        url = f"{self.cluster.url}/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token"
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"audiences": audiences or None, "expirationSeconds": expiration},
        }
        # ESO's in-cluster client trusts the cluster's CA (the service account's ca.crt); one pool per
        # cluster, kept alive across requests.
        pool = self._http.connection_from_url(url, pool_kwargs={"ca_cert_data": self.cluster.ca_pem})
        response = pool.urlopen(
            "POST",
            url,
            body=json.dumps(body).encode(),
            headers={
                "Authorization": f"Bearer {self.own_token()}",
                "Content-Type": "application/json",
            },
            timeout=10,
            retries=False,
        )
        payload = json.loads(response.data or b"{}")
        if response.status != 201:
            reason = payload.get("message", f"HTTP {response.status}")
            raise ProviderError(
                f'cannot request Kubernetes service account token for service account "{account}": {reason}'
            )
        return str(payload["status"]["token"])

    def record_event(self, obj: JsonObject, event_type: str, reason: str, message: str) -> None:
        """A core/v1 Event about ``obj``, counted up when the same one repeats (the event correlator).

        Its source is the controller of ``obj``'s kind (``COMPONENTS``).
        """
        metadata = obj["metadata"]
        component = COMPONENTS.get(str(obj.get("kind", "")), COMPONENT)
        namespace = metadata.get("namespace") or "default"
        events = self.cluster.type_of("v1", "Event")
        identity = (metadata.get("uid", ""), event_type, reason, message)
        now = now_rfc3339()
        with self._event_lock:
            existing = self._event_names.get(identity)
            if existing is not None:
                try:
                    self.store.patch(events, namespace, existing, lambda e: _count_up(e, now))
                except ApiError:
                    self._event_names.pop(identity, None)
                else:
                    return
            event: JsonObject = {
                "metadata": {"generateName": f"{metadata['name']}."},
                "involvedObject": {
                    "apiVersion": obj.get("apiVersion", ""),
                    "kind": obj.get("kind", ""),
                    "name": metadata["name"],
                    "namespace": metadata.get("namespace", ""),
                    "uid": metadata.get("uid", ""),
                    "resourceVersion": metadata.get("resourceVersion", ""),
                },
                "type": event_type,
                "reason": reason,
                "message": message,
                "source": {"component": component},
                "reportingComponent": component,
                "firstTimestamp": now,
                "lastTimestamp": now,
                "count": 1,
            }
            try:
                created = self.store.create(events, namespace, event)
            except ApiError:
                return  # the namespace is going away: nobody will read the event
            self._event_names[identity] = created.obj["metadata"]["name"]


class OwnerIndex:
    """Secrets by namespace and ``reconcile.external-secrets.io/created-by`` label.

    ESO finds the Secrets an ExternalSecret created under an earlier target
    name with a label selector on its informer cache; this is that cache's
    index, fed from the Secret watch, so the lookup does not scan a namespace.
    """

    LABEL = "reconcile.external-secrets.io/created-by"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._names: dict[tuple[str, str], set[str]] = {}

    def observe(self, previous: JsonObject | None, current: JsonObject | None) -> None:
        with self._lock:
            for obj, add in ((previous, False), (current, True)):
                label = ((obj or {}).get("metadata", {}).get("labels") or {}).get(self.LABEL)
                if obj is None or label is None:
                    continue
                key = (obj["metadata"].get("namespace", ""), label)
                names = self._names.setdefault(key, set())
                if add:
                    names.add(obj["metadata"]["name"])
                else:
                    names.discard(obj["metadata"]["name"])

    def names(self, namespace: str, label: str) -> set[str]:
        with self._lock:
            return set(self._names.get((namespace, label), ()))


class FieldOwners:
    """The part of a Secret's ``metadata.managedFields`` ESO reads: the labels, annotations and data
    keys each field manager owns (ESO's ``getManagedFieldKeys`` with manager
    ``externalsecrets.external-secrets.io/<name>``).

    The Kubernetes emulator keeps no ``managedFields``, so ownership is kept here, fed from the
    Secret watch with the API server's rules for updates (structured-merge-diff ``Updater.Update``):
    a manager owns the fields its writes add or change; a field another writer changes or removes
    is no longer owned; a removed field is owned by nobody. ESO's writes are made inside
    ``writing(manager)`` (the watch hook runs in the writing thread). The record lives as long as
    the controller: what an earlier ESO process owned is not known after a restart.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owned: dict[str, dict[str, set[Field]]] = {}  # Secret uid -> manager -> fields
        self._local = threading.local()

    @contextmanager
    def writing(self, manager: str) -> Iterator[None]:
        self._local.manager = manager
        try:
            yield
        finally:
            self._local.manager = None

    def observe(self, previous: JsonObject | None, current: JsonObject | None) -> None:
        if current is None:
            if previous is not None:
                with self._lock:
                    self._owned.pop(previous["metadata"].get("uid", ""), None)
            return
        before, after = _fields(previous), _fields(current)
        changed = {field for field, value in after.items() if before.get(field) != value}
        removed = set(before) - set(after)
        if not changed and not removed:
            return
        writer = getattr(self._local, "manager", None)
        with self._lock:
            owners = self._owned.setdefault(current["metadata"].get("uid", ""), {})
            for manager in list(owners):
                if manager != writer:
                    owners[manager] = owners[manager] - (changed | removed)
            if writer is not None:
                owners[writer] = (owners.get(writer, set()) - removed) | changed

    def owned(self, uid: str, manager: str) -> set[Field]:
        with self._lock:
            return set(self._owned.get(uid, {}).get(manager, ()))


def _fields(secret: JsonObject | None) -> dict[Field, Any]:
    if secret is None:
        return {}
    metadata = secret.get("metadata") or {}
    fields: dict[Field, Any] = {}
    for kind, values in (
        ("labels", metadata.get("labels")),
        ("annotations", metadata.get("annotations")),
        ("data", secret.get("data")),
    ):
        fields.update({(kind, key): value for key, value in (values or {}).items()})
    return fields


def _count_up(event: JsonObject, now: str) -> JsonObject:
    event["count"] = int(event.get("count", 1)) + 1
    event["lastTimestamp"] = now
    return event


def install_chart_rbac(cluster: KubeCluster) -> None:
    """What ESO's chart installs for the controller (namespace, account, its RBAC), each object
    created when missing and left alone when present (a test may have changed it)."""
    for document in yaml.safe_load_all(CHART_RBAC.read_text(encoding="utf-8")):
        rtype = cluster.type_of(document["apiVersion"], document["kind"])
        metadata = document["metadata"]
        namespace = metadata.get("namespace", "")
        if not cluster.store.exists(rtype, namespace, metadata["name"]):
            cluster.store.create(rtype, namespace, document)
