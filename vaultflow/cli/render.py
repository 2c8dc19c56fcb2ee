"""``vaultflow render``: the GitOps tree of a catalog."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from vaultflow.cli.options import OUTPUT_OPTION, OutputFormat, default_catalog


def render(
    catalog: Path = typer.Option(
        None,
        "--catalog",
        "-c",
        help="Catalog file (default: $VAULTFLOW_CATALOG or ./catalog.yaml).",
        show_default=False,
    ),
    out: Path = typer.Option(..., "--out", help="Directory to (re)write; vaultflow owns its content."),
    schemas: Path = typer.Option(
        None,
        "--schemas",
        help="Directory of upstream CRDs to validate every manifest against before writing.",
    ),
    repo_url: str = typer.Option(None, "--repo-url", help="Override gitops.repoUrl in the Applications."),
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Render ESO manifests, Vault policies and Argo CD Applications; write nothing unless all are valid."""
    from vaultflow.gitops.catalog import load_catalog
    from vaultflow.gitops.crd_schemas import CrdRegistry
    from vaultflow.gitops.render import render_catalog, validate_tree
    from vaultflow.gitops.tree_writer import check_replaceable, write_tree

    loaded = load_catalog(catalog or default_catalog())
    check_replaceable(out.absolute())
    tree = render_catalog(loaded, repo_url=repo_url)
    if schemas is not None:
        validate_tree(tree, CrdRegistry.from_directory(schemas))
    changes = write_tree(tree, out)
    kinds: dict[str, int] = {}
    for _, manifest in tree.manifests():
        kinds[manifest["kind"]] = kinds.get(manifest["kind"], 0) + 1
    kinds = dict(sorted(kinds.items()))
    result = {
        "out": str(out),
        "files": len(tree.files),
        "kinds": kinds,
        "added": changes.added,
        "changed": changes.changed,
        "removed": changes.removed,
    }
    if output is OutputFormat.json:
        typer.echo(json.dumps(result, indent=2))
        return
    summary = ", ".join(f"{count} {kind}" for kind, count in kinds.items())
    typer.echo(f"rendered {len(tree.files)} files into {out}: {summary}")
    if changes.total_changes == 0:
        typer.echo("no change")
    else:
        typer.echo(
            f"{len(changes.added)} added, {len(changes.changed)} changed, {len(changes.removed)} removed"
        )
