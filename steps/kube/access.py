"""May this identity do that? Asked of the API server, as ``kubectl auth can-i`` asks it.

A step that will write something checks first that it may do everything it is about to do,
with ``SelfSubjectAccessReview``s, so that a missing grant is named before anything changes,
instead of trying a read that stands in for the permission (a read the RBAC may refuse, or
allow, regardless of the write that follows).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Permission:
    """One request's attributes, as ``kubectl auth can-i VERB RESOURCE[/NAME] -n NAMESPACE`` names them."""

    verb: str
    resource: str  # "secrets", "serviceaccounts/token" (resource/subresource)
    namespace: str = ""  # "" for the cluster scope
    group: str = ""
    name: str = ""

    def __str__(self) -> str:
        resource = f"{self.resource}.{self.group}" if self.group else self.resource
        where = f" in namespace {self.namespace}" if self.namespace else " at the cluster scope"
        return f"{self.verb} {resource}{f'/{self.name}' if self.name else ''}{where}"


def denied(api_client: Any, permissions: Iterable[Permission]) -> list[Permission]:
    """The permissions of ``permissions`` that the client's identity does not have (in order).

    Raises the client's ``ApiException`` when the API server cannot answer (callers wrap it in
    ``kube_errors``, which names the cluster)."""
    from kubernetes import client

    authorization = client.AuthorizationV1Api(api_client)
    refused = []
    for permission in permissions:
        resource, _, subresource = permission.resource.partition("/")
        review = authorization.create_self_subject_access_review(
            client.V1SelfSubjectAccessReview(
                spec=client.V1SelfSubjectAccessReviewSpec(
                    resource_attributes=client.V1ResourceAttributes(
                        verb=permission.verb,
                        group=permission.group,
                        resource=resource,
                        subresource=subresource or None,
                        namespace=permission.namespace or None,
                        name=permission.name or None,
                    )
                )
            )
        )
        if not review.status.allowed:
            refused.append(permission)
    return refused
