"""``vaultflow audit``'s push check against a real OpenBao, the ESO emulator and the emulated clouds
(moto, GCP Secret Manager, Azure Key Vault, read through their real SDKs): a PushSecret whose cloud
copy is older than its Vault path's last write is named, on each cloud, once ESO had time to refresh;
after ESO pushes the new value, nothing is. Only metadata is read from the clouds: the audit's
output carries no value."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from azure.keyvault.secrets import SecretClient

from tests.sandbox_eso.conftest import AZURE_VAULT, VAULT_ADDRESS, EsoStack, external_secret
from tests.sandbox_eso.test_pushsecret import PROJECT, stores
from vaultflow.gitops.catalog import LoadedCatalog, parse_catalog
from vaultflow.gitops.render import push_secret
from vaultflow.sandbox.observe import wait_for
from vaultflow.steps.observe.audit import AuditReport, audit, cloud_store
from vaultflow.steps.observe.cloud_times import current_version_time
from vaultflow.steps.rotation.clouds import CloudReaders
from vaultflow.steps.vault.api import VaultApi

ES, PS = "ExternalSecret", "PushSecret"
CATALOG = """\
apiVersion: vaultflow.io/v1alpha1
kind: SecretsCatalog
vault: {{address: "{vault}", storeName: vault-backend}}
gitops: {{repoUrl: https://git.example.com/gitops.git}}
clusters:
  - {{name: eso, kubeContext: eso, argocd: {{server: https://kubernetes.default.svc}}}}
clouds:
  - {{name: aws, provider: aws, region: eu-west-1, auth: {{secretRef: {{secretName: clouds}}}}}}
  - {{name: gcp, provider: gcp, projectId: {project}, auth: {{secretRef: {{secretName: clouds}}}}}}
  - name: azure
    provider: azure
    vaultUrl: https://{azure}.vault.azure.net
    tenantId: 00000000-0000-4000-8000-000000000000
    auth: {{servicePrincipal: {{secretName: clouds}}}}
secrets:
  - path: {fresh}
    keys: [{{name: password, generator: {{type: password, length: 24}}}}]
    consumers: [{{cluster: eso, namespace: {namespace}, secretName: fresh}}]
    pushes:
      - {{cloud: aws, remoteKey: {namespace}-fresh, key: password}}
  - path: {stale}
    keys: [{{name: password, generator: {{type: password, length: 24}}}}]
    consumers: [{{cluster: eso, namespace: {namespace}, secretName: stale}}]
    pushes:
      - {{cloud: aws, remoteKey: {namespace}-stale, key: password}}
      - {{cloud: gcp, remoteKey: {namespace}-stale, key: password}}
      - {{cloud: azure, remoteKey: {namespace}-stale, key: password}}
"""


def _mine(report: AuditReport, namespace: str) -> set[tuple[str, str]]:
    return {(d.check, d.subject) for d in report.drift if f" {namespace}/" in d.subject}


def test_a_cloud_copy_older_than_vaults_write_is_named_and_a_pushed_one_is_not(  # noqa: PLR0917 (fixtures)
    eso: EsoStack, namespace: str, vault_path: str, aws: Any, gcp: Any, azure: SecretClient
) -> None:
    fresh, stale = f"{vault_path}/fresh", f"{vault_path}/stale"
    text = CATALOG.format(
        vault=VAULT_ADDRESS, project=PROJECT, azure=AZURE_VAULT, fresh=fresh, stale=stale, namespace=namespace
    )
    loaded: LoadedCatalog = parse_catalog(text, Path("catalog.yaml"))
    kv = eso.vault.secrets.kv.v2
    values = {path: f"v-{uuid.uuid4().hex}" for path in (fresh, stale)}
    for path, value in values.items():
        kv.create_or_update_secret(path, secret={"password": value}, mount_point="secret")
    stores(eso, namespace)
    for es in loaded.plan.external_secrets:
        remote = [{"secretKey": "password", "remoteRef": {"key": es.secret.path, "property": "password"}}]
        eso.create(namespace, external_secret(es.name, target={"name": es.target}, data=remote))
        eso.wait_ready(namespace, ES, es.name)
    pushes = loaded.plan.push_secrets
    for ps in pushes:
        eso.create(namespace, push_secret(ps).to_manifest())
        eso.wait_ready(namespace, PS, ps.name)
    clouds = CloudReaders(aws=lambda _: aws, gcp=lambda _: gcp, azure=lambda _: azure)

    def cloud_times() -> list[datetime]:
        found = [
            current_version_time(clouds, cloud_store(loaded.catalog, p.push.cloud), p.push.remote_key)
            for p in pushes
        ]
        return [moment for moment in found if moment is not None]

    pushed = wait_for(
        lambda: times if len(times := cloud_times()) == len(pushes) else None, what="every push"
    )
    # A write ESO does not see (refreshInterval 1h, no force-sync), in a later second than every push.
    wait_for(lambda: datetime.now(UTC).replace(microsecond=0) > max(pushed), what="a second after the pushes")
    kv.create_or_update_secret(stale, secret={"password": "v-again"}, mount_point="secret")

    vault = VaultApi(eso.vault.url, token=eso.vault.token)
    # Within the refresh intervals ESO may still be on its way: not drift yet.
    assert not [
        d
        for d in audit(loaded, vault, {"eso": eso.api}, clouds=clouds).drift
        if f" {namespace}/" in d.subject
    ]
    later = datetime.now(UTC) + timedelta(hours=3)  # past both refreshIntervals (1h + 1h) and the grace
    report = audit(loaded, vault, {"eso": eso.api}, now=later, clouds=clouds)
    stale_pushes = {ps.name for ps in pushes if ps.secret.path == stale}
    stale_consumer = next(es.name for es in loaded.plan.external_secrets if es.secret.path == stale)
    assert _mine(report, namespace) == {
        ("stale", f"ExternalSecret {namespace}/{stale_consumer}"),
        *(("push-stale", f"PushSecret {namespace}/{name}") for name in stale_pushes),
    }
    messages = {d.message for d in report.drift if d.check == "push-stale" and f" {namespace}/" in d.subject}
    assert {message.split(" ", 1)[0] for message in messages} == {"aws", "gcp", "azure"}
    assert report.checked["cloud secrets"] >= len(pushes)
    assert not [value for value in [*values.values(), "v-again"] if value in report.model_dump_json()]

    # ESO refreshes the consumer, then pushes the new value everywhere: the same audit is clean here.
    eso.force_sync(namespace, ES, stale_consumer)
    wait_for(lambda: eso.secret_data(namespace, "stale") == {"password": b"v-again"}, what="the new value")
    for name in stale_pushes:
        eso.force_sync(namespace, PS, name)
    wait_for(
        lambda: not _mine(audit(loaded, vault, {"eso": eso.api}, now=later, clouds=clouds), namespace),
        what="every cloud copy newer than the write",
    )
