"""A workflow as the local runner runs it: Argo's spec, resolved, validated, with defaults explicit.

Plain frozen data, built by :func:`vaultflow.workflows.runner.spec.load` and
read by the reference checks and the engine. It mirrors the parts of Argo's
``WorkflowSpec`` / ``Template`` / ``DAGTask`` (``pkg/apis/workflow/v1alpha1/workflow_types.go``)
that the runner implements, and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from vaultflow.workflows.runner import depends as dep

TemplateLookup = Callable[[str], Mapping[str, Any] | None]

# Global variables Argo resolves in every template (``{{workflow.status}}`` is meaningful in onExit only).
WORKFLOW_VARIABLES = ("workflow.name", "workflow.namespace", "workflow.uid", "workflow.serviceAccountName")
WORKFLOW_STATUS = "workflow.status"


def as_string(value: Any) -> str:
    """A parameter value as Argo stores it: a string, with booleans spelled as JSON spells them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class ParameterSpec:
    """A declared input parameter (``value`` wins over ``default``; a passed argument wins over both)."""

    name: str
    value: str | None = None
    default: str | None = None
    enum: tuple[str, ...] | None = None


@dataclass(frozen=True)
class OutputParameterSpec:
    name: str
    default: str | None = None
    from_parameter: str | None = None  # DAG templates: valueFrom.parameter


@dataclass(frozen=True)
class BackoffSpec:
    duration: str | int | None = None
    factor: str | int | None = None
    max_duration: str | int | None = None
    cap: str | int | None = None


@dataclass(frozen=True)
class RetrySpec:
    limit: str | int | None
    policy: str
    backoff: BackoffSpec | None


@dataclass(frozen=True)
class TaskSpec:
    name: str
    template: str
    arguments: tuple[tuple[str, str], ...] = ()
    depends: dep.Expr | None = None
    when: str | None = None
    with_items: tuple[Any, ...] | None = None
    with_param: str | None = None
    continue_on: dep.ContinueOn = field(default_factory=dep.ContinueOn)

    @property
    def expands(self) -> bool:
        return self.with_items is not None or self.with_param is not None

    @property
    def dependencies(self) -> list[str]:
        return dep.task_names(self.depends) if self.depends is not None else []


@dataclass(frozen=True)
class TemplateSpec:
    name: str
    kind: Literal["dag", "script"]
    inputs: tuple[ParameterSpec, ...] = ()
    outputs: tuple[OutputParameterSpec, ...] = ()
    retry: RetrySpec | None = None
    active_deadline_seconds: str | int | None = None
    parallelism: int | None = None
    tasks: tuple[TaskSpec, ...] = ()
    entrypoint: str | None = None  # script templates: module:function
    runner_module: str | None = None  # script templates: hera.workflows.runner or vaultflow.workflows.entry

    def task(self, name: str) -> TaskSpec:
        return next(task for task in self.tasks if task.name == name)


@dataclass(frozen=True)
class WorkflowSpec:
    """A workflow ready to run: resolved, validated, with Argo's defaults made explicit."""

    kind: str
    name: str
    generate_name: str
    namespace: str
    entrypoint: str
    arguments: tuple[ParameterSpec, ...]
    templates: Mapping[str, TemplateSpec]
    parallelism: int | None = None
    active_deadline_seconds: int | None = None
    on_exit: str | None = None
    service_account: str | None = None
    step_packages: tuple[str, ...] = field(default=())

    def argument(self, name: str) -> ParameterSpec | None:
        return next((p for p in self.arguments if p.name == name), None)
