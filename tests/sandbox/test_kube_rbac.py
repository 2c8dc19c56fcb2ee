"""RBAC in the emulated API server: request attributes, rule matching, bindings, the 403, SSAR.

Unit tests pin the matcher to upstream's helpers (``requestinfo.go``,
``evaluation_helpers.go``, ``rule.go``); the rest goes through the real
``kubernetes`` client and ``kubectl`` as a service account, and checks the 403
body and message exactly as kube-apiserver words them.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from vaultflow.sandbox.kube import KubeCluster
from vaultflow.sandbox.kube.authz import (
    ADMIN,
    Attributes,
    RbacAuthorizer,
    forbidden,
    request_attributes,
    rule_allows,
    service_account_user,
)
from vaultflow.sandbox.kubeconfig import ClusterAccess, write_kubeconfig

RBAC = "rbac.authorization.k8s.io"
SA = service_account_user("argo", "runner")


def attributes(method: str, path: str, **query: str) -> Attributes:
    return request_attributes(SA, method, path, {k: [v] for k, v in query.items()})


# ---------------------------------------------------------------- request attributes (requestinfo.go)


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        ("GET", "/api/v1/namespaces/argo/secrets", {}, ("list", "", "argo", "secrets", "", "")),
        (
            "GET",
            "/api/v1/namespaces/argo/secrets",
            {"watch": "true"},
            ("watch", "", "argo", "secrets", "", ""),
        ),
        (
            "GET",
            "/api/v1/namespaces/argo/secrets",
            {"watch": "false"},
            ("list", "", "argo", "secrets", "", ""),
        ),
        ("GET", "/api/v1/namespaces/argo/secrets/k", {}, ("get", "", "argo", "secrets", "", "k")),
        ("HEAD", "/api/v1/namespaces/argo/secrets/k", {}, ("get", "", "argo", "secrets", "", "k")),
        ("POST", "/api/v1/namespaces/argo/secrets", {}, ("create", "", "argo", "secrets", "", "")),
        ("PUT", "/api/v1/namespaces/argo/secrets/k", {}, ("update", "", "argo", "secrets", "", "k")),
        ("PATCH", "/api/v1/namespaces/argo/secrets/k", {}, ("patch", "", "argo", "secrets", "", "k")),
        ("DELETE", "/api/v1/namespaces/argo/secrets/k", {}, ("delete", "", "argo", "secrets", "", "k")),
        (
            "DELETE",
            "/api/v1/namespaces/argo/secrets",
            {},
            ("deletecollection", "", "argo", "secrets", "", ""),
        ),
        ("GET", "/api/v1/namespaces/argo/pods/p/log", {}, ("get", "", "argo", "pods", "log", "p")),
        (
            "PUT",
            "/apis/apps/v1/namespaces/argo/deployments/d/scale",
            {},
            ("update", "apps", "argo", "deployments", "scale", "d"),
        ),
        (
            "POST",
            "/api/v1/namespaces/vault-system/serviceaccounts/reviewer/token",
            {},
            ("create", "", "vault-system", "serviceaccounts", "token", "reviewer"),
        ),
        # a namespace is read "in" itself; its status and finalize are its subresources
        ("GET", "/api/v1/namespaces/argo", {}, ("get", "", "argo", "namespaces", "", "argo")),
        ("PUT", "/api/v1/namespaces/argo/status", {}, ("update", "", "argo", "namespaces", "status", "argo")),
        ("GET", "/api/v1/namespaces", {}, ("list", "", "", "namespaces", "", "")),
        # a list or watch for one name is authorised as a request for that name
        (
            "GET",
            "/api/v1/namespaces/argo/configmaps",
            {"fieldSelector": "metadata.name=vaultflow-catalog"},
            ("list", "", "argo", "configmaps", "", "vaultflow-catalog"),
        ),
        (
            "GET",
            "/api/v1/namespaces/argo/configmaps",
            {"fieldSelector": "metadata.name!=vaultflow-catalog"},
            ("list", "", "argo", "configmaps", "", ""),
        ),
        (
            "GET",
            "/apis/apps/v1/watch/namespaces/argo/deployments",
            {},
            ("watch", "apps", "argo", "deployments", "", ""),
        ),
        (
            "GET",
            "/apis/external-secrets.io/v1/externalsecrets",
            {},
            ("list", "external-secrets.io", "", "externalsecrets", "", ""),
        ),
    ],
)
def test_request_attributes_follow_kube_apiservers_request_info(
    method: str, path: str, query: dict[str, str], expected: tuple[str, ...]
) -> None:
    got = attributes(method, path, **query)
    assert got.resource_request
    assert (got.verb, got.group, got.namespace, got.resource, got.subresource, got.name) == expected


@pytest.mark.parametrize("path", ["/api", "/apis", "/apis/apps", "/apis/apps/v1", "/healthz", "/metrics"])
def test_paths_that_name_no_resource_are_non_resource_requests(path: str) -> None:
    got = attributes("GET", path)
    assert not got.resource_request
    assert (got.verb, got.path) == ("get", path)


# ---------------------------------------------------------------- rule matching (evaluation_helpers.go)


def rule(**fields: Any) -> dict[str, Any]:
    return {"apiGroups": [""], **fields}


def test_a_rule_needs_verb_group_and_resource_to_match() -> None:
    read = rule(resources=["secrets"], verbs=["get", "list"])
    assert rule_allows(read, attributes("GET", "/api/v1/namespaces/argo/secrets/k"))
    assert rule_allows(read, attributes("GET", "/api/v1/namespaces/argo/secrets"))
    assert not rule_allows(read, attributes("GET", "/api/v1/namespaces/argo/secrets", watch="1"))
    assert not rule_allows(read, attributes("GET", "/api/v1/namespaces/argo/configmaps/k"))
    assert not rule_allows(
        {**read, "apiGroups": ["apps"]}, attributes("GET", "/api/v1/namespaces/a/secrets/k")
    )
    everything = {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}
    assert rule_allows(everything, attributes("DELETE", "/apis/apps/v1/namespaces/a/deployments"))
    assert rule_allows(everything, attributes("GET", "/api/v1/namespaces/a/pods/p/log"))


def test_subresources_are_granted_apart_from_their_resource() -> None:
    scale = attributes("PATCH", "/apis/apps/v1/namespaces/a/deployments/d/scale")
    assert not rule_allows({"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["patch"]}, scale)
    assert rule_allows({"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["patch"]}, scale)
    assert rule_allows({"apiGroups": ["apps"], "resources": ["*/scale"], "verbs": ["patch"]}, scale)
    assert not rule_allows({"apiGroups": ["apps"], "resources": ["*/status"], "verbs": ["patch"]}, scale)
    whole = attributes("PATCH", "/apis/apps/v1/namespaces/a/deployments/d")
    assert not rule_allows(
        {"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["patch"]}, whole
    )
    token = attributes("POST", "/api/v1/namespaces/a/serviceaccounts/eso/token")
    assert rule_allows(rule(resources=["serviceaccounts/token"], verbs=["create"]), token)
    assert not rule_allows(rule(resources=["serviceaccounts"], verbs=["create"]), token)


def test_resource_names_never_match_a_request_without_a_name() -> None:
    """``create`` and a plain ``list`` carry no name, so a rule with resourceNames cannot grant them."""
    named = rule(resources=["secrets"], resourceNames=["keeper"], verbs=["get", "create", "list", "update"])
    assert rule_allows(named, attributes("GET", "/api/v1/namespaces/argo/secrets/keeper"))
    assert rule_allows(named, attributes("PUT", "/api/v1/namespaces/argo/secrets/keeper"))
    assert not rule_allows(named, attributes("GET", "/api/v1/namespaces/argo/secrets/other"))
    assert not rule_allows(named, attributes("POST", "/api/v1/namespaces/argo/secrets"))
    assert not rule_allows(named, attributes("GET", "/api/v1/namespaces/argo/secrets"))
    one = attributes("GET", "/api/v1/namespaces/argo/secrets", fieldSelector="metadata.name=keeper")
    assert rule_allows(named, one)


def test_non_resource_urls_match_exactly_or_by_a_trailing_star() -> None:
    discovery = {"nonResourceURLs": ["/api", "/apis/*"], "verbs": ["get"]}
    assert rule_allows(discovery, attributes("GET", "/api"))
    assert rule_allows(discovery, attributes("GET", "/apis/apps/v1"))
    assert not rule_allows(discovery, attributes("GET", "/apis"))
    assert not rule_allows(discovery, attributes("POST", "/api"))
    assert not rule_allows(rule(resources=["*"], verbs=["*"]), attributes("GET", "/api"))


# ---------------------------------------------------------------- bindings (rule.go)


@pytest.fixture
def offline() -> KubeCluster:
    """A cluster whose store is used in process (no server): enough for the authoriser."""
    from vaultflow.sandbox.kube.authz import ensure_bootstrap_policy

    cluster = KubeCluster("rbac-unit")
    ensure_bootstrap_policy(cluster.store)
    for namespace in ("argo", "vault-system"):
        cluster.store.create(cluster.type_of("v1", "Namespace"), "", {"metadata": {"name": namespace}})
    return cluster


def put(cluster: KubeCluster, kind: str, namespace: str, body: dict[str, Any]) -> None:
    cluster.store.create(cluster.type_of(f"{RBAC}/v1", kind), namespace, body)


def binding(name: str, role_kind: str, role: str, *subjects: dict[str, str]) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "roleRef": {"apiGroup": RBAC, "kind": role_kind, "name": role},
        "subjects": list(subjects),
    }


def sa_subject(name: str, namespace: str = "") -> dict[str, str]:
    return {"kind": "ServiceAccount", "name": name, **({"namespace": namespace} if namespace else {})}


def test_a_role_binding_grants_in_its_namespace_only(offline: KubeCluster) -> None:
    put(
        offline,
        "Role",
        "argo",
        {"metadata": {"name": "read"}, "rules": [rule(resources=["secrets"], verbs=["get"])]},
    )
    put(offline, "RoleBinding", "argo", binding("read", "Role", "read", sa_subject("runner")))
    authorizer = RbacAuthorizer(offline.store)
    decision = authorizer.authorize(attributes("GET", "/api/v1/namespaces/argo/secrets/k"))
    assert decision.allowed
    assert decision.reason == (
        'RBAC: allowed by RoleBinding "read/argo" of Role "read" to ServiceAccount "runner/argo"'
    )
    assert not authorizer.authorize(attributes("GET", "/api/v1/namespaces/vault-system/secrets/k")).allowed
    other = request_attributes(
        service_account_user("vault-system", "runner"), "GET", "/api/v1/namespaces/argo/secrets/k", {}
    )
    assert not authorizer.authorize(other).allowed  # the subject's namespace defaulted to the binding's


def test_a_cluster_role_through_a_role_binding_is_namespaced(offline: KubeCluster) -> None:
    put(
        offline,
        "ClusterRole",
        "",
        {"metadata": {"name": "reader"}, "rules": [rule(resources=["secrets"], verbs=["list"])]},
    )
    put(
        offline,
        "RoleBinding",
        "argo",
        binding("reader", "ClusterRole", "reader", sa_subject("runner", "argo")),
    )
    authorizer = RbacAuthorizer(offline.store)
    assert authorizer.authorize(attributes("GET", "/api/v1/namespaces/argo/secrets")).allowed
    assert not authorizer.authorize(attributes("GET", "/api/v1/namespaces/vault-system/secrets")).allowed
    assert not authorizer.authorize(attributes("GET", "/api/v1/secrets")).allowed
    put(
        offline,
        "ClusterRoleBinding",
        "",
        binding("reader", "ClusterRole", "reader", sa_subject("runner", "argo")),
    )
    assert authorizer.authorize(attributes("GET", "/api/v1/secrets")).allowed
    assert authorizer.authorize(attributes("GET", "/api/v1/namespaces/vault-system/secrets")).allowed


def test_groups_of_service_accounts_are_subjects(offline: KubeCluster) -> None:
    put(
        offline,
        "ClusterRole",
        "",
        {"metadata": {"name": "cm"}, "rules": [rule(resources=["configmaps"], verbs=["get"])]},
    )
    put(
        offline,
        "ClusterRoleBinding",
        "",
        binding("cm", "ClusterRole", "cm", {"kind": "Group", "name": "system:serviceaccounts:argo"}),
    )
    authorizer = RbacAuthorizer(offline.store)
    assert authorizer.authorize(attributes("GET", "/api/v1/namespaces/vault-system/configmaps/c")).allowed
    elsewhere = service_account_user("vault-system", "runner")
    assert not authorizer.authorize(
        request_attributes(elsewhere, "GET", "/api/v1/namespaces/vault-system/configmaps/c", {})
    ).allowed


def test_a_binding_to_a_missing_role_is_named_in_the_denial(offline: KubeCluster) -> None:
    put(offline, "RoleBinding", "argo", binding("dangling", "Role", "gone", sa_subject("runner")))
    decision = RbacAuthorizer(offline.store).authorize(attributes("GET", "/api/v1/namespaces/argo/secrets/k"))
    assert not decision.allowed
    assert decision.reason == f'RBAC: role.{RBAC} "gone" not found'


def test_the_default_policy_lets_every_account_discover_and_ask_about_itself(offline: KubeCluster) -> None:
    authorizer = RbacAuthorizer(offline.store)
    assert authorizer.authorize(attributes("GET", "/apis/apps/v1")).allowed
    assert authorizer.authorize(attributes("GET", "/version")).allowed
    assert authorizer.authorize(
        attributes("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews")
    ).allowed
    assert not authorizer.authorize(attributes("POST", "/apis/authentication.k8s.io/v1/tokenreviews")).allowed
    assert not authorizer.authorize(attributes("GET", "/metrics")).allowed
    assert authorizer.authorize(request_attributes(ADMIN, "DELETE", "/api/v1/namespaces", {})).allowed


# ---------------------------------------------------------------- the 403 (responsewriters/errors.go)


def test_forbidden_messages_are_kube_apiservers() -> None:
    named = forbidden(attributes("GET", "/api/v1/namespaces/argo/secrets/k"))
    assert named.status() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'secrets "k" is forbidden: User "system:serviceaccount:argo:runner" cannot get resource '
        '"secrets" in API group "" in the namespace "argo"',
        "reason": "Forbidden",
        "details": {"name": "k", "kind": "secrets"},
        "code": 403,
    }
    scoped = forbidden(attributes("GET", "/apis/external-secrets.io/v1/externalsecrets"))
    assert scoped.message == (
        'externalsecrets.external-secrets.io is forbidden: User "system:serviceaccount:argo:runner" cannot '
        'list resource "externalsecrets" in API group "external-secrets.io" at the cluster scope'
    )
    assert scoped.status()["details"] == {"group": "external-secrets.io", "kind": "externalsecrets"}
    token = forbidden(attributes("POST", "/api/v1/namespaces/vault-system/serviceaccounts/reviewer/token"))
    assert token.message == (
        'serviceaccounts "reviewer" is forbidden: User "system:serviceaccount:argo:runner" cannot create '
        'resource "serviceaccounts/token" in API group "" in the namespace "vault-system"'
    )
    path = forbidden(attributes("GET", "/metrics"), 'RBAC: role.rbac.authorization.k8s.io "x" not found')
    assert path.message == (
        'forbidden: User "system:serviceaccount:argo:runner" cannot get path "/metrics": '
        'RBAC: role.rbac.authorization.k8s.io "x" not found'
    )


# ---------------------------------------------------------------- through the real clients


@pytest.fixture(scope="module")
def served() -> Iterator[KubeCluster]:
    with KubeCluster("rbac", tls=True) as cluster:
        yield cluster


def api_client(cluster: KubeCluster, token: str, tmp: Path) -> client.ApiClient:
    ca = tmp / "ca.crt"
    ca.write_text(cluster.ca_pem)
    configuration = client.Configuration()
    configuration.host = cluster.url
    configuration.ssl_ca_cert = str(ca)
    configuration.api_key = {"authorization": f"Bearer {token}"}
    return client.ApiClient(configuration)


@pytest.fixture(scope="module")
def admin(served: KubeCluster, tmp_path_factory: pytest.TempPathFactory) -> client.ApiClient:
    return api_client(served, served.admin_token, tmp_path_factory.mktemp("admin"))


@pytest.fixture
def account(served: KubeCluster, admin: client.ApiClient, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A fresh namespace with a service account ``runner`` and one of its tokens."""
    import uuid

    namespace = f"rbac-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(admin)
    core.create_namespace({"metadata": {"name": namespace}})
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "runner"}})
    token = core.create_namespaced_service_account_token("runner", namespace, {"spec": {}}).status.token
    yield namespace, token
    core.delete_namespace(namespace)


