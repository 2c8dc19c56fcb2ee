"""The local runner: Argo Workflows semantics, in-process.

``run(workflow, parameters)`` executes a compiled workflow (a Hera object, its
dict or its YAML) the way Argo's controller would, calling each step function
in this process through Hera's runner conventions. Anything the runner does
not implement is refused with the template and field named before a single
task runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vaultflow.workflows.runner.engine import Engine, RunOptions, workflow_parameters
from vaultflow.workflows.runner.model import TemplateLookup, WorkflowSpec
from vaultflow.workflows.runner.nodes import Node, NodeType, Phase
from vaultflow.workflows.runner.result import RunObserver, RunState, WorkflowResult
from vaultflow.workflows.runner.spec import load

__all__ = [
    "Node",
    "NodeType",
    "Phase",
    "RunObserver",
    "RunOptions",
    "RunState",
    "TemplateLookup",
    "WorkflowResult",
    "WorkflowSpec",
    "load",
    "run",
    "workflow_parameters",
]


def run(
    workflow: Any,
    parameters: Mapping[str, str] | None = None,
    *,
    run_root: Path = Path("runs"),
    observer: RunObserver | None = None,
    lookup: TemplateLookup | None = None,
    max_workers: int = 32,
    name: str | None = None,
) -> WorkflowResult:
    """Validate ``workflow`` and run it to completion.

    Bad input raises ``InputError`` before anything runs.
    """
    spec = workflow if isinstance(workflow, WorkflowSpec) else load(workflow, lookup)
    options = RunOptions(run_root=run_root, max_workers=max_workers, observer=observer, name=name)
    return Engine(spec, parameters or {}, options).run()
