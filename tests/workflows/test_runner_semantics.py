"""The local runner follows Argo's DAG semantics on small workflows written for the purpose."""

from __future__ import annotations

from pathlib import Path

from tests.workflows import sample_steps as s
from tests.workflows.conftest import RunPipeline, pipeline
from vaultflow.workflows.dsl import (
    WORKFLOW_NAME,
    WORKFLOW_STATUS,
    Param,
    Retry,
    Step,
    item,
    outputs,
    param,
    result,
)
from vaultflow.workflows.runner import Phase


def test_diamond_runs_each_task_once_after_its_dependencies(run_pipeline: RunPipeline) -> None:
    diamond = pipeline(
        "diamond",
        [
            Step("a", s.echo, args={"message": "A"}),
            Step("b", s.concat, args={"left": result("a"), "right": "B"}, depends="a"),
            Step("c", s.concat, args={"left": result("a"), "right": "C"}, depends="a"),
            Step("d", s.concat, args={"left": result("b"), "right": result("c")}, depends="b && c"),
        ],
    )
    run = run_pipeline(diamond)
    assert run.phase is Phase.SUCCEEDED
    assert run.phases() == {
        "a": Phase.SUCCEEDED,
        "b": Phase.SUCCEEDED,
        "c": Phase.SUCCEEDED,
        "d": Phase.SUCCEEDED,
    }
    assert run.node("d").result == "ABAC"
    b, c, d = run.node("b"), run.node("c"), run.node("d")
    assert d.started_at is not None and b.finished_at is not None and c.finished_at is not None
    assert d.started_at >= max(b.finished_at, c.finished_at)
    assert all(len(run.node(name).attempts) == 1 for name in "abcd")


def test_dependants_of_a_failed_task_are_not_run_and_the_workflow_fails(
    run_pipeline: RunPipeline, tmp_path: Path
) -> None:
    marker = tmp_path / "dependant-ran"
    failing = pipeline(
        "failing",
        [
            Step("a", s.fail, args={"reason": "broken on purpose"}),
            Step("b", s.touch, args={"path": str(marker)}, depends="a"),
            Step("c", s.echo, args={"message": result("b")}, depends="b"),
            Step("independent", s.echo, args={"message": "still runs"}),
        ],
    )
    run = run_pipeline(failing)
    assert run.phase is Phase.FAILED
    assert run.phases() == {
        "a": Phase.FAILED,
        "b": Phase.OMITTED,
        "c": Phase.OMITTED,
        "independent": Phase.SUCCEEDED,
    }
    assert not marker.exists()
    assert run.node("a").message == (
        "main: Error (exit code 1): unexpected RuntimeError (the traceback is in the step's log)"
    )
    assert "a" in run.message


def test_depends_on_failed_runs_cleanup_and_the_failure_still_fails_the_workflow(
    run_pipeline: RunPipeline, tmp_path: Path
) -> None:
    cleaned = tmp_path / "cleaned"
    with_cleanup = pipeline(
        "cleanup-after-failure",
        [
            Step("apply", s.fail),
            Step("cleanup", s.touch, args={"path": str(cleaned)}, depends="apply.Failed"),
            Step("verify", s.echo, args={"message": "ok"}, depends="apply"),
        ],
    )
    run = run_pipeline(with_cleanup)
    assert cleaned.read_text() == "ran\n"
    assert run.phases() == {"apply": Phase.FAILED, "cleanup": Phase.SUCCEEDED, "verify": Phase.OMITTED}
    # verify inherits apply's failure (Argo's assessDAGPhase), so the workflow fails.
    assert run.phase is Phase.FAILED


def test_a_failure_handled_by_the_only_leaf_lets_the_workflow_succeed(run_pipeline: RunPipeline) -> None:
    handled = pipeline(
        "handled-failure",
        [
            Step("apply", s.fail),
            Step("cleanup", s.echo, args={"message": "rolled back"}, depends="apply.Failed"),
        ],
    )
    run = run_pipeline(handled)
    assert run.phases() == {"apply": Phase.FAILED, "cleanup": Phase.SUCCEEDED}
    assert run.phase is Phase.SUCCEEDED


def test_cleanup_is_omitted_when_nothing_failed(run_pipeline: RunPipeline) -> None:
    fine = pipeline(
        "nothing-failed",
        [Step("apply", s.echo, args={"message": "x"}), Step("cleanup", s.fail, depends="apply.Failed")],
    )
    run = run_pipeline(fine)
    assert run.phases() == {"apply": Phase.SUCCEEDED, "cleanup": Phase.OMITTED}
    assert run.phase is Phase.SUCCEEDED


