"""The delivery pipeline's RBAC in each catalog cluster, rendered from the catalog: what its steps ask.

Proven as ``tests/sandbox/test_rbac_rules_needed.py`` proves the rotation's: three emulated clusters
hold the rendered tree (Argo CD's view) and the workflows' hand-written RBAC, the emulated API server
enforces RBAC as kube-apiserver does, and the delivery steps' Kubernetes calls run *as*
``vaultflow-delivery``: preflight (its TokenRequest for ESO's account, the target Secrets it reads,
the rotation's discovery) against a real OpenBao, and verify-ready's listing of the ExternalSecrets
and PushSecrets. They all pass; then each rendered grant is taken away in turn and the call that needs
it fails with the API server's 403 naming it; and what the account is never meant to do is refused.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes import client

from tests.conftest import UnsealedVault
from tests.gitops.test_rotation_rbac import CATALOG, KUBERNETES_VERSION, _rendered, apply
from tests.sandbox.test_rbac_rules_needed import (
    Grant,
    admin_client,
    as_account,
    grants,
    outcome,
    replace_role,
    token_for,
    without,
)
from vaultflow.base.errors import OperationError
from vaultflow.gitops.catalog import LoadedCatalog, load_catalog, parse_catalog
from vaultflow.gitops.delivery_rbac import CONSUMERS_ROLE, DELIVERY_ACCOUNT, DISCOVERY_ROLE, PREFLIGHT_ROLE
from vaultflow.gitops.render import render_catalog
from vaultflow.sandbox.crd_sources import CrdSource, load_crds
from vaultflow.sandbox.kube import KubeCluster
from vaultflow.steps.delivery.argocd_wait import WatchedObject, wait_for_sync
from vaultflow.steps.delivery.preflight import ClusterAccess, preflight
from vaultflow.steps.vault.api import VaultApi
from vaultflow.steps.vault.login import service_account_token

REPO_ROOT = Path(__file__).resolve().parents[2]
ESO = "external-secrets.io"
ACCOUNT = DELIVERY_ACCOUNT.name
CLUSTERS = ("hub", "edge", "quiet")


def _static(catalog: str) -> str:
    """The catalog without rotation: no discovery, so verify-ready's lists are granted per namespace."""
    start, end = catalog.index("    rotation:\n"), catalog.index("    consumers:\n")
    return catalog[:start] + catalog[end:]


CATALOGS = {
    "rotating": parse_catalog(CATALOG, Path("catalog.yaml")),
    "static": parse_catalog(_static(CATALOG), Path("c.yaml")),
}


def _rules(loaded: LoadedCatalog) -> dict[str, set[tuple[str, str, str, str]]]:
    """Per cluster: (kind, namespace, name, rules or roleRef as JSON) of every delivery object."""
    return {
        cluster: {
            (
                m["kind"],
                m["metadata"].get("namespace", ""),
                m["metadata"]["name"],
                json.dumps(m.get("rules") or m.get("roleRef") or {}, sort_keys=True),
            )
            for m in objects
        }
        for cluster, objects in _rendered(loaded, ACCOUNT).items()
    }


def _role(kind: str, namespace: str, name: str, *rules: dict[str, Any]) -> set[tuple[str, str, str, str]]:
    binding = {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name}
    return {
        (kind, namespace, name, json.dumps(list(rules), sort_keys=True)),
        (f"{kind}Binding", namespace, name, json.dumps(binding, sort_keys=True)),
    }


TOKEN = {
    "apiGroups": [""],
    "resources": ["serviceaccounts/token"],
    "resourceNames": ["external-secrets"],
    "verbs": ["create"],
}
DISCOVERY = {
    "apiGroups": [ESO],
    "resources": ["externalsecrets", "pushsecrets", "secretstores", "clustersecretstores"],
    "verbs": ["list"],
}
ACCOUNT_OBJECT = {("ServiceAccount", "argo", ACCOUNT, "{}")}


def _targets(*names: str) -> dict[str, Any]:
    return {"apiGroups": [""], "resources": ["secrets"], "resourceNames": list(names), "verbs": ["get"]}


def _listed(*resources: str) -> dict[str, Any]:
    return {"apiGroups": [ESO], "resources": list(resources), "verbs": ["list"]}


