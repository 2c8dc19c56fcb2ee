"""Fan-out items (``withItems`` / ``withParam``) as Argo expands and names them, and their results.

* ``{{item}}`` and ``{{item.key}}`` are substituted as Argo's ``processItem``
  (``workflow/controller/operator.go``) does: strings as they are, numbers as
  written (``withParam`` numbers keep their JSON spelling), booleans as
  ``true``/``false``, maps and lists as compact JSON;
* an item's node is named ``task(index:label)``, where a map's label is its
  ``key:value`` pairs, sorted and joined by commas;
* ``withParam`` must resolve to a JSON list (``expandTask`` in ``dag.go``);
* the aggregated ``outputs.result`` of a fanned-out script task is a JSON list
  of the items' results, each parsed as a map when it is a JSON object
  (``processAggregateNodeOutputs`` in ``operator.go``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from vaultflow.workflows.runner import templating
from vaultflow.workflows.runner.model import TaskSpec


class JsonNumber(str):
    """A JSON number kept as written, so ``{{item}}`` prints it the way Argo does."""


def plain(value: Any) -> Any:
    """A parsed ``withParam`` value with its numbers turned back into Python numbers."""
    if isinstance(value, JsonNumber):
        return json.loads(value)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def item_text(value: Any) -> str:
    """An item (or one field of it) as ``{{item}}`` substitutes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(plain(value), sort_keys=True, separators=(",", ":"))


def item_scope(item: Any) -> tuple[dict[str, str], str]:
    """Variables for one item and its label in the node name (``task(0:label)``)."""
    if isinstance(item, dict):
        scope = {f"item.{key}": item_text(value) for key, value in item.items()}
        scope["item"] = item_text(item)
        label = ",".join(sorted(f"{key}:{item_text(value)}" for key, value in item.items()))
        return scope, label
    text = item_text(item)
    return {"item": text}, text


def task_items(task: TaskSpec, scope: Mapping[str, str]) -> list[Any] | None:
    """The items a task fans out over, ``None`` if it does not fan out; ``ValueError`` on a bad withParam."""
    if task.with_items is not None:
        return [
            templating.substitute(item, scope, allow_unresolved=True) if isinstance(item, str) else item
            for item in task.with_items
        ]
    if task.with_param is None:
        return None
    text = templating.substitute(task.with_param, scope)
    try:
        items = json.loads(text, parse_float=JsonNumber, parse_int=JsonNumber)
    except json.JSONDecodeError:
        items = None
    if not isinstance(items, list):
        raise ValueError(f"withParam value could not be parsed as a JSON list: {text.strip()[:200]}")
    return items


def aggregate_item(result: str) -> Any:
    """One item's result in the aggregated list: a map if it parses as a JSON object, else the string."""
    try:
        value = json.loads(result)
    except json.JSONDecodeError:
        return result
    return value if isinstance(value, dict) else result