def test_boolean_depends_with_negation_and_parentheses(run_pipeline: RunPipeline) -> None:
    logic = pipeline(
        "depends-logic",
        [
            Step("ok", s.echo, args={"message": "x"}),
            Step("bad", s.fail),
            Step(
                "either",
                s.echo,
                args={"message": "y"},
                depends="(ok.Succeeded || bad.Succeeded) && !bad.Succeeded",
            ),
            Step("both", s.echo, args={"message": "z"}, depends="ok.Succeeded && bad.Succeeded"),
            Step("errored", s.echo, args={"message": "e"}, depends="bad.Errored || bad.Skipped"),
        ],
    )
    run = run_pipeline(logic)
    assert run.phases()["either"] is Phase.SUCCEEDED
    assert run.phases()["both"] is Phase.OMITTED
    assert run.phases()["errored"] is Phase.OMITTED


def test_retry_succeeds_on_the_third_attempt(run_pipeline: RunPipeline, tmp_path: Path) -> None:
    counter = tmp_path / "calls"
    retried = pipeline(
        "retried",
        [
            Step(
                "flaky",
                s.flaky,
                args={"counter": str(counter), "succeed_on": 3},
                retry=Retry(limit=3, backoff="10ms", factor=2, max_duration="1m"),
            )
        ],
    )
    run = run_pipeline(retried)
    node = run.node("flaky")
    assert run.phase is Phase.SUCCEEDED
    assert [attempt.phase for attempt in node.attempts] == [Phase.FAILED, Phase.FAILED, Phase.SUCCEEDED]
    assert node.result == "3"
    assert counter.read_text() == "3"
    log = node.log_path.read_text() if node.log_path else ""
    assert "attempt 1 fails on purpose" in log and "--- attempt 3 ---" in log


def test_retry_limit_ends_in_failure(run_pipeline: RunPipeline, tmp_path: Path) -> None:
    counter = tmp_path / "calls"
    limited = pipeline(
        "retry-limit",
        [
            Step(
                "flaky",
                s.flaky,
                args={"counter": str(counter), "succeed_on": 5},
                retry=Retry(limit=1, backoff="1ms"),
            )
        ],
    )
    run = run_pipeline(limited)
    assert run.phase is Phase.FAILED
    assert len(run.node("flaky").attempts) == 2
    assert run.node("flaky").message == "No more retries left"
    assert counter.read_text() == "2"


def test_when_true_runs_and_when_false_skips(run_pipeline: RunPipeline) -> None:
    conditional = pipeline(
        "conditional",
        [
            Step("count", s.echo, args={"message": param("count")}),
            Step("apply", s.echo, args={"message": "applied"}, when=f"{param('mode')} == apply"),
            Step("big", s.echo, args={"message": "big"}, depends="count", when=f"{result('count')} > 2"),
            Step("after", s.echo, args={"message": "after"}, depends="apply && big"),
        ],
        params=[Param("mode"), Param("count", default="1")],
    )
    applied = run_pipeline(conditional, mode="apply", count="3")
    assert applied.phases() == {
        "count": Phase.SUCCEEDED,
        "apply": Phase.SUCCEEDED,
        "big": Phase.SUCCEEDED,
        "after": Phase.SUCCEEDED,
    }
    planned = run_pipeline(conditional, mode="plan", count="2")
    assert planned.phases()["apply"] is Phase.SKIPPED
    assert planned.node("apply").message == "when 'plan == apply' evaluated false"
    assert planned.phases()["big"] is Phase.SKIPPED
    # A skipped dependency satisfies a bare depends, as in Argo.
    assert planned.phases()["after"] is Phase.SUCCEEDED
    assert planned.phase is Phase.SUCCEEDED


def test_with_param_fans_out_over_a_list_produced_by_an_earlier_task(run_pipeline: RunPipeline) -> None:
    fan_out = pipeline(
        "fan-out",
        [
            Step("numbers", s.numbers, args={"count": 4}),
            Step("square", s.square, args={"x": item()}, over=result("numbers"), depends="numbers"),
            Step("total", s.total, args={"values": outputs("square")}, depends="square"),
        ],
    )
    run = run_pipeline(fan_out)
    assert run.phase is Phase.SUCCEEDED
    squares = {
        name: node.parameters["square"]
        for name, node in ((n.display_name, n) for n in run.nodes)
        if name.startswith("square(")
    }
    assert squares == {"square(0:1)": "1", "square(1:2)": "4", "square(2:3)": "9", "square(3:4)": "16"}
    assert run.node("total").result == "30"


def test_with_items_of_maps_exposes_each_field(run_pipeline: RunPipeline) -> None:
    items = pipeline(
        "items",
        [
            Step(
                "greet",
                s.concat,
                args={"left": item("greeting"), "right": item("name")},
                items=[{"greeting": "hi ", "name": "ann"}, {"greeting": "yo ", "name": "bob"}],
            )
        ],
    )
    run = run_pipeline(items)
    results = sorted(n.result or "" for n in run.nodes if n.display_name.startswith("greet("))
    assert results == ["hi ann", "yo bob"]


