"""What a person watching a local run sees: a live tree of tasks, then a summary table.

The live tree is for terminals only; the summary table is printed in every
case. Outputs shown are the step outputs, which by vaultflow's contract are
references (a Vault path and version, a commit SHA, a report path), never
secret values. A failed step shows its node message, as Argo's does; the rest
(its output, a traceback) stays in the step's log file, whose path is printed
below the table, whole, for the user to open.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from vaultflow.workflows.runner.nodes import Node, NodeType, Phase
from vaultflow.workflows.runner.result import RunState, WorkflowResult

_STYLE = {
    Phase.PENDING: ("○", "dim"),
    Phase.RUNNING: ("●", "yellow"),
    Phase.SUCCEEDED: ("✔", "green"),
    Phase.FAILED: ("✖", "red"),
    Phase.ERROR: ("!", "red"),
    Phase.SKIPPED: ("↷", "dim"),
    Phase.OMITTED: ("∅", "dim"),
}
_MAX_OUTPUT = 80


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f}ms" if value < 1 else f"{value:.1f}s"


def _label(node: Node, now: float) -> Text:
    icon, style = _STYLE[node.phase]
    label = Text.assemble(
        (f"{icon} ", style), (node.display_name, "bold" if node.type is NodeType.DAG else "")
    )
    duration = (
        node.duration
        if node.finished_at is not None
        else (now - node.started_at if node.started_at else None)
    )
    if duration is not None and node.phase is not Phase.PENDING:
        label.append(f"  {_seconds(duration)}", style="dim")
    if len(node.attempts) > 1:
        label.append(f"  attempt {len(node.attempts)}", style="yellow")
    if node.message and node.phase is not Phase.SUCCEEDED:
        label.append(f"  {node.message}", style="dim")
    return label


def render_tree(state: RunState, now: float) -> Tree:
    """The run as a tree: DAGs and task groups contain their tasks."""
    tree = Tree(Text.assemble(("workflow ", "dim"), (state.name, "bold"), f"  {state.phase.value}"))

    def add(branch: Tree, node: Node) -> None:
        child = branch.add(_label(node, now))
        for grandchild in state.children(node):
            add(child, grandchild)

    for node in state.nodes.values():
        if node.parent_id is None:
            add(tree, node)
    return tree


class LiveTree:
    """A :class:`~vaultflow.workflows.runner.result.RunObserver` that animates the run in a terminal."""

    wants_ticks = True

    def __init__(self, console: Console) -> None:
        self._console = console
        self._live: Live | None = None

    def run_started(self, state: RunState) -> None:
        import time

        self._live = Live(
            render_tree(state, time.time()),
            console=self._console,
            auto_refresh=False,
            redirect_stdout=False,
            redirect_stderr=False,
            transient=True,
        )
        self._live.start()

    def run_updated(self, state: RunState) -> None:
        import time

        if self._live is not None:
            self._live.update(render_tree(state, time.time()), refresh=True)

    def run_finished(self, state: RunState) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


def _outputs(node: Node) -> str:
    parts = [f"{key}={value}" for key, value in node.parameters.items()]
    if node.result:
        parts.insert(0, node.result)
    text = " ".join(parts).replace("\n", " ")
    return text if len(text) <= _MAX_OUTPUT else text[: _MAX_OUTPUT - 1] + "…"


def _depth(state: RunState, node: Node) -> int:
    depth = 0
    while node.parent_id is not None:
        node = state.nodes[node.parent_id]
        depth += 1
    return depth


def summary_table(result: WorkflowResult) -> Table:
    """The final table: task, phase, duration, and outputs (or why a task did not succeed)."""
    state = result.state
    table = Table(title=f"{state.name}: {state.phase.value}", title_justify="left")
    for column in ("task", "phase", "duration", "outputs"):
        table.add_column(column, overflow="fold")
    for node in state.nodes.values():
        if node.parent_id is None and node.type is NodeType.DAG:
            continue
        icon, style = _STYLE[node.phase]
        indent = "  " * max(0, _depth(state, node) - 1)
        attempts = f" ({len(node.attempts)} attempts)" if len(node.attempts) > 1 else ""
        table.add_row(
            f"{indent}{node.display_name}",
            Text(f"{icon} {node.phase.value}{attempts}", style=style),
            _seconds(node.duration),
            _outputs(node) if node.phase is Phase.SUCCEEDED else node.message,
        )
    return table


def print_summary(console: Console, result: WorkflowResult, cwd: Path | None = None) -> None:
    """Print the table, the workflow's message, then the log files of failed steps and the run directory.

    The paths are printed after the table, each on a line of its own that is
    never wrapped or cropped (``soft_wrap``), whatever the terminal's width: a
    path a user must copy is never folded.
    """
    state = result.state
    console.print(summary_table(result))
    if state.message:
        console.print(Text(state.message, style="red" if not result.succeeded else ""))
    for node in state.nodes.values():
        if node.phase.failed_or_error and node.log_path is not None:
            line = Text.assemble(("log of ", "dim"), node.display_name, ": ", _relative(node.log_path, cwd))
            console.print(line, soft_wrap=True)
    console.print(Text.assemble(("logs: ", "dim"), _relative(state.run_dir, cwd)), soft_wrap=True)


def _relative(path: Path, cwd: Path | None) -> str:
    base = cwd or Path.cwd()
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)
