"""``vaultflow consumers PATH``: everything that consumes one Vault path, in the clusters and the catalog.

Exit codes: 0 answered (also when nothing consumes it); 1 a cluster could not be
read; 2 bad input.
"""

from __future__ import annotations

import enum
from pathlib import Path

import typer

from vaultflow.cli.options import default_catalog


class ConsumersFormat(enum.StrEnum):
    table = "table"
    json = "json"


def consumers(
    path: str = typer.Argument(..., help="The Vault path, as the catalog names it (e.g. prod/database)."),
    catalog: Path = typer.Option(
        None,
        "--catalog",
        "-c",
        help="Catalog file (default: $VAULTFLOW_CATALOG or ./catalog.yaml).",
        show_default=False,
    ),
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
