"""``vaultflow cluster onboard`` against two emulated clusters (HTTPS, RBAC enforced): the example
catalog's workflows cluster prod-eu and prod-us.

What it must do (steps/kube/onboard.py): apply the pipelines' rendered accounts and RBAC in prod-us,
get each account a long-lived token from a service-account-token Secret that the token controller
fills, and write one kubeconfig Secret per account into prod-eu. A re-run changes nothing, a dry run
writes nothing, no token reaches the output, and the bootstrap's remote Roles are each needed: every
grant taken away makes the bootstrap's own call fail with the API server's 403 naming it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from typer.testing import CliRunner

from tests.sandbox.test_rbac_rules_needed import Grant, grants, replace_role, without
from vaultflow.base.errors import OperationError
from vaultflow.cli import app
from vaultflow.gitops.bootstrap_rbac import bootstrap_rbac
from vaultflow.gitops.catalog import load_catalog
from vaultflow.gitops.render import rbac_meta
from vaultflow.sandbox.kube import KubeCluster
from vaultflow.sandbox.kubeconfig import ClusterAccess, write_kubeconfig
from vaultflow.steps.kube.review import cluster_review
from vaultflow.steps.vault.login import service_account_token

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml"
LOADED = load_catalog(EXAMPLE)
AUTH = LOADED.catalog.vault.kubernetes_auth
PIPELINE_SECRETS = {
    "vaultflow-bootstrap": ("argo", "vaultflow-kubeconfig-vaultflow-bootstrap"),
    "vaultflow-delivery": ("argo", "vaultflow-kubeconfig-vaultflow-delivery"),
    "vaultflow-rotation": ("argo", "vaultflow-kubeconfig-vaultflow-rotation"),
    "vaultflow-observer": ("vaultflow-monitoring", "vaultflow-observer-kubeconfig"),
}


@dataclass
class Platform:
    eu: KubeCluster
    us: KubeCluster
    kubeconfig: Path  # admin contexts prod-eu and prod-us

    def admin(self, name: str) -> client.ApiClient:
        return config.new_client_from_config(config_file=str(self.kubeconfig), context=name)


def _ensure(core: client.CoreV1Api, namespace: str, account: str | None = None) -> None:
    if namespace not in {n.metadata.name for n in core.list_namespace().items}:
        core.create_namespace({"metadata": {"name": namespace}})
    if account:
        core.create_namespaced_service_account(namespace, {"metadata": {"name": account}})


@pytest.fixture
def platform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Platform]:
    """What the platform's charts made before onboarding: Vault's reviewer and ESO in each cluster,
    the teams' namespaces, the workflows' namespaces in prod-eu (their accounts come with them)."""
    with KubeCluster("prod-eu", tls=True) as eu, KubeCluster("prod-us", tls=True) as us:
        kubeconfig = write_kubeconfig(
            tmp_path / "admin.yaml",
            [ClusterAccess(c.name, c.url, c.admin_token, ca_pem=c.ca_pem) for c in (eu, us)],
        )
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        found = Platform(eu, us, kubeconfig)
        for name in ("prod-eu", "prod-us"):
            core = client.CoreV1Api(found.admin(name))
            _ensure(core, "vault-system", "vault-token-reviewer")
            _ensure(core, "external-secrets-system", "external-secrets")
            for namespace in ("production", "payments", "argocd"):
                _ensure(core, namespace)
        eu_core = client.CoreV1Api(found.admin("prod-eu"))
        _ensure(eu_core, "argo")
        _ensure(eu_core, "vaultflow-monitoring")
        yield found


def onboard(*extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, ["cluster", "onboard", "--catalog", str(EXAMPLE), "--cluster", "prod-us", *extra]
    )
    return result.exit_code, result.output


def kubeconfig_of(platform: Platform, account: str) -> dict[str, Any]:
    namespace, name = PIPELINE_SECRETS[account]
    secret = client.CoreV1Api(platform.admin("prod-eu")).read_namespaced_secret(name, namespace)
    loaded: dict[str, Any] = yaml.safe_load(base64.b64decode(secret.data["config"]))
    return loaded


def tokens_in(platform: Platform) -> list[str]:
    """Every service-account token onboarding made in prod-us (what must never be printed)."""
    secrets = client.CoreV1Api(platform.admin("prod-us")).list_secret_for_all_namespaces().items
    return [
        base64.b64decode(s.data["token"]).decode()
        for s in secrets
        if s.type == "kubernetes.io/service-account-token" and s.data
    ]


def test_onboarding_writes_a_kubeconfig_per_account_and_a_rerun_changes_nothing(
    platform: Platform, tmp_path: Path
) -> None:
    code, output = onboard()
    assert code == 0, output
    assert "prod-us: ServiceAccount argo/vaultflow-bootstrap: created" in output
    assert "prod-us: Role vault-system/vaultflow-bootstrap-reviewer-token: created" in output
    assert "prod-us: Secret argo/vaultflow-bootstrap-long-lived-token: created" in output
    assert (
        "prod-eu: Secret argo/vaultflow-kubeconfig-vaultflow-bootstrap: created (context prod-us)" in output
    )
    tokens = tokens_in(platform)
    assert len(tokens) == len(PIPELINE_SECRETS)
    assert not [token for token in tokens if token in output]

    for account, (namespace, _) in PIPELINE_SECRETS.items():
        kubeconfig = kubeconfig_of(platform, account)
        assert [c["name"] for c in kubeconfig["contexts"]] == ["prod-us"]
        assert kubeconfig["contexts"][0]["context"]["namespace"] == namespace
        cluster = kubeconfig["clusters"][0]["cluster"]
        assert cluster["server"] == platform.us.url
        assert base64.b64decode(cluster["certificate-authority-data"]).decode() == platform.us.ca_pem

    # the bootstrap's kubeconfig is the bootstrap in prod-us (verified TLS), under its RBAC only
    path = tmp_path / "bootstrap.yaml"
    path.write_text(yaml.safe_dump(kubeconfig_of(platform, "vaultflow-bootstrap")))
    with config.new_client_from_config(config_file=str(path), context="prod-us") as as_bootstrap:
        core = client.CoreV1Api(as_bootstrap)
        token = service_account_token(namespace="vault-system", name="vault-token-reviewer", core_api=core)
        assert token
        with pytest.raises(client.ApiException) as denied:
            core.list_namespaced_secret("argo")
        assert denied.value.status == 403
        message = json.loads(denied.value.body)["message"]
        assert (
            'User "system:serviceaccount:argo:vaultflow-bootstrap" cannot list resource "secrets"' in message
        )

    versions = {
        (s.metadata.namespace, s.metadata.name): s.metadata.resource_version
        for cluster in ("prod-eu", "prod-us")
        for s in client.CoreV1Api(platform.admin(cluster)).list_secret_for_all_namespaces().items
    }
    code, again = onboard()
    assert code == 0, again
    assert "onboarded (nothing to change)" in again
    outcomes = {line.rsplit(": ", 1)[-1] for line in again.splitlines()[:-1]}
    assert outcomes <= {"unchanged", "unchanged (context prod-us)"}, again
    assert versions == {
        (s.metadata.namespace, s.metadata.name): s.metadata.resource_version
        for cluster in ("prod-eu", "prod-us")
        for s in client.CoreV1Api(platform.admin(cluster)).list_secret_for_all_namespaces().items
    }


def test_a_dry_run_writes_nothing_and_says_what_it_would_create(platform: Platform) -> None:
    before = client.CoreV1Api(platform.admin("prod-us")).list_service_account_for_all_namespaces().items
    code, output = onboard("--dry-run")
    assert code == 0, output
    assert "prod-us: ServiceAccount argo/vaultflow-delivery: would create" in output
    assert "prod-eu: Secret argo/vaultflow-kubeconfig-vaultflow-delivery: would set context prod-us" in output
    assert output.splitlines()[-1] == "dry run: nothing written (changes shown above)"
    after = client.CoreV1Api(platform.admin("prod-us")).list_service_account_for_all_namespaces().items
    assert len(after) == len(before)
    assert tokens_in(platform) == []


def test_an_account_recreated_since_gets_a_new_token_and_the_kubeconfig_follows(platform: Platform) -> None:
    assert onboard()[0] == 0
    old = kubeconfig_of(platform, "vaultflow-rotation")["users"][0]["user"]["token"]
    client.CoreV1Api(platform.admin("prod-us")).delete_namespaced_service_account(
        "vaultflow-rotation", "argo"
    )
    code, output = onboard()
    assert code == 0, output
    assert (
        "prod-us: Secret argo/vaultflow-rotation-long-lived-token: replaced (its account was recreated)"
        in output
    )
    assert "prod-eu: Secret argo/vaultflow-kubeconfig-vaultflow-rotation: updated (context prod-us)" in output
    assert kubeconfig_of(platform, "vaultflow-rotation")["users"][0]["user"]["token"] != old
    assert output.splitlines()[-1] == "cluster prod-us onboarded (changed)"


def test_bad_input_and_a_missing_namespace_are_one_line(platform: Platform) -> None:
    code, output = onboard("--cluster", "nowhere")
    assert code == 2
    assert output.strip().splitlines() == [
        "error: cluster 'nowhere' is not in the catalog (its clusters: prod-eu, prod-us)"
    ]
    client.CoreV1Api(platform.admin("prod-us")).delete_namespace("vault-system")
    code, output = onboard()
    assert code == 1
    assert output.strip().splitlines()[-1] == (
        "error: cluster prod-us: namespace vault-system does not exist, so Role "
        "vault-system/vaultflow-bootstrap-reviewer-token cannot be created: install what owns it first"
    )


# ---------------------------------------------------------------- every bootstrap grant is needed


BOOTSTRAP_ROLES = [
    resource.to_manifest()
    for _, resource in bootstrap_rbac(LOADED.catalog, rbac_meta)["prod-us"]
    if resource.kind == "Role"
]
BOOTSTRAP_GRANTS = [grant for role in BOOTSTRAP_ROLES for grant in grants(role)]


@dataclass
class Onboarded:
    admin: client.ApiClient
    calls: dict[tuple[str, str, str], Callable[[], Any]]  # (namespace, resource, verb) -> the step's call


@pytest.fixture
def onboarded(platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Onboarded:
    """prod-us onboarded; KUBECONFIG is the bootstrap's onboarded kubeconfig, as in its pod."""
    assert onboard()[0] == 0
    path = tmp_path / "bootstrap.yaml"
    path.write_text(yaml.safe_dump(kubeconfig_of(platform, "vaultflow-bootstrap")))
    monkeypatch.setenv("KUBECONFIG", str(path))
    cluster = LOADED.catalog.cluster("prod-us")
    eso = AUTH.eso_service_account
    calls: dict[tuple[str, str, str], Callable[[], Any]] = {
        # configure: the reviewer JWT Vault's Kubernetes auth mount of prod-us gets
        ("vault-system", "serviceaccounts/token", "create"): lambda: cluster_review(
            cluster, AUTH.reviewer_service_account
        ).reviewer_jwt(),
        # smoke-test: ESO's token, to log in as ESO of prod-us (smoke.py's call)
        ("external-secrets-system", "serviceaccounts/token", "create"): lambda: service_account_token(
            namespace=eso.namespace, name=eso.name, context=cluster.kube_context
        ),
    }
    return Onboarded(platform.admin("prod-us"), calls)


