"""Service-account tokens: what TokenRequest issues and TokenReview checks.

Tokens are RS256-signed JWTs with the claims kube-apiserver puts in bound
service-account tokens (``iss``, ``sub``, ``aud``, ``exp``, ``iat``, ``nbf``,
``jti`` and the nested ``kubernetes.io`` claim naming the namespace, the service
account and its UID). OpenBao's ``kubernetes`` auth method reads those claims
from the token and then asks the cluster's TokenReview API whether the token is
valid, so both halves must agree with the real thing. Each emulated cluster has
its own signing key: a token from one cluster is rejected by another.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"
LEGACY_ISSUER = "kubernetes/serviceaccount"
_LEGACY = "kubernetes.io/serviceaccount/"
MIN_EXPIRATION_SECONDS = 600
DEFAULT_EXPIRATION_SECONDS = 3600

JsonObject = dict[str, Any]


class InvalidToken(Exception):
    """The token is not one this cluster issued, or no longer valid."""


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _int_b64url(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@dataclass(frozen=True)
class ObjectRef:
    """A ``kubernetes.io`` claim reference (pod, secret) a token is bound to."""

    kind: str
    name: str
    uid: str


@dataclass(frozen=True)
class TokenClaims:
    """The verified identity inside a token."""

    namespace: str
    service_account: str
    service_account_uid: str
    audiences: tuple[str, ...]
    expires_at: int | None
    bound_object: ObjectRef | None
    legacy_secret: str = ""

    @property
    def username(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"


class TokenIssuer:
    """Signs and verifies one cluster's service-account tokens."""

    def __init__(self, issuer: str = DEFAULT_ISSUER, key: rsa.RSAPrivateKey | None = None) -> None:
        self.issuer = issuer
        self._key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
        numbers = self._key.public_key().public_numbers()
        self._jwk: JsonObject = {"kty": "RSA", "alg": "RS256", "use": "sig", "n": _int_b64url(numbers.n)}
        self._jwk["e"] = _int_b64url(numbers.e)
        thumbprint_input = json.dumps(
            {"e": self._jwk["e"], "kty": "RSA", "n": self._jwk["n"]}, separators=(",", ":"), sort_keys=True
        )
        self.key_id = _b64url(hashlib.sha256(thumbprint_input.encode()).digest())
        self._jwk["kid"] = self.key_id

    @property
    def api_audiences(self) -> tuple[str, ...]:
        """The audiences a token is valid for when none are requested (the API server's own)."""
        return (self.issuer,)

    def jwks(self) -> JsonObject:
        return {"keys": [dict(self._jwk)]}

    def public_key_pem(self) -> str:
        from cryptography.hazmat.primitives import serialization

        return (
            self._key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    def private_key_pem(self) -> str:
        """The signing key (PKCS#8 PEM), for a cluster snapshot: tokens issued before a restart stay valid."""
        from cryptography.hazmat.primitives import serialization

        return self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()

    @classmethod
    def from_private_key_pem(cls, pem: str, issuer: str = DEFAULT_ISSUER) -> TokenIssuer:
        """The issuer of a restarted cluster, signing with the key ``private_key_pem`` returned."""
        from cryptography.hazmat.primitives import serialization

        key = serialization.load_pem_private_key(pem.encode(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("a service-account signing key must be an RSA key")
        return cls(issuer, key)

    def issue(
        self,
        *,
        namespace: str,
        service_account: str,
        service_account_uid: str,
        audiences: list[str] | None = None,
        expiration_seconds: int = DEFAULT_EXPIRATION_SECONDS,
        bound_object: ObjectRef | None = None,
        now: float | None = None,
    ) -> tuple[str, int]:
        """A signed token and its expiry (seconds since the epoch)."""
        issued_at = int(now if now is not None else time.time())
        expires_at = issued_at + expiration_seconds
        kubernetes_claim: JsonObject = {
            "namespace": namespace,
            "serviceaccount": {"name": service_account, "uid": service_account_uid},
        }
        if bound_object is not None:
            kubernetes_claim[bound_object.kind.lower()] = {"name": bound_object.name, "uid": bound_object.uid}
        claims: JsonObject = {
            "aud": list(audiences or self.api_audiences),
            "exp": expires_at,
            "iat": issued_at,
            "iss": self.issuer,
            "jti": str(uuid.uuid4()),
            "kubernetes.io": kubernetes_claim,
            "nbf": issued_at,
            "sub": f"system:serviceaccount:{namespace}:{service_account}",
        }
        return self._sign(claims), expires_at

    def issue_legacy(
        self, *, namespace: str, service_account: str, service_account_uid: str, secret_name: str
    ) -> str:
        """A long-lived token of the kind the token controller writes into ``service-account-token`` Secrets.

        It has no audience and no expiry and stays valid while the Secret holds it.
        """
        claims: JsonObject = {
            "iss": LEGACY_ISSUER,
            f"{_LEGACY}namespace": namespace,
            f"{_LEGACY}secret.name": secret_name,
            f"{_LEGACY}service-account.name": service_account,
            f"{_LEGACY}service-account.uid": service_account_uid,
            "sub": f"system:serviceaccount:{namespace}:{service_account}",
        }
        return self._sign(claims)

    def _sign(self, claims: JsonObject) -> str:
        header = {"alg": "RS256", "kid": self.key_id}
        signing_input = ".".join(
            _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
        )
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"

    def verify(self, token: str, now: float | None = None) -> TokenClaims:
        """Check signature, issuer and validity window; ``InvalidToken`` says why not."""
        parts = token.split(".")
        if len(parts) != 3:
            raise InvalidToken("not a JWT")
        try:
            header = json.loads(_b64url_decode(parts[0]))
            claims = json.loads(_b64url_decode(parts[1]))
            signature = _b64url_decode(parts[2])
        except (ValueError, UnicodeDecodeError) as error:
            raise InvalidToken("malformed JWT") from error
        if not isinstance(header, dict) or header.get("alg") != "RS256" or not isinstance(claims, dict):
            raise InvalidToken("unsupported JWT")
        try:
            self._key.public_key().verify(
                signature, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256()
            )
        except InvalidSignature as error:
            raise InvalidToken("invalid signature") from error
        if claims.get("iss") == LEGACY_ISSUER:
            return _legacy_claims_of(claims)
        if claims.get("iss") != self.issuer:
            raise InvalidToken("token issuer is not this cluster")
        current = now if now is not None else time.time()
        expires_at = claims.get("exp")
        if isinstance(expires_at, int) and current >= expires_at:
            raise InvalidToken("token has expired")
        not_before = claims.get("nbf")
        if isinstance(not_before, int) and current + 60 < not_before:
            raise InvalidToken("token is not valid yet")
        return _claims_of(claims)


def _claims_of(claims: JsonObject) -> TokenClaims:
    kubernetes = claims.get("kubernetes.io")
    if not isinstance(kubernetes, dict) or not isinstance(kubernetes.get("serviceaccount"), dict):
        raise InvalidToken("token has no service-account claims")
    account = kubernetes["serviceaccount"]
    bound = None
    for kind in ("pod", "secret"):
        ref = kubernetes.get(kind)
        if isinstance(ref, dict):
            bound = ObjectRef("Pod" if kind == "pod" else "Secret", str(ref.get("name")), str(ref.get("uid")))
    audience = claims.get("aud", [])
    audiences = (audience,) if isinstance(audience, str) else tuple(audience)
    return TokenClaims(
        namespace=str(kubernetes.get("namespace", "")),
        service_account=str(account.get("name", "")),
        service_account_uid=str(account.get("uid", "")),
        audiences=audiences,
        expires_at=claims.get("exp"),
        bound_object=bound,
    )


def _legacy_claims_of(claims: JsonObject) -> TokenClaims:
    secret_name = str(claims.get(f"{_LEGACY}secret.name", ""))
    if not secret_name:
        raise InvalidToken("legacy token names no secret")
    return TokenClaims(
        namespace=str(claims.get(f"{_LEGACY}namespace", "")),
        service_account=str(claims.get(f"{_LEGACY}service-account.name", "")),
        service_account_uid=str(claims.get(f"{_LEGACY}service-account.uid", "")),
        audiences=(),
        expires_at=None,
        bound_object=None,
        legacy_secret=secret_name,
    )
