"""Applying desired objects to a cluster the way Argo CD's client-side ``kubectl apply`` does, and comparing.

* Every applied object carries Argo CD's annotation tracking
  (``argocd.argoproj.io/tracking-id: <app>:<group>/<kind>:<namespace>/<name>``,
  the default since Argo CD 3.0) and ``kubectl.kubernetes.io/last-applied-configuration``.
* Apply is kubectl's three-way merge for JSON objects: fields of the desired
  object are set, fields the last apply set but the desired object dropped are
  removed, and everything else on the live object (status, finalizers a
  controller added, server defaults) is kept. Lists are replaced whole.
* An object is Synced when applying it again would change nothing.
* Within a wave, objects go in Argo CD's kind order (Namespaces first,
  custom resources last), then by name.
"""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass
from typing import Any

from vaultflow.sandbox.kube import KubeCluster
from vaultflow.sandbox.kube.errors import ApiError
from vaultflow.sandbox.kube.resources import ResourceType

JsonObject = dict[str, Any]

TRACKING_ANNOTATION = "argocd.argoproj.io/tracking-id"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
SYNC_WAVE_ANNOTATION = "argocd.argoproj.io/sync-wave"
_KIND_ORDER = (  # gitops-engine's kindOrder
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
)
_KIND_RANK = {kind: index - len(_KIND_ORDER) for index, kind in enumerate(_KIND_ORDER)}  # custom kinds: 0


def group_of(api_version: str) -> str:
    return api_version.split("/", 1)[0] if "/" in api_version else ""


@dataclass(frozen=True)
class ResourceKey:
    group: str
    kind: str
    namespace: str
    name: str

    def describe(self) -> str:
        return f"{self.group}/{self.kind}/{self.name}"

    def tracking_id(self, app: str) -> str:
        return f"{app}:{self.group}/{self.kind}:{self.namespace}/{self.name}"


@dataclass
class DesiredObject:
    """One object of the source, resolved against the destination cluster."""

    key: ResourceKey
    rtype: ResourceType
    manifest: JsonObject  # with tracking and last-applied annotations

    @property
    def wave(self) -> int:
        text = (self.manifest["metadata"].get("annotations") or {}).get(SYNC_WAVE_ANNOTATION, "0")
        try:
            return int(str(text).strip())
        except ValueError:
            return 0

    @property
    def order(self) -> tuple[int, int, str, str]:
        return (self.wave, _KIND_RANK.get(self.key.kind, 0), self.key.namespace, self.key.name)

    def status_entry(self) -> JsonObject:
        return {
            "group": self.key.group,
            "version": self.rtype.version,
            "kind": self.key.kind,
            "namespace": self.key.namespace,
            "name": self.key.name,
        }


class DesiredError(Exception):
    """A desired object the destination cannot take (unknown kind, missing name)."""


def _secret_string_data(manifest: JsonObject) -> None:
    """``stringData`` is write-only on a Secret: compare and apply it as the ``data`` it becomes."""
    if manifest.get("kind") == "Secret" and manifest.get("apiVersion") == "v1" and "stringData" in manifest:
        data = dict(manifest.get("data") or {})
        for key, value in (manifest.pop("stringData") or {}).items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        manifest["data"] = data


def desired_object(
    manifest: JsonObject, cluster: KubeCluster, app_instance: str, default_namespace: str
) -> DesiredObject:
    obj = copy.deepcopy(manifest)
    api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
    rtype = cluster.catalog.by_kind(api_version, kind)
    if rtype is None:
        raise DesiredError(
            f"The Kubernetes API could not find {group_of(api_version) or 'core'}/{kind} for requested "
            f'resource {obj.get("metadata", {}).get("name", "")}. Make sure the "{kind}" CRD is installed '
            "on the destination cluster."
        )
    metadata = obj.setdefault("metadata", {})
    if not metadata.get("name"):
        raise DesiredError(
            f"{kind}: metadata.name is required (generateName is not supported by Argo CD sync)"
        )
    if rtype.namespaced:
        metadata["namespace"] = metadata.get("namespace") or default_namespace
    else:
        metadata.pop("namespace", None)
    _secret_string_data(obj)
    key = ResourceKey(rtype.group, kind, metadata.get("namespace", ""), metadata["name"])
    annotations = metadata.setdefault("annotations", {})
    annotations[TRACKING_ANNOTATION] = key.tracking_id(app_instance)
    annotations.pop(LAST_APPLIED, None)
    annotations[LAST_APPLIED] = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return DesiredObject(key, rtype, obj)


