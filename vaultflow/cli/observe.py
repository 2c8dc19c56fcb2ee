"""``vaultflow consumers PATH`` and ``vaultflow audit``: what is live, compared with the catalog.

``consumers``: everything that consumes one Vault path; exit 0 answered (also
when nothing consumes it), 1 a cluster could not be read, 2 bad input.
``audit``: drift between the catalog and Vault and the clusters; exit 0 none,
1 drift (or a source could not be read), 2 bad input.
"""

from __future__ import annotations

import enum
from pathlib import Path

import typer

from vaultflow.cli.options import (
    CA_CERT_OPTION,
    CATALOG_OPTION,
    VAULT_ADDRESSES_OPTION,
    default_catalog,
    vault_connection,
)


class ConsumersFormat(enum.StrEnum):
    table = "table"
    json = "json"


def consumers(
    path: str = typer.Argument(..., help="The Vault path, as the catalog names it (e.g. prod/database)."),
    catalog: Path = CATALOG_OPTION,
    output: ConsumersFormat = typer.Option(ConsumersFormat.table, "--output", "-o", help="table or json."),
) -> None:
    """List every ExternalSecret, Secret, PushSecret, cloud copy and workload of PATH (never a value)."""
    from rich.console import Console

    from vaultflow.gitops.catalog import load_catalog
    from vaultflow.steps.kube.clusters import cluster_clients
    from vaultflow.steps.observe.consumers import consumers_of

    loaded = load_catalog(catalog or default_catalog())
    clients = cluster_clients(loaded)
    try:
        report = consumers_of(loaded, path.strip("/"), clients)
    finally:
        for client in clients.values():
            client.close()
    if output is ConsumersFormat.json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        Console().print(report.to_table())


class AuditFormat(enum.StrEnum):
    table = "table"
    markdown = "markdown"
    json = "json"


def audit(
    catalog: Path = CATALOG_OPTION,
    output: AuditFormat = typer.Option(AuditFormat.table, "--output", "-o", help="table, markdown or json."),
    vault_addresses: str = VAULT_ADDRESSES_OPTION,
    ca_cert: str = CA_CERT_OPTION,
) -> None:
    """Drift between the catalog and what is live (read-only); exit 1 when there is any."""
    from rich.console import Console

    from vaultflow.gitops.catalog import load_catalog
    from vaultflow.steps.kube.clusters import cluster_clients
    from vaultflow.steps.observe.audit import audit as audit_catalog
    from vaultflow.steps.observe.login import observer_vault

    loaded = load_catalog(catalog or default_catalog())
    addresses, ca = vault_connection(vault_addresses, ca_cert)
    clients = cluster_clients(loaded)
    try:
        with observer_vault(loaded, addresses, ca) as vault:
            report = audit_catalog(loaded, vault, clients)
    finally:
        for client in clients.values():
            client.close()
    if output is AuditFormat.json:
        typer.echo(report.model_dump_json(indent=2))
    elif output is AuditFormat.markdown:
        typer.echo(report.to_markdown(), nl=False)
    elif report.drift:
        Console().print(report.to_table())
    else:
        checked = ", ".join(f"{count} {kind}" for kind, count in report.checked.items())
        typer.echo(f"audit: no drift ({checked})")
    raise typer.Exit(1 if report.drift else 0)
