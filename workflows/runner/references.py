"""Which ``{{variables}}`` a workflow may use where, checked before anything runs.

Argo resolves a task's variables from a fixed scope: the workflow's
parameters and identity, the inputs of the template the task belongs to, the
outputs of the tasks it (transitively) depends on, and ``item`` on a
``withItems``/``withParam`` task. A reference outside that scope fails the
task at run time on a cluster; here it is refused with the task named before
the run starts. ``when`` conditions are parsed with placeholders for the same
reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from vaultflow.workflows.runner import templating, when
from vaultflow.workflows.runner.model import (
    WORKFLOW_STATUS,
    WORKFLOW_VARIABLES,
    ParameterSpec,
    TaskSpec,
    TemplateSpec,
    WorkflowSpec,
    as_string,
)
from vaultflow.workflows.runner.problems import Problems


def ancestors(template: TemplateSpec, task_name: str) -> set[str]:
    """Every task ``task_name`` transitively depends on (whose outputs it may reference)."""
    tasks = {task.name: task for task in template.tasks}
    seen: set[str] = set()
    pending = list(tasks[task_name].dependencies)
    while pending:
        name = pending.pop()
        if name in seen or name not in tasks:
            continue
        seen.add(name)
        pending.extend(tasks[name].dependencies)
    return seen


class _ReferenceRules:
    """Which ``{{variables}}`` Argo can resolve where: checked for every templated field."""

    def __init__(
        self, problems: Problems, arguments: tuple[ParameterSpec, ...], templates: Mapping[str, TemplateSpec]
    ):
        self._problems = problems
        self._workflow_parameters = {p.name for p in arguments}
        self._templates = templates

    def _global(self, tag: str) -> str | None:
        if tag in WORKFLOW_VARIABLES or tag == WORKFLOW_STATUS:
            return None
        if tag.startswith("workflow.parameters."):
            name = tag.removeprefix("workflow.parameters.")
            return (
                None if name in self._workflow_parameters else f"workflow parameter {name!r} is not declared"
            )
        return f"unknown variable {{{{{tag}}}}}"

    def check(self, where: str, text: str | None, resolve: Callable[[str], str | None]) -> None:
        if text is None:
            return
        for tag in templating.references(text):
            if tag.startswith("="):
                self._problems.add(
                    where, f"expression tags ({{{{{tag}}}}}) are not supported by the local runner"
                )
                continue
            reason = resolve(tag)
            if reason == "global":
                reason = self._global(tag)
            if reason:
                self._problems.add(where, reason)

    def in_template(self, template: TemplateSpec) -> Callable[[str], str | None]:
        inputs = {p.name for p in template.inputs}

        def resolve(tag: str) -> str | None:
            if tag == "inputs.parameters" and template.kind == "script":
                return None
            if tag.startswith("inputs.parameters."):
                name = tag.removeprefix("inputs.parameters.")
                return None if name in inputs else f"template {template.name!r} has no input {name!r}"
            return "global"

        return resolve

    def in_task(
        self, template: TemplateSpec, task: TaskSpec, *, any_task: bool = False
    ) -> Callable[[str], str | None]:
        base = self.in_template(template)
        visible = {t.name for t in template.tasks} if any_task else ancestors(template, task.name)

        def resolve(tag: str) -> str | None:
            if tag == "item" or tag.startswith("item."):
                return None if task.expands else f"{{{{{tag}}}}} needs withItems or withParam on this task"
            if not tag.startswith("tasks."):
                return base(tag)
            parts = tag.split(".")
            other = parts[1] if len(parts) > 1 else ""
            if other not in visible:
                known = {t.name for t in template.tasks}
                if other in known:
                    return f"{{{{{tag}}}}} refers to {other!r}, which is not a dependency (add it to depends)"
                return f"{{{{{tag}}}}} refers to unknown task {other!r}"
            return self._task_output(tag, template.task(other), parts[2:])

        return resolve

    def _task_output(self, tag: str, other: TaskSpec, rest: list[str]) -> str | None:
        called = self._templates.get(other.template)
        if called is None:
            return None  # reported as an unknown template
        if rest == ["outputs", "result"]:
            return None if called.kind == "script" else f"{{{{{tag}}}}}: a dag template has no result"
        if rest == ["outputs", "parameters"]:
            return (
                None
                if other.expands
                else f"{{{{{tag}}}}}: only withItems/withParam tasks aggregate parameters"
            )
        if len(rest) == 3 and rest[:2] == ["outputs", "parameters"]:
            declared = {o.name for o in called.outputs}
            return (
                None
                if rest[2] in declared
                else f"{{{{{tag}}}}}: template {called.name!r} has no output {rest[2]!r}"
            )
        if rest == ["status"]:
            return None
        return f"unknown variable {{{{{tag}}}}}"


def _check_when_syntax(problems: Problems, where: str, condition: str) -> None:
    placeholder = re.sub(r"\{\{.*?\}\}", "placeholder", condition)
    try:
        when.check_syntax(placeholder)
    except when.WhenError as error:
        problems.add(where, f"{condition!r}: {error}")


def check_references(problems: Problems, spec: WorkflowSpec) -> None:
    rules = _ReferenceRules(problems, spec.arguments, spec.templates)
    for template in spec.templates.values():
        where = f"template {template.name!r}"
        in_template = rules.in_template(template)
        if template.retry is not None:
            rules.check(f"{where}.retryStrategy.limit", as_string(template.retry.limit), in_template)
        if template.active_deadline_seconds is not None:
            rules.check(
                f"{where}.activeDeadlineSeconds", as_string(template.active_deadline_seconds), in_template
            )
        for output in template.outputs:
            if output.from_parameter is not None and template.tasks:
                rules.check(
                    f"{where}.outputs.parameters[{output.name}]",
                    output.from_parameter,
                    rules.in_task(template, template.tasks[0], any_task=True),
                )
        for task in template.tasks:
            _check_task(problems, rules, spec, template, task)
    _check_template_recursion(problems, spec)


def _check_task(
    problems: Problems, rules: _ReferenceRules, spec: WorkflowSpec, template: TemplateSpec, task: TaskSpec
) -> None:
    here = f"template {template.name!r}, task {task.name!r}"
    called = spec.templates.get(task.template)
    if called is None:
        problems.add(f"{here}, field 'template'", f"unknown template {task.template!r}")
        return
    resolve = rules.in_task(template, task)
    for name, value in task.arguments:
        rules.check(f"{here}, argument {name!r}", value, resolve)
    passed = {name for name, _ in task.arguments}
    for declared in called.inputs:
        if declared.name not in passed and declared.value is None and declared.default is None:
            problems.add(here, f"template {called.name!r} needs argument {declared.name!r}")
    if task.when is not None:
        rules.check(f"{here}, field 'when'", task.when, resolve)
        _check_when_syntax(problems, f"{here}, field 'when'", task.when)
    if task.with_param is not None:
        rules.check(f"{here}, field 'withParam'", task.with_param, resolve)
    for item in task.with_items or ():
        if not isinstance(item, str | int | float | bool | dict | list):
            problems.add(f"{here}, field 'withItems'", f"item {item!r} is not a string, number, map or list")


def _check_template_recursion(problems: Problems, spec: WorkflowSpec) -> None:
    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            problems.add(f"template {name!r}", f"calls itself: {' -> '.join([*path, name])}")
            return
        template = spec.templates.get(name)
        if template is None:
            return
        for task in template.tasks:
            visit(task.template, (*path, name))

    visit(spec.entrypoint, ())
