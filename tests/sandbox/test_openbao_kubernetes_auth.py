"""TokenRequest -> OpenBao's real ``kubernetes`` auth -> a token whose policy OpenBao enforces.

OpenBao runs from the sandbox (``bao server``, raft); it calls the emulated
cluster's TokenReview API to validate the service-account token, exactly as it
would call a real kube-apiserver.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import hvac
import hvac.exceptions
import pytest
from kubernetes import client, config

from tests.conftest import mount_kv
from vaultflow.sandbox.state import SandboxState
from vaultflow.steps.vault.api import VaultApi

ESO_NAMESPACE = "external-secrets"
ESO_ACCOUNT = "external-secrets"
ROLE = "eso"
AUDIENCE = "vault"


@dataclass
class ConfiguredVault:
    state: SandboxState
    address: str
    core: client.CoreV1Api


def wait_active(address: str, ca_file: str, timeout: float = 30.0) -> None:
    VaultApi(address, ca_cert=ca_file).wait_until_active(timeout)


def service_account_token(core: client.CoreV1Api, namespace: str, name: str, audiences: list[str]) -> str:
    response = core.create_namespaced_service_account_token(
        name, namespace, {"spec": {"audiences": audiences}}
    )
    token: str = response.status.token
    return token


@pytest.fixture(scope="module")
def configured_vault(sandbox_state: SandboxState) -> Iterator[ConfiguredVault]:
    """Initialise and unseal the sandbox's OpenBao, then configure Kubernetes auth against workload-1."""
    state = sandbox_state
    cluster = state.workload_clusters[0]
    api = config.new_client_from_config(config_file=state.kubeconfig, context=cluster.name)
    core = client.CoreV1Api(api)

    # the reviewer: a service account whose token OpenBao presents to TokenReview
    core.create_namespaced_service_account("kube-system", {"metadata": {"name": "vault-auth"}})
    # ... that may create TokenReviews: bound to system:auth-delegator, as Vault's docs ask
    client.RbacAuthorizationV1Api(api).create_cluster_role_binding(
        {
            "metadata": {"name": "vault-auth-delegator"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "system:auth-delegator",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "vault-auth", "namespace": "kube-system"}],
        }
    )
    reviewer_token = service_account_token(core, "kube-system", "vault-auth", [])
    core.create_namespace({"metadata": {"name": ESO_NAMESPACE}})
    core.create_namespaced_service_account(ESO_NAMESPACE, {"metadata": {"name": ESO_ACCOUNT}})

    root = hvac.Client(url=state.vault_addr, verify=state.ca_file)
    keys = root.sys.initialize(secret_shares=1, secret_threshold=1)
    root.sys.submit_unseal_key(keys["keys"][0])
    root.token = keys["root_token"]
    wait_active(state.vault_addr, state.ca_file)
    mount_kv(root, "secret")
    root.secrets.kv.v2.create_or_update_secret(
        "prod/db", secret={"password": "allowed-value"}, mount_point="secret"
    )
    root.secrets.kv.v2.create_or_update_secret(
        "admin/root", secret={"password": "denied-value"}, mount_point="secret"
    )
    root.sys.create_or_update_policy(
        "eso-prod", 'path "secret/data/prod/*" {\n  capabilities = ["read"]\n}\n'
    )
    root.sys.enable_auth_method("kubernetes")
    root.write_data(
        "auth/kubernetes/config",
        data={
            "kubernetes_host": cluster.url,
            "kubernetes_ca_cert": Path(cluster.ca_file).read_text(),
            "token_reviewer_jwt": reviewer_token,
            "disable_local_ca_jwt": True,
        },
    )
    root.write_data(
        f"auth/kubernetes/role/{ROLE}",
        data={
            "bound_service_account_names": [ESO_ACCOUNT],
            "bound_service_account_namespaces": [ESO_NAMESPACE],
            "audience": AUDIENCE,
            "token_policies": ["eso-prod"],
            "token_ttl": "10m",
        },
    )
    yield ConfiguredVault(state, state.vault_addr, core)
    api.close()


def login(vault_at: ConfiguredVault, jwt: str) -> hvac.Client:
    vault = hvac.Client(url=vault_at.address, verify=vault_at.state.ca_file)
    vault.auth.kubernetes.login(role=ROLE, jwt=jwt)
    return vault


def test_a_service_account_logs_in_and_its_policy_is_enforced(configured_vault: ConfiguredVault) -> None:
    token = service_account_token(configured_vault.core, ESO_NAMESPACE, ESO_ACCOUNT, [AUDIENCE])
    vault = login(configured_vault, token)
    assert vault.is_authenticated()
    identity = vault.auth.token.lookup_self()["data"]
    assert identity["meta"]["service_account_name"] == ESO_ACCOUNT
    assert identity["meta"]["service_account_namespace"] == ESO_NAMESPACE
    assert sorted(identity["policies"]) == ["default", "eso-prod"]

    allowed = vault.secrets.kv.v2.read_secret_version(
        "prod/db", mount_point="secret", raise_on_deleted_version=True
    )
    assert allowed["data"]["data"] == {"password": "allowed-value"}
    with pytest.raises(hvac.exceptions.Forbidden):
        vault.secrets.kv.v2.read_secret_version(
            "admin/root", mount_point="secret", raise_on_deleted_version=True
        )
    with pytest.raises(hvac.exceptions.Forbidden):
        vault.secrets.kv.v2.create_or_update_secret("prod/db", secret={"password": "x"}, mount_point="secret")


def test_an_account_outside_the_role_is_refused(configured_vault: ConfiguredVault) -> None:
    token = service_account_token(configured_vault.core, "default", "default", [AUDIENCE])
    with pytest.raises(hvac.exceptions.Forbidden):
        login(configured_vault, token)


def test_a_token_for_another_audience_is_refused(configured_vault: ConfiguredVault) -> None:
    token = service_account_token(configured_vault.core, ESO_NAMESPACE, ESO_ACCOUNT, ["not-vault"])
    with pytest.raises(hvac.exceptions.Forbidden):
        login(configured_vault, token)


def test_a_token_of_a_recreated_account_is_refused_by_token_review(configured_vault: ConfiguredVault) -> None:
    core = configured_vault.core
    stale = service_account_token(core, ESO_NAMESPACE, ESO_ACCOUNT, [AUDIENCE])
    core.delete_namespaced_service_account(ESO_ACCOUNT, ESO_NAMESPACE)
    core.create_namespaced_service_account(ESO_NAMESPACE, {"metadata": {"name": ESO_ACCOUNT}})
    # The claims still name a bound account: only the cluster's TokenReview knows the UID changed.
    with pytest.raises(hvac.exceptions.Forbidden):
        login(configured_vault, stale)
    fresh = service_account_token(core, ESO_NAMESPACE, ESO_ACCOUNT, [AUDIENCE])
    assert login(configured_vault, fresh).is_authenticated()
