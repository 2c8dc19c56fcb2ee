"""A finished DAG's phase, as Argo's ``assessDAGPhase`` decides it, from nodes built by hand."""

from __future__ import annotations

from vaultflow.workflows.runner import depends
from vaultflow.workflows.runner.dag_phase import assess_dag
from vaultflow.workflows.runner.model import TaskSpec, TemplateSpec
from vaultflow.workflows.runner.nodes import Node, NodeType, Phase


def _dag(tasks: dict[str, str | None], tolerated: frozenset[str] = frozenset()) -> TemplateSpec:
    """A DAG of tasks (name -> depends expression), those in ``tolerated`` with ``continueOn.failed``."""
    continue_on = {name: depends.ContinueOn(failed=name in tolerated) for name in tasks}
    return TemplateSpec(
        name="main",
        kind="dag",
        tasks=tuple(
            TaskSpec(
                name=name,
                template="s",
                depends=depends.parse(expression, continue_on) if expression else None,
                continue_on=continue_on[name],
            )
            for name, expression in tasks.items()
        ),
    )


def _nodes(**phases: Phase) -> dict[str, Node]:
    return {
        name: Node(id=name, name=name, display_name=name, type=NodeType.POD, template="s", phase=phase)
        for name, phase in phases.items()
    }


def test_a_failure_is_inherited_by_the_tasks_it_prevented() -> None:
    template = _dag({"a": None, "b": "a"})
    nodes = _nodes(a=Phase.FAILED, b=Phase.OMITTED)
    assert assess_dag(template, nodes, ["b"], nodes) == (Phase.FAILED, "failed: a")


def test_a_task_that_handled_the_failure_decides_its_branch() -> None:
    template = _dag({"a": None, "cleanup": "a.Failed"})
    nodes = _nodes(a=Phase.FAILED, cleanup=Phase.SUCCEEDED)
    assert assess_dag(template, nodes, ["cleanup"], nodes) == (Phase.SUCCEEDED, "")


def test_a_tolerated_failure_of_a_target_does_not_fail_the_dag() -> None:
    template = _dag({"a": None}, tolerated=frozenset({"a"}))
    nodes = _nodes(a=Phase.FAILED)
    assert assess_dag(template, nodes, ["a"], nodes) == (Phase.SUCCEEDED, "")


def test_an_error_keeps_its_phase() -> None:
    template = _dag({"a": None, "b": None})
    nodes = _nodes(a=Phase.SUCCEEDED, b=Phase.ERROR)
    assert assess_dag(template, nodes, ["a", "b"], nodes) == (Phase.ERROR, "failed: b")