def grant(admin: client.ApiClient, namespace: str, *rules: dict[str, Any]) -> None:
    rbac = client.RbacAuthorizationV1Api(admin)
    rbac.create_namespaced_role(namespace, {"metadata": {"name": "runner"}, "rules": list(rules)})
    rbac.create_namespaced_role_binding(namespace, binding("runner", "Role", "runner", sa_subject("runner")))


def test_the_sdk_gets_kube_apiservers_403_and_the_admin_keeps_full_access(
    served: KubeCluster, admin: client.ApiClient, account: tuple[str, str], tmp_path: Path
) -> None:
    namespace, token = account
    core = client.CoreV1Api(api_client(served, token, tmp_path))
    with pytest.raises(client.ApiException) as denied:
        core.read_namespaced_secret("keeper", namespace)
    assert denied.value.status == 403
    body = json.loads(denied.value.body)
    assert body["reason"] == "Forbidden"
    assert body["code"] == 403
    assert body["details"] == {"name": "keeper", "kind": "secrets"}
    assert body["message"] == (
        f'secrets "keeper" is forbidden: User "system:serviceaccount:{namespace}:runner" cannot get '
        f'resource "secrets" in API group "" in the namespace "{namespace}"'
    )
    grant(admin, namespace, rule(resources=["secrets"], resourceNames=["keeper"], verbs=["get"]))
    with pytest.raises(client.ApiException) as missing:
        core.read_namespaced_secret("keeper", namespace)
    assert missing.value.status == 404  # allowed now: the handler answers
    with pytest.raises(client.ApiException) as listing:
        core.list_namespaced_secret(namespace)
    assert listing.value.status == 403
    assert "cannot list resource" in json.loads(listing.value.body)["message"]
    assert client.CoreV1Api(admin).list_namespaced_secret(namespace).items == []