def test_rules_are_exactly_those_of_the_small_catalog() -> None:
    preflight_role = _role("Role", "external-secrets-system", PREFLIGHT_ROLE, TOKEN)
    discovery = _role("ClusterRole", "", DISCOVERY_ROLE, DISCOVERY)
    assert _rules(CATALOGS["rotating"]) == {
        # the workflows cluster: the account comes with the workflows (argocd-apps), not rendered
        "hub": preflight_role
        | discovery
        | _role("Role", "shop", CONSUMERS_ROLE, _targets("db"))
        | _role("Role", "billing", CONSUMERS_ROLE, _targets("stripe")),
        "edge": ACCOUNT_OBJECT
        | preflight_role
        | discovery
        | _role("Role", "shop", CONSUMERS_ROLE, _targets("db")),
        "quiet": ACCOUNT_OBJECT
        | preflight_role
        | discovery
        | _role("Role", "billing", CONSUMERS_ROLE, _targets("stripe")),
    }
    # Nothing rotates: no discovery, and verify-ready's lists are granted where the objects are.
    assert _rules(CATALOGS["static"]) == {
        "hub": preflight_role
        | _role("Role", "shop", CONSUMERS_ROLE, _targets("db"), _listed("externalsecrets", "pushsecrets"))
        | _role("Role", "billing", CONSUMERS_ROLE, _targets("stripe"), _listed("externalsecrets")),
        "edge": ACCOUNT_OBJECT
        | preflight_role
        | _role("Role", "shop", CONSUMERS_ROLE, _targets("db"), _listed("externalsecrets", "pushsecrets")),
        "quiet": ACCOUNT_OBJECT
        | preflight_role
        | _role("Role", "billing", CONSUMERS_ROLE, _targets("stripe"), _listed("externalsecrets")),
    }


def test_the_rendered_objects_are_valid_kubernetes(repo_root: Path) -> None:
    for loaded in (*CATALOGS.values(), load_catalog(repo_root / "examples" / "catalog.yaml")):
        for objects in _rendered(loaded, ACCOUNT).values():
            for manifest in objects:
                kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def test_the_example_never_lets_the_delivery_list_secrets_and_reads_only_its_targets(repo_root: Path) -> None:
    """In ``argocd`` (Argo CD's repository and cluster credentials live there) the delivery may read
    exactly the Secret the catalog merges Argo CD's admin password into, nothing else."""
    loaded = load_catalog(repo_root / "examples" / "catalog.yaml")
    rules = [
        (cluster, m["metadata"].get("namespace", ""), rule)
        for cluster, objects in _rendered(loaded, ACCOUNT).items()
        for m in objects
        if m["kind"] in ("Role", "ClusterRole")
        for rule in m["rules"]
    ]
    on_secrets = [(c, ns, r) for c, ns, r in rules if "secrets" in r["resources"]]
    assert on_secrets and all(r["verbs"] == ["get"] and r.get("resourceNames") for _, _, r in on_secrets)
    assert {(c, ns): r["resourceNames"] for c, ns, r in on_secrets}[("prod-eu", "argocd")] == [
        "argocd-secret"
    ]
    assert not any(set(r["verbs"]) - {"get", "list", "create"} for _, _, r in rules)
    assert all(r["resources"] == ["serviceaccounts/token"] for _, _, r in rules if "create" in r["verbs"])


# ---------------------------------------------------------------- the steps' calls, as the account


@dataclass
class Delivery:
    loaded: LoadedCatalog
    admins: dict[str, client.ApiClient]
    accounts: dict[str, client.ApiClient]
    roles: dict[str, list[dict[str, Any]]]  # cluster -> the rendered Roles and ClusterRoles
    calls: dict[str, Callable[[str], Any]]  # step call name -> call in one cluster