def _merge(last: Any, desired: Any, live: Any) -> Any:
    """kubectl's three-way merge for JSON (CRDs, and everything here): maps merge, the rest replaces."""
    if not isinstance(desired, dict) or not isinstance(live, dict):
        return copy.deepcopy(desired)
    last_map = last if isinstance(last, dict) else {}
    merged = {key: value for key, value in live.items() if not (key in last_map and key not in desired)}
    for key, value in desired.items():
        merged[key] = _merge(last_map.get(key), value, live.get(key))
    return merged


def merged_object(desired: DesiredObject, live: JsonObject) -> JsonObject:
    """What the live object becomes when ``desired`` is applied to it."""
    annotations = live.get("metadata", {}).get("annotations") or {}
    try:
        last = json.loads(annotations.get(LAST_APPLIED, "{}"))
    except ValueError:
        last = {}
    result = copy.deepcopy(live)
    for section, value in desired.manifest.items():
        if section in ("metadata", "status", "apiVersion", "kind"):
            continue
        result[section] = _merge(last.get(section), value, live.get(section))
    for section in [s for s in last if s not in desired.manifest and s not in ("metadata", "status")]:
        result.pop(section, None)
    live_meta, desired_meta, last_meta = (
        result["metadata"],
        desired.manifest["metadata"],
        last.get("metadata") or {},
    )
    for part in ("labels", "annotations"):
        value = _merge(last_meta.get(part), desired_meta.get(part) or {}, live_meta.get(part) or {})
        if value:
            live_meta[part] = value
        else:
            live_meta.pop(part, None)
    return result


def is_synced(desired: DesiredObject, live: JsonObject | None) -> bool:
    return live is not None and merged_object(desired, live) == live


def get_live(cluster: KubeCluster, desired: DesiredObject) -> JsonObject | None:
    try:
        return cluster.store.get(desired.rtype, desired.key.namespace, desired.key.name).copy()
    except ApiError as error:
        if error.code == 404:
            return None
        raise


def _describe(desired: DesiredObject) -> str:
    kind = desired.key.kind.lower()
    return (
        f"{kind}.{desired.key.group}/{desired.key.name}"
        if desired.key.group
        else f"{kind}/{desired.key.name}"
    )


def apply(cluster: KubeCluster, desired: DesiredObject) -> str:
    """Create or update; the kubectl-style message (``... created`` / ``configured`` / ``unchanged``).

    ``ApiError`` (a 422 from CRD validation, a missing namespace) propagates.
    """
    live = get_live(cluster, desired)
    if live is None:
        cluster.store.create(desired.rtype, desired.key.namespace, copy.deepcopy(desired.manifest))
        return f"{_describe(desired)} created"
    merged = merged_object(desired, live)
    if merged == live:
        return f"{_describe(desired)} unchanged"
    cluster.store.update(desired.rtype, desired.key.namespace, desired.key.name, merged)
    return f"{_describe(desired)} configured"


def tracked_by(obj: JsonObject, app_instance: str, key: ResourceKey) -> bool:
    """Does the live object belong to this app (its tracking id names the app *and* this very object)?"""
    annotations = obj.get("metadata", {}).get("annotations") or {}
    return annotations.get(TRACKING_ANNOTATION) == key.tracking_id(app_instance)


def prune(cluster: KubeCluster, rtype: ResourceType, key: ResourceKey, app_instance: str) -> str | None:
    """Delete a live object this app applied that its source no longer has; None when already gone."""
    try:
        live = cluster.store.get(rtype, key.namespace, key.name).obj
    except ApiError as error:
        if error.code == 404:
            return None
        raise
    if not tracked_by(live, app_instance, key):
        return None
    cluster.store.delete(rtype, key.namespace, key.name, propagation="Foreground")
    return "pruned"
