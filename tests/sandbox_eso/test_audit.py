"""``vaultflow audit`` against a real OpenBao and a cluster where the ESO emulator runs.

Each kind of drift is made on purpose in the test's own namespace and KV prefix;
the cluster and the OpenBao are shared with other tests, so only drift about the
test's own objects is looked at. Then the same catalog, with the drift undone,
audits clean.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import hvac.exceptions
import pytest

from tests.sandbox_eso.conftest import VAULT_ADDRESS, EsoStack, external_secret
from vaultflow.base.times import parse_time
from vaultflow.gitops.catalog import LoadedCatalog, parse_catalog
from vaultflow.gitops.names import k8s_name
from vaultflow.gitops.policies import all_policies
from vaultflow.sandbox.observe import wait_for
from vaultflow.steps.observe.audit import AuditReport, audit
from vaultflow.steps.vault.api import VaultApi

ES = "ExternalSecret"
CATALOG = """\
apiVersion: vaultflow.io/v1alpha1
kind: SecretsCatalog
vault: {{address: "{vault}", storeName: vault-backend}}
gitops: {{repoUrl: https://git.example.com/gitops.git}}
clusters:
  - {{name: eso, kubeContext: eso, argocd: {{server: https://kubernetes.default.svc}}}}
secrets:
{secrets}
"""
SECRET = """\
  - path: {path}
    keys: [{{name: password, generator: {{type: password, length: 24}}}}]
    consumers: [{{cluster: eso, namespace: {namespace}, secretName: {target}}}]
"""


def _loaded(namespace: str, paths: dict[str, str]) -> LoadedCatalog:
    secrets = "".join(SECRET.format(path=p, namespace=namespace, target=t) for p, t in paths.items())
    return parse_catalog(CATALOG.format(vault=VAULT_ADDRESS, secrets=secrets), Path("catalog.yaml"))


def _mine(report: AuditReport, namespace: str, prefix: str) -> set[tuple[str, str]]:
    return {
        (d.check, d.subject)
        for d in report.drift
        if f" {namespace}/" in d.subject or f" {prefix}/" in d.subject or d.check == "policy"
    }


def _rendered(eso: EsoStack, namespace: str, path: str, target: str, prop: str = "password") -> str:
    name = k8s_name(path)
    remote = [{"secretKey": "password", "remoteRef": {"key": path, "property": prop}}]
    eso.create(namespace, external_secret(name, target={"name": target}, data=remote))
    return name


def test_each_kind_of_drift_is_found_and_a_clean_platform_audits_clean(
    eso: EsoStack, namespace: str, vault_path: str
) -> None:
    prefix = vault_path
    fresh, stale, broken = f"{prefix}/fresh", f"{prefix}/stale", f"{prefix}/broken"
    absent, never_delivered, orphan = f"{prefix}/absent", f"{prefix}/undelivered", f"{prefix}/orphan"
    kv = eso.vault.secrets.kv.v2
    values = {path: f"v-{uuid.uuid4().hex}" for path in (fresh, stale, broken, never_delivered, orphan)}
    for path, value in values.items():
        kv.create_or_update_secret(path, secret={"password": value}, mount_point="secret")
    fresh_name = _rendered(eso, namespace, fresh, "fresh")
    stale_name = _rendered(eso, namespace, stale, "stale")
    broken_name = _rendered(eso, namespace, broken, "broken", prop="no-such-property")
    eso.create(namespace, external_secret("by-hand", data=[]))
    eso.wait_ready(namespace, ES, fresh_name)
    eso.wait_ready(namespace, ES, stale_name)
    wait_for(
        lambda: eso.condition(namespace, ES, broken_name).get("status") == "False", what="broken failing"
    )
    # A write ESO does not see (refreshInterval 1h, no force-sync), in a later second than its refresh.
    refreshed = parse_time(eso.get(namespace, ES, stale_name)["status"]["refreshTime"])
    wait_for(lambda: datetime.now(UTC).replace(microsecond=0) > refreshed, what="a second after the refresh")
    kv.create_or_update_secret(stale, secret={"password": "v-again"}, mount_point="secret")

    catalog = {
        fresh: "fresh",
        stale: "stale",
        broken: "broken",
        absent: "absent",
        never_delivered: "undelivered",
    }
    loaded = _loaded(namespace, catalog)
    vault = VaultApi(eso.vault.url, token=eso.vault.token)
    for policy in all_policies(loaded.catalog, loaded.plan):  # another test of this OpenBao may have
        eso.vault.sys.delete_policy(policy.name)  # written some (vaultflow-bootstrap is catalog-free)
    later = datetime.now(UTC) + timedelta(hours=2)  # the stale write is now older than refreshInterval
    report = audit(loaded, vault, {"eso": eso.api}, now=later)
    policies = {f"policy {p.name}" for p in all_policies(loaded.catalog, loaded.plan)}
    assert _mine(report, namespace, prefix) == {
        ("unmanaged", f"ExternalSecret {namespace}/by-hand"),
        ("not-ready", f"ExternalSecret {namespace}/{broken_name}"),
        ("missing", f"ExternalSecret {namespace}/{k8s_name(absent)}"),
        ("missing", f"ExternalSecret {namespace}/{k8s_name(never_delivered)}"),
        ("stale", f"ExternalSecret {namespace}/{stale_name}"),
        ("vault-missing", f"path {absent}"),
        ("orphan", f"path {orphan}"),
        *(("policy", subject) for subject in policies),  # none written in this OpenBao yet
    }
    text = report.model_dump_json() + report.to_markdown()
    assert not [value for value in values.values() if value in text]

    # Undo every drift (the catalog drops what cannot be delivered): the audit is then clean here.
    clean = _loaded(namespace, {fresh: "fresh", stale: "stale"})
    for policy in all_policies(clean.catalog, clean.plan):
        eso.vault.sys.create_or_update_policy(policy.name, policy.hcl)
    for path in (orphan, broken, never_delivered):
        kv.delete_metadata_and_all_versions(path, mount_point="secret")
    for name in ("by-hand", broken_name):
        eso.custom.delete_namespaced_custom_object(
            "external-secrets.io", "v1", namespace, "externalsecrets", name
        )
    eso.force_sync(namespace, ES, stale_name)
    wait_for(
        lambda: parse_time(eso.get(namespace, ES, stale_name)["status"]["refreshTime"]) > refreshed,
        what="the stale consumer refreshed",
    )
    wait_for(
        lambda: not [d for d in audit(clean, vault, {"eso": eso.api}).drift if f" {namespace}/" in d.subject],
        what="no drift left in the namespace",
    )
    final = audit(clean, vault, {"eso": eso.api})
    assert _mine(final, namespace, prefix) == set()  # policies written, nothing of this test drifts


def test_the_observer_policy_is_enough_for_audit_and_exporter_and_reads_no_value(
    eso: EsoStack, namespace: str, vault_path: str
) -> None:
    """As the rendered vaultflow-observer policy: every read the audit and the exporter make is
    granted, and a secret's value is not."""
    from prometheus_client import CollectorRegistry, generate_latest

    from vaultflow.gitops.policies import observer_policy
    from vaultflow.steps.observe.exporter import CatalogCollector

    kv = eso.vault.secrets.kv.v2
    kv.create_or_update_secret(vault_path, secret={"password": "p"}, mount_point="secret")
    loaded = _loaded(namespace, {vault_path: "db"})
    policy = observer_policy(loaded.catalog)
    eso.vault.sys.create_or_update_policy(policy.name, policy.hcl)
    token = eso.vault.auth.token.create(policies=[policy.name], no_default_policy=True, ttl="5m")
    observer = VaultApi(eso.vault.url, token=token["auth"]["client_token"])

    report = audit(loaded, observer, {"eso": eso.api})
    assert not [d for d in report.drift if "denied" in d.message]  # every audit read was allowed
    registry = CollectorRegistry()
    CatalogCollector(loaded.catalog, observer, {"eso": eso.api}, registry)
    text = generate_latest(registry).decode()
    assert 'vaultflow_exporter_source_up{source="vault"} 1.0' in text
    assert f'vaultflow_secret_last_write_timestamp_seconds{{path="{vault_path}"}}' in text
    with pytest.raises(hvac.exceptions.Forbidden):
        observer.client.secrets.kv.v2.read_secret_version(vault_path, mount_point="secret")
