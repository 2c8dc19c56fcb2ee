"""Log into Vault as a Kubernetes service account: the one way steps authenticate after bootstrap.

Inside a pod the service account's projected token is read from its file.
Outside a cluster (the sandbox, a laptop) the token is requested from the
cluster's TokenRequest API for the named service account, exactly as a kubelet
would project it. Either way Vault's Kubernetes auth method asks the cluster
(TokenReview) whether the token is genuine.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from vaultflow.steps.vault.api import VaultApi

PROJECTED_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


def service_account_token(
    *,
    namespace: str,
    name: str,
    context: str | None = None,
    audiences: list[str] | None = None,
    expiration_seconds: int = 600,
    core_api: Any = None,
) -> str:
    """A JWT for ``namespace/name``: the pod's own projected token when the pod runs as that
    service account, else one from the cluster's TokenRequest API."""
    if (
        context is None
        and core_api is None
        and _own_token_subject() == f"system:serviceaccount:{namespace}:{name}"
    ):
        return PROJECTED_TOKEN.read_text().strip()
    from kubernetes import client

    from vaultflow.steps.kube import core_v1
    from vaultflow.steps.kube.errors import kube_errors

    api = core_api or core_v1(context)
    own = _credential_of(api, f"system:serviceaccount:{namespace}:{name}")
    if own is not None:
        return own
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=audiences or [], expiration_seconds=expiration_seconds)
    )
    with kube_errors(f"service account {namespace}/{name}", "get a token for it (TokenRequest)"):
        response = api.create_namespaced_service_account_token(name, namespace, request)
    return str(response.status.token)


def _credential_of(api: Any, subject: str) -> str | None:
    """The bearer token ``api`` itself sends, when it is ``subject``'s: a client that already acts as the
    account (a kubeconfig of its tokens, as a pipeline's pod has) uses it, as a pod uses its projected
    token, instead of asking TokenRequest for a token of itself, which its RBAC need not grant."""
    configuration = getattr(getattr(api, "api_client", None), "configuration", None)
    # a kubeconfig's token is under "BearerToken" (kubernetes >= 26), a hand-built one's "authorization"
    for header in (getattr(configuration, "api_key", None) or {}).values():
        token = str(header).removeprefix("Bearer ").strip()
        if token and unverified_claims(token).get("sub") == subject:
            return token
    return None


def _own_token_subject() -> str | None:
    """The ``sub`` claim of the pod's projected token (read, not verified: only to pick the source)."""
    if not PROJECTED_TOKEN.is_file():
        return None
    subject = unverified_claims(PROJECTED_TOKEN.read_text().strip()).get("sub")
    return subject if isinstance(subject, str) else None


def unverified_claims(jwt: str) -> dict[str, Any]:
    """The claims of a JWT this process was just given (not verified: never to decide who someone is,
    only to read what the issuer said of a token we hold, such as its expiry). Empty when unreadable."""
    try:
        payload = jwt.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


def kubernetes_login(vault: VaultApi, *, mount: str, role: str, jwt: str) -> VaultApi:
    """A client holding the token Vault issues to ``role`` on auth mount ``mount``."""
    with vault.errors(f"log in with role {role!r} on auth/{mount}"):
        response = vault.client.auth.kubernetes.login(role=role, jwt=jwt, mount_point=mount)
    return vault.with_token(str(response["auth"]["client_token"]))
