"""The ESO emulator acts as ESO's service account, under the RBAC ESO's Helm chart installs.

Every call the emulator makes to its cluster is authorised as the API request it stands for
(``sandbox/kube/acting.py``); its TokenRequests carry the account's own token. With the chart's
rules everything syncs (the rest of this directory); with one rule taken away, the reconcile that
needs it fails with kube-apiserver's 403 in ESO's status and events, and recovers once it is back.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.sandbox_eso.conftest import EsoStack, external_secret
from vaultflow.sandbox.crd_sources import CrdSource, load_crds
from vaultflow.sandbox.eso import EsoController
from vaultflow.sandbox.eso.kube import ACCOUNT_NAME, ACCOUNT_NAMESPACE, CHART_RBAC
from vaultflow.sandbox.kube import KubeCluster
from vaultflow.sandbox.kube.errors import ApiError
from vaultflow.sandbox.observe import wait_for

ES = "ExternalSecret"
CONTROLLER_ROLE = "external-secrets-controller"
USER = f"system:serviceaccount:{ACCOUNT_NAMESPACE}:{ACCOUNT_NAME}"


def _rbac(eso: EsoStack) -> client.RbacAuthorizationV1Api:
    return client.RbacAuthorizationV1Api(eso.api)


@contextmanager
def without_rule(eso: EsoStack, group: str, resource: str, verb: str) -> Iterator[None]:
    """The controller's ClusterRole with ``verb`` on ``resource`` taken out of every rule, then back."""
    rbac = _rbac(eso)
    original = rbac.read_cluster_role(CONTROLLER_ROLE)
    rules = []
    for rule in original.rules:
        if group in rule.api_groups and resource in rule.resources and verb in rule.verbs:
            others = [r for r in rule.resources if r != resource]
            if others:
                rules.append(
                    client.V1PolicyRule(api_groups=rule.api_groups, resources=others, verbs=rule.verbs)
                )
            rest = [v for v in rule.verbs if v != verb]
            if rest:
                rules.append(
                    client.V1PolicyRule(api_groups=rule.api_groups, resources=[resource], verbs=rest)
                )
        else:
            rules.append(rule)
    trimmed = copy.deepcopy(original)
    trimmed.rules = rules
    rbac.replace_cluster_role(CONTROLLER_ROLE, trimmed)
    try:
        yield
    finally:
        current = rbac.read_cluster_role(CONTROLLER_ROLE)
        original.metadata.resource_version = current.metadata.resource_version
        rbac.replace_cluster_role(CONTROLLER_ROLE, original)


def write(eso: EsoStack, path: str, **values: object) -> None:
    eso.vault.secrets.kv.v2.create_or_update_secret(path, secret=values, mount_point="secret")


def test_the_chart_rbac_is_installed_and_names_the_account(eso: EsoStack) -> None:
    documents = list(yaml.safe_load_all(CHART_RBAC.read_text()))
    kinds = sorted(d["kind"] for d in documents)
    assert kinds == [
        "ClusterRole",
        "ClusterRoleBinding",
        "Namespace",
        "Role",
        "RoleBinding",
        "ServiceAccount",
    ]
    binding = _rbac(eso).read_cluster_role_binding(CONTROLLER_ROLE)
    assert [(s.kind, s.namespace, s.name) for s in binding.subjects] == [
        ("ServiceAccount", ACCOUNT_NAMESPACE, ACCOUNT_NAME)
    ]
    assert eso.core.read_namespaced_service_account(ACCOUNT_NAME, ACCOUNT_NAMESPACE).metadata.uid


def test_without_create_on_secrets_the_sync_fails_with_the_403_and_recovers(
    eso: EsoStack, namespace: str, vault_path: str
) -> None:
    write(eso, vault_path, password="first")
    spec = [{"secretKey": "password", "remoteRef": {"key": vault_path, "property": "password"}}]
    with without_rule(eso, "", "secrets", "create"):
        eso.create(namespace, external_secret("db", data=spec))
        condition = wait_for(
            lambda: (c := eso.condition(namespace, ES, "db")) and c.get("status") == "False" and c,
            what="the ExternalSecret to fail",
        )
        assert condition["reason"] == "SecretSyncedError"
        assert condition["message"] == "could not update secret"
        detail = wait_for(
            lambda: next(
                (e.message for e in eso.events(namespace, "db") if e.reason == "UpdateFailed"), None
            ),
            what="ESO's UpdateFailed event",
        )
        assert (
            f'secrets is forbidden: User "{USER}" cannot create resource "secrets" in API group "" '
            f'in the namespace "{namespace}"'
        ) in detail
        assert eso.secret_data(namespace, "db") is None
    eso.force_sync(namespace, ES, "db")
    eso.wait_ready(namespace, ES, "db")
    assert eso.secret_data(namespace, "db") == {"password": b"first"}


def test_without_token_requests_the_vault_login_fails_with_the_403(
    eso: EsoStack, namespace: str, vault_path: str
) -> None:
    """ESO asks for a token of the store's service account with its own token: the chart grants
    ``serviceaccounts/token`` create; without it the login cannot even start."""
    write(eso, vault_path, password="x")
    spec = [{"secretKey": "password", "remoteRef": {"key": vault_path, "property": "password"}}]
    with without_rule(eso, "", "serviceaccounts/token", "create"):
        eso.create(namespace, external_secret("db", data=spec))
        detail = wait_for(
            lambda: next(
                (e.message for e in eso.events(namespace, "db") if e.reason == "UpdateFailed"), None
            ),
            what="ESO's UpdateFailed event",
        )
        assert f'User "{USER}" cannot create resource "serviceaccounts/token" in API group ""' in detail
        assert eso.condition(namespace, ES, "db")["message"] == "could not get secret data from provider"
    eso.force_sync(namespace, ES, "db")
    eso.wait_ready(namespace, ES, "db")


def test_without_list_on_secrets_the_controller_does_not_start(eso: EsoStack, schemas_dir: Path) -> None:
    """ESO's manager cannot sync its informer cache without list and watch: it does not start."""
    cluster = KubeCluster("eso-rbac-unbound").start()
    try:
        cluster.register_crds(load_crds(CrdSource(schemas_dir, upstream=True)))
        EsoController(cluster, eso.controller.environment).start().stop()  # installs the chart's RBAC
        # the chart's objects are installed only when missing: a changed role stays changed
        role_type = cluster.type_of("rbac.authorization.k8s.io/v1", "ClusterRole")

        def no_secrets(role: dict[str, Any]) -> dict[str, Any]:
            role["rules"] = [r for r in role["rules"] if "secrets" not in r["resources"]]
            return role

        cluster.store.patch(role_type, "", CONTROLLER_ROLE, no_secrets)
        with pytest.raises(ApiError) as denied:
            EsoController(cluster, eso.controller.environment).start()
        assert denied.value.code == 403
        assert f'User "{USER}" cannot list resource "secrets" in API group "" at the cluster scope' in str(
            denied.value
        )
    finally:
        cluster.stop()