def test_an_empty_list_skips_the_fanned_out_task(run_pipeline: RunPipeline) -> None:
    empty = pipeline(
        "empty-fan-out",
        [
            Step("numbers", s.numbers, args={"count": 0}),
            Step("square", s.square, args={"x": item()}, over=result("numbers"), depends="numbers"),
        ],
    )
    run = run_pipeline(empty)
    # Hera's runner prints nothing for a falsy return value, so the result is empty:
    # not a JSON list, and Argo errors the task exactly like this.
    assert run.node("square").phase is Phase.ERROR
    assert "could not be parsed as a JSON list" in run.node("square").message


def test_parallelism_bounds_the_tasks_running_at_once(run_pipeline: RunPipeline) -> None:
    bounded = pipeline(
        "bounded",
        [Step(f"t{i}", s.hold, args={"group": "bounded", "wait_for": 2}) for i in range(6)],
        parallelism=2,
    )
    run = run_pipeline(bounded)
    assert run.phase is Phase.SUCCEEDED
    assert s.peak("bounded") == 2


def test_independent_tasks_run_concurrently(run_pipeline: RunPipeline) -> None:
    free = pipeline("free", [Step(f"t{i}", s.hold, args={"group": "free", "wait_for": 5}) for i in range(5)])
    run = run_pipeline(free)
    assert run.phase is Phase.SUCCEEDED
    assert s.peak("free") == 5
    assert {node.result for node in run.nodes if node.display_name.startswith("t")} == {"5"}


def test_exit_handler_sees_the_workflow_status(run_pipeline: RunPipeline, tmp_path: Path) -> None:
    marker = tmp_path / "status"
    with_exit = pipeline(
        "with-exit",
        [Step("work", s.fail)],
        on_exit=Step("report", s.report, args={"status": WORKFLOW_STATUS, "marker": str(marker)}),
    )
    run = run_pipeline(with_exit)
    assert marker.read_text() == "Failed"
    assert run.phase is Phase.FAILED
    assert run.node("onExit").phase is Phase.SUCCEEDED


def test_a_failing_exit_handler_fails_a_successful_workflow(run_pipeline: RunPipeline) -> None:
    run = run_pipeline(
        pipeline("exit-fails", [Step("work", s.echo, args={"message": "x"})], on_exit=Step("report", s.fail))
    )
    assert run.node("work").phase is Phase.SUCCEEDED
    assert run.phase is Phase.FAILED


def test_workflow_deadline_fails_the_run_and_still_runs_the_exit_handler(
    run_pipeline: RunPipeline, tmp_path: Path
) -> None:
    marker = tmp_path / "status"
    slow = pipeline(
        "slow",
        [
            Step("sleep", s.sleep, args={"seconds": 5}),
            Step("after", s.echo, args={"message": "x"}, depends="sleep"),
        ],
        timeout="1s",
        on_exit=Step("report", s.report, args={"status": WORKFLOW_STATUS, "marker": str(marker)}),
    )
    run = run_pipeline(slow)
    assert run.phase is Phase.FAILED
    assert "activeDeadlineSeconds" in run.message
    assert run.node("sleep").phase is Phase.FAILED
    assert "after" not in run.phases()
    assert marker.read_text() == "Failed"


def test_step_timeout_fails_the_attempt(run_pipeline: RunPipeline) -> None:
    run = run_pipeline(pipeline("step-timeout", [Step("sleep", s.sleep, args={"seconds": 5}, timeout="1s")]))
    assert run.phase is Phase.FAILED
    assert "deadline" in run.node("sleep").message


def test_workflow_name_and_parameters_are_substituted(run_pipeline: RunPipeline) -> None:
    named = pipeline(
        "named",
        [Step("who", s.concat, args={"left": WORKFLOW_NAME, "right": param("suffix")})],
        params=[Param("suffix", default="!")],
    )
    run = run_pipeline(named, suffix="?")
    assert run.name.startswith("named-") and len(run.name) == len("named-") + 5
    assert run.node("who").result == f"{run.name}?"


def test_step_output_goes_to_its_log_file_not_the_terminal(run_pipeline: RunPipeline, capfd) -> None:  # type: ignore[no-untyped-def]
    run = run_pipeline(pipeline("noisy", [Step("noisy", s.noisy, args={"message": "m-123"})]))
    terminal = capfd.readouterr()
    log = (run.run_dir / "noisy.log").read_text()
    assert "printed: m-123" in log and "logged: m-123" in log and "warned: m-123" in log
    assert "m-123" not in terminal.out + terminal.err
    # Like Argo's outputs.result: everything the step printed, the runner's result line last.
    assert run.node("noisy").result == "printed: m-123\nm-123"
    assert (run.run_dir / "status.json").is_file()