@contextmanager
def _delivered(loaded: LoadedCatalog, schemas_dir: Path, unsealed_vault: UnsealedVault) -> Iterator[Delivery]:
    crds = load_crds(CrdSource(schemas_dir, upstream=True))
    served = {name: KubeCluster(f"rbac-delivery-{name}").start() for name in CLUSTERS}
    try:
        admins = {name: admin_client(cluster) for name, cluster in served.items()}
        for cluster in served.values():
            cluster.register_crds(crds)
        for namespace in ("argo", "argocd"):
            apply(admins["hub"], {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        for path in ("service-accounts.yaml", "delivery-pipeline.yaml"):  # the workflows cluster's own
            for document in yaml.safe_load_all((REPO_ROOT / "argocd-apps/workflows/rbac" / path).read_text()):
                document["metadata"].setdefault("namespace", "argo")
                apply(admins["hub"], document)
        by_cluster: dict[str, list[dict[str, Any]]] = {}
        for path, manifest in render_catalog(loaded).manifests():
            if path.startswith("clusters/") and manifest["kind"] != "Kustomization":
                by_cluster.setdefault(path.split("/")[1], []).append(manifest)
        for name, manifests in by_cluster.items():
            manifests.sort(key=lambda m: m["kind"] != "Namespace")
            wanted = {m["metadata"]["namespace"] for m in manifests if m["metadata"].get("namespace")}
            wanted.add("external-secrets-system")
            rendered = {m["metadata"]["name"] for m in manifests if m["kind"] == "Namespace"}
            for namespace in sorted(wanted - rendered):
                apply(
                    admins[name], {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
                )
            for manifest in manifests:
                apply(admins[name], manifest)
            apply(
                admins[name],
                {
                    "apiVersion": "v1",
                    "kind": "ServiceAccount",
                    "metadata": {"name": "external-secrets", "namespace": "external-secrets-system"},
                },
            )
        accounts = {
            name: as_account(served[name], token_for(admins[name], "argo", ACCOUNT)) for name in CLUSTERS
        }
        vault = VaultApi(unsealed_vault.address, token=unsealed_vault.root_token)
        auth = loaded.catalog.vault.kubernetes_auth.eso_service_account

        def login(cluster: str) -> Any:
            """preflight's first call in each cluster: a token of ESO's account (TokenRequest)."""
            return service_account_token(
                namespace=auth.namespace, name=auth.name, core_api=client.CoreV1Api(accounts[cluster])
            )

        def checks(cluster: str) -> Any:
            """preflight's checks in one cluster (ownership, refresh); Vault's findings do not matter here."""
            return preflight(loaded, {cluster: ClusterAccess(accounts[cluster], vault)})

        def verify(cluster: str) -> Any:
            """verify-ready's looks at every rendered ExternalSecret and PushSecret of the cluster."""
            watched = [
                WatchedObject(
                    kind=m["kind"],
                    cluster=cluster,
                    namespace=m["metadata"]["namespace"],
                    name=m["metadata"]["name"],
                    application="argocd/eso-resources",
                    changed=False,
                )
                for m in by_cluster[cluster]
                if m["kind"] in ("ExternalSecret", "PushSecret")
            ]
            report = wait_for_sync(
                admins["hub"], [], watched, accounts, commit="0" * 40, accept=lambda _: True, timeout=0.5
            )
            failed = [line for line in report.pending if line.startswith("last look failed")]
            if failed:
                raise OperationError("; ".join(failed))
            return report

        roles = {
            cluster: [m for m in objects if m["kind"] in ("Role", "ClusterRole")]
            for cluster, objects in _rendered(loaded, ACCOUNT).items()
        }
        yield Delivery(loaded, admins, accounts, roles, {"login": login, "checks": checks, "verify": verify})
    finally:
        for cluster in served.values():
            cluster.stop()


@pytest.fixture(scope="module")
def rotating(schemas_dir: Path, unsealed_vault: UnsealedVault) -> Iterator[Delivery]:
    with _delivered(CATALOGS["rotating"], schemas_dir, unsealed_vault) as delivery:
        yield delivery


@pytest.fixture(scope="module")
def static(schemas_dir: Path, unsealed_vault: UnsealedVault) -> Iterator[Delivery]:
    with _delivered(CATALOGS["static"], schemas_dir, unsealed_vault) as delivery:
        yield delivery


def _of(request: pytest.FixtureRequest, variant: str) -> Delivery:
    found: Delivery = request.getfixturevalue(variant)
    return found


@pytest.mark.parametrize("variant", sorted(CATALOGS))
def test_the_rendered_rbac_is_enough_for_every_delivery_call(
    request: pytest.FixtureRequest, variant: str
) -> None:
    delivery = _of(request, variant)
    failures = {
        (name, cluster): outcome(functools.partial(call, cluster))
        for name, call in delivery.calls.items()
        for cluster in CLUSTERS
    }
    assert {key: text for key, text in failures.items() if text} == {}


def _needing(grant: Grant) -> str:
    """Which call makes the request ``grant`` allows."""
    if grant.resource == "serviceaccounts/token":
        return "login"
    if grant.role == CONSUMERS_ROLE and grant.resource in ("externalsecrets", "pushsecrets"):
        return "verify"
    return "checks"  # the target Secrets, and the discovery (the refresh check)


GRANTS = [
    (variant, cluster, grant)
    for variant, loaded in CATALOGS.items()
    for cluster, objects in _rendered(loaded, ACCOUNT).items()
    for role in objects
    if role["kind"] in ("Role", "ClusterRole")
    for grant in grants(role)
]


@pytest.mark.parametrize(("variant", "cluster", "grant"), GRANTS, ids=str)
def test_each_rendered_grant_is_needed(
    request: pytest.FixtureRequest, variant: str, cluster: str, grant: Grant
) -> None:
    delivery = _of(request, variant)
    role = next(
        r
        for r in delivery.roles[cluster]
        if (r["kind"], r["metadata"]["name"], r["metadata"].get("namespace", ""))
        == (grant.kind, grant.role, grant.namespace)
    )
    replace_role(delivery.admins[cluster], without(role, grant))
    try:
        message = outcome(lambda: delivery.calls[_needing(grant)](cluster))
    finally:
        replace_role(delivery.admins[cluster], role)
    assert "403" in message or "forbidden" in message, message
    assert f'User "system:serviceaccount:argo:{ACCOUNT}" {grant.denial}' in message


REFUSED: dict[str, Callable[[Any, Any], Any]] = {
    "list-secrets": lambda core, custom: core.list_namespaced_secret("shop"),
    "list-secrets-everywhere": lambda core, custom: core.list_secret_for_all_namespaces(),
    "get-a-secret-not-a-target": lambda core, custom: core.read_namespaced_secret("other", "shop"),
    "get-another-namespaces-target": lambda core, custom: core.read_namespaced_secret("stripe", "shop"),
    "get-the-keeper": lambda core, custom: core.read_namespaced_secret("vaultflow-vault-keeper", "argo"),
    "patch-an-externalsecret": lambda core, custom: custom.patch_namespaced_custom_object(
        ESO, "v1", "shop", "externalsecrets", "shop-db", {"metadata": {"labels": {"x": "y"}}}
    ),
    "token-of-another-account": lambda core, custom: core.create_namespaced_service_account_token(
        "vault-token-reviewer", "external-secrets-system", {"spec": {}}
    ),
}


@pytest.mark.parametrize("variant", sorted(CATALOGS))
@pytest.mark.parametrize("what", sorted(REFUSED))
def test_everything_else_is_refused(request: pytest.FixtureRequest, variant: str, what: str) -> None:
    accounts = _of(request, variant).accounts
    for cluster in ("hub", "edge"):
        with pytest.raises(client.ApiException) as refused:
            REFUSED[what](client.CoreV1Api(accounts[cluster]), client.CustomObjectsApi(accounts[cluster]))
        assert refused.value.status == 403


def test_without_rotation_the_lists_stay_in_the_delivered_namespaces(static: Delivery) -> None:
    """No discovery ClusterRole: ExternalSecrets are listed only where the catalog delivers some."""
    custom = client.CustomObjectsApi(static.accounts["quiet"])
    custom.list_namespaced_custom_object(ESO, "v1", "billing", "externalsecrets")
    for namespace, plural, version in (
        ("shop", "externalsecrets", "v1"),
        ("billing", "pushsecrets", "v1alpha1"),
    ):
        with pytest.raises(client.ApiException) as refused:
            custom.list_namespaced_custom_object(ESO, version, namespace, plural)
        assert refused.value.status == 403
    with pytest.raises(client.ApiException) as refused:
        custom.list_cluster_custom_object(ESO, "v1", "externalsecrets")
    assert refused.value.status == 403
