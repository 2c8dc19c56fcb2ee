"""``steps.kube.access.denied``: what an identity may not do, as the API server answers it (SSAR)."""

from __future__ import annotations

from kubernetes import client

from vaultflow.sandbox.kube import KubeCluster
from vaultflow.steps.kube.access import Permission, denied


def _client(cluster: KubeCluster, token: str) -> client.ApiClient:
    configuration = client.Configuration()
    configuration.host = cluster.url
    configuration.api_key = {"authorization": f"Bearer {token}"}
    return client.ApiClient(configuration)


def test_denied_names_exactly_what_the_role_does_not_grant() -> None:
    with KubeCluster("access") as cluster, _client(cluster, cluster.admin_token) as admin:
        core, rbac = client.CoreV1Api(admin), client.RbacAuthorizationV1Api(admin)
        core.create_namespace({"metadata": {"name": "argo"}})
        core.create_namespaced_service_account("argo", {"metadata": {"name": "runner"}})
        rbac.create_namespaced_role(
            "argo",
            {
                "metadata": {"name": "runner"},
                "rules": [
                    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
                    {
                        "apiGroups": [""],
                        "resources": ["secrets"],
                        "resourceNames": ["keeper"],
                        "verbs": ["get"],
                    },
                    {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]},
                    {
                        "apiGroups": ["external-secrets.io"],
                        "resources": ["externalsecrets"],
                        "verbs": ["patch"],
                    },
                ],
            },
        )
        rbac.create_namespaced_role_binding(
            "argo",
            {
                "metadata": {"name": "runner"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "runner"},
                "subjects": [{"kind": "ServiceAccount", "name": "runner", "namespace": "argo"}],
            },
        )
        request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[]))
        token = core.create_namespaced_service_account_token("runner", "argo", request).status.token
        asked = [
            Permission("create", "secrets", "argo"),
            Permission("get", "secrets", "argo", name="keeper"),
            Permission("get", "secrets", "argo", name="other"),  # resourceNames: only the keeper
            Permission("create", "serviceaccounts/token", "argo", name="runner"),
            Permission("create", "serviceaccounts", "argo"),  # the subresource is not the resource
            Permission("patch", "externalsecrets", "argo", group="external-secrets.io"),
            Permission("patch", "externalsecrets", "prod", group="external-secrets.io"),  # another namespace
            Permission("list", "namespaces"),  # cluster scope
        ]
        with _client(cluster, str(token)) as runner:
            refused = denied(runner, asked)
        with _client(cluster, cluster.admin_token) as admin_again:
            assert denied(admin_again, asked) == []  # system:masters may do everything
    assert [str(p) for p in refused] == [
        "get secrets/other in namespace argo",
        "create serviceaccounts in namespace argo",
        "patch externalsecrets.external-secrets.io in namespace prod",
        "list namespaces at the cluster scope",
    ]