def outcome(call: Callable[[], Any]) -> str:
    try:
        call()
    except OperationError as error:
        return str(error)
    return ""


def test_every_bootstrap_grant_in_another_cluster_has_a_step_that_needs_it() -> None:
    assert sorted((g.namespace, g.resource, g.verb) for g in BOOTSTRAP_GRANTS) == [
        ("external-secrets-system", "serviceaccounts/token", "create"),
        ("vault-system", "serviceaccounts/token", "create"),
    ]
    assert all(role["rules"][0]["resourceNames"] for role in BOOTSTRAP_ROLES)


def test_the_bootstrap_roles_are_enough_for_its_steps_in_another_cluster(onboarded: Onboarded) -> None:
    assert {key: outcome(call) for key, call in onboarded.calls.items()} == dict.fromkeys(onboarded.calls, "")


@pytest.mark.parametrize("grant", BOOTSTRAP_GRANTS, ids=str)
def test_each_bootstrap_grant_in_another_cluster_is_needed(onboarded: Onboarded, grant: Grant) -> None:
    role = next(r for r in BOOTSTRAP_ROLES if r["metadata"]["name"] == grant.role)
    replace_role(onboarded.admin, without(role, grant))
    try:
        outcomes = {key: outcome(call) for key, call in onboarded.calls.items()}
    finally:
        replace_role(onboarded.admin, role)
    needing = (grant.namespace, grant.resource, grant.verb)
    assert {key for key, text in outcomes.items() if text} == {needing}
    message = outcomes[needing]
    assert "403 Forbidden" in message
    assert f'User "system:serviceaccount:argo:vaultflow-bootstrap" {grant.denial}' in message
    assert f'in the namespace "{grant.namespace}"' in message


def test_onboarding_another_cluster_keeps_the_contexts_of_the_first() -> None:
    """Each onboarding sets its own cluster's context in the account's kubeconfig and keeps the others;
    the same input gives the same bytes (a re-run is "unchanged")."""
    from vaultflow.steps.kube.onboard import kubeconfig_text

    def onboarded(existing: str, context: str, token: str) -> str:
        return kubeconfig_text(
            existing,
            context=context,
            server=f"https://{context}:6443",
            ca_pem="CA",
            token=token,
            namespace="argo",
        )

    first = onboarded("", "prod-us", "t-us")
    both = onboarded(first, "prod-ap", "t-ap")
    assert onboarded(both, "prod-ap", "t-ap") == both
    config_ = yaml.safe_load(both)
    assert [c["name"] for c in config_["contexts"]] == ["prod-ap", "prod-us"]
    assert {u["name"]: u["user"]["token"] for u in config_["users"]} == {"prod-ap": "t-ap", "prod-us": "t-us"}
    renewed = yaml.safe_load(onboarded(both, "prod-us", "t-us-2"))
    assert {u["name"]: u["user"]["token"] for u in renewed["users"]} == {
        "prod-ap": "t-ap",
        "prod-us": "t-us-2",
    }
