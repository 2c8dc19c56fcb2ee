"""The sandbox's status as a table: what ``vaultflow sandbox status`` and the demo show."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from vaultflow.sandbox.lifecycle import SandboxStatus


def status_table(current: SandboxStatus) -> Table:
    table = Table(title="vaultflow sandbox (local, not a real platform)")
    for column in ("component", "name", "endpoint", "pid", "state"):
        table.add_column(column, overflow="fold")
    for component in current.components:
        colour = "green" if component.healthy else "red"
        table.add_row(
            component.component,
            component.name,
            component.endpoint,
            str(component.pid or "-"),
            f"[{colour}]{component.state}[/{colour}]",
        )
    return table


def print_status(current: SandboxStatus, console: Console | None = None) -> None:
    (console or Console(width=160)).print(status_table(current))
