"""``vaultflow monitoring render``: the PrometheusRule and the dashboard ConfigMap, from monitoring/."""

from __future__ import annotations

from pathlib import Path

import typer

from vaultflow.gitops.monitoring import MANIFESTS_DIR, SOURCE_DIR

app = typer.Typer(help="vaultflow's alert rules and Grafana dashboard.", no_args_is_help=True)


@app.command("render")
def render(
    source: Path = typer.Option(
        SOURCE_DIR, "--source", help="Folder of vaultflow.rules.yaml and vaultflow-dashboard.json."
    ),
    out: Path = typer.Option(MANIFESTS_DIR, "--out", help="Folder the manifests go to (Argo CD syncs it)."),
    check: bool = typer.Option(
        False,
        "--check",
        help="Write nothing; exit 1 when a manifest is not what its source renders (CI).",
    ),
) -> None:
    """Write the PrometheusRule (the rules' groups unchanged) and the dashboard's ConfigMap."""
    from vaultflow.gitops.monitoring import rendered

    files = rendered(source)
    if check:
        stale = []
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
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        temporary = out / f".{name}.tmp"
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(out / name)  # atomic: a reader never sees half a manifest
        typer.echo(f"wrote {out / name}")
