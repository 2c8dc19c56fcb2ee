"""``vaultflow gitops ...``: what a pull request's CI runs before a catalog change merges."""

from __future__ import annotations

import enum
import os
from pathlib import Path

import typer

from vaultflow.cli.options import default_catalog

app = typer.Typer(
    help="Deliver the catalog through Git: check a change before it merges.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


class PreflightFormat(enum.StrEnum):
    table = "table"
    markdown = "markdown"
    json = "json"


@app.command("preflight")
def preflight(
    catalog: Path = typer.Option(
        None,
        "--catalog",
        "-c",
        help="Catalog file (default: $VAULTFLOW_CATALOG or ./catalog.yaml).",
        show_default=False,
    ),
    *,
    output: PreflightFormat = typer.Option(
        PreflightFormat.table, "--output", "-o", help="table, markdown (a PR comment) or json."
    ),
    vault_addresses: str = typer.Option(
        None,
        "--vault-addresses",
        help="Vault addresses, comma-separated (default: $VAULT_ADDRESSES, else the catalog's address).",
        show_default=False,
    ),
    ca_cert: str = typer.Option(
        None, "--ca-cert", help="CA bundle to verify Vault (default: $VAULT_CACERT).", show_default=False
    ),
) -> None:
    """Read every Vault reference as each cluster's ESO would, and flag what would break after merge.

    Exit 0 clean, 1 findings, 2 bad input.
    """
    from vaultflow.gitops.catalog import load_catalog
    from vaultflow.steps.delivery.preflight import eso_access
    from vaultflow.steps.delivery.preflight import preflight as run_preflight

    loaded = load_catalog(catalog or default_catalog())
    addresses = vault_addresses or os.environ.get("VAULT_ADDRESSES", "")
    ca = ca_cert if ca_cert is not None else os.environ.get("VAULT_CACERT", "")
    access = eso_access(loaded, addresses, ca)
    try:
        report = run_preflight(loaded, access)
    finally:
        for cluster in access.values():
            cluster.api_client.close()
    if output is PreflightFormat.json:
        typer.echo(report.to_json(), nl=False)
    elif output is PreflightFormat.markdown:
        typer.echo(report.to_markdown(), nl=False)
    else:
        _print_table(report)
    raise typer.Exit(1 if report.findings else 0)


def _print_table(report: object) -> None:
    from rich.console import Console
    from rich.table import Table

    from vaultflow.steps.delivery.preflight import PreflightReport

    assert isinstance(report, PreflightReport)
    console = Console()
    if not report.findings:
        console.print(f"preflight: {report.references} Vault references checked, no finding")
        return
    table = Table(title=f"preflight: {len(report.findings)} finding(s)")
    for column in ("check", "cluster", "what", "finding", "catalog"):
        table.add_column(column, overflow="fold")
    for finding in report.findings:
        table.add_row(
            finding.check, finding.cluster or "-", finding.subject, finding.message, finding.location or "-"
        )
    console.print(table)
