"""RBAC authorisation of API requests, as kube-apiserver's ``Node,RBAC`` chain decides them.

Every request that authentication let in is authorised before it is routed
(``WithAuthorization`` runs before the handlers): its attributes are derived
from the HTTP request, then the cluster's stored Roles, ClusterRoles,
RoleBindings and ClusterRoleBindings decide. A denial is kube-apiserver's 403
``Status``; SelfSubjectAccessReview (``access_review.py``) asks the same
authoriser.

Behaviour follows upstream Kubernetes:

* ``staging/src/k8s.io/apiserver/pkg/endpoints/request/requestinfo.go``
  (``NewRequestInfo``): the verb from the HTTP method (``get``/``list``/
  ``watch`` for GET and HEAD, ``create``, ``update``, ``patch``, ``delete``/
  ``deletecollection``), the ``/watch/`` and ``/proxy/`` path verbs, namespace,
  resource, name and subresource from the path, and a list or watch with a
  ``metadata.name=`` field selector authorised as a request for that name;
* ``plugin/pkg/auth/authorizer/rbac/rbac.go`` (``RuleAllows``) and
  ``pkg/apis/rbac/v1/evaluation_helpers.go`` (``VerbMatches``,
  ``APIGroupMatches``, ``ResourceMatches`` with ``*`` and ``*/subresource``,
  ``ResourceNameMatches``: a rule with ``resourceNames`` never matches a
  request without a name, so ``create`` and ``list`` cannot be scoped by name,
  ``NonResourceURLMatches``);
* ``pkg/registry/rbac/validation/rule.go`` (``VisitRulesFor``,
  ``appliesTo``, the ``describeSubject`` wording of an allow reason):
  ClusterRoleBindings everywhere, RoleBindings in the request's namespace; a
  ServiceAccount subject without a namespace means the binding's; a binding
  whose role is missing is a resolution error that the denial's reason names;
* ``staging/src/k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors.go``
  (``Forbidden``, ``forbiddenMessage``) and apimachinery's ``NewForbidden``:
  ``secrets "x" is forbidden: User "system:serviceaccount:NS:NAME" cannot get
  resource "secrets" in API group "" in the namespace "NS"``, reason
  ``Forbidden``, code 403, details name/group/kind;
* the privileged-group authoriser: ``system:masters`` (the kubeconfig's admin
  token) is allowed everything;
* ``plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go``: the default
  ClusterRoles and ClusterRoleBindings every cluster starts with, for the
  ones a client of this project meets (discovery, ``system:basic-user`` with
  SelfSubjectAccessReview, ``system:auth-delegator`` for TokenReview,
  ``cluster-admin``); ``bootstrap_policy`` below, ensured at every start.

Not emulated: aggregated ClusterRoles (``aggregationRule``) and the default
``admin``/``edit``/``view`` roles built from them, impersonation, the Node
authoriser (there are no nodes), webhook authorisers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from vaultflow.sandbox.kube.errors import ApiError, JsonObject
from vaultflow.sandbox.kube.store import ObjectStore

RBAC_GROUP = "rbac.authorization.k8s.io"
MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
SERVICE_ACCOUNTS = "system:serviceaccounts"

_SPECIAL_VERBS = frozenset({"proxy", "watch"})
_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})
_METHOD_VERBS = {
    "POST": "create",
    "GET": "get",
    "HEAD": "get",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}
# path.IsValidPathSegmentName: a name from a field selector must be usable in a URL path.
_INVALID_PATH_NAMES = frozenset({".", ".."})


@dataclass(frozen=True)
class UserInfo:
    """Who is asking (what authentication established)."""

    name: str
    groups: tuple[str, ...]


ADMIN = UserInfo("kubernetes-admin", (MASTERS, AUTHENTICATED))


def service_account_user(namespace: str, name: str) -> UserInfo:
    """The user a service-account token authenticates as (``pkg/serviceaccount/util.go``)."""
    return UserInfo(
        f"system:serviceaccount:{namespace}:{name}",
        (SERVICE_ACCOUNTS, f"{SERVICE_ACCOUNTS}:{namespace}", AUTHENTICATED),
    )


@dataclass(frozen=True)
class Attributes:
    """``authorizer.Attributes``: what is asked, by whom."""

    user: UserInfo
    verb: str
    resource_request: bool
    group: str = ""
    version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


# ---------------------------------------------------------------- request attributes


def _field_selector_name(selector: str) -> str:
    """The name a field selector requires exactly (``RequiresExactMatch("metadata.name")``), or ""."""
    if not selector:
        return ""
    found = ""
    for term in selector.split(","):  # the first term that requires it (andTerm.RequiresExactMatch)
        match = re.fullmatch(r"\s*metadata\.name\s*(==|=)\s*(.*?)\s*", term)
        if match is not None:
            found = match.group(2)
            break
    if not found or found in _INVALID_PATH_NAMES or "/" in found or "%" in found:
        return ""
    return found


def request_attributes(user: UserInfo, method: str, path: str, query: Mapping[str, list[str]]) -> Attributes:
    """The attributes kube-apiserver's ``RequestInfoFactory.NewRequestInfo`` derives from a request."""
    verb = method.lower()
    parts = [part for part in path.strip("/").split("/") if part]
    non_resource = Attributes(user, verb, False, path=path)
    if len(parts) < 3 or parts[0] not in ("api", "apis"):
        return non_resource
    prefix, parts = parts[0], parts[1:]
    group = ""
    if prefix == "apis":
        if len(parts) < 3:
            return non_resource
        group, parts = parts[0], parts[1:]
    version, parts = parts[0], parts[1:]
    if parts[0] in _SPECIAL_VERBS:
        if len(parts) < 2:
            return Attributes(user, verb, True, group, version)
        verb, parts = parts[0], parts[1:]
    else:
        verb = _METHOD_VERBS.get(method.upper(), "")
    namespace = ""
    if parts[0] == "namespaces" and len(parts) > 1:
        namespace = parts[1]
        if len(parts) > 2 and parts[2] not in _NAMESPACE_SUBRESOURCES:
            parts = parts[2:]
    resource = parts[0]
    name = parts[1] if len(parts) >= 2 else ""
    subresource = parts[2] if len(parts) >= 3 and verb != "proxy" else ""
    if not name and verb == "get":
        watch = (query.get("watch") or [""])[0].lower()
        verb = "watch" if "watch" in query and watch not in ("false", "0") else "list"
        name = _field_selector_name((query.get("fieldSelector") or [""])[-1])
    if not name and verb == "delete":
        verb = "deletecollection"
    return Attributes(user, verb, True, group, version, namespace, resource, subresource, name)


