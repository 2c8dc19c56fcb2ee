"""Checks of a pipeline declaration: refuse a mistake when the pipeline is registered, not mid-run.

:class:`~vaultflow.workflows.registry.Registry` runs them on every pipeline it
is given, so ``vaultflow run``, ``workflows render`` and ``workflows submit``
refuse a wrong pipeline before anything runs. Three layers, each naming the
pipeline and step:

* the DSL's own rules (names, arguments against the step function's
  signature, schedules);
* the secrets contract: no step may take or return ``SecretStr`` /
  ``SecretBytes``, because Argo stores and shows every parameter and output;
* everything Argo and the local runner check, by compiling the pipeline and
  loading it with :func:`vaultflow.workflows.runner.spec.load` (depends expressions,
  references between steps, ``when`` syntax, importable entrypoints).
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import BaseModel, SecretBytes, SecretStr

from vaultflow.base.cron import validate_cron
from vaultflow.base.durations import parse_argo_duration
from vaultflow.base.errors import InputError
from vaultflow.workflows.compile import ENTRY_TEMPLATE, EXIT_TEMPLATE, workflow_template
from vaultflow.workflows.dsl import Pipeline, Step
from vaultflow.workflows.runner import hera_compat as hera
from vaultflow.workflows.runner import spec

_SECRET_TYPES = (SecretStr, SecretBytes)
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# The compiled template's own DAGs: a step of that name would collide with them.
RESERVED_TEMPLATE_NAMES = frozenset({ENTRY_TEMPLATE, EXIT_TEMPLATE})


def is_dns_label(name: str) -> bool:
    """Kubernetes' DNS label (RFC 1123): what template, task and CronWorkflow names must be."""
    return len(name) <= 63 and bool(_DNS_LABEL.match(name))


def step_inputs(function: Callable[..., Any]) -> dict[str, bool]:
    """Input parameter name -> required, as Hera derives the template's inputs from the signature."""
    inputs: dict[str, bool] = {}
    for name, parameter in inspect.signature(function).parameters.items():
        if parameter.kind in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL):
            continue
        annotation = parameter.annotation
        workflow_annotation = hera.get_workflow_annotation(annotation)
        unwrapped = hera.unwrap_annotation(annotation)
        if isinstance(workflow_annotation, hera.Parameter) and workflow_annotation.output:
            continue
        if inspect.isclass(unwrapped) and issubclass(unwrapped, hera.INPUT_MODELS):
            for field_name, info in hera.get_fields(unwrapped).items():
                field_annotation = hera.get_workflow_annotation(info.annotation)
                input_name = getattr(field_annotation, "name", None) or field_name
                inputs[input_name] = info.is_required()
            continue
        input_name = getattr(workflow_annotation, "name", None) or name
        inputs[input_name] = parameter.default is inspect.Parameter.empty
    return inputs


def _walk_types(annotation: Any, seen: set[int]) -> Iterator[Any]:
    if id(annotation) in seen:
        return
    seen.add(id(annotation))
    yield annotation
    for argument in typing.get_args(annotation):
        yield from _walk_types(argument, seen)
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        for info in annotation.model_fields.values():
            yield from _walk_types(info.annotation, seen)


def carries_secret_type(annotation: Any) -> bool:
    """True if a type is, or contains (in unions, containers, models), ``SecretStr`` or ``SecretBytes``."""
    return any(
        inspect.isclass(candidate) and issubclass(candidate, _SECRET_TYPES)
        for candidate in _walk_types(annotation, set())
    )


def _check_step(pipeline: Pipeline, step: Step, problems: list[str]) -> None:
    where = f"pipeline {pipeline.name!r}, step {step.name!r}"
    function = step.function
    if not is_dns_label(step.name):
        problems.append(f"{where}: a step name must be a DNS label (lower case letters, digits and '-')")
    if step.name in RESERVED_TEMPLATE_NAMES:
        problems.append(f"{where}: {step.name!r} is reserved")
    if function.__module__ == "__main__" or "<locals>" in function.__qualname__:
        problems.append(
            f"{where}: {function.__qualname__} must be a module-level function the image can import"
        )
        return
    if not _types_are_safe(pipeline, step, problems):
        return
    inputs = step_inputs(function)
    for name in step.args:
        if name not in inputs:
            problems.append(
                f"{where}: {step.entrypoint} has no parameter {name!r} (it takes: {', '.join(inputs)})"
            )
    for name, required in inputs.items():
        if required and name not in step.args:
            problems.append(f"{where}: argument {name!r} of {step.entrypoint} is required")
    if step.items is not None and step.over is not None:
        problems.append(f"{where}: use either 'items' or 'over', not both")
    retry = pipeline.retry_of(step)
    durations = {"timeout": step.timeout}
    if retry is not None:
        durations.update({"retry backoff": retry.backoff, "retry max_duration": retry.max_duration})
    for what, value in durations.items():
        _check_duration(problems, f"{where}: {what}", value)


