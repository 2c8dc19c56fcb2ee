"""Referent authentication: a ClusterSecretStore whose credentials live in the consumer's namespace.

A credential reference without a ``namespace`` in a ClusterSecretStore means "in the namespace
of the ExternalSecret or PushSecret using the store". Each ESO provider decides this for its own
fields (its ``isReferentSpec``); when it holds, ``NewClient`` called without a namespace (the
store controller validating the store) builds a client without credentials, and ``Validate``
returns ``ValidationResultUnknown`` with no error, so the store is ``Ready`` with reason
``Valid`` (``pkg/controllers/secretstore/common.go`` ``validateStore`` only looks at the result
when ``Validate`` also returns an error).

Followed per provider (ESO 2.9.0): ``providers/v1/vault/provider.go``, ``providers/v1/aws/util/
provider.go`` ``IsReferentSpec``, ``providers/v1/gcp/secretmanager/provider.go``,
``providers/v1/azure/keyvault/keyvault.go``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

JsonObject = dict[str, Any]


def _no_namespace(refs: Iterable[Any]) -> bool:
    """Any of the given references present (a mapping) and without a namespace."""
    return any(isinstance(ref, dict) and not ref.get("namespace") for ref in refs)


def _required(parent: Any, key: str) -> Any:
    """A reference Go holds as a struct, not a pointer: present (maybe empty) whenever its parent is."""
    return (parent.get(key) or {}) if isinstance(parent, dict) else None


def _optional(parent: Any, key: str) -> Any:
    return parent.get(key) if isinstance(parent, dict) else None


def _vault(spec: JsonObject) -> bool:
    """Vault's ``isReferentSpec``: a token, AppRole, Kubernetes, LDAP, userpass, JWT, cert or IAM
    secret (or service account) reference without a namespace."""
    auth = spec.get("auth") or {}
    kubernetes, jwt, iam = auth.get("kubernetes"), auth.get("jwt"), auth.get("iam")
    iam_secret = _optional(iam, "secretRef")
    return _no_namespace(
        [
            auth.get("tokenSecretRef"),
            _required(auth.get("appRole"), "secretRef"),
            _optional(kubernetes, "secretRef"),
            _optional(kubernetes, "serviceAccountRef"),
            _required(auth.get("ldap"), "secretRef"),
            _required(auth.get("userPass"), "secretRef"),
            _optional(jwt, "secretRef"),
            _required(_optional(jwt, "kubernetesServiceAccountToken"), "serviceAccountRef"),
            _required(auth.get("cert"), "secretRef"),
            _optional(_optional(iam, "jwt"), "serviceAccountRef"),
            _required(iam_secret, "accessKeyIDSecretRef"),
            _required(iam_secret, "secretAccessKeySecretRef"),
            _optional(iam_secret, "sessionTokenSecretRef"),
        ]
    )


def _aws(spec: JsonObject) -> bool:
    """``awsutil.IsReferentSpec``: the JWT service account or a static-credential key without one."""
    auth = spec.get("auth") or {}
    secret = auth.get("secretRef")
    return _no_namespace(
        [
            _optional(auth.get("jwt"), "serviceAccountRef"),
            _required(secret, "accessKeyIDSecretRef"),
            _required(secret, "secretAccessKeySecretRef"),
            _optional(secret, "sessionTokenSecretRef"),
        ]
    )


def _gcp(spec: JsonObject) -> bool:
    auth = spec.get("auth") or {}
    return _no_namespace(
        [
            _required(auth.get("secretRef"), "secretAccessKeySecretRef"),
            _required(auth.get("workloadIdentity"), "serviceAccountRef"),
        ]
    )


def _azure(spec: JsonObject) -> bool:
    secret = spec.get("authSecretRef")
    return _no_namespace(
        [_optional(secret, "clientId"), _optional(secret, "clientSecret"), spec.get("serviceAccountRef")]
    )


_PROVIDERS: dict[str, Callable[[JsonObject], bool]] = {
    "vault": _vault,
    "aws": _aws,
    "gcpsm": _gcp,
    "azurekv": _azure,
}


def is_referent(store: JsonObject) -> bool:
    """A ClusterSecretStore whose provider's credentials depend on the consumer's namespace."""
    if store.get("kind") != "ClusterSecretStore":
        return False
    provider = (store.get("spec") or {}).get("provider") or {}
    return any(
        isinstance(settings, dict) and name in _PROVIDERS and _PROVIDERS[name](settings)
        for name, settings in provider.items()
    )