# ---------------------------------------------------------------- rule matching


def _has(values: list[str], wanted: str, everything: str = "*") -> bool:
    return any(value in (everything, wanted) for value in values)


def rule_allows(rule: Mapping[str, Any], request: Attributes) -> bool:
    """``RuleAllows``: does one PolicyRule grant ``request``?"""
    if not _has(rule.get("verbs") or [], request.verb):
        return False
    if not request.resource_request:
        return any(
            url in ("*", request.path) or (url.endswith("*") and request.path.startswith(url.rstrip("*")))
            for url in rule.get("nonResourceURLs") or []
        )
    if not _has(rule.get("apiGroups") or [], request.group):
        return False
    combined = f"{request.resource}/{request.subresource}" if request.subresource else request.resource
    resources = rule.get("resources") or []
    if not any(
        resource in ("*", combined) or (request.subresource and resource == f"*/{request.subresource}")
        for resource in resources
    ):
        return False
    names = rule.get("resourceNames") or []
    return not names or request.name in names


def _describe_subject(subject: Mapping[str, Any], binding_namespace: str) -> str:
    kind, name = subject.get("kind", ""), subject.get("name", "")
    if kind == "ServiceAccount":
        return f'{kind} "{name}/{subject.get("namespace") or binding_namespace}"'
    return f'{kind} "{name}"'