def test_self_subject_access_review_answers_what_the_request_would_get(
    served: KubeCluster, admin: client.ApiClient, account: tuple[str, str], tmp_path: Path
) -> None:
    namespace, token = account
    grant(
        admin, namespace, {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]}
    )
    authorization = client.AuthorizationV1Api(api_client(served, token, tmp_path))

    def review(**resource_attributes: str) -> Any:
        return authorization.create_self_subject_access_review(
            {"spec": {"resourceAttributes": {"namespace": namespace, **resource_attributes}}}
        ).status

    allowed = review(verb="create", group="coordination.k8s.io", resource="leases")
    assert allowed.allowed is True
    assert allowed.reason == (
        f'RBAC: allowed by RoleBinding "runner/{namespace}" of Role "runner" to '
        f'ServiceAccount "runner/{namespace}"'
    )
    assert review(verb="update", group="coordination.k8s.io", resource="leases", name="l").allowed is False
    assert review(verb="create", resource="leases").allowed is False  # the core group grants nothing here
    coordination = client.CoordinationV1Api(api_client(served, token, tmp_path))
    coordination.create_namespaced_lease(namespace, {"metadata": {"name": "l"}, "spec": {}})
    with pytest.raises(client.ApiException) as denied:
        coordination.replace_namespaced_lease("l", namespace, {"metadata": {"name": "l"}, "spec": {}})
    assert denied.value.status == 403


