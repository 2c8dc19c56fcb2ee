"""Fan-out items as Argo substitutes and names them (``processItem``), and aggregated results."""

from __future__ import annotations

import pytest

from vaultflow.workflows.runner import items
from vaultflow.workflows.runner.model import TaskSpec


def test_scalars_are_substituted_as_argo_prints_them() -> None:
    assert items.item_scope("db") == ({"item": "db"}, "db")
    assert items.item_scope(True) == ({"item": "true"}, "true")
    assert items.item_scope(3) == ({"item": "3"}, "3")


def test_a_map_exposes_its_fields_and_is_labelled_by_sorted_pairs() -> None:
    scope, label = items.item_scope({"name": "b", "env": "prod", "replicas": 2})
    assert scope == {
        "item.name": "b",
        "item.env": "prod",
        "item.replicas": "2",
        "item": '{"env":"prod","name":"b","replicas":2}',
    }
    assert label == "env:prod,name:b,replicas:2"


def test_with_param_numbers_keep_their_json_spelling() -> None:
    task = TaskSpec(name="t", template="s", with_param="{{tasks.a.outputs.result}}")
    parsed = items.task_items(task, {"tasks.a.outputs.result": '[1.50, {"n": 2}, [1, 2]]'})
    assert parsed is not None
    assert [items.item_scope(item)[0]["item"] for item in parsed] == ["1.50", '{"n":2}', "[1,2]"]


def test_with_items_are_substituted_and_no_fan_out_is_none() -> None:
    task = TaskSpec(name="t", template="s", with_items=("{{workflow.name}}", 2))
    assert items.task_items(task, {"workflow.name": "wf"}) == ["wf", 2]
    assert items.task_items(TaskSpec(name="t", template="s"), {}) is None


@pytest.mark.parametrize("value", ['{"a": 1}', "not json", "7"])
def test_with_param_must_be_a_json_list(value: str) -> None:
    task = TaskSpec(name="t", template="s", with_param="{{x}}")
    with pytest.raises(ValueError, match="could not be parsed as a JSON list"):
        items.task_items(task, {"x": value})


def test_aggregated_results_keep_maps_and_strings() -> None:
    assert items.aggregate_item('{"k": "v"}') == {"k": "v"}
    assert items.aggregate_item("plain") == "plain"
    assert items.aggregate_item("[1, 2]") == "[1, 2]"