def _applies_to(user: UserInfo, subject: Mapping[str, Any], namespace: str) -> bool:
    kind, name = subject.get("kind"), subject.get("name", "")
    if kind == "User":
        return bool(user.name == name)
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        account_namespace = subject.get("namespace") or namespace
        return bool(account_namespace) and user.name == f"system:serviceaccount:{account_namespace}:{name}"
    return False


class RbacAuthorizer:
    """Decides requests from the RBAC objects of one cluster's store."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def _objects(self, plural: str, namespace: str | None) -> list[JsonObject]:
        rtype = self.store.catalog.lookup(RBAC_GROUP, "v1", plural)
        assert rtype is not None, plural
        return [entry.obj for entry in self.store.list(rtype, namespace).entries]

    def _role_rules(self, ref: Mapping[str, Any], namespace: str) -> list[JsonObject]:
        """``GetRoleReferenceRules``; a missing role is the lister's NotFound."""
        kind, name = ref.get("kind"), str(ref.get("name", ""))
        if kind not in ("Role", "ClusterRole"):
            raise LookupError(f'unsupported role reference kind: "{kind}"')
        plural = "roles" if kind == "Role" else "clusterroles"
        rtype = self.store.catalog.lookup(RBAC_GROUP, "v1", plural)
        assert rtype is not None, plural
        try:
            role = self.store.get(rtype, namespace if kind == "Role" else "", name).obj
        except ApiError:
            raise LookupError(f'{kind.lower()}.{RBAC_GROUP} "{name}" not found') from None
        return list(role.get("rules") or [])

    def visit_rules(self, user: UserInfo, namespace: str) -> Iterator[tuple[JsonObject | None, str]]:
        """``VisitRulesFor``: (rule, what grants it) for every rule that applies, (None, error) for
        every binding whose role cannot be resolved."""
        bindings = [("ClusterRoleBinding", b, "") for b in self._objects("clusterrolebindings", None)]
        if namespace:
            bindings += [("RoleBinding", b, namespace) for b in self._objects("rolebindings", namespace)]
        for kind, binding, where in bindings:
            subject = next(
                (s for s in binding.get("subjects") or [] if _applies_to(user, s, where)),
                None,
            )
            if subject is None:
                continue
            ref = binding.get("roleRef") or {}
            try:
                rules = self._role_rules(ref, where)
            except LookupError as error:
                yield None, str(error)
                continue
            name = binding["metadata"]["name"] + (f"/{where}" if where else "")
            granted_by = (
                f'{kind} "{name}" of {ref.get("kind")} "{ref.get("name")}" to '
                f"{_describe_subject(subject, where)}"
            )
            for rule in rules:
                yield rule, granted_by

    def authorize(self, request: Attributes) -> Decision:
        """The union of the privileged-group authoriser and RBAC (``rbac.go`` ``Authorize``)."""
        if MASTERS in request.user.groups:
            return Decision(True)
        resolution_errors: list[str] = []
        for rule, source in self.visit_rules(request.user, request.namespace):
            if rule is None:
                resolution_errors.append(source)
            elif rule_allows(rule, request):
                return Decision(True, f"RBAC: allowed by {source}")
        if not resolution_errors:
            return Decision(False)
        aggregate = (
            resolution_errors[0] if len(resolution_errors) == 1 else "[" + ", ".join(resolution_errors) + "]"
        )
        return Decision(False, f"RBAC: {aggregate}")


# ---------------------------------------------------------------- the 403


def forbidden_message(request: Attributes) -> str:
    """``forbiddenMessage`` of ``responsewriters/errors.go``."""
    user = request.user.name
    if not request.resource_request:
        return f'User "{user}" cannot {request.verb} path "{request.path}"'
    resource = f"{request.resource}/{request.subresource}" if request.subresource else request.resource
    if request.namespace:
        return (
            f'User "{user}" cannot {request.verb} resource "{resource}" in API group "{request.group}" '
            f'in the namespace "{request.namespace}"'
        )
    return (
        f'User "{user}" cannot {request.verb} resource "{resource}" in API group "{request.group}" '
        "at the cluster scope"
    )


