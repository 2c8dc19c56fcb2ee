"""The ``vaultflow`` command line.

Each command group lives in its own module and imports heavy SDKs (boto3,
kubernetes, google, azure, hvac) inside the command body, so that
``vaultflow --help`` stays fast. Every ``VaultflowError`` becomes one line on
stderr and the error's exit code: 0 ok, 1 failure, 2 bad input.
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from typer.core import TyperGroup

from vaultflow import __version__
from vaultflow.base.errors import VaultflowError
from vaultflow.cli import catalog as catalog_cmd
from vaultflow.cli import cluster as cluster_cmd
from vaultflow.cli import exporter as exporter_cmd
from vaultflow.cli import gitops as gitops_cmd
from vaultflow.cli import monitoring as monitoring_cmd
from vaultflow.cli import observe as observe_cmd
from vaultflow.cli import render as render_cmd
from vaultflow.cli import rotate as rotate_cmd
from vaultflow.cli import run as run_cmd
from vaultflow.cli import sandbox as sandbox_cmd
from vaultflow.cli import workflows as workflows_cmd


class _VaultflowGroup(TyperGroup):
    """Turns a ``VaultflowError`` raised by any command into one line on stderr and its exit code.

    Done in the click group rather than in ``main`` so that the command
    behaves the same when driven by ``typer.testing.CliRunner``.
    """

    def invoke(self, ctx: Any) -> Any:  # typer vendors click: its Context class is private
        try:
            return super().invoke(ctx)
        except VaultflowError as error:
            typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
            ctx.exit(error.exit_code)


app = typer.Typer(
    name="vaultflow",
    cls=_VaultflowGroup,
    help=(
        "Automate a Vault + External Secrets Operator + Argo CD secrets platform: "
        "bootstrap Vault, deliver ESO resources through Git, rotate secrets and "
        "verify they reached every cluster and cloud."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # typer 0.29's Rich help prints every flag's type (`--quiet <bool>`) as if the flag took a
    # value; its plain help (click's formatter, kept for every command and group below) does not.
    rich_markup_mode=None,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(catalog_cmd.app, name="catalog")
app.add_typer(cluster_cmd.app, name="cluster")
app.command("render")(render_cmd.render)
app.command("run")(run_cmd.run)
app.command("rotate")(rotate_cmd.rotate)
app.add_typer(workflows_cmd.app, name="workflows")
app.add_typer(gitops_cmd.app, name="gitops")
app.add_typer(sandbox_cmd.app, name="sandbox")
app.add_typer(monitoring_cmd.app, name="monitoring")
app.command("exporter")(exporter_cmd.exporter)
app.command("consumers")(observe_cmd.consumers)
app.command("audit")(observe_cmd.audit)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"vaultflow {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Root options."""


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        typer.secho("interrupted", err=True)
        sys.exit(130)
