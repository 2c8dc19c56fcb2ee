"""``vaultflow render``: the GitOps tree of a catalog, or (``--check``) whether a committed tree is it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from vaultflow.cli.options import CATALOG_OPTION, OUTPUT_OPTION, OutputFormat, default_catalog

if TYPE_CHECKING:
    from vaultflow.gitops.render import RenderedTree
    from vaultflow.gitops.tree_writer import TreeCheck


def render(
    *,
    catalog: Path = CATALOG_OPTION,
    out: Path = typer.Option(..., "--out", help="Directory to (re)write; vaultflow owns its content."),
    schemas: Path = typer.Option(
        None,
        "--schemas",
        help="Directory of upstream CRDs to validate every manifest against before writing.",
    ),
    repo_url: str = typer.Option(None, "--repo-url", help="Override gitops.repoUrl in the Applications."),
    check: bool = typer.Option(
        False,
        "--check",
        help=(
            "Write nothing: exit 0 when --out already holds exactly what the catalog renders, "
            "1 listing each file that differs (for CI on a pull request)."
        ),
    ),
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Render ESO manifests, Vault policies and Argo CD Applications; write nothing unless all are valid.

    With --check, write nothing at all: compare --out with what the catalog renders.
    """
    from vaultflow.gitops.catalog import load_catalog
    from vaultflow.gitops.crd_schemas import CrdRegistry
    from vaultflow.gitops.render import render_catalog, validate_tree
    from vaultflow.gitops.tree_writer import check_replaceable, check_tree, write_tree

    catalog = catalog or default_catalog()
    loaded = load_catalog(catalog)
    check_replaceable(out.absolute())
    tree = render_catalog(loaded, repo_url=repo_url)
    if schemas is not None:
        validate_tree(tree, CrdRegistry.from_directory(schemas))
    if check:
        rerun = f"vaultflow render --catalog {catalog} --out {out}"
        rerun += f" --repo-url {repo_url}" if repo_url else ""
        _report_check(check_tree(tree, out), catalog, out, output, rerun)
        return
    changes = write_tree(tree, out)
    kinds = _kinds(tree)
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


def _kinds(tree: RenderedTree) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for _, manifest in tree.manifests():
        kinds[manifest["kind"]] = kinds.get(manifest["kind"], 0) + 1
    return dict(sorted(kinds.items()))


def _report_check(result: TreeCheck, catalog: Path, out: Path, output: OutputFormat, rerun: str) -> None:
    """Print what differs (paths, kinds and names: never a value); exit 1 when anything does."""
    changes = result.changes
    sections = {"added": changes.added, "changed": changes.changed, "removed": changes.removed}
    if output is OutputFormat.json:
        document: dict[str, Any] = {"out": str(out), "upToDate": changes.total_changes == 0}
        for section, paths in sections.items():
            document[section] = [
                {
                    "path": path,
                    "objects": [
                        {"kind": o.kind, "namespace": o.namespace, "name": o.name}
                        for o in result.objects[path]
                    ],
                }
                for path in paths
            ]
        typer.echo(json.dumps(document, indent=2))
    elif changes.total_changes == 0:
        typer.echo(f"{out} is up to date with {catalog}")
    else:
        typer.echo(
            f"{out} is not what {catalog} renders; rendering would add {len(changes.added)}, "
            f"change {len(changes.changed)} and remove {len(changes.removed)} file(s):"
        )
        for section, paths in sections.items():
            for path in paths:
                objects = ", ".join(str(o) for o in result.objects[path])
                typer.echo(f"  {section:<8} {path}" + (f"  ({objects})" if objects else ""))
        typer.echo(f"to update it: {rerun}")
    if changes.total_changes:
        raise typer.Exit(1)