def forbidden(request: Attributes, reason: str = "") -> ApiError:
    """The 403 ``Status`` of ``responsewriters.Forbidden`` (``apierrors.NewForbidden``)."""
    why = forbidden_message(request) + (f": {reason}" if reason else "")
    qualified = f"{request.resource}.{request.group}" if request.group else request.resource
    if not qualified:
        message = f"forbidden: {why}"
    elif not request.name:
        message = f"{qualified} is forbidden: {why}"
    else:
        message = f'{qualified} "{request.name}" is forbidden: {why}'
    return ApiError(403, "Forbidden", message, request.name, request.group, request.resource)


# ---------------------------------------------------------------- the default policy

_DEFAULTS_LABELS = {"kubernetes.io/bootstrapping": "rbac-defaults"}
_DEFAULTS_ANNOTATIONS = {"rbac.authorization.kubernetes.io/autoupdate": "true"}

# (name, rules, groups bound by the default ClusterRoleBinding of the same name)
_BOOTSTRAP: tuple[tuple[str, list[JsonObject], tuple[str, ...]], ...] = (
    (
        "cluster-admin",
        [
            {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
            {"nonResourceURLs": ["*"], "verbs": ["*"]},
        ],
        (MASTERS,),
    ),
    (
        "system:discovery",
        [
            {
                "nonResourceURLs": [
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/healthz",
                    "/livez",
                    "/openapi",
                    "/openapi/*",
                    "/readyz",
                    "/version",
                    "/version/",
                ],
                "verbs": ["get"],
            }
        ],
        (AUTHENTICATED,),
    ),
    (
        "system:public-info-viewer",
        [
            {
                "nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"],
                "verbs": ["get"],
            }
        ],
        (AUTHENTICATED, UNAUTHENTICATED),
    ),
    (
        "system:basic-user",
        [
            {
                "apiGroups": ["authorization.k8s.io"],
                "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                "verbs": ["create"],
            },
            {
                "apiGroups": ["authentication.k8s.io"],
                "resources": ["selfsubjectreviews"],
                "verbs": ["create"],
            },
        ],
        (AUTHENTICATED,),
    ),
    (
        "system:service-account-issuer-discovery",
        [
            {
                "nonResourceURLs": [
                    "/.well-known/openid-configuration",
                    "/.well-known/openid-configuration/",
                    "/openid/v1/jwks",
                    "/openid/v1/jwks/",
                ],
                "verbs": ["get"],
            }
        ],
        (SERVICE_ACCOUNTS,),
    ),
    (
        "system:auth-delegator",
        [
            {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
            {
                "apiGroups": ["authorization.k8s.io"],
                "resources": ["subjectaccessreviews"],
                "verbs": ["create"],
            },
        ],
        (),  # bound by whoever delegates (Vault's token reviewer), not by default
    ),
)


def bootstrap_policy() -> Iterator[tuple[str, JsonObject]]:
    """(plural, object) of the default ClusterRoles and ClusterRoleBindings a cluster starts with."""
    metadata = {"labels": _DEFAULTS_LABELS, "annotations": _DEFAULTS_ANNOTATIONS}
    for name, rules, groups in _BOOTSTRAP:
        yield (
            "clusterroles",
            {
                "apiVersion": f"{RBAC_GROUP}/v1",
                "kind": "ClusterRole",
                "metadata": {"name": name, **metadata},
                "rules": rules,
            },
        )
        if groups:
            yield (
                "clusterrolebindings",
                {
                    "apiVersion": f"{RBAC_GROUP}/v1",
                    "kind": "ClusterRoleBinding",
                    "metadata": {"name": name, **metadata},
                    "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": name},
                    "subjects": [{"apiGroup": RBAC_GROUP, "kind": "Group", "name": g} for g in groups],
                },
            )


def ensure_bootstrap_policy(store: ObjectStore) -> None:
    """Create the default ClusterRoles and bindings that are missing (the apiserver's
    ``rbac/bootstrap-roles`` post-start hook does it at every start; existing ones are kept)."""
    for plural, obj in bootstrap_policy():
        rtype = store.catalog.lookup(RBAC_GROUP, "v1", plural)
        assert rtype is not None, plural
        try:
            store.create(rtype, "", obj)
        except ApiError as error:
            if error.code != 409:
                raise
