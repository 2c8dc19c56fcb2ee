"""``vaultflow catalog``: validate the secrets catalog and publish its JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from vaultflow.cli.options import OUTPUT_OPTION, OutputFormat, default_catalog

app = typer.Typer(help="Validate the secrets catalog and print its JSON Schema.", no_args_is_help=True)


@app.command("validate")
def validate(
    path: Path = typer.Argument(
        None, help="Catalog file (default: $VAULTFLOW_CATALOG or ./catalog.yaml).", show_default=False
    ),
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Check a catalog: exit 0 when valid, 2 with every problem at file:line:column when not."""
    from vaultflow.gitops.catalog import CatalogError, load_catalog
    from vaultflow.gitops.catalog.errors import format_field_path

    source = path or default_catalog()
    try:
        loaded = load_catalog(source)
    except CatalogError as error:
        if output is OutputFormat.json:
            problems = [
                {
                    "file": error.source,
                    "line": issue.line,
                    "column": issue.column,
                    "field": format_field_path(issue.path),
                    "message": issue.message,
                }
                for issue in error.issues
            ]
            typer.echo(json.dumps({"valid": False, "problems": problems}, indent=2))
            raise typer.Exit(2) from None
        raise
    catalog = loaded.catalog
    summary = {
        "valid": True,
        "file": str(source),
        "clusters": len(catalog.clusters),
        "clouds": len(catalog.clouds),
        "secrets": len(catalog.secrets),
        "consumers": sum(len(s.consumers) for s in catalog.secrets),
        "pushes": sum(len(s.pushes) for s in catalog.secrets),
        "rotated": sum(1 for s in catalog.secrets if s.rotation is not None),
    }
    if output is OutputFormat.json:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(
        f"{source}: valid: {summary['secrets']} secrets ({summary['rotated']} rotated), "
        f"{summary['consumers']} consumers in {summary['clusters']} clusters, "
        f"{summary['pushes']} pushes to {summary['clouds']} clouds"
    )


@app.command("schema")
def schema() -> None:
    """Print the catalog's JSON Schema (for editor completion and validation)."""
    from vaultflow.gitops.catalog.schema import catalog_json_schema

    typer.echo(json.dumps(catalog_json_schema(), indent=2, sort_keys=True))
