"""TokenRequest and TokenReview: the tokens an emulated cluster issues and how it judges them."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from kubernetes import client

from vaultflow.sandbox.kube import KubeCluster


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


def request_token(core: client.CoreV1Api, namespace: str, account: str, **spec: Any) -> str:
    response = core.create_namespaced_service_account_token(account, namespace, {"spec": spec})
    token: str = response.status.token
    return token


def review(api_client: client.ApiClient, token: str, audiences: list[str] | None = None) -> Any:
    body: dict[str, Any] = {"spec": {"token": token}}
    if audiences:
        body["spec"]["audiences"] = audiences
    return client.AuthenticationV1Api(api_client).create_token_review(body).status


def test_token_request_issues_a_service_account_jwt(core: client.CoreV1Api, namespace: str) -> None:
    account = core.create_namespaced_service_account(namespace, {"metadata": {"name": "eso"}})
    response = core.create_namespaced_service_account_token(
        "eso", namespace, {"spec": {"audiences": ["vault"], "expirationSeconds": 900}}
    )
    claims = claims_of(response.status.token)
    assert claims["sub"] == f"system:serviceaccount:{namespace}:eso"
    assert claims["aud"] == ["vault"]
    assert claims["exp"] - claims["iat"] == 900
    assert claims["kubernetes.io"]["namespace"] == namespace
    assert claims["kubernetes.io"]["serviceaccount"] == {"name": "eso", "uid": account.metadata.uid}
    assert response.status.expiration_timestamp.timestamp() == claims["exp"]


def test_token_review_authenticates_a_valid_token(
    api_client: client.ApiClient, core: client.CoreV1Api, namespace: str
) -> None:
    account = core.create_namespaced_service_account(namespace, {"metadata": {"name": "eso"}})
    token = request_token(core, namespace, "eso", audiences=["vault"])
    status = review(api_client, token, ["vault"])
    assert status.authenticated is True
    assert status.user.username == f"system:serviceaccount:{namespace}:eso"
    assert status.user.uid == account.metadata.uid
    assert status.audiences == ["vault"]


def test_token_review_rejects_wrong_audience_tampering_and_deleted_accounts(
    api_client: client.ApiClient, core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "eso"}})
    token = request_token(core, namespace, "eso", audiences=["vault"])
    wrong_audience = review(api_client, token, ["someone-else"])
    assert wrong_audience.authenticated is False and "audiences" in wrong_audience.error

    header, _, signature = token.split(".")
    forged_claims = claims_of(token)
    forged_claims["kubernetes.io"]["serviceaccount"]["name"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(forged_claims).encode()).rstrip(b"=").decode()
    assert review(api_client, f"{header}.{forged}.{signature}", ["vault"]).authenticated is False

    core.delete_namespaced_service_account("eso", namespace)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "eso"}})  # same name, new UID
    recreated = review(api_client, token, ["vault"])
    assert recreated.authenticated is False and "UID" in recreated.error


def test_a_token_bound_to_a_secret_dies_with_it(
    api_client: client.ApiClient, core: client.CoreV1Api, namespace: str
) -> None:
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "runner"}})
    anchor = core.create_namespaced_secret(namespace, {"metadata": {"name": "anchor"}})
    token = request_token(
        core,
        namespace,
        "runner",
        boundObjectRef={"kind": "Secret", "apiVersion": "v1", "name": "anchor", "uid": anchor.metadata.uid},
    )
    assert review(api_client, token).authenticated is True
    core.delete_namespaced_secret("anchor", namespace)
    assert review(api_client, token).authenticated is False


def test_expiration_below_ten_minutes_is_422(core: client.CoreV1Api, namespace: str) -> None:
    with pytest.raises(client.ApiException) as rejected:
        request_token(core, namespace, "default", expirationSeconds=599)
    assert rejected.value.status == 422
    assert json.loads(rejected.value.body)["details"]["causes"][0]["field"] == "spec.expirationSeconds"


def test_token_for_a_missing_service_account_is_404(core: client.CoreV1Api, namespace: str) -> None:
    with pytest.raises(client.ApiException) as missing:
        request_token(core, namespace, "nobody")
    assert missing.value.status == 404


def test_service_account_token_secret_is_filled_and_reviewable(
    api_client: client.ApiClient, core: client.CoreV1Api, namespace: str, cluster: KubeCluster
) -> None:
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "vault-auth"}})
    core.create_namespaced_secret(
        namespace,
        {
            "metadata": {
                "name": "vault-auth-token",
                "annotations": {"kubernetes.io/service-account.name": "vault-auth"},
            },
            "type": "kubernetes.io/service-account-token",
        },
    )
    filled = core.read_namespaced_secret("vault-auth-token", namespace)
    token = base64.b64decode(filled.data["token"]).decode()
    assert base64.b64decode(filled.data["ca.crt"]).decode() == cluster.ca_pem
    assert claims_of(token)["iss"] == "kubernetes/serviceaccount"
    assert review(api_client, token).authenticated is True
    core.delete_namespaced_secret("vault-auth-token", namespace)
    assert review(api_client, token).authenticated is False


def test_service_account_tokens_authenticate_api_requests_only_in_their_cluster(
    cluster: KubeCluster, core: client.CoreV1Api, namespace: str
) -> None:
    token = request_token(core, namespace, "default")
    configuration = client.Configuration()
    configuration.host = cluster.url
    configuration.api_key = {"authorization": f"Bearer {token}"}
    with client.ApiClient(configuration) as as_account:
        # authenticated as the account, so RBAC judges it: nothing is granted yet (403, not 401)
        with pytest.raises(client.ApiException) as denied:
            client.CoreV1Api(as_account).read_namespace(namespace)
        assert denied.value.status == 403
        assert f'User "system:serviceaccount:{namespace}:default"' in json.loads(denied.value.body)["message"]
        rbac = client.RbacAuthorizationV1Api(core.api_client)
        rule = {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get"]}
        rbac.create_namespaced_role(namespace, {"metadata": {"name": "read-own"}, "rules": [rule]})
        rbac.create_namespaced_role_binding(
            namespace,
            {
                "metadata": {"name": "read-own"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-own"},
                "subjects": [{"kind": "ServiceAccount", "name": "default"}],
            },
        )
        assert client.CoreV1Api(as_account).read_namespace(namespace).metadata.name == namespace

    other = KubeCluster("other").start()
    try:
        configuration.host = other.url
        with client.ApiClient(configuration) as elsewhere, pytest.raises(client.ApiException) as rejected:
            client.CoreV1Api(elsewhere).list_namespace()
        assert rejected.value.status == 401
    finally:
        other.stop()
