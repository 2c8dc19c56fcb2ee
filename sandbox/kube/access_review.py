"""SelfSubjectAccessReview: "may I do this?", answered by the cluster's own authoriser.

The answer is what ``authz.py`` decides for the same request, so a client that
asks first (``kubectl auth can-i``, vaultflow's keeper) learns exactly whether
the request itself would be a 403.

Behaviour follows kube-apiserver's
``pkg/registry/authorization/selfsubjectaccessreview/rest.go``: the subject is
the caller; exactly one of ``resourceAttributes`` and
``nonResourceAttributes``, else 422; ``status.allowed`` and, when the
authoriser gives one, ``status.reason`` (``RBAC: allowed by RoleBinding ...``).
"""

from __future__ import annotations

from typing import Any

from vaultflow.sandbox.kube import errors
from vaultflow.sandbox.kube.authz import Attributes, RbacAuthorizer, UserInfo
from vaultflow.sandbox.kube.errors import FieldCause, JsonObject


def self_subject_access_review(authorizer: RbacAuthorizer, user: UserInfo, body: Any) -> JsonObject:
    """The SelfSubjectAccessReview kube-apiserver answers ``POST .../selfsubjectaccessreviews`` with."""
    spec = body.get("spec") if isinstance(body, dict) else None
    if not isinstance(spec, dict):
        raise errors.bad_request("a SelfSubjectAccessReview needs a spec")
    resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if (resource is None) == (non_resource is None):
        raise errors.invalid(
            "SelfSubjectAccessReview",
            "",
            [
                FieldCause(
                    "spec.resourceAttributes",
                    "Invalid value: exactly one of nonResourceAttributes or resourceAttributes "
                    "must be specified",
                )
            ],
            "authorization.k8s.io",
        )
    attributes = resource or non_resource or {}
    request = Attributes(
        user=user,
        verb=str(attributes.get("verb", "")),
        resource_request=resource is not None,
        group=str(attributes.get("group", "")),
        version=str(attributes.get("version", "")),
        namespace=str(attributes.get("namespace", "")),
        resource=str(attributes.get("resource", "")),
        subresource=str(attributes.get("subresource", "")),
        name=str(attributes.get("name", "")),
        path=str(attributes.get("path", "")),
    )
    decision = authorizer.authorize(request)
    status: JsonObject = {"allowed": decision.allowed}
    if decision.reason:
        status["reason"] = decision.reason
    return {
        "kind": "SelfSubjectAccessReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {"creationTimestamp": None},
        "spec": spec,
        "status": status,
    }