def _check_duration(problems: list[str], where: str, value: str | None) -> None:
    if value is None:
        return
    try:
        parse_argo_duration(value)
    except ValueError as error:
        problems.append(f"{where}: {error}")


def _types_are_safe(pipeline: Pipeline, step: Step, problems: list[str]) -> bool:
    """Annotations Hera can read at run time, and no secret type in or out; False if unusable."""
    where = f"pipeline {pipeline.name!r}, step {step.name!r}"
    function = step.function
    signature = inspect.signature(function)
    if any(isinstance(p.annotation, str) for p in signature.parameters.values()) or isinstance(
        signature.return_annotation, str
    ):
        problems.append(
            f"{where}: {step.entrypoint} has string annotations; Hera's runner reads annotations at run time,"
            " so step modules must not use 'from __future__ import annotations'"
        )
        return False
    try:
        hints = typing.get_type_hints(function, include_extras=True)
    except Exception as error:
        problems.append(f"{where}: cannot read the type hints of {step.entrypoint}: {error}")
        return False
    for name, annotation in hints.items():
        if carries_secret_type(annotation):
            what = "returns" if name == "return" else f"takes {name!r} as"
            problems.append(
                f"{where}: {step.entrypoint} {what} a secret type; pass a reference (Vault path and version)"
                " instead,"
                " because Argo stores and shows every parameter and output"
            )
    return True


def check_declaration(pipeline: Pipeline) -> None:
    """Raise ``InputError`` listing every problem of the declaration."""
    problems: list[str] = []
    if not is_dns_label(pipeline.name):
        problems.append(f"pipeline {pipeline.name!r}: the name must be a DNS label")
    if not pipeline.steps:
        problems.append(f"pipeline {pipeline.name!r}: needs at least one step")
    names = [step.name for step in pipeline.steps]
    if pipeline.on_exit is not None:
        names.append(pipeline.on_exit.name)
    for duplicate in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"pipeline {pipeline.name!r}: step {duplicate!r} is declared twice")
    for step in [*pipeline.steps, *([pipeline.on_exit] if pipeline.on_exit else [])]:
        _check_step(pipeline, step, problems)
    _check_schedules(pipeline, problems)
    _check_secret_mounts(pipeline, problems)
    _check_duration(problems, f"pipeline {pipeline.name!r}: timeout", pipeline.timeout)
    if problems:
        raise InputError("\n".join(problems))
    _check_compiled(pipeline)


def _check_schedules(pipeline: Pipeline, problems: list[str]) -> None:
    declared = {p.name for p in pipeline.params}
    seen: set[str] = set()
    for schedule in pipeline.schedules:
        where = f"pipeline {pipeline.name!r}, schedule {schedule.name!r}"
        if schedule.name in seen:
            problems.append(f"{where}: declared twice")
        seen.add(schedule.name)
        if not is_dns_label(pipeline.cron_name(schedule)):
            problems.append(f"{where}: {pipeline.cron_name(schedule)!r} is not a valid CronWorkflow name")
        try:
            validate_cron(schedule.cron)
        except ValueError as error:
            problems.append(f"{where}: {error}")
        for name in schedule.arguments:
            if name not in declared:
                problems.append(f"{where}: argument {name!r} is not a parameter of the pipeline")


def _check_secret_mounts(pipeline: Pipeline, problems: list[str]) -> None:
    names = [mount.name for mount in pipeline.secret_mounts]
    paths = [mount.path for mount in pipeline.secret_mounts]
    for mount in pipeline.secret_mounts:
        where = f"pipeline {pipeline.name!r}, secret mount {mount.name!r}"
        if not is_dns_label(mount.name):
            problems.append(f"{where}: the name must be a DNS label")
        if names.count(mount.name) > 1 or paths.count(mount.path) > 1:
            problems.append(f"{where}: its name or path is declared twice")
        if not mount.path.startswith("/"):
            problems.append(f"{where}: the path {mount.path!r} must be absolute")
        if not mount.secret:
            problems.append(f"{where}: needs the Secret's name (or a parameter reference)")


def _check_compiled(pipeline: Pipeline) -> None:
    try:
        spec.load(workflow_template(pipeline).to_dict())
    except InputError as error:
        raise InputError(f"pipeline {pipeline.name!r}: {error}") from None
