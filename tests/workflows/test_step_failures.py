"""A failed step's reason: one line in its log, its node's message, the run's summary; in a pod too.

An expected failure (a ``VaultflowError``) is reported as one line without a
traceback; an unexpected exception keeps its traceback, and its node message
names only its type. In a pod, ``vaultflow.workflows.entry`` writes the reason
to the termination message file, which Argo appends to the node message; the
local runner reads the same file of each attempt.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from tests.workflows import sample_steps as s
from tests.workflows.conftest import RunPipeline, pipeline
from vaultflow.cli import _VaultflowGroup
from vaultflow.cli.run import run
from vaultflow.workflows import entry
from vaultflow.workflows.compile import workflow_template
from vaultflow.workflows.dsl import Step
from vaultflow.workflows.runner import Phase

REPO_ROOT = Path(__file__).resolve().parents[2]
REASON = "keeper kubernetes://argo/vault-keeper holds no unseal shares"
UNEXPECTED = "unexpected RuntimeError (the traceback is in the step's log)"


def _log(run: object, name: str) -> str:
    path = run.node(name).log_path  # type: ignore[attr-defined]
    assert path is not None
    return str(path.read_text())


@pytest.mark.parametrize("function", [s.refuse, s.give_up], ids=lambda f: f.__name__)
def test_an_expected_error_is_one_line_in_the_log_and_the_node_message(
    run_pipeline: RunPipeline, function: Callable[[str], None]
) -> None:
    result = run_pipeline(pipeline("expected", [Step("unseal", function, args={"reason": REASON})]))
    assert result.phase is Phase.FAILED
    assert result.node("unseal").message == f"main: Error (exit code 1): {REASON}"
    assert _log(result, "unseal") == f"error: {REASON}\n"


def test_an_unexpected_exception_keeps_its_traceback_and_its_text_stays_in_the_log(
    run_pipeline: RunPipeline,
) -> None:
    result = run_pipeline(pipeline("unexpected", [Step("crash", s.fail, args={"reason": "list index"})]))
    assert result.node("crash").message == f"main: Error (exit code 1): {UNEXPECTED}"
    log = _log(result, "crash")
    assert "Traceback (most recent call last)" in log and "RuntimeError: list index" in log


def test_a_failing_exit_handler_does_not_hide_the_main_failure(run_pipeline: RunPipeline) -> None:
    result = run_pipeline(
        pipeline(
            "both-fail",
            [Step("work", s.give_up, args={"reason": "main reason"})],
            on_exit=Step("report", s.refuse, args={"reason": "exit reason"}),
        )
    )
    assert result.phase is Phase.FAILED
    assert result.node("work").message.endswith(": main reason")
    assert result.node("report").message.endswith(": exit reason")
    assert "work" in result.message and "exit reason" not in result.message


def test_the_run_summary_shows_each_failed_steps_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAULTFLOW_PIPELINE_MODULES", "tests.workflows.sample_pipelines")
    monkeypatch.setenv("COLUMNS", "250")  # wide enough that no cell folds the reasons
    app = typer.Typer(cls=_VaultflowGroup, pretty_exceptions_enable=False)
    app.command("run")(run)
    app.command("unused")(lambda: None)  # two commands: `run` stays a subcommand
    outcome = CliRunner().invoke(app, ["run", "sample-refused", "--run-dir", str(tmp_path)])
    assert outcome.exit_code == 1, outcome.output
    assert "keeper file:///k.json holds no unseal shares" in outcome.output
    assert "report target is not configured" in outcome.output
    assert "Traceback" not in outcome.output


def _in_a_pod(
    function: str, inputs: dict[str, str], tmp_path: Path
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """The step as Argo starts it: the compiled command and args, the inputs file, a termination log."""
    compiled = workflow_template(pipeline("pod", [Step("step", getattr(s, function), args=inputs)])).to_dict()
    (script,) = [t["script"] for t in compiled["spec"]["templates"] if "script" in t]
    assert script["command"] == ["python"]
    command = [sys.executable, *script["args"]]
    inputs_file = tmp_path / "inputs.json"
    inputs_file.write_text(json.dumps([{"name": k, "value": v} for k, v in inputs.items()]))
    termination_log = tmp_path / "termination-log"
    completed = subprocess.run(
        [*command, str(inputs_file)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, entry.TERMINATION_LOG_ENV: str(termination_log)},
        check=False,
        timeout=120,
    )
    return completed, termination_log


def test_in_a_pod_an_expected_error_is_one_line_and_the_termination_message(tmp_path: Path) -> None:
    completed, termination_log = _in_a_pod("give_up", {"reason": REASON}, tmp_path)
    assert completed.returncode == 1
    assert completed.stderr == f"error: {REASON}\n"
    assert termination_log.read_text() == REASON


def test_in_a_pod_an_unexpected_exception_keeps_its_traceback(tmp_path: Path) -> None:
    completed, termination_log = _in_a_pod("fail", {"reason": "list index"}, tmp_path)
    assert completed.returncode == 1
    assert "Traceback (most recent call last)" in completed.stderr
    assert "RuntimeError: list index" in completed.stderr
    assert termination_log.read_text() == UNEXPECTED


def test_in_a_pod_a_step_that_succeeds_runs_as_under_hera_alone(tmp_path: Path) -> None:
    completed, termination_log = _in_a_pod("echo", {"message": "hi"}, tmp_path)
    assert (completed.returncode, completed.stdout, completed.stderr) == (0, "hi\n", "")
    assert not termination_log.exists()
