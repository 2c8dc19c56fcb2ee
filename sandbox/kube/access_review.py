"""SelfSubjectAccessReview: "may I do this?", answered from the cluster's stored RBAC objects.

The emulated API server does not *enforce* RBAC (docs/sandbox.md: an
authenticated caller may do everything), but a client that asks first, the
way ``kubectl auth can-i`` and vaultflow's keeper do, gets the answer a real
cluster would give from the Roles, ClusterRoles and their bindings stored in
this one. That makes the RBAC manifests testable: load them, log in as the
service account, ask.

Behaviour follows kube-apiserver:

* ``pkg/registry/authorization/selfsubjectaccessreview/rest.go``: the subject
  is the caller; exactly one of ``resourceAttributes`` and
  ``nonResourceAttributes``, else 422;
* ``pkg/registry/rbac/validation/rule.go`` (``VisitRulesFor``, ``appliesTo``):
  ClusterRoleBindings everywhere, RoleBindings in the request's namespace; a
  ServiceAccount subject without a namespace means the binding's;
* ``pkg/apis/rbac/v1/evaluation_helpers.go``: verb, API group, resource
  (``resource/subresource``, ``*``, ``*/subresource``) and resource-name
  matching; a rule with ``resourceNames`` never matches a request without a
  name (so ``create`` cannot be scoped by name);
* the ``system:masters`` group (the kubeconfig's admin here) is allowed
  everything, as the privileged-group authorizer allows it.

Not emulated: aggregated ClusterRoles and the default ClusterRoles
(``system:basic-user`` and friends) that a real cluster bootstraps.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from vaultflow.sandbox.kube import errors
from vaultflow.sandbox.kube.authn import ServiceAccountAuthn
from vaultflow.sandbox.kube.errors import FieldCause, JsonObject
from vaultflow.sandbox.kube.store import ObjectStore

_RBAC = "rbac.authorization.k8s.io"
MASTERS = "system:masters"


@dataclass(frozen=True)
class UserInfo:
    """Who is asking (what authentication established)."""

    name: str
    groups: tuple[str, ...]


ADMIN = UserInfo("kubernetes-admin", (MASTERS, "system:authenticated"))


def service_account_user(namespace: str, name: str) -> UserInfo:
    """The user a service-account token authenticates as (``pkg/serviceaccount/util.go``)."""
    return UserInfo(
        f"system:serviceaccount:{namespace}:{name}",
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"),
    )


@dataclass(frozen=True)
class _Attributes:
    verb: str
    group: str
    resource: str
    subresource: str
    name: str
    namespace: str
    path: str  # non-resource requests only
    resource_request: bool


def _has(values: list[str], wanted: str) -> bool:
    return "*" in values or wanted in values


def _rule_allows(rule: JsonObject, request: _Attributes) -> bool:
    verbs = rule.get("verbs") or []
    if not _has(verbs, request.verb):
        return False
    if not request.resource_request:
        urls = rule.get("nonResourceURLs") or []
        return any(
            url in ("*", request.path) or (url.endswith("*") and request.path.startswith(url[:-1]))
            for url in urls
        )
    if not _has(rule.get("apiGroups") or [], request.group):
        return False
    combined = f"{request.resource}/{request.subresource}" if request.subresource else request.resource
    resources = rule.get("resources") or []
    resource_matches = "*" in resources or combined in resources
    if request.subresource and f"*/{request.subresource}" in resources:
        resource_matches = True
    if not resource_matches:
        return False
    names = rule.get("resourceNames") or []
    return not names or request.name in names


def _subject_matching(user: UserInfo, subjects: list[JsonObject], binding_namespace: str) -> str:
    """How ``rule.go``'s ``describeSubject`` names the first subject that is ``user`` ("" if none)."""
    for subject in subjects:
        kind, name = subject.get("kind"), subject.get("name", "")
        if kind == "User" and name == user.name:
            return f'User "{name}"'
        if kind == "Group" and name in user.groups:
            return f'Group "{name}"'
        if kind == "ServiceAccount":
            namespace = subject.get("namespace") or binding_namespace
            if user.name == f"system:serviceaccount:{namespace}:{name}":
                return f'ServiceAccount "{name}/{namespace}"'
    return ""


class AccessReviewer:
    """Evaluates requests against the RBAC objects of one cluster's store."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def _objects(self, plural: str, namespace: str | None) -> list[JsonObject]:
        rtype = self.store.catalog.lookup(_RBAC, "v1", plural)
        assert rtype is not None, plural
        return [entry.obj for entry in self.store.list(rtype, namespace).entries]

    def _role_rules(self, ref: JsonObject, namespace: str) -> list[JsonObject]:
        kind, name = ref.get("kind"), ref.get("name")
        plural, where = ("clusterroles", None) if kind == "ClusterRole" else ("roles", namespace)
        for role in self._objects(plural, where):
            if role["metadata"]["name"] == name:
                return list(role.get("rules") or [])
        return []

    def _rules_for(self, user: UserInfo, namespace: str) -> Iterator[tuple[JsonObject, str]]:
        """Every rule that applies to ``user`` in ``namespace``, with what grants it (as RBAC says it)."""
        bindings = [("ClusterRoleBinding", b, "") for b in self._objects("clusterrolebindings", None)]
        if namespace:
            bindings += [("RoleBinding", b, namespace) for b in self._objects("rolebindings", namespace)]
        for kind, binding, where in bindings:
            subject = _subject_matching(user, binding.get("subjects") or [], where)
            if not subject:
                continue
            ref = binding.get("roleRef") or {}
            name = binding["metadata"]["name"] + (f"/{where}" if where else "")
            granted_by = f'{kind} "{name}" of {ref.get("kind")} "{ref.get("name")}" to {subject}'
            for rule in self._role_rules(ref, where):
                yield rule, granted_by

    def authorize(self, user: UserInfo, request: _Attributes) -> tuple[bool, str]:
        if MASTERS in user.groups:
            return True, ""
        for rule, granted_by in self._rules_for(user, request.namespace if request.resource_request else ""):
            if _rule_allows(rule, request):
                return True, f"RBAC: allowed by {granted_by}"
        return False, ""

    def self_subject_access_review(self, user: UserInfo, body: Any) -> JsonObject:
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
        request = _Attributes(
            verb=str(attributes.get("verb", "")),
            group=str(attributes.get("group", "")),
            resource=str(attributes.get("resource", "")),
            subresource=str(attributes.get("subresource", "")),
            name=str(attributes.get("name", "")),
            namespace=str(attributes.get("namespace", "")),
            path=str(attributes.get("path", "")),
            resource_request=resource is not None,
        )
        allowed, reason = self.authorize(user, request)
        status: JsonObject = {"allowed": allowed}
        if reason:
            status["reason"] = reason
        return {
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": status,
        }


def caller(authn: ServiceAccountAuthn, authorization: str) -> UserInfo:
    """The user behind an authenticated request's ``Authorization`` header.

    ``KubeApi`` has already let the request in: a bearer token that is not a
    valid service-account token is the kubeconfig's admin token.
    """
    token = authorization.partition(" ")[2].strip()
    review = authn.review(token, ())
    if review.authenticated and review.claims is not None:
        return service_account_user(review.claims.namespace, review.claims.service_account)
    return ADMIN