def test_token_review_needs_the_auth_delegator_role(
    served: KubeCluster, admin: client.ApiClient, account: tuple[str, str], tmp_path: Path
) -> None:
    """What Vault's Kubernetes auth calls with its reviewer JWT: a 403 until the reviewer is bound."""
    namespace, token = account
    authentication = client.AuthenticationV1Api(api_client(served, token, tmp_path))
    with pytest.raises(client.ApiException) as denied:
        authentication.create_token_review({"spec": {"token": token}})
    assert json.loads(denied.value.body)["message"] == (
        f'tokenreviews.authentication.k8s.io is forbidden: User "system:serviceaccount:{namespace}:runner" '
        'cannot create resource "tokenreviews" in API group "authentication.k8s.io" at the cluster scope'
    )
    client.RbacAuthorizationV1Api(admin).create_cluster_role_binding(
        binding(
            f"{namespace}-delegator", "ClusterRole", "system:auth-delegator", sa_subject("runner", namespace)
        )
    )
    try:
        status = authentication.create_token_review({"spec": {"token": token}}).status
        assert status.authenticated is True
        assert status.user.username == f"system:serviceaccount:{namespace}:runner"
    finally:
        client.RbacAuthorizationV1Api(admin).delete_cluster_role_binding(f"{namespace}-delegator")


