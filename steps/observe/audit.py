"""Drift between the catalog and what is live: read-only, for a person or a scheduled check.

Each cluster is asked once per kind (one LIST of ExternalSecrets, one of
PushSecrets); Vault once per catalog path (its metadata, never a value; 8 at a time), once
per rendered policy, and once per folder of the KV mount (to find orphans).

| check | drift |
| --- | --- |
| unmanaged | an ExternalSecret or PushSecret in a catalog cluster that no catalog entry renders |
| missing | one the catalog renders that is not in its cluster |
| not-ready | one the catalog renders whose Ready condition is not True |
| stale | a rendered, Ready ExternalSecret that missed its path's last write over refreshInterval + 1 min |
| vault-missing | a catalog path that does not exist in Vault |
| orphan | a path under the KV mount that no catalog entry names (vaultflow's own ``vaultflow/`` excepted) |
| policy | a rendered Vault policy that is missing or differs live |
| push-stale | a rendered, Ready PushSecret whose cloud secret's current version is older than its path's
  last write (or absent), past the ExternalSecret's and the PushSecret's refreshIntervals + 1 min |

The clouds are asked once per remote secret of a live, Ready, rendered PushSecret, for metadata only
(``cloud_times``: the current version's creation time, never a value).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel

from vaultflow.base.durations import parse_go_duration
from vaultflow.base.errors import OperationError
from vaultflow.base.times import parse_time
from vaultflow.gitops.catalog import LoadedCatalog
from vaultflow.gitops.catalog.model import AwsCloud, Catalog, GcpCloud
from vaultflow.gitops.policies import INTERNAL_PREFIX, all_policies
from vaultflow.steps.observe.cloud_times import current_version_time
from vaultflow.steps.observe.exporter import READERS
from vaultflow.steps.observe.freshness import is_ready, stale_seconds
from vaultflow.steps.observe.metadata_reads import MetadataReads
from vaultflow.steps.rotation.clouds import CloudReaders
from vaultflow.steps.rotation.discover import CloudStore, list_cluster_objects
from vaultflow.steps.rotation.write import SecretMetadata
from vaultflow.steps.vault.api import VaultApi

Check = Literal[
    "unmanaged", "missing", "not-ready", "stale", "vault-missing", "orphan", "policy", "push-stale"
]
GRACE_SECONDS = 60.0  # beyond refreshInterval, before a consumer that missed a write counts as stale


class Drift(BaseModel):
    check: Check
    cluster: str | None
    subject: str  # "ExternalSecret ns/name", "path prod/x", "policy eso-prod-us"
    message: str


class AuditReport(BaseModel):
    drift: list[Drift]
    checked: dict[str, int]  # what was compared, by kind

    def to_table(self) -> object:
        """A rich ``Table`` (returned as object so that rich is imported only by who prints it)."""
        from rich.table import Table

        table = Table(title=f"audit: {len(self.drift)} drift(s)")
        for column in ("check", "cluster", "what", "drift"):
            table.add_column(column, overflow="fold")
        for item in self.drift:
            table.add_row(item.check, item.cluster or "-", item.subject, item.message)
        return table

    def to_markdown(self) -> str:
        checked = ", ".join(f"{count} {kind}" for kind, count in self.checked.items())
        if not self.drift:
            return f"**vaultflow audit**: no drift ({checked}).\n"
        lines = [
            f"**vaultflow audit**: {len(self.drift)} drift(s) ({checked}).",
            "",
            "| check | cluster | what | drift |",
            "| --- | --- | --- | --- |",
        ]
        lines += [
            f"| {d.check} | {d.cluster or '-'} | {_cell(d.subject)} | {_cell(d.message)} |"
            for d in self.drift
        ]
        return "\n".join(lines) + "\n"


def audit(
    loaded: LoadedCatalog,
    vault: VaultApi,
    clients: Mapping[str, Any],
    *,
    now: datetime | None = None,
    clouds: CloudReaders | None = None,
) -> AuditReport:
    """Compare the catalog with Vault and the clusters of ``clients`` (cluster name to ``ApiClient``);
    ``clouds``: how to reach the clouds' metadata (default: the SDKs, configured from the environment)."""
    now = now or datetime.now(UTC)
    clouds = clouds or CloudReaders()
    catalog, plan = loaded.catalog, loaded.plan
    kv = catalog.vault.kv_mount
    paths = list(dict.fromkeys(secret.path for secret in catalog.secrets))
    with MetadataReads(vault, kv, connections=READERS) as reads:  # as the exporter reads them
        metadata = reads.read_all(paths)
    drift = [
        Drift(
            check="vault-missing", cluster=None, subject=f"path {path}", message=f"{kv}/{path} does not exist"
        )
        for path, found in metadata.items()
        if found is None
    ]
    checked = {"paths": len(paths), "ExternalSecrets": 0, "PushSecrets": 0, "cloud secrets": 0}
    for cluster, api_client in clients.items():
        rendered_es = {
            (e.namespace, e.name): e.secret.path for e in plan.external_secrets if e.cluster == cluster
        }
        rendered_ps = {(p.namespace, p.name) for p in plan.push_secrets if p.cluster == cluster}
        live_es = list_cluster_objects(api_client, cluster, "externalsecrets")
        live_ps = list_cluster_objects(api_client, cluster, "pushsecrets", "v1alpha1")
        checked["ExternalSecrets"] += len(live_es)
        checked["PushSecrets"] += len(live_ps)
        drift += _objects(cluster, "ExternalSecret", live_es, set(rendered_es))
        drift += _objects(cluster, "PushSecret", live_ps, rendered_ps)
        drift += _stale(cluster, live_es, rendered_es, metadata, now)
        pushes = _push_stale(loaded, cluster, live_ps, metadata, now, clouds)
        checked["cloud secrets"] += pushes.checked
        drift += pushes.drift
    drift += _orphans(vault, kv, set(paths))
    policies = all_policies(catalog, plan)
    checked["policies"] = len(policies)
    for policy in policies:
        live = _live_policy(vault, policy.name)
        if live is None or live.strip() != policy.hcl.strip():
            what = "is missing in Vault" if live is None else "differs from the rendered one"
            drift.append(
                Drift(
                    check="policy",
                    cluster=None,
                    subject=f"policy {policy.name}",
                    message=f"{what}: the bootstrap pipeline's configure step writes it",
                )
            )
    return AuditReport(drift=drift, checked=checked)


