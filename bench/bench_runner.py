"""Local runner overhead: a 200-task DAG of no-op steps, per task, beside calling the functions directly.

The DAG is 10 independent chains of 20 tasks (width and depth, as real
pipelines have both). The runner's time includes everything a run does:
scheduling, variable substitution, Hera-style input conversion, a worker
thread per attempt, one log file per task and the final status.json.
Validation of the workflow is excluded (it happens once, before the run).
Target: under 5 ms of overhead per task.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.common import Measurement, best_of
from vaultflow.steps import noop
from vaultflow.workflows import runner
from vaultflow.workflows.compile import workflow_template
from vaultflow.workflows.dsl import NO_RETRY, Pipeline, Step

CHAINS, LENGTH = 10, 20
TASKS = CHAINS * LENGTH
TARGET_OVERHEAD_SECONDS = 0.005


def _pipeline() -> Pipeline:
    steps = [
        Step(f"c{chain}-t{index}", noop.noop, depends=f"c{chain}-t{index - 1}" if index else None)
        for chain in range(CHAINS)
        for index in range(LENGTH)
    ]
    return Pipeline(name="bench-noop-dag", description="200 no-op tasks", steps=steps, default_retry=NO_RETRY)


def run() -> list[Measurement]:
    spec = runner.load(workflow_template(_pipeline()).to_dict())
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)

        def local_run() -> None:
            result = runner.run(spec, run_root=root)
            if not result.succeeded:
                raise RuntimeError(f"benchmark workflow {result.phase}: {result.message}")

        runner_seconds = best_of(3, local_run)

    def direct_calls() -> None:
        for _ in range(TASKS):
            noop.noop()

    direct_seconds = best_of(3, direct_calls)
    per_task, baseline = runner_seconds / TASKS, direct_seconds / TASKS
    return [
        Measurement(
            name=f"local runner, {TASKS}-task DAG, per task",
            seconds=per_task,
            baseline_name="direct call per task",
            baseline_seconds=baseline,
            target_seconds=baseline + TARGET_OVERHEAD_SECONDS,
            note=f"overhead {(per_task - baseline) * 1000:.2f} ms/task, target < 5 ms",
        )
    ]
