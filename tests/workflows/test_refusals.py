"""What the local runner cannot honour is refused before any task runs, naming template, task and field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from vaultflow.base.errors import InputError
from vaultflow.workflows import runner

_SCRIPT = {
    "command": ["python"],
    "args": ["-m", "hera.workflows.runner", "-e", "tests.workflows.sample_steps:touch"],
    "source": "{{inputs.parameters}}",
    "image": "steps:test",
}


def _workflow(marker: Path, **task_b: Any) -> dict[str, Any]:
    """Task a touches the marker; task b is what each test breaks."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "refused-"},
        "spec": {
            "entrypoint": "main",
            "templates": [
                {
                    "name": "main",
                    "dag": {
                        "tasks": [
                            {
                                "name": "a",
                                "template": "touch",
                                "arguments": {"parameters": [{"name": "path", "value": str(marker)}]},
                            },
                            {
                                "name": "b",
                                "template": "touch",
                                "arguments": {"parameters": [{"name": "path", "value": str(marker)}]},
                                **task_b,
                            },
                        ]
                    },
                },
                {"name": "touch", "inputs": {"parameters": [{"name": "path"}]}, "script": dict(_SCRIPT)},
            ],
        },
    }


@pytest.mark.parametrize(
    ("task_b", "expected"),
    [
        ({"depends": "a.Succeed"}, "unknown task result 'Succeed'"),
        ({"depends": "a and c"}, "use &&, || and !"),
        ({"depends": "c"}, "unknown task 'c'"),
        ({"depends": "a.Daemoned"}, "daemon templates are not supported"),
        ({"depends": "(a"}, "missing ')'"),
        ({"when": "{{workflow.name}} =~ refused-.*"}, "operator '=~' is not supported"),
        ({"when": "{{workflow.name}} == a ?? b"}, "not supported"),
        (
            {
                "depends": "a",
                "arguments": {"parameters": [{"name": "path", "value": "{{=sprig.upper('x')}}"}]},
            },
            "expression tags",
        ),
        (
            {"arguments": {"parameters": [{"name": "path", "value": "{{tasks.a.outputs.result}}"}]}},
            "not a dependency",
        ),
        (
            {"arguments": {"parameters": [{"name": "path", "value": "{{workflow.parameters.nope}}"}]}},
            "workflow parameter 'nope' is not declared",
        ),
        ({"withSequence": {"count": "3"}}, "'withSequence'"),
        ({"onExit": "touch"}, "'onExit'"),
        ({"arguments": {}}, "needs argument 'path'"),
    ],
    ids=lambda value: str(value)[:40],
)
def test_unsupported_task_fields_are_refused_before_anything_runs(
    tmp_path: Path, task_b: dict[str, Any], expected: str
) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(InputError) as refused:
        runner.run(_workflow(marker, **task_b), run_root=tmp_path / "runs")
    message = str(refused.value)
    assert expected in message
    assert "template 'main'" in message and "'b'" in message
    assert not marker.exists(), "a task ran before the refusal"
    assert not (tmp_path / "runs").exists(), "a refused workflow must leave nothing behind"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda t: t.update(container=t.pop("script")), "'container' templates are not supported"),
        (lambda t: t["script"].update(source="print('inline')"), "source must be '{{inputs.parameters}}'"),
        (lambda t: t["script"].update(args=["-c", "print(1)"]), "only Hera runner scripts"),
        (lambda t: t["script"].update(env=[{"name": "VAULT_TOKEN", "value": "x"}]), "environment variables"),
        (
            lambda t: t["script"].update(args=[*_SCRIPT["args"][:3], "tests.workflows.sample_steps:nope"]),
            "no function 'nope'",
        ),
        (
            lambda t: t.update(outputs={"artifacts": [{"name": "a", "path": "/tmp/a"}]}),
            "artifacts are not supported",
        ),
        (lambda t: t.update(retryStrategy={"limit": 2, "expression": "true"}), "retry expressions"),
        (
            lambda t: t.update(retryStrategy={"limit": 2, "retryPolicy": "Sometimes"}),
            "'Sometimes' is not one of",
        ),
        (lambda t: t.update(retryStrategy={"backoff": {"duration": "soon"}}), "is not a duration"),
        (lambda t: t.update(volumes=[]), "field 'volumes' is not supported"),
    ],
    ids=lambda value: str(value)[:40] if isinstance(value, str) else "change",
)
def test_unsupported_template_fields_are_refused(tmp_path: Path, change: Any, expected: str) -> None:
    document = _workflow(tmp_path / "ran", depends="a")
    change(document["spec"]["templates"][1])
    with pytest.raises(InputError) as refused:
        runner.load(document)
    assert expected in str(refused.value)
    assert "template 'touch'" in str(refused.value)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    document = _workflow(tmp_path / "ran", depends="a.Succeed")
    document["spec"]["templates"][0]["dag"]["tasks"][0]["when"] = "{{workflow.name}} =~ x"
    document["spec"]["onExit"] = "missing"
    with pytest.raises(InputError) as refused:
        runner.load(document)
    message = str(refused.value)
    assert "Succeed" in message and "=~" in message and "spec.onExit: unknown template 'missing'" in message


def test_cycles_and_self_references_are_refused(tmp_path: Path) -> None:
    document = _workflow(tmp_path / "ran", depends="a")
    document["spec"]["templates"][0]["dag"]["tasks"][0]["depends"] = "b"
    with pytest.raises(InputError, match=r"dependency cycle: (a -> b -> a|b -> a -> b)"):
        runner.load(document)


def test_pod_only_fields_are_accepted(tmp_path: Path) -> None:
    document = _workflow(tmp_path / "ran", depends="a")
    document["spec"]["securityContext"] = {"runAsNonRoot": True}
    document["spec"]["podGC"] = {"strategy": "OnPodSuccess"}
    template = document["spec"]["templates"][1]
    template["script"]["resources"] = {"requests": {"cpu": "10m"}}
    template["script"]["imagePullPolicy"] = "IfNotPresent"
    spec = runner.load(copy.deepcopy(document))
    assert spec.entrypoint == "main"


def test_bad_workflow_parameters_are_refused_before_anything_runs(tmp_path: Path) -> None:
    document = _workflow(tmp_path / "ran", depends="a")
    document["spec"]["arguments"] = {"parameters": [{"name": "mode", "enum": ["plan", "apply"]}]}
    with pytest.raises(InputError, match="parameter 'mode' is required"):
        runner.run(document, run_root=tmp_path / "runs")
    with pytest.raises(InputError, match="must be one of plan, apply"):
        runner.run(document, {"mode": "destroy"}, run_root=tmp_path / "runs")
    with pytest.raises(InputError, match=r"unknown parameter\(s\) typo"):
        runner.run(document, {"mode": "plan", "typo": "x"}, run_root=tmp_path / "runs")
    assert not (tmp_path / "ran").exists()