def test_kubectl_as_a_service_account_sees_the_forbidden_message_and_can_i(
    served: KubeCluster, admin: client.ApiClient, account: tuple[str, str], tmp_path: Path
) -> None:
    namespace, token = account
    ca = tmp_path / "ca.crt"
    ca.write_text(served.ca_pem)
    kubeconfig = write_kubeconfig(
        tmp_path / "kubeconfig", [ClusterAccess("rbac", served.url, token, namespace, str(ca))]
    )

    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["kubectl", "--kubeconfig", str(kubeconfig), *args],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )

    listed = kubectl("get", "secrets")
    assert listed.returncode == 1
    assert listed.stderr.strip() == (
        "Error from server (Forbidden): secrets is forbidden: "
        f'User "system:serviceaccount:{namespace}:runner" cannot list resource "secrets" in API group "" '
        f'in the namespace "{namespace}"'
    )
    assert kubectl("auth", "can-i", "list", "secrets").stdout.strip() == "no"
    grant(admin, namespace, rule(resources=["secrets"], verbs=["list"]))
    assert kubectl("auth", "can-i", "list", "secrets").stdout.strip() == "yes"
    assert kubectl("auth", "can-i", "list", "secrets", "-n", "default").stdout.strip() == "no"
    listed = kubectl("get", "secrets")
    assert listed.returncode == 0, listed.stderr
    assert "No resources found" in listed.stderr
