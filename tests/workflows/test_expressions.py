"""The two expression languages of a DAG: ``depends`` (Argo) and ``when`` (govaluate)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vaultflow.workflows.runner import depends, when
from vaultflow.workflows.runner.nodes import Phase


def _outcomes(**phases: Phase) -> dict[str, depends.TaskOutcome]:
    return {name.replace("_", "-"): depends.TaskOutcome(phase) for name, phase in phases.items()}


@pytest.mark.parametrize(
    ("expression", "phases", "expected"),
    [
        ("a", {"a": Phase.SUCCEEDED}, True),
        ("a", {"a": Phase.SKIPPED}, True),
        ("a", {"a": Phase.FAILED}, False),
        ("a", {"a": Phase.OMITTED}, False),
        ("a.Failed", {"a": Phase.FAILED}, True),
        ("a.Errored", {"a": Phase.FAILED}, False),
        ("a.Omitted", {"a": Phase.OMITTED}, True),
        ("a && b", {"a": Phase.SUCCEEDED, "b": Phase.FAILED}, False),
        ("a || b", {"a": Phase.SUCCEEDED, "b": Phase.FAILED}, True),
        ("!a.Failed && (b.Failed || b.Errored)", {"a": Phase.SUCCEEDED, "b": Phase.ERROR}, True),
        ("task-1 && task-2.Skipped", {"task-1": Phase.SUCCEEDED, "task-2": Phase.SKIPPED}, True),
    ],
)
def test_depends_evaluates_like_argo(expression: str, phases: dict[str, Phase], expected: bool) -> None:
    outcomes = {name: depends.TaskOutcome(phase) for name, phase in phases.items()}
    assert depends.evaluate(depends.parse(expression), outcomes) is expected


def test_continue_on_widens_a_bare_dependency() -> None:
    tolerant = depends.parse("a", {"a": depends.ContinueOn(failed=True)})
    assert depends.evaluate(tolerant, {"a": depends.TaskOutcome(Phase.FAILED)})
    assert not depends.evaluate(tolerant, {"a": depends.TaskOutcome(Phase.ERROR)})


def test_group_results_look_at_the_items() -> None:
    some = depends.TaskOutcome(Phase.FAILED, any_succeeded=True, all_failed=False)
    assert depends.evaluate(depends.parse("a.AnySucceeded"), {"a": some})
    assert not depends.evaluate(depends.parse("a.AllFailed"), {"a": some})
    assert depends.task_names(depends.parse("a.AnySucceeded || (b && !c.Failed)")) == ["a", "b", "c"]


@pytest.mark.parametrize(
    "bad", ["", "a &&", "a & b", "a == b", "a.succeeded", "(a", "a)", "not a", "a.Daemoned"]
)
def test_malformed_depends_are_refused(bad: str) -> None:
    with pytest.raises(depends.DependsSyntaxError):
        depends.parse(bad)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("heads == heads", True),
        ("heads == tails", False),
        ("heads != tails", True),
        ("'a b' == 'a b'", True),
        ('"x" == x', True),
        ("3 > 2", True),
        ("10 < 9", False),
        ("2.5 >= 2.5", True),
        ("-1 < 0", True),
        ("1 == 1.0", True),
        ("1 == '1'", False),
        ("true", True),
        ("!false && (1 < 2 || x == y)", True),
        ("b > a", True),
        ("apply == apply && 5 <= 4", False),
        ("v1.2 == v1.2", True),
    ],
)
def test_when_evaluates_like_govaluate(condition: str, expected: bool) -> None:
    assert when.evaluate(condition) is expected


@pytest.mark.parametrize(
    "bad",
    [
        "1 < x",
        "true && 1",
        "!x",
        "1",
        "x",
        "a =~ b",
        "a in (a, b)",
        "1 + 1 == 2",
        "(a == b",
        "a == b)",
        "'open",
        "a @ b",
    ],
)
def test_when_refuses_what_govaluate_would_not_accept(bad: str) -> None:
    with pytest.raises(when.WhenError):
        when.evaluate(bad)


@given(st.integers(-1000, 1000), st.integers(-1000, 1000))
def test_when_compares_numbers_numerically(left: int, right: int) -> None:
    assert when.evaluate(f"{left} < {right}") is (left < right)
    assert when.evaluate(f"{left} == {right}") is (left == right)


@given(
    st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True),
    st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True),
)
def test_bare_words_compare_as_strings(left: str, right: str) -> None:
    if left in ("true", "false") or right in ("true", "false"):
        return
    assert when.evaluate(f"{left} == {right}") is (left == right)
    assert when.evaluate(f"{left} < {right}") is (left < right)
