"""The resource types an emulated cluster serves: built-in kinds plus CRD-defined ones.

A ``ResourceType`` is what kube-apiserver's discovery documents describe: a
group/version, a plural name in the URL, a kind in the body, a scope, verbs and
subresources. The ``ResourceCatalog`` answers "which type is at this URL?" and
feeds discovery; CRDs add and remove types at run time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from vaultflow.sandbox.kube.errors import JsonObject

READ_WRITE_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    """One served resource (``secrets`` in ``v1``, ``externalsecrets`` in ``external-secrets.io/v1``)."""

    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    verbs: tuple[str, ...] = READ_WRITE_VERBS
    subresources: tuple[str, ...] = ()
    tracks_generation: bool = False
    categories: tuple[str, ...] = ()
    crd_name: str = ""
    selectable_fields: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def storage_key(self) -> tuple[str, str]:
        """Objects are stored per (group, plural): every served version sees the same objects."""
        return (self.group, self.plural)

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    @property
    def is_custom(self) -> bool:
        return bool(self.crd_name)

    @property
    def group_resource(self) -> str:
        """``secrets`` or ``externalsecrets.external-secrets.io``: how messages name the type."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


def _core(
    kind: str, plural: str, *, namespaced: bool = True, short: tuple[str, ...] = (), **kw: Any
) -> ResourceType:
    return ResourceType("", "v1", kind, plural, kind.lower(), namespaced, short, **kw)


def _typed(group: str, version: str, kind: str, plural: str, **kw: Any) -> ResourceType:
    kw.setdefault("namespaced", True)
    return ResourceType(group, version, kind, plural, kind.lower(), **kw)


_RBAC = "rbac.authorization.k8s.io"

BUILTIN_TYPES: tuple[ResourceType, ...] = (
    _core("Namespace", "namespaces", namespaced=False, short=("ns",), subresources=("status",)),
    _core("Secret", "secrets"),
    _core("ConfigMap", "configmaps", short=("cm",)),
    _core("ServiceAccount", "serviceaccounts", short=("sa",), subresources=("token",)),
    _core("Service", "services", short=("svc",), subresources=("status",)),
    _core("Pod", "pods", short=("po",), subresources=("status",)),
    _core("Event", "events", short=("ev",)),
    _typed(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        short_names=("deploy",),
        subresources=("status",),
        tracks_generation=True,
        categories=("all",),
    ),
    _typed(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        short_names=("sts",),
        subresources=("status",),
        tracks_generation=True,
        categories=("all",),
    ),
    _typed(
        "apps",
        "v1",
        "DaemonSet",
        "daemonsets",
        short_names=("ds",),
        subresources=("status",),
        tracks_generation=True,
        categories=("all",),
    ),
    _typed(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        namespaced=False,
        short_names=("crd", "crds"),
        subresources=("status",),
        tracks_generation=True,
    ),
    _typed("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", namespaced=False, verbs=("create",)),
    _typed(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        namespaced=False,
        verbs=("create",),
    ),
    _typed(_RBAC, "v1", "Role", "roles"),
    _typed(_RBAC, "v1", "RoleBinding", "rolebindings"),
    _typed(_RBAC, "v1", "ClusterRole", "clusterroles", namespaced=False),
    _typed(_RBAC, "v1", "ClusterRoleBinding", "clusterrolebindings", namespaced=False),
    _typed("coordination.k8s.io", "v1", "Lease", "leases"),
    # Stored and served (Argo CD syncs the steps' policy, argocd-apps/workflows/network/), not enforced:
    # the sandbox has no pod network.
    _typed(
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
        short_names=("netpol",),
        tracks_generation=True,
    ),
)

CORE_GROUP_ORDER = (
    "",
    "apps",
    "apiextensions.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "networking.k8s.io",
    _RBAC,
    "coordination.k8s.io",
)


