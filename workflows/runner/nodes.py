"""The status of a workflow run: Argo's node phases and node records.

The local runner reports what Argo's controller would write into
``Workflow.status.nodes``: one node per DAG, task, task group (``withItems`` /
``withParam``) and expanded item, with Argo's phases and node names
(``<workflow>.<task>``, ``<workflow>.<task>(0:item)``, ``<workflow>.onExit``).
Keeping Argo's vocabulary means a run reads the same locally and on a cluster.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path


class Phase(enum.StrEnum):
    """Argo's ``NodePhase`` values."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    ERROR = "Error"
    SKIPPED = "Skipped"
    OMITTED = "Omitted"

    @property
    def completed(self) -> bool:
        """Argo's ``Completed()``: the node ran to an end (a skip is not a completion)."""
        return self in (Phase.SUCCEEDED, Phase.FAILED, Phase.ERROR)

    @property
    def fulfilled(self) -> bool:
        """Argo's ``Fulfilled()``: nothing more will happen to this node."""
        return self.completed or self in (Phase.SKIPPED, Phase.OMITTED)

    @property
    def failed_or_error(self) -> bool:
        return self in (Phase.FAILED, Phase.ERROR)


class NodeType(enum.StrEnum):
    """Argo's ``NodeType`` values the local runner produces."""

    DAG = "DAG"
    TASK_GROUP = "TaskGroup"
    POD = "Pod"
    SKIPPED = "Skipped"


@dataclass
class Attempt:
    """One execution of a script template (Argo makes a retry child node per attempt)."""

    number: int
    started_at: float
    finished_at: float | None = None
    phase: Phase = Phase.RUNNING
    message: str = ""


@dataclass
class Node:
    """One node of the run, shaped like Argo's ``NodeStatus``.

    ``display_name`` is the task name (or ``task(0:item)``); ``name`` is the full
    Argo node name used for ``status.nodes`` and for the step's log file.
    ``result`` and ``parameters`` are the node's outputs: references only, by the
    contract every vaultflow step follows.
    """

    id: str
    name: str
    display_name: str
    type: NodeType
    template: str | None
    phase: Phase = Phase.PENDING
    message: str = ""
    started_at: float | None = None
    finished_at: float | None = None
    parent_id: str | None = None
    children: list[str] = field(default_factory=list)
    inputs: dict[str, str] = field(default_factory=dict)
    result: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    log_path: Path | None = None

    @property
    def duration(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at if self.finished_at is not None else self.started_at
        return max(0.0, end - self.started_at)
