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


@app.command("seal")
def seal(
    path: Path = typer.Argument(
        None, help="Catalog file (default: $VAULTFLOW_CATALOG or ./catalog.yaml).", show_default=False
    ),
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Print the Vault server's seal stanza and the chart values it needs, from the catalog's vault.seal.

    Merge the values into the Vault Application (argocd-apps/apps/vault.yaml): the stanza goes after
    server.ha.raft.config, the Secret environment and volumes beside those already there. They hold
    no secret: tokens and keys come from the Secrets they name.
    """
    from vaultflow.gitops.catalog import load_catalog
    from vaultflow.gitops.vault_seal import chart_values, render_seal
    from vaultflow.gitops.yaml_emit import emit_yaml

    source = path or default_catalog()
    configured = load_catalog(source).catalog.vault.seal
    rendered = render_seal(configured)
    values = chart_values(configured)
    if output is OutputFormat.json:
        document = {"type": configured.type, "stanza": rendered.stanza, "values": values}
        typer.echo(json.dumps(document, indent=2))
        return
    if not rendered.auto_unseal:
        typer.echo(f"{source}: vault.seal is shamir: no seal stanza (bootstrap unseals with shares)")
        return
    typer.echo(f"# {source}: vault.seal {configured.type}. Append to server.ha.raft.config:")
    typer.echo(rendered.stanza, nl=False)
    server = {key: value for key, value in values["server"].items() if key != "ha"}
    if server:
        typer.echo("# and add to the helm values, beside what is there:")
        typer.echo(emit_yaml({"server": server}), nl=False)
