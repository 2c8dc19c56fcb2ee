"""What a local run hands back, and how others watch it while it runs."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from vaultflow.workflows.runner.nodes import Node, NodeType, Phase


@dataclass
class RunState:
    """The live state of a run: the coordinator thread writes it, observers read it in callbacks."""

    name: str
    namespace: str
    entrypoint: str
    parameters: dict[str, str]
    run_dir: Path
    started_at: float
    phase: Phase = Phase.RUNNING
    message: str = ""
    finished_at: float | None = None
    nodes: dict[str, Node] = field(default_factory=dict)

    def root(self) -> Node | None:
        return next(iter(self.nodes.values()), None)

    def children(self, node: Node) -> Iterator[Node]:
        for child_id in node.children:
            yield self.nodes[child_id]


class RunObserver(Protocol):
    """Told about a run from the coordinator thread; must return quickly."""

    def run_started(self, state: RunState) -> None: ...

    def run_updated(self, state: RunState) -> None: ...

    def run_finished(self, state: RunState) -> None: ...

    @property
    def wants_ticks(self) -> bool:
        """True if :meth:`run_updated` should also be called periodically (to animate durations)."""
        ...


@dataclass(frozen=True)
class WorkflowResult:
    """A finished run: phase, message and every node, shaped like Argo's workflow status."""

    state: RunState

    @property
    def name(self) -> str:
        return self.state.name

    @property
    def phase(self) -> Phase:
        return self.state.phase

    @property
    def message(self) -> str:
        return self.state.message

    @property
    def succeeded(self) -> bool:
        return self.state.phase is Phase.SUCCEEDED

    @property
    def run_dir(self) -> Path:
        return self.state.run_dir

    @property
    def parameters(self) -> Mapping[str, str]:
        return self.state.parameters

    @property
    def nodes(self) -> list[Node]:
        return list(self.state.nodes.values())

    def node(self, display_name: str) -> Node:
        """The node with this display name (``task``, ``task(0:item)``, ``onExit``); must be unique."""
        matches = [node for node in self.state.nodes.values() if node.display_name == display_name]
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} nodes named {display_name!r}")
        return matches[0]

    def phases(self) -> dict[str, Phase]:
        """Display name -> phase of every task-level node (handy in tests and reports)."""
        return {n.display_name: n.phase for n in self.state.nodes.values() if n.type is not NodeType.DAG}

    def to_status(self) -> dict[str, Any]:
        """The run as Argo's ``Workflow.status`` (what the sandbox Argo server serves)."""
        return status_of(self.state)


def _timestamp(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def node_status(node: Node) -> dict[str, Any]:
    status: dict[str, Any] = {
        "id": node.id,
        "name": node.name,
        "displayName": node.display_name,
        "type": node.type.value,
        "phase": node.phase.value,
    }
    if node.template:
        status["templateName"] = node.template
    if node.message:
        status["message"] = node.message
    if node.started_at is not None:
        status["startedAt"] = _timestamp(node.started_at)
    if node.finished_at is not None:
        status["finishedAt"] = _timestamp(node.finished_at)
    if node.children:
        status["children"] = list(node.children)
    if node.inputs:
        status["inputs"] = {"parameters": [{"name": k, "value": v} for k, v in node.inputs.items()]}
    outputs: dict[str, Any] = {}
    if node.result is not None:
        outputs["result"] = node.result
    if node.parameters:
        outputs["parameters"] = [{"name": k, "value": v} for k, v in node.parameters.items()]
    if outputs:
        status["outputs"] = outputs
    if len(node.attempts) > 1:
        status["retries"] = len(node.attempts) - 1  # informational; Argo shows retries as child nodes
    return status


def status_of(state: RunState) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": state.phase.value, "startedAt": _timestamp(state.started_at)}
    if state.finished_at is not None:
        status["finishedAt"] = _timestamp(state.finished_at)
    if state.message:
        status["message"] = state.message
    status["nodes"] = {
        node.id: {k: v for k, v in node_status(node).items() if k != "retries"}
        for node in state.nodes.values()
    }
    return status


def write_status(state: RunState) -> Path:
    """Write ``status.json`` into the run directory (parameters and outputs are references only)."""
    path = state.run_dir / "status.json"
    document = {
        "name": state.name,
        "namespace": state.namespace,
        "parameters": state.parameters,
        "status": status_of(state),
    }
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
