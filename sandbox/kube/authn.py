"""TokenRequest and TokenReview: the two authentication APIs of an emulated cluster.

``tokens.py`` signs and verifies JWTs and knows nothing of stored objects; this
module adds what needs the store: a TokenRequest names a ServiceAccount (and
maybe a Pod or Secret the token is bound to) that must exist, and a TokenReview
(also how every API request with a service-account token is authenticated)
checks that the account and the bound object still exist with the UIDs in the
token, and that a legacy token is still held by its Secret.

Behaviour follows kube-apiserver: ``pkg/registry/core/serviceaccount/storage/token.go``
(TokenRequest: defaults, the 10-minute and 2^32-second bounds, bound object
kinds and UID check), ``pkg/registry/authentication/tokenreview/storage.go`` and
``pkg/serviceaccount/claims.go`` / ``legacy.go`` (what a review accepts and the
``[invalid bearer token, ...]`` wording). ``api.py`` only routes to it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from vaultflow.sandbox.kube import errors
from vaultflow.sandbox.kube.errors import ApiError, FieldCause, JsonObject
from vaultflow.sandbox.kube.resources import ResourceType
from vaultflow.sandbox.kube.store import ObjectStore
from vaultflow.sandbox.kube.strategies import SERVICE_ACCOUNT_TOKEN_TYPE, secret_data
from vaultflow.sandbox.kube.tokens import (
    DEFAULT_EXPIRATION_SECONDS,
    MIN_EXPIRATION_SECONDS,
    InvalidToken,
    ObjectRef,
    TokenClaims,
    TokenIssuer,
)

MAX_EXPIRATION_SECONDS = 2**32
_BINDABLE = {"Pod": "pods", "Secret": "secrets"}


@dataclass(frozen=True)
class ReviewResult:
    """The outcome of a TokenReview."""

    authenticated: bool
    claims: TokenClaims | None = None
    audiences: tuple[str, ...] = ()
    error: str = ""

    def status(self) -> JsonObject:
        """``status`` of the TokenReview object, as kube-apiserver fills it."""
        if not self.authenticated or self.claims is None:
            return {"authenticated": False, "error": self.error}
        claims = self.claims
        return {
            "authenticated": True,
            "user": {
                "username": claims.username,
                "uid": claims.service_account_uid,
                "groups": [
                    "system:serviceaccounts",
                    f"system:serviceaccounts:{claims.namespace}",
                    "system:authenticated",
                ],
            },
            "audiences": list(self.audiences),
        }


def _expiration_out_of_bounds(name: str, expiration: Any, bound: str) -> ApiError:
    return errors.invalid(
        "TokenRequest",
        name,
        [
            FieldCause(
                "spec.expirationSeconds", f"Invalid value: {expiration}: may not specify a duration {bound}"
            )
        ],
        "authentication.k8s.io",
    )


def _expiration(name: str, spec: JsonObject) -> int:
    """``spec.expirationSeconds`` (default one hour) within kube-apiserver's bounds."""
    expiration = spec.get("expirationSeconds") or DEFAULT_EXPIRATION_SECONDS
    if not isinstance(expiration, int) or expiration < MIN_EXPIRATION_SECONDS:
        raise _expiration_out_of_bounds(name, expiration, "less than 10 minutes")
    if expiration > MAX_EXPIRATION_SECONDS:
        raise _expiration_out_of_bounds(name, expiration, "larger than 2^32 seconds")
    return expiration


