"""The HTTP face of an emulated cluster: kube-apiserver's REST paths, verbs and bodies.

Served paths: discovery (``/version``, ``/api``, ``/api/v1``, ``/apis``,
``/apis/<group>``, ``/apis/<group>/<version>``), OIDC discovery of the
service-account issuer, and for every served type the collection, object and
subresource paths with get, list (selectors, pagination, ``watch=true``),
create, update, patch, delete and deletecollection. Every request but the
anonymous endpoints must carry a bearer token: the cluster's admin token from
the kubeconfig (``system:masters``: everything is allowed), or a service-account
token the cluster issued, whose requests RBAC authorises before they are
routed, as kube-apiserver's filter chain does (a denial is its 403).
TokenRequest, TokenReview and that authentication are ``authn.py``'s, the
authorisation ``authz.py``'s, the patch flavours ``patch.py``'s: this module
only routes.
"""

from __future__ import annotations

import hmac
import json
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from vaultflow.sandbox.http import Request, Response, Router
from vaultflow.sandbox.kube import errors, protobuf
from vaultflow.sandbox.kube.access_review import self_subject_access_review
from vaultflow.sandbox.kube.authn import ServiceAccountAuthn
from vaultflow.sandbox.kube.authz import (
    ADMIN,
    RbacAuthorizer,
    UserInfo,
    forbidden,
    request_attributes,
    service_account_user,
)
from vaultflow.sandbox.kube.errors import ApiError, FieldCause, JsonObject
from vaultflow.sandbox.kube.patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from vaultflow.sandbox.kube.resources import ResourceType, discovery_entry, subresource_entries
from vaultflow.sandbox.kube.selectors import (
    EXTRA_FIELDS,
    Predicate,
    parse_field_selector,
    parse_label_selector,
)
from vaultflow.sandbox.kube.store import Entry, ObjectStore, Preconditions, encode
from vaultflow.sandbox.kube.tokens import TokenIssuer

KUBERNETES_VERSION = ("1", "33")
_ANONYMOUS_PATHS = frozenset(
    {"/version", "/healthz", "/livez", "/readyz", "/.well-known/openid-configuration", "/openid/v1/jwks"}
)
_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})
_WATCH_DEFAULT_TIMEOUT = 1800.0  # kube-apiserver's --min-request-timeout


@dataclass(frozen=True)
class _Target:
    """What a resource URL addresses."""

    rtype: ResourceType
    namespace: str | None
    name: str
    subresource: str


def _no_such_resource() -> ApiError:
    """What kube-apiserver answers for a path no served type matches."""
    return ApiError(404, "NotFound", "the server could not find the requested resource")


def _status_response(error: ApiError) -> Response:
    return Response.json(error.status(), error.code)


def _success(name: str, rtype: ResourceType, uid: str) -> JsonObject:
    details: JsonObject = {"name": name, "kind": rtype.plural, "uid": uid}
    if rtype.group:
        details["group"] = rtype.group
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}


