"""The ``vaultflow`` command line.

Each command group lives in its own module and imports heavy SDKs (boto3,
kubernetes, google, azure, hvac) inside the command body, so that
``vaultflow --help`` stays fast. ``main`` turns every ``VaultflowError`` into one
line on stderr and the error's exit code: 0 ok, 1 failure, 2 bad input.
"""

from __future__ import annotations

import sys

import typer

from vaultflow import __version__
from vaultflow.cli import catalog as catalog_cmd
from vaultflow.cli import render as render_cmd
from vaultflow.errors import VaultflowError

app = typer.Typer(
    name="vaultflow",
    help=(
        "Automate a Vault + External Secrets Operator + Argo CD secrets platform: "
        "bootstrap Vault, deliver ESO resources through Git, rotate secrets and "
        "verify they reached every cluster and cloud."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(catalog_cmd.app, name="catalog")
app.command("render")(render_cmd.render)


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
    except VaultflowError as error:
        typer.secho(f"error: {error}", err=True, fg=typer.colors.RED)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        typer.secho("interrupted", err=True)
        sys.exit(130)