def types_from_crd(crd: Mapping[str, Any]) -> list[ResourceType]:
    """The served versions of a (validated) CRD as resource types."""
    spec = crd["spec"]
    names = spec["names"]
    types = []
    for version in spec["versions"]:
        if not version.get("served", False):
            continue
        selectable = tuple(
            str(item.get("jsonPath", "")).lstrip(".") for item in version.get("selectableFields", []) or []
        )
        types.append(
            ResourceType(
                group=spec["group"],
                version=version["name"],
                kind=names["kind"],
                plural=names["plural"],
                singular=names.get("singular") or names["kind"].lower(),
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                short_names=tuple(names.get("shortNames", []) or []),
                subresources=tuple(sorted((version.get("subresources") or {}).keys())),
                tracks_generation=True,
                categories=tuple(names.get("categories", []) or []),
                crd_name=crd["metadata"]["name"],
                selectable_fields=selectable,
            )
        )
    return types


@dataclass(frozen=True)
class GroupVersions:
    """One API group for discovery: its versions, preferred first."""

    group: str
    versions: tuple[str, ...]

    @property
    def preferred(self) -> str:
        return self.versions[0]


class ResourceCatalog:
    """Thread-safe lookup of served types by URL parts or by apiVersion/kind."""

    def __init__(self, types: Iterable[ResourceType] = BUILTIN_TYPES) -> None:
        self._lock = threading.Lock()
        self._builtin = tuple(types)
        self._custom: dict[str, list[ResourceType]] = {}
        self._by_url: dict[tuple[str, str, str], ResourceType] = {}
        self._by_kind: dict[tuple[str, str], ResourceType] = {}
        self._rebuild()

    def _rebuild(self) -> None:
        every = [*self._builtin, *(t for types in self._custom.values() for t in types)]
        self._by_url = {(t.group, t.version, t.plural): t for t in every}
        self._by_kind = {(t.api_version, t.kind): t for t in every}

    def set_crd(self, crd_name: str, types: list[ResourceType]) -> None:
        with self._lock:
            self._custom[crd_name] = types
            self._rebuild()

    def remove_crd(self, crd_name: str) -> None:
        with self._lock:
            self._custom.pop(crd_name, None)
            self._rebuild()

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_url.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        return self._by_kind.get((api_version, kind))

    def types(self) -> list[ResourceType]:
        return list(self._by_url.values())

    def groups(self) -> list[GroupVersions]:
        """Every named group (core excluded), built-in groups first as kube-apiserver lists them."""
        versions: dict[str, list[str]] = {}
        for t in self._by_url.values():
            if t.group and t.version not in versions.setdefault(t.group, []):
                versions[t.group].append(t.version)
        order = {group: index for index, group in enumerate(CORE_GROUP_ORDER)}
        names = sorted(versions, key=lambda g: (order.get(g, len(order)), g))
        return [GroupVersions(g, tuple(sorted(versions[g], key=_version_priority))) for g in names]

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return sorted(
            (t for t in self._by_url.values() if t.group == group and t.version == version),
            key=lambda t: t.plural,
        )


def _version_priority(version: str) -> tuple[int, int, int, str]:
    """Kubernetes version ordering: GA > beta > alpha, higher numbers first."""
    import re

    match = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if match is None:
        return (3, 0, 0, version)
    major, stage, minor = int(match.group(1)), match.group(2), int(match.group(3) or 0)
    stage_rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (stage_rank, -major, -minor, version)


def discovery_entry(t: ResourceType) -> JsonObject:
    """The APIResource entry of a type in an APIResourceList."""
    entry: JsonObject = {
        "name": t.plural,
        "singularName": t.singular,
        "namespaced": t.namespaced,
        "kind": t.kind,
        "verbs": list(t.verbs),
    }
    if t.short_names:
        entry["shortNames"] = list(t.short_names)
    if t.categories:
        entry["categories"] = list(t.categories)
    return entry


def subresource_entries(t: ResourceType) -> list[JsonObject]:
    entries: list[JsonObject] = []
    for sub in t.subresources:
        if sub == "status":
            entries.append(
                {
                    "name": f"{t.plural}/status",
                    "singularName": "",
                    "namespaced": t.namespaced,
                    "kind": t.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
        elif sub == "token":
            entries.append(
                {
                    "name": f"{t.plural}/token",
                    "singularName": "",
                    "namespaced": t.namespaced,
                    "group": "authentication.k8s.io",
                    "version": "v1",
                    "kind": "TokenRequest",
                    "verbs": ["create"],
                }
            )
    return entries
