"""The phase of a finished DAG, decided as Argo's ``assessDAGPhase`` (``workflow/controller/dag.go``).

A DAG fails if the branch of one of its *target* tasks (the leaves: tasks no
other task depends on) failed. An omitted or skipped task has no phase of its
own: it inherits the phase of its branch, preferring a failure over a success,
so a failure stays visible through the tasks it prevented from running, unless
a task that handled it (``depends: A.Failed``) completed, whose own phase then
counts for its branch. A target task whose failure is tolerated by its
``continueOn`` does not fail the DAG.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from vaultflow.workflows.runner.model import TemplateSpec
from vaultflow.workflows.runner.nodes import Node, NodeType, Phase


def assess_dag(
    template: TemplateSpec,
    task_nodes: Mapping[str, Node],
    leaves: Sequence[str],
    nodes: Mapping[str, Node],
) -> tuple[Phase, str]:
    """The DAG's phase and message, from its task nodes (by task name) and all nodes (by id).

    The message names every task that failed (``failed: a, b``), or the failed
    target tasks if the failure was only inherited.
    """
    memo: dict[str, list[Phase]] = {}

    def inherited(name: str) -> Phase:
        incoming = [phase for dependency in template.task(name).dependencies for phase in branch(dependency)]
        return next((phase for phase in incoming if phase.failed_or_error), Phase.SUCCEEDED)

    def branch(name: str) -> list[Phase]:
        if name not in memo:
            node = task_nodes[name]
            own = node.phase if node.phase.completed else inherited(name)
            if node.type is NodeType.TASK_GROUP:
                children = [nodes[child].phase for child in node.children]
                memo[name] = [phase if phase.completed else own for phase in children] or [own]
            else:
                memo[name] = [own]
        return memo[name]

    failed: list[str] = []
    result = Phase.SUCCEEDED
    for name in leaves:
        node = task_nodes[name]
        phase = node.phase if node.phase.completed else inherited(name)
        task = template.task(name)
        tolerated = (phase is Phase.FAILED and task.continue_on.failed) or (
            phase is Phase.ERROR and task.continue_on.error
        )
        if phase.failed_or_error and not tolerated:
            failed.append(name)
            if result is Phase.SUCCEEDED:
                result = phase
    if result is Phase.SUCCEEDED:
        return result, ""
    culprits = [n.display_name for n in task_nodes.values() if n.phase.failed_or_error]
    return result, f"failed: {', '.join(culprits or failed)}"
