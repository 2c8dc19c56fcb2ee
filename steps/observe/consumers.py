"""Everything that consumes one Vault path: what a person asks before rotating or deleting it.

Read from the clusters (the rotation's discovery: every ExternalSecret whose
remote key resolves to the path by ESO's rules, rendered or written by hand,
and every PushSecret of their Secrets) and from the catalog (its consumers and
pushes, flagged when they are not live, and the workloads it restarts with the
secret). References only: names and places, never a value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel

from vaultflow.gitops.catalog import LoadedCatalog
from vaultflow.gitops.catalog.placement import plan_catalog
from vaultflow.steps.rotation.discover import discover_consumers

Source = Literal["catalog", "discovered", "missing"]  # missing: in the catalog, not in the cluster


class ConsumerRow(BaseModel):
    """One thing that holds or uses the path's value."""

    kind: Literal["ExternalSecret", "Secret", "PushSecret", "Cloud", "Workload"]
    cluster: str
    namespace: str
    name: str
    detail: str  # what it reads, where it pushes, how it uses the Secret
    source: Source


class ConsumersReport(BaseModel):
    path: str
    in_catalog: bool
    rows: list[ConsumerRow]

    def to_table(self) -> object:
        """A rich ``Table`` (returned as object so that rich is imported only by who prints it)."""
        from rich.table import Table

        note = "" if self.in_catalog else " (not in the catalog)"
        table = Table(title=f"consumers of {self.path}{note}: {len(self.rows)}")
        for column in ("kind", "cluster", "namespace", "name", "detail", "source"):
            table.add_column(column, overflow="fold")
        for row in self.rows:
            table.add_row(row.kind, row.cluster, row.namespace, row.name, row.detail, row.source)
        return table


def consumers_of(loaded: LoadedCatalog, path: str, clients: Mapping[str, Any]) -> ConsumersReport:
    """Who consumes ``path``: in the clusters of ``clients`` (name to ``ApiClient``) and per the catalog."""
    catalog = loaded.catalog
    plan = plan_catalog(catalog)
    live = discover_consumers(catalog, plan, [path], clients)[path]
    rows: list[ConsumerRow] = []
    seen: set[tuple[str, str, str]] = set()
    for es in live.external_secrets:
        seen.add((es.cluster, es.namespace, es.name))
        reads = "every key" if es.extract else ", ".join(k.property or "(all, as JSON)" for k in es.keys)
        rows.append(
            ConsumerRow(
                kind="ExternalSecret",
                cluster=es.cluster,
                namespace=es.namespace,
                name=es.name,
                detail=f"reads {reads}" + (" through a template" if es.templated else ""),
                source=es.source,
            )
        )
        rows.append(
            ConsumerRow(
                kind="Secret",
                cluster=es.cluster,
                namespace=es.namespace,
                name=es.secret_name,
                detail=f"written by ExternalSecret {es.name} ({es.creation_policy})",
                source=es.source,
            )
        )
    for planned in plan.external_secrets:
        key = (planned.cluster, planned.namespace, planned.name)
        if planned.secret.path == path and planned.cluster in clients and key not in seen:
            rows.append(
                ConsumerRow(
                    kind="ExternalSecret",
                    cluster=planned.cluster,
                    namespace=planned.namespace,
                    name=planned.name,
                    detail=f"the catalog's, for Secret {planned.target}: not in the cluster",
                    source="missing",
                )
            )
    pushed: set[tuple[str, str, str]] = set()
    for ps in live.push_secrets:
        pushed.add((ps.cluster, ps.namespace, ps.name))
        rows.append(
            ConsumerRow(
                kind="PushSecret",
                cluster=ps.cluster,
                namespace=ps.namespace,
                name=ps.name,
                detail=f"pushes Secret {ps.source_secret}",
                source=ps.source,
            )
        )
        remote = ", ".join(key.remote_key for key in ps.keys)
        rows += [
            ConsumerRow(
                kind="Cloud",
                cluster=ps.cluster,
                namespace=ps.namespace,
                name=remote,
                detail=f"{store.provider} {store.location or '?'} via {store.store_kind} {store.store_name}",
                source=ps.source,
            )
            for store in ps.stores
        ]
    for planned_push in plan.push_secrets:
        key = (planned_push.cluster, planned_push.namespace, planned_push.name)
        if planned_push.secret.path == path and planned_push.cluster in clients and key not in pushed:
            rows.append(
                ConsumerRow(
                    kind="PushSecret",
                    cluster=planned_push.cluster,
                    namespace=planned_push.namespace,
                    name=planned_push.name,
                    detail=f"the catalog's, to {planned_push.push.cloud} {planned_push.push.remote_key}: "
                    "not in the cluster",
                    source="missing",
                )
            )
    secret = next((s for s in catalog.secrets if s.path == path), None)
    for workload in secret.rotation.restart if secret is not None and secret.rotation else []:
        rows.append(
            ConsumerRow(
                kind="Workload",
                cluster=workload.cluster,
                namespace=workload.namespace,
                name=f"{workload.kind}/{workload.name}",
                detail="restarted when the secret rotates",
                source="catalog",
            )
        )
    return ConsumersReport(path=path, in_catalog=secret is not None, rows=rows)
