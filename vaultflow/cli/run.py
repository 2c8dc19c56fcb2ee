"""``vaultflow run NAME -p key=value``: run a registered pipeline locally, with Argo's semantics.

Exit codes: 0 when the workflow Succeeded, 1 when it Failed or Errored, 2 on
bad input (unknown template, unknown or missing parameter, a template the
local runner refuses), in which case nothing ran.
"""

from __future__ import annotations

from pathlib import Path

import typer


def run(
    name: str = typer.Argument(
        ..., help="WorkflowTemplate (or CronWorkflow) name; see `vaultflow workflows list`."
    ),
    parameter: list[str] = typer.Option(
        [], "--parameter", "-p", help="Workflow parameter as key=value (repeatable).", metavar="KEY=VALUE"
    ),
    run_dir: Path = typer.Option(
        Path("runs"), "--run-dir", help="Where each run writes its step logs and status.json."
    ),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="No live progress tree (the summary is still printed)."
    ),
) -> None:
    """Run a pipeline in this process, exactly as Argo would run its template."""
    from rich.console import Console

    from vaultflow.workflows import runner
    from vaultflow.workflows.parameters import parse_assignments
    from vaultflow.workflows.registry import load_registry
    from vaultflow.workflows.runner.display import LiveTree, print_summary

    parameters = parse_assignments(parameter)
    registry = load_registry()
    spec = runner.load(registry.document(name), lookup=registry.lookup)
    console = Console()
    observer = LiveTree(console) if console.is_terminal and not quiet else None
    result = runner.run(spec, parameters, run_root=run_dir, observer=observer)
    print_summary(console, result)
    raise typer.Exit(0 if result.succeeded else 1)
