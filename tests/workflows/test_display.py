"""The live tree and the final table show tasks, phases, durations and outputs (not the step logs)."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from tests.workflows import sample_steps as s
from tests.workflows.conftest import pipeline
from vaultflow.workflows import runner
from vaultflow.workflows.compile import workflow_template
from vaultflow.workflows.dsl import Step, result
from vaultflow.workflows.runner.display import LiveTree, print_summary


def test_live_tree_and_summary(tmp_path: Path) -> None:
    terminal = io.StringIO()
    console = Console(file=terminal, force_terminal=True, width=120)
    declared = pipeline(
        "shown",
        [
            Step("first", s.noisy, args={"message": "ref:secret/app@3"}),
            Step("second", s.fail, depends="first"),
            Step("third", s.echo, args={"message": result("first")}, depends="second"),
        ],
    )
    run = runner.run(workflow_template(declared), run_root=tmp_path, observer=LiveTree(console))
    print_summary(console, run, cwd=tmp_path)
    shown = terminal.getvalue()
    for expected in (
        "first",
        "second",
        "third",
        "Succeeded",
        "Failed",
        "Omitted",
        "ref:secret/app@3",
        "second.log",
    ):
        assert expected in shown
    assert "warned: " not in shown, "step logs stay in the log files"