def _objects(
    cluster: str, kind: str, live: Iterable[Mapping[str, Any]], rendered: set[tuple[str, str]]
) -> Iterator[Drift]:
    present = set()
    for obj in live:
        key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        present.add(key)
        subject = f"{kind} {key[0]}/{key[1]}"
        if key not in rendered:
            yield Drift(
                check="unmanaged", cluster=cluster, subject=subject, message="no catalog entry renders it"
            )
            continue
        ready, said = is_ready(obj)
        if not ready:
            yield Drift(check="not-ready", cluster=cluster, subject=subject, message=f"not Ready: {said}")
    for namespace, name in sorted(rendered - present):
        yield Drift(
            check="missing",
            cluster=cluster,
            subject=f"{kind} {namespace}/{name}",
            message="the catalog renders it; it is not in the cluster (not delivered, or deleted by hand)",
        )


def _stale(
    cluster: str,
    live: Iterable[Mapping[str, Any]],
    rendered: Mapping[tuple[str, str], str],
    metadata: Mapping[str, SecretMetadata | None],
    now: datetime,
) -> Iterator[Drift]:
    for obj in live:
        key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        path = rendered.get(key)
        vault = metadata.get(path) if path else None
        if vault is None or not vault.written_time or not is_ready(obj)[0]:
            continue  # a consumer that is not Ready is reported as such, not also as stale
        behind = stale_seconds(obj, parse_time(vault.written_time), now)
        interval = parse_go_duration(str((obj.get("spec") or {}).get("refreshInterval") or "1h"))
        if behind > interval + GRACE_SECONDS:
            yield Drift(
                check="stale",
                cluster=cluster,
                subject=f"ExternalSecret {key[0]}/{key[1]}",
                message=f"has not refreshed since {path} was written {int(behind)} s ago "
                f"(refreshInterval {int(interval)} s; last refresh "
                f"{(obj.get('status') or {}).get('refreshTime') or 'never'})",
            )


@dataclass
class _Pushes:
    drift: list[Drift] = field(default_factory=list)
    checked: int = 0


