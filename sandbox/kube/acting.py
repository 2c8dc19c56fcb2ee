"""An in-process client of a cluster's object store that acts as one identity, under RBAC.

The sandbox's controllers (the ESO emulator) work on the store directly, for exact watch events
and the throughput the benchmarks ask for. A real controller's calls reach kube-apiserver with its
pod's service-account token and are authorised by the RBAC its chart installed; ``ActingStore``
puts the same check in front of the store: each call is authorised as the request it stands for
(verb, API group, resource, subresource, namespace, name, as ``requestinfo.go`` derives them from
the URL) by the cluster's ``RbacAuthorizer``, and a denial raises the API server's 403 ``Status``
(``authz.forbidden``), with its message, where the client would have received it.

Reads count as the requests they stand for (``get``, ``list``): a controller's informer cache needs
``list`` and ``watch``, which ``require_watch`` checks when the informer starts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vaultflow.sandbox.kube.authz import Attributes, RbacAuthorizer, UserInfo, forbidden
from vaultflow.sandbox.kube.errors import JsonObject
from vaultflow.sandbox.kube.resources import ResourceType
from vaultflow.sandbox.kube.store import Entry, ListResult, ObjectStore, Predicate


class ActingStore:
    """``store`` as ``user`` sees it: the store's read and write calls, each authorised first."""

    def __init__(self, store: ObjectStore, user: UserInfo) -> None:
        self.raw = store
        self.user = user
        self._authorizer = RbacAuthorizer(store)

    @property
    def catalog(self) -> Any:
        return self.raw.catalog

    @property
    def resource_version(self) -> int:
        return self.raw.resource_version

    def authorize(
        self, verb: str, rtype: ResourceType, namespace: str | None, name: str = "", subresource: str = ""
    ) -> None:
        """Raise the API server's 403 unless ``user`` may make this request."""
        request = Attributes(
            user=self.user,
            verb=verb,
            resource_request=True,
            group=rtype.group,
            version=rtype.version,
            namespace=(namespace or "") if rtype.namespaced else "",
            resource=rtype.plural,
            subresource=subresource,
            name=name,
        )
        decision = self._authorizer.authorize(request)
        if not decision.allowed:
            raise forbidden(request, decision.reason)

    def require_watch(self, rtype: ResourceType) -> None:
        """An informer across all namespaces: ``list`` and ``watch`` at the cluster scope."""
        self.authorize("list", rtype, None)
        self.authorize("watch", rtype, None)

    def get(self, rtype: ResourceType, namespace: str, name: str) -> Entry:
        self.authorize("get", rtype, namespace, name)
        return self.raw.get(rtype, namespace, name)

    def list(
        self, rtype: ResourceType, namespace: str | None, predicate: Predicate | None = None
    ) -> ListResult:
        self.authorize("list", rtype, namespace)
        return self.raw.list(rtype, namespace, predicate)

    def create(self, rtype: ResourceType, namespace: str, body: JsonObject) -> Entry:
        self.authorize("create", rtype, namespace)
        return self.raw.create(rtype, namespace, body)

    def update(
        self, rtype: ResourceType, namespace: str, name: str, body: JsonObject, *, subresource: str = ""
    ) -> Entry:
        self.authorize("update", rtype, namespace, name, subresource)
        return self.raw.update(rtype, namespace, name, body, subresource=subresource)

    def patch(
        self,
        rtype: ResourceType,
        namespace: str,
        name: str,
        apply_patch: Callable[[JsonObject], JsonObject],
        *,
        subresource: str = "",
    ) -> Entry:
        self.authorize("patch", rtype, namespace, name, subresource)
        return self.raw.patch(rtype, namespace, name, apply_patch, subresource=subresource)

    def delete(self, rtype: ResourceType, namespace: str, name: str) -> tuple[Entry, bool]:
        self.authorize("delete", rtype, namespace, name)
        return self.raw.delete(rtype, namespace, name)