class KubeApi:
    """Routes requests of one cluster to its ``ObjectStore``."""

    def __init__(
        self, store: ObjectStore, issuer: TokenIssuer, admin_tokens: frozenset[str], address: str
    ) -> None:
        self.store = store
        self.issuer = issuer
        self.authn = ServiceAccountAuthn(store, issuer)
        self.authorizer = RbacAuthorizer(store)
        self._reviews: dict[tuple[str, str], Callable[[Request], JsonObject]] = {
            ("authentication.k8s.io", "tokenreviews"): lambda r: self.authn.token_review(self._body(r)),
            ("authorization.k8s.io", "selfsubjectaccessreviews"): self._self_subject_access_review,
        }
        self._admin_tokens = admin_tokens
        self._address = address
        self.stopped = threading.Event()
        router = Router(not_found=self._not_found, method_not_allowed=self._method_not_allowed)
        router.add("GET", "/version", self._version)
        for probe in ("/healthz", "/livez", "/readyz"):
            router.add("GET", probe, lambda _: Response.text("ok"))
        router.add("GET", "/.well-known/openid-configuration", self._openid_configuration)
        router.add("GET", "/openid/v1/jwks", lambda _: Response.json(self.issuer.jwks()))
        router.add("GET", "/api", self._core_versions)
        router.add("GET", "/apis", self._group_list)
        router.add("GET", "/api/{version}", self._core_resources)
        router.add("GET", "/apis/{group}", self._group)
        router.add("GET", "/apis/{group}/{version}", self._group_resources)
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            router.add(method, "/api/{version}/{rest...}", self._resource)
            router.add(method, "/apis/{group}/{version}/{rest...}", self._resource)
        self._router = router

    # ------------------------------------------------------------ plumbing

    def __call__(self, request: Request) -> Response:
        request.path = request.path.rstrip("/") or "/"  # kube-apiserver serves /version/ like /version
        try:
            if request.path not in _ANONYMOUS_PATHS:
                self._authorize(request, self._authenticate(request))
            return self._router(request)
        except ApiError as error:
            return _status_response(error)

    def _not_found(self, request: Request) -> Response:
        return _status_response(_no_such_resource())

    def _method_not_allowed(self, request: Request) -> Response:
        return _status_response(errors.method_not_allowed())

    def _authenticate(self, request: Request) -> UserInfo:
        """The caller: the admin (a kubeconfig token) or a service account (a token this cluster issued)."""
        scheme, _, token = request.header("authorization").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise errors.unauthorized()
        token = token.strip()
        if any(hmac.compare_digest(token, admin) for admin in self._admin_tokens):
            return ADMIN
        review = self.authn.review(token, ())
        if not review.authenticated or review.claims is None:
            raise errors.unauthorized()
        return service_account_user(review.claims.namespace, review.claims.service_account)

    def _authorize(self, request: Request, user: UserInfo) -> None:
        """``WithAuthorization``: a request RBAC does not allow is a 403 before any handler runs."""
        if user is ADMIN:
            return
        attributes = request_attributes(user, request.method, request.path, request.query)
        decision = self.authorizer.authorize(attributes)
        if not decision.allowed:
            raise forbidden(attributes, decision.reason)

    # ------------------------------------------------------------ discovery

    def _version(self, _: Request) -> Response:
        major, minor = KUBERNETES_VERSION
        return Response.json(
            {
                "major": major,
                "minor": minor,
                "gitVersion": f"v{major}.{minor}.0+vaultflow-sandbox",
                "gitCommit": "0000000000000000000000000000000000000000",
                "gitTreeState": "clean",
                "buildDate": "2026-01-01T00:00:00Z",
                "goVersion": "python",
                "compiler": "vaultflow-sandbox",
                "platform": "linux/amd64",
            }
        )

    def _openid_configuration(self, _: Request) -> Response:
        return Response.json(
            {
                "issuer": self.issuer.issuer,
                "jwks_uri": f"{self._address}/openid/v1/jwks",
                "response_types_supported": ["id_token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        )

    def _core_versions(self, _: Request) -> Response:
        host = self._address.split("://", 1)[-1]
        return Response.json(
            {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": host}],
            }
        )

    @staticmethod
    def _group_json(group: str, versions: tuple[str, ...]) -> JsonObject:
        listed = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"name": group, "versions": listed, "preferredVersion": listed[0]}

    def _group_list(self, _: Request) -> Response:
        groups = [self._group_json(g.group, g.versions) for g in self.store.catalog.groups()]
        return Response.json({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})

    def _group(self, request: Request) -> Response:
        for group in self.store.catalog.groups():
            if group.group == request.params["group"]:
                return Response.json(
                    {"kind": "APIGroup", "apiVersion": "v1", **self._group_json(group.group, group.versions)}
                )
        return self._not_found(request)

    def _resource_list(self, group: str, version: str) -> Response | None:
        types = self.store.catalog.in_group_version(group, version)
        if not types:
            return None
        resources: list[JsonObject] = []
        for rtype in types:
            resources.append(discovery_entry(rtype))
            resources.extend(subresource_entries(rtype))
        group_version = f"{group}/{version}" if group else version
        return Response.json(
            {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": group_version,
                "resources": resources,
            }
        )

    def _core_resources(self, request: Request) -> Response:
        return self._resource_list("", request.params["version"]) or self._not_found(request)

    def _group_resources(self, request: Request) -> Response:
        return self._resource_list(request.params["group"], request.params["version"]) or self._not_found(
            request
        )

    # ------------------------------------------------------------ resources

    def _target(self, request: Request) -> _Target:
        group = request.params.get("group", "")
        version = request.params["version"]
        parts = [p for p in request.params["rest"].split("/") if p]
        namespace: str | None = None
        if len(parts) >= 3 and parts[0] == "namespaces" and parts[2] not in _NAMESPACE_SUBRESOURCES:
            namespace, parts = parts[1], parts[2:]
        if not parts or len(parts) > 3:
            raise _no_such_resource()
        rtype = self.store.catalog.lookup(group, version, parts[0])
        if rtype is None or (namespace is not None and not rtype.namespaced):
            raise _no_such_resource()
        name = parts[1] if len(parts) > 1 else ""
        subresource = parts[2] if len(parts) > 2 else ""
        if subresource and subresource not in rtype.subresources:
            raise _no_such_resource()
        if rtype.namespaced and name and namespace is None:
            raise _no_such_resource()
        return _Target(rtype, namespace, name, subresource)

    def _resource(self, request: Request) -> Response:
        target = self._target(request)
        method = request.method
        review = self._reviews.get(target.rtype.storage_key)
        if review is not None:  # create-only kinds: the answer is the reviewed object
            if method != "POST" or target.name:
                raise errors.method_not_allowed()
            return Response.json(review(request), 201)
        if not target.name:
            if method in ("GET", "HEAD"):
                return (
                    self._watch(request, target)
                    if _truthy(request.query_value("watch"))
                    else self._list(request, target)
                )
            if target.rtype.namespaced and target.namespace is None:
                raise errors.method_not_allowed()
            if method == "POST":
                return self._create(request, target)
            if method == "DELETE":
                return self._delete_collection(request, target)
            raise errors.method_not_allowed()
        if target.subresource == "token":
            if method != "POST":
                raise errors.method_not_allowed()
            body = self._body(request) or {}
            return Response.json(self.authn.token_request(target.namespace or "", target.name, body), 201)
        handlers = {"GET": self._get, "PUT": self._update, "PATCH": self._patch, "DELETE": self._delete}
        handler = handlers.get(method)
        if handler is None or (target.subresource and method == "DELETE"):
            raise errors.method_not_allowed()
        return handler(request, target)

    def _self_subject_access_review(self, request: Request) -> JsonObject:
        """``kubectl auth can-i`` sends its review as protobuf; other clients as JSON."""
        body = (
            protobuf.decode(request.body)
            if request.content_type == protobuf.MEDIA_TYPE
            else self._body(request)
        )
        return self_subject_access_review(self.authorizer, self._authenticate(request), body)

    def _encoded(self, rtype: ResourceType, entry: Entry) -> bytes:
        """The object as the requested version sees it (custom resources may be stored under another)."""
        if entry.obj.get("apiVersion") == rtype.api_version:
            return entry.encoded
        return encode({**entry.obj, "apiVersion": rtype.api_version})

    def _object_response(self, rtype: ResourceType, entry: Entry, status: int = 200) -> Response:
        return Response.raw_json(self._encoded(rtype, entry), status)

    def _body(self, request: Request) -> Any:
        try:
            return request.json()
        except ValueError:
            raise errors.bad_request("the request body is not valid JSON") from None

    def _predicate(self, request: Request, rtype: ResourceType) -> Predicate | None:
        label = request.query_value("labelSelector")
        field = request.query_value("fieldSelector")
        label_match = parse_label_selector(label) if label else None
        supported = EXTRA_FIELDS.get(rtype.storage_key, frozenset()) | frozenset(rtype.selectable_fields)
        field_match = parse_field_selector(field, supported) if field else None
        if label_match is None and field_match is None:
            return None
        return lambda obj: (
            (label_match is None or label_match(obj)) and (field_match is None or field_match(obj))
        )

    def _list(self, request: Request, target: _Target) -> Response:
        rtype = target.rtype
        try:
            limit = int(request.query_value("limit") or 0)
        except ValueError:
            raise errors.bad_request("limit must be an integer") from None
        result = self.store.list(
            rtype,
            target.namespace,
            self._predicate(request, rtype),
            limit=limit,
            continue_token=request.query_value("continue"),
        )
        metadata: JsonObject = {"resourceVersion": str(result.resource_version)}
        if result.continue_token:
            metadata["continue"] = result.continue_token
            metadata["remainingItemCount"] = result.remaining
        head = json.dumps(
            {"kind": rtype.list_kind, "apiVersion": rtype.api_version, "metadata": metadata},
            separators=(",", ":"),
        )
        items = b",".join(self._encoded(rtype, entry) for entry in result.entries)
        return Response.raw_json(head[:-1].encode() + b',"items":[' + items + b"]}")

    def _watch(self, request: Request, target: _Target) -> Response:
        since_text = request.query_value("resourceVersion")
        since = int(since_text) if since_text.isdigit() and since_text != "0" else None
        headers = {"Content-Type": "application/json"}
        try:
            events = self.store.watch(
                target.rtype,
                target.namespace,
                self._predicate(request, target.rtype),
                since=since,
                timeout=_watch_timeout(request),
                stopped=self.stopped,
                bookmarks=_truthy(request.query_value("allowWatchBookmarks")),
            )
        except ApiError as error:
            if error.code != 410:
                raise
            # Past authentication, authorisation and a valid resourceVersion, kube-apiserver's watch
            # cache answers a too old one with 200 and one ERROR event (the cacher's newErrWatcher),
            # as the uncached etcd watch does; client-go's reflector relists on it.
            gone = json.dumps(error.status(), separators=(",", ":")).encode()
            return Response(status=200, headers=headers, stream=iter([_watch_event("ERROR", gone)]))

        def stream() -> Iterator[bytes]:
            for kind, entry in events:
                encoded = entry.encoded if kind == "ERROR" else self._encoded(target.rtype, entry)
                yield _watch_event(kind, encoded)

        return Response(status=200, headers=headers, stream=stream())

    def _get(self, request: Request, target: _Target) -> Response:
        entry = self.store.get(target.rtype, target.namespace or "", target.name)
        return self._object_response(target.rtype, entry)

    def _create(self, request: Request, target: _Target) -> Response:
        body = self._body(request)
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        entry = self.store.create(target.rtype, target.namespace or "", body, dry_run=_dry_run(request))
        return self._object_response(target.rtype, entry, 201)

    def _update(self, request: Request, target: _Target) -> Response:
        body = self._body(request)
        if not isinstance(body, dict):
            raise errors.bad_request("the body of the request must be a JSON object")
        entry = self.store.update(
            target.rtype,
            target.namespace or "",
            target.name,
            body,
            subresource=target.subresource,
            dry_run=_dry_run(request),
        )
        return self._object_response(target.rtype, entry)

    def _patch(self, request: Request, target: _Target) -> Response:
        patch = self._body(request)
        content_type = request.content_type
        rtype = target.rtype
        apply: Callable[[Any, Any], Any]
        if content_type == "application/json-patch+json":
            apply = json_patch
        elif content_type == "application/merge-patch+json":
            apply = merge_patch
        elif content_type == "application/strategic-merge-patch+json" and not rtype.is_custom:
            apply = strategic_merge_patch
        elif content_type == "application/apply-patch+yaml":
            raise ApiError(
                415,
                "UnsupportedMediaType",
                "server-side apply is not supported by the vaultflow sandbox; use a merge patch",
            )
        else:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types include: "
                f"application/json-patch+json, application/merge-patch+json"
                f"{'' if rtype.is_custom else ', application/strategic-merge-patch+json'}",
            )

        def patched(current: JsonObject) -> JsonObject:
            try:
                result: JsonObject = apply(current, patch)
            except PatchError as error:
                raise error.api_error() from None
            return result

        entry = self.store.patch(
            rtype,
            target.namespace or "",
            target.name,
            patched,
            subresource=target.subresource,
            dry_run=_dry_run(request),
        )
        return self._object_response(rtype, entry)

    def _delete_options(self, request: Request) -> tuple[Preconditions | None, str]:
        options = self._body(request) if request.body else {}
        options = options if isinstance(options, dict) else {}
        propagation = (
            request.query_value("propagationPolicy") or options.get("propagationPolicy") or "Background"
        )
        if options.get("orphanDependents") is True:
            propagation = "Orphan"
        if propagation not in ("Background", "Foreground", "Orphan"):
            raise errors.invalid(
                "DeleteOptions", "", [FieldCause("propagationPolicy", f'Unsupported value: "{propagation}"')]
            )
        raw = options.get("preconditions") or {}
        preconditions = Preconditions(raw.get("uid"), raw.get("resourceVersion")) if raw else None
        return preconditions, propagation

    def _delete(self, request: Request, target: _Target) -> Response:
        preconditions, propagation = self._delete_options(request)
        rtype = target.rtype
        entry, deleted = self.store.delete(
            rtype,
            target.namespace or "",
            target.name,
            preconditions=preconditions,
            propagation=propagation,
            dry_run=_dry_run(request),
        )
        if rtype.storage_key == ("", "namespaces"):
            terminating = {**entry.obj, "status": {"phase": "Terminating"}}
            return Response.json(terminating)
        if deleted and not rtype.is_custom:
            return Response.json(_success(target.name, rtype, entry.obj["metadata"]["uid"]))
        return self._object_response(rtype, entry)

    def _delete_collection(self, request: Request, target: _Target) -> Response:
        _, propagation = self._delete_options(request)
        result = self.store.list(target.rtype, target.namespace, self._predicate(request, target.rtype))
        for entry in result.entries:
            metadata = entry.obj["metadata"]
            try:
                self.store.delete(
                    target.rtype, metadata.get("namespace", ""), metadata["name"], propagation=propagation
                )
            except ApiError as error:
                if error.code != 404:
                    raise
        return Response.json({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"})


def _watch_event(kind: str, encoded: bytes) -> bytes:
    return b'{"type":"' + kind.encode() + b'","object":' + encoded + b"}\n"


def _watch_timeout(request: Request) -> float:
    """``timeoutSeconds``, or when absent or 0 kube-apiserver's default: ``--min-request-timeout``
    (1800 s) times a random factor in [1, 2), which spreads the watches' reconnections out."""
    text = request.query_value("timeoutSeconds")
    try:
        seconds = float(text) if text else 0.0
    except ValueError:
        raise errors.bad_request("timeoutSeconds must be an integer") from None
    return seconds if seconds > 0 else _WATCH_DEFAULT_TIMEOUT * (1.0 + random.random())


def _truthy(value: str) -> bool:
    return value.lower() in ("true", "1")


def _dry_run(request: Request) -> bool:
    return request.query_value("dryRun") == "All"
