"""``vaultflow alerts render``: the PrometheusRule of vaultflow's alerts, from the plain rules file."""

from __future__ import annotations

from pathlib import Path

import typer

from vaultflow.gitops.alert_rules import PROMETHEUS_RULE_FILE, RULES_FILE

app = typer.Typer(help="vaultflow's Prometheus alert rules.", no_args_is_help=True)


@app.command("render")
def render(
    rules: Path = typer.Option(RULES_FILE, "--rules", help="The plain Prometheus rules file (the source)."),
    out: Path = typer.Option(PROMETHEUS_RULE_FILE, "--out", help="Where the PrometheusRule manifest goes."),
    check: bool = typer.Option(
        False, "--check", help="Write nothing; exit 1 when OUT is not what RULES renders (for CI)."
    ),
) -> None:
    """Write the PrometheusRule carrying the rules file's groups unchanged (same input, same bytes)."""
    from vaultflow.base.errors import InputError
    from vaultflow.gitops.alert_rules import prometheus_rule

    try:
        text = rules.read_text(encoding="utf-8")
    except OSError as error:
        raise InputError(f"{rules}: cannot read the rules file: {error.strerror}") from None
    rendered = prometheus_rule(text, rules)
    if check:
        current = out.read_text(encoding="utf-8") if out.is_file() else None
        if current != rendered:
            what = "is missing" if current is None else "differs from what the rules render"
            typer.echo(f"{out} {what}: run `vaultflow alerts render`", err=True)
            raise typer.Exit(1)
        typer.echo(f"{out} is up to date with {rules}")
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.tmp")
    temporary.write_text(rendered, encoding="utf-8")
    temporary.replace(out)  # atomic: a reader never sees half a manifest
    typer.echo(f"wrote {out}")