class ServiceAccountAuthn:
    """Issues and reviews one cluster's service-account tokens against its stored objects."""

    def __init__(self, store: ObjectStore, issuer: TokenIssuer) -> None:
        self.store = store
        self.issuer = issuer

    def _core(self, plural: str) -> ResourceType:
        rtype = self.store.catalog.lookup("", "v1", plural)
        assert rtype is not None, plural
        return rtype

    # ------------------------------------------------------------ TokenRequest

    def token_request(self, namespace: str, account_name: str, body: Any) -> JsonObject:
        """The TokenRequest object kube-apiserver answers ``POST .../serviceaccounts/<name>/token`` with."""
        account = self.store.get(self._core("serviceaccounts"), namespace, account_name).obj
        spec: JsonObject = (body.get("spec") or {}) if isinstance(body, dict) else {}
        expiration = _expiration(account_name, spec)
        bound = self._bound_object(namespace, spec.get("boundObjectRef"))
        token, expires_at = self.issuer.issue(
            namespace=namespace,
            service_account=account_name,
            service_account_uid=account["metadata"]["uid"],
            audiences=list(spec.get("audiences") or []),
            expiration_seconds=expiration,
            bound_object=bound,
        )
        return {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": account_name, "namespace": namespace, "creationTimestamp": None},
            "spec": {
                "audiences": list(spec.get("audiences") or self.issuer.api_audiences),
                "expirationSeconds": expiration,
                "boundObjectRef": spec.get("boundObjectRef"),
            },
            "status": {
                "token": token,
                "expirationTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires_at)),
            },
        }

    def _bound_object(self, namespace: str, ref: Any) -> ObjectRef | None:
        if not ref:
            return None
        kind = ref.get("kind", "")
        plural = _BINDABLE.get(kind)
        if plural is None:
            raise errors.bad_request(
                f'cannot bind token to object of type {kind!r}: only "Pod" and "Secret" are supported'
            )
        obj = self.store.get(self._core(plural), namespace, ref.get("name", "")).obj
        if ref.get("uid") and ref["uid"] != obj["metadata"]["uid"]:
            raise errors.conflict(
                plural, ref.get("name", ""), why="the UID in the bound object reference does not match"
            )
        return ObjectRef(kind, obj["metadata"]["name"], obj["metadata"]["uid"])

    # ------------------------------------------------------------ TokenReview

    def token_review(self, body: Any) -> JsonObject:
        """The TokenReview object kube-apiserver answers ``POST .../tokenreviews`` with."""
        if not isinstance(body, dict) or not isinstance(body.get("spec"), dict):
            raise errors.bad_request("a TokenReview needs a spec")
        spec = body["spec"]
        result = self.review(str(spec.get("token", "")), tuple(spec.get("audiences") or ()))
        return {
            "kind": "TokenReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": result.status(),
        }

    def review(self, token: str, audiences: tuple[str, ...]) -> ReviewResult:
        """What TokenReview answers for ``token`` (also how API requests are authenticated)."""
        try:
            claims = self.issuer.verify(token)
        except InvalidToken as error:
            return ReviewResult(False, error=f"[invalid bearer token, {error}]")
        wanted = audiences or self.issuer.api_audiences
        token_audiences = claims.audiences or self.issuer.api_audiences
        accepted = tuple(a for a in wanted if a in token_audiences)
        if not accepted:
            return ReviewResult(
                False,
                error=(
                    f"[invalid bearer token, token audiences {list(token_audiences)} "
                    f"is invalid for the target audiences {list(wanted)}]"
                ),
            )
        problem = self._still_valid(claims, token)
        if problem:
            return ReviewResult(False, error=f"[invalid bearer token, {problem}]")
        return ReviewResult(True, claims, accepted)

    def _still_valid(self, claims: TokenClaims, token: str) -> str:
        """A token dies with its service account, and with the object it is bound to ("" when valid)."""
        try:
            account = self.store.get(
                self._core("serviceaccounts"), claims.namespace, claims.service_account
            ).obj
        except ApiError:
            return f'serviceaccounts "{claims.service_account}" not found'
        uid = account["metadata"]["uid"]
        if uid != claims.service_account_uid:
            return f"service account UID ({uid}) does not match claim ({claims.service_account_uid})"
        if claims.legacy_secret:
            return self._legacy_secret_problem(claims, token)
        if claims.bound_object is not None:
            return self._bound_object_problem(claims.namespace, claims.bound_object)
        return ""

    def _legacy_secret_problem(self, claims: TokenClaims, token: str) -> str:
        """A legacy token is valid while its ``service-account-token`` Secret holds it."""
        try:
            secret = self.store.get(self._core("secrets"), claims.namespace, claims.legacy_secret).obj
        except ApiError:
            return f'secrets "{claims.legacy_secret}" not found'
        if (
            secret.get("type") != SERVICE_ACCOUNT_TOKEN_TYPE
            or secret_data(secret).get("token") != token.encode()
        ):
            return "token does not match the service-account token secret"
        return ""

    def _bound_object_problem(self, namespace: str, bound: ObjectRef) -> str:
        rtype = self._core(_BINDABLE[bound.kind])
        try:
            obj = self.store.get(rtype, namespace, bound.name).obj
        except ApiError:
            return f'{rtype.plural} "{bound.name}" not found'
        if obj["metadata"]["uid"] != bound.uid:
            return f"the UID of {rtype.plural} {bound.name!r} does not match the token"
        return ""
