"""Registering a pipeline refuses mistakes before anything runs, each named by pipeline and step.

Declarations are plain data: the tests build them through ``conftest.pipeline``,
which checks them exactly as the registry does.
"""

from __future__ import annotations

import pytest

from tests.workflows import broken_pipelines, dsl_steps, sample_steps
from tests.workflows.conftest import pipeline
from vaultflow.base.errors import InputError
from vaultflow.workflows.checks import carries_secret_type
from vaultflow.workflows.dsl import Param, Retry, Schedule, Step, param, result
from vaultflow.workflows.registry import Registry, load_registry


@pytest.mark.parametrize(
    "function",
    [dsl_steps.returns_secret, dsl_steps.takes_credentials, dsl_steps.returns_nested_secret],
    ids=lambda f: f.__name__,
)
def test_steps_that_take_or_return_secret_types_are_refused(function: object) -> None:
    args = {"credentials": "{}"} if function is dsl_steps.takes_credentials else {}
    with pytest.raises(InputError, match="secret type; pass a reference"):
        pipeline("secretive", [Step("s", function, args=args)])  # type: ignore[arg-type]


def test_the_secret_type_check_sees_through_containers_and_models() -> None:
    assert carries_secret_type(list[dict[str, dsl_steps.Credentials]])
    assert carries_secret_type(dsl_steps.Credentials | None)
    assert not carries_secret_type(dict[str, list[int]])


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([Step("a", dsl_steps.needs)], "argument 'path' of tests.workflows.dsl_steps:needs is required"),
        ([Step("a", dsl_steps.needs, args={"path": "p", "verison": 2})], "has no parameter 'verison'"),
        ([Step("A_b", dsl_steps.needs, args={"path": "p"})], "must be a DNS label"),
        ([Step("main", dsl_steps.needs, args={"path": "p"})], "'main' is reserved"),
        (
            [Step("a", dsl_steps.needs, args={"path": "p"}), Step("a", dsl_steps.needs, args={"path": "q"})],
            "declared twice",
        ),
        ([Step("a", dsl_steps.needs, args={"path": "p"}, depends="b")], "unknown task 'b'"),
        (
            [
                Step("a", dsl_steps.needs, args={"path": result("b")}),
                Step("b", sample_steps.echo, args={"message": "x"}),
            ],
            "not a dependency",
        ),
        (
            [Step("a", dsl_steps.needs, args={"path": param("missing")})],
            "workflow parameter 'missing' is not declared",
        ),
        (
            [Step("a", dsl_steps.needs, args={"path": "p"}, when="{{workflow.name}} =~ x")],
            "'=~' is not supported",
        ),
        ([Step("a", dsl_steps.needs, args={"path": "p"}, timeout="soon")], "not a duration"),
    ],
)
def test_declaration_mistakes_are_refused_with_their_place(steps: list[Step], message: str) -> None:
    with pytest.raises(InputError) as refused:
        pipeline("mistaken", steps)
    assert message in str(refused.value)


def test_schedules_are_checked() -> None:
    with pytest.raises(InputError, match="minute '99': outside 0-59"):
        pipeline(
            "cron",
            [Step("a", dsl_steps.needs, args={"path": "p"})],
            schedules=[Schedule("nightly", "99 * * * *")],
        )
    with pytest.raises(InputError, match="has 6 fields"):  # croniter takes seconds, Argo does not
        pipeline(
            "cron",
            [Step("a", dsl_steps.needs, args={"path": "p"})],
            schedules=[Schedule("nightly", "0 0 3 * * *")],
        )
    with pytest.raises(InputError, match="argument 'target' is not a parameter"):
        pipeline(
            "cron",
            [Step("a", dsl_steps.needs, args={"path": "p"})],
            schedules=[Schedule("n", "@daily", {"target": "x"})],
        )


def test_a_declaration_is_data_and_the_registry_refuses_it_when_wrong() -> None:
    (broken,) = broken_pipelines.PIPELINES  # importing the module did not refuse anything
    with pytest.raises(InputError) as refused:
        load_registry([broken_pipelines.__name__])
    assert "pipeline 'broken', step 'read':" in str(refused.value)
    assert "has no parameter 'verison'" in str(refused.value)
    with pytest.raises(InputError, match="has no parameter 'verison'"):
        Registry([broken])


def test_registry_refuses_duplicate_names_and_names_what_exists() -> None:
    one = pipeline(
        "one",
        [Step("a", dsl_steps.needs, args={"path": "p"})],
        params=[Param("x", default="1")],
        schedules=[Schedule("nightly", "0 3 * * *", {"x": "2"})],
    )
    registry = Registry([one])
    with pytest.raises(InputError, match="already registered"):
        registry.add(one)
    with pytest.raises(InputError, match=r"unknown workflow template 'two' \(known: one\)"):
        registry.get("two")
    assert registry.has("one-nightly") and registry.pipeline_for("one-nightly") is one
    assert registry.document("one-nightly")["kind"] == "CronWorkflow"


def test_default_retry_applies_unless_a_step_overrides_it() -> None:
    declared = pipeline(
        "retries",
        [
            Step("a", dsl_steps.needs, args={"path": "p"}),
            Step("b", dsl_steps.needs, args={"path": "p"}, retry=Retry(limit=5)),
        ],
        default_retry=Retry(limit=1),
    )
    assert declared.retry_of(declared.step("a")) == Retry(limit=1)
    assert declared.retry_of(declared.step("b")) == Retry(limit=5)
