"""``vaultflow monitoring render``: the PrometheusRule and the dashboard ConfigMap, from monitoring/,
and with a catalog the exporter's Deployment, Service, ServiceMonitor and its observer's RBAC."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from vaultflow.cli.options import default_catalog
from vaultflow.gitops.monitoring import MANIFESTS_DIR, SOURCE_DIR

app = typer.Typer(help="vaultflow's alert rules and Grafana dashboard.", no_args_is_help=True)


@app.command("render")
def render(
    source: Path = typer.Option(
        SOURCE_DIR, "--source", help="Folder of vaultflow.rules.yaml and vaultflow-dashboard.json."
    ),
    out: Path = typer.Option(MANIFESTS_DIR, "--out", help="Folder the manifests go to (Argo CD syncs it)."),
    catalog: Path | None = typer.Option(
        None,
        "--catalog",
        "-c",
        help="Catalog the exporter reads (default: $VAULTFLOW_CATALOG, else ./catalog.yaml when it exists; "
        "without one the exporter's manifests are not rendered).",
        show_default=False,
    ),
    check: bool = typer.Option(
        False,
        "--check",
        help="Write nothing; exit 1 when a manifest is not what its source renders (CI).",
    ),
) -> None:
    """Write the PrometheusRule (the rules' groups unchanged), the dashboard's ConfigMap and, from the
    catalog, the exporter with its observer's RBAC in every catalog cluster."""
    from vaultflow.gitops.catalog import load_catalog
    from vaultflow.gitops.monitoring import rendered

    if catalog is None and (os.environ.get("VAULTFLOW_CATALOG") or default_catalog().is_file()):
        catalog = default_catalog()
    loaded = load_catalog(catalog) if catalog is not None else None
    files = rendered(source, loaded, catalog.as_posix() if catalog is not None else "")
    if loaded is None:
        typer.echo("no catalog (--catalog): the exporter's manifests are not rendered", err=True)
    # With a catalog every manifest of the folder is rendered: one left over (a cluster the catalog
    # no longer names) is drift too, and the render removes it.
    extra = (
        sorted(p.relative_to(out) for p in out.rglob("*.yaml") if p.relative_to(out) not in files)
        if loaded is not None and out.is_dir()
        else []
    )
    if check:
        stale = [f"{out / name} is not rendered by the catalog any more" for name in extra]
        for name, text in files.items():
            current = (out / name).read_text(encoding="utf-8") if (out / name).is_file() else None
            if current != text:
                stale.append(f"{out / name} {'is missing' if current is None else 'differs from its source'}")
        if stale:
            for line in stale:
                typer.echo(f"{line}: run `vaultflow monitoring render`", err=True)
            raise typer.Exit(1)
        typer.echo(f"{len(files)} manifest(s) in {out} are up to date with {source}")
        return
    for name, text in files.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        temporary = (out / name).with_name(f".{name.name}.tmp")
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(out / name)  # atomic: a reader never sees half a manifest
        typer.echo(f"wrote {out / name}")
    for name in extra:
        (out / name).unlink()
        typer.echo(f"removed {out / name}")