def cloud_store(catalog: Catalog, cloud_name: str) -> CloudStore:
    """Where a catalog cloud keeps its secrets, as the rotation's readers address it."""
    cloud = catalog.cloud(cloud_name)
    if isinstance(cloud, AwsCloud):
        return CloudStore(
            store_kind="SecretStore", store_name=cloud.name, provider="aws", location=cloud.region
        )
    if isinstance(cloud, GcpCloud):
        return CloudStore(
            store_kind="SecretStore", store_name=cloud.name, provider="gcp", location=cloud.project_id
        )
    return CloudStore(
        store_kind="SecretStore", store_name=cloud.name, provider="azure", location=cloud.vault_url
    )


def _push_stale(  # noqa: PLR0917 (private; each argument is one of the audit's inputs)
    loaded: LoadedCatalog,
    cluster: str,
    live: Iterable[Mapping[str, Any]],
    metadata: Mapping[str, SecretMetadata | None],
    now: datetime,
    clouds: CloudReaders,
) -> _Pushes:
    """Each live, Ready, rendered PushSecret of ``cluster`` whose cloud copy predates its path's write."""
    plan = loaded.plan
    ready = {
        (obj["metadata"].get("namespace", ""), obj["metadata"]["name"]) for obj in live if is_ready(obj)[0]
    }
    sources = {(e.cluster, e.namespace, e.target): e.refresh_interval for e in plan.external_secrets}
    found = _Pushes()
    for ps in plan.push_secrets:
        vault = metadata.get(ps.secret.path)
        if (
            ps.cluster != cluster
            or (ps.namespace, ps.name) not in ready
            or vault is None
            or not vault.written_time
        ):
            continue  # not live or not Ready (reported as such), or its path is missing in Vault
        written = parse_time(vault.written_time)
        source = sources.get((ps.cluster, ps.namespace, ps.source_secret), "1h")
        grace = parse_go_duration(source) + parse_go_duration(ps.push.refresh_interval) + GRACE_SECONDS
        store = cloud_store(loaded.catalog, ps.push.cloud)
        found.checked += 1
        subject = f"PushSecret {ps.namespace}/{ps.name}"
        try:
            changed = current_version_time(clouds, store, ps.push.remote_key)
        except OperationError as error:
            found.drift.append(
                Drift(check="push-stale", cluster=cluster, subject=subject, message=str(error))
            )
            continue
        # Whole seconds, as for a consumer: a copy written in the write's second counts as after it.
        if changed is not None and changed >= written.replace(microsecond=0):
            continue
        behind = (now - written).total_seconds()
        if behind <= grace:
            continue  # ESO may still be on its way: the ExternalSecret, then the PushSecret, refresh
        where = f"{store.provider} {ps.push.remote_key} ({store.location})"
        said = (
            "has no such secret"
            if changed is None
            else f"current version written {changed:%Y-%m-%dT%H:%M:%SZ}"
        )
        found.drift.append(
            Drift(
                check="push-stale",
                cluster=cluster,
                subject=subject,
                message=f"{where} {said}, before {ps.secret.path} was written {int(behind)} s ago "
                f"(refreshIntervals {source} + {ps.push.refresh_interval})",
            )
        )
    return found


def _orphans(vault: VaultApi, kv: str, named: set[str]) -> Iterator[Drift]:
    for path in _kv_paths(vault, kv, ""):
        if path not in named and not path.startswith(INTERNAL_PREFIX + "/"):
            yield Drift(
                check="orphan", cluster=None, subject=f"path {path}", message="no catalog entry names it"
            )


def _kv_paths(vault: VaultApi, kv: str, folder: str) -> Iterator[str]:
    """Every secret under ``folder`` of the KV v2 mount (one LIST per folder)."""
    import hvac.exceptions

    with vault.errors(f"list {kv}/metadata/{folder}"):
        try:
            keys = vault.client.secrets.kv.v2.list_secrets(folder, mount_point=kv)["data"]["keys"]
        except hvac.exceptions.InvalidPath:
            return
    for key in keys:
        if key.endswith("/"):
            yield from _kv_paths(vault, kv, folder + key)
        else:
            yield folder + key


def _live_policy(vault: VaultApi, name: str) -> str | None:
    """The live text of ACL policy ``name``, None when Vault has no such policy."""
    import hvac.exceptions

    with vault.errors(f"read policy {name}"):
        try:
            response = vault.client.sys.read_acl_policy(name)
        except hvac.exceptions.InvalidPath:
            return None
    policy = ((response or {}).get("data") or {}).get("policy")
    return str(policy) if policy is not None else None


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
