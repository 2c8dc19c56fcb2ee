"""Call a step function in-process exactly as Hera's runner calls it in a pod.

In a pod, ``python -m hera.workflows.runner -e module:function`` reads the
template's input parameters (``{{inputs.parameters}}``, a JSON list of
name/value strings), converts each to the function's annotated type, calls the
function under ``pydantic.validate_call``, prints the serialized return value
to stdout (which Argo keeps as ``outputs.result``) and writes
``Annotated[..., Parameter(name=...)]`` outputs to files that Argo collects as
``outputs.parameters``.

This module does the same in-process, with two deliberate differences that
make concurrent in-process calls possible: the function's signature is
analysed once per entrypoint instead of on every call, and output parameters
are collected into a per-call directory instead of the process-wide
``hera__outputs_directory``. Conversion rules are Hera's own (see
:mod:`vaultflow.workflows.runner.hera_compat`).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import NoneType
from typing import Any

from pydantic import ConfigDict, TypeAdapter, validate_call

from vaultflow.workflows.runner import hera_compat as hera


class StepDefinitionError(ValueError):
    """The entrypoint cannot be imported, or uses a feature the local runner does not run."""


class StepInputError(ValueError):
    """An input parameter the function needs was not given (Hera raises the same)."""


@dataclass(frozen=True)
class StepOutcome:
    """What the pod would leave behind: its exit code and its output parameter files."""

    exit_code: int
    parameters: dict[str, str]


Converter = Callable[[Mapping[str, str], Path], Any]


@dataclass(frozen=True)
class StepFunction:
    """A step function, analysed once: how to build its arguments and collect its outputs."""

    entrypoint: str
    function: Callable[..., Any]
    converters: tuple[tuple[str, Converter], ...]
    output_parameter_paths: tuple[tuple[str, str], ...]  # (parameter name, python argument)
    return_outputs: tuple[Any, ...]
    passes_all_inputs: bool

    def call(self, inputs: Mapping[str, str], outputs_dir: Path) -> StepOutcome:
        """Run the function; print its result to ``sys.stdout`` as the runner would.

        Exceptions from the function propagate (the pod would exit 1); a
        ``SystemExit`` is turned into its exit code.
        """
        try:
            return self._call(inputs, outputs_dir)
        except SystemExit as stop:
            if stop.code is None or stop.code == 0:
                return StepOutcome(0, {})
            if isinstance(stop.code, int):
                return StepOutcome(stop.code, {})
            print(stop.code, file=sys.stderr)
            return StepOutcome(1, {})

    def _call(self, inputs: Mapping[str, str], outputs_dir: Path) -> StepOutcome:
        if self.passes_all_inputs:
            kwargs: dict[str, Any] = dict(inputs)
        else:
            kwargs = {name: convert(inputs, outputs_dir) for name, convert in self.converters}
        parameters: dict[str, str] = {}
        if self.return_outputs:
            try:
                returned = self.function(**kwargs)
            except BaseException:
                # Hera writes empty outputs when the function raises, so that Argo's
                # wait container has files to collect; the attempt fails either way.
                for name in _annotated_output_names(self.return_outputs):
                    parameters[name] = ""
                raise
            output_model = _collect_return_outputs(returned, self.return_outputs, parameters)
        else:
            returned = self.function(**kwargs)
            output_model = returned if isinstance(returned, hera.OUTPUT_MODELS) else None
        for name, argument in self.output_parameter_paths:
            path = kwargs[argument]
            if isinstance(path, Path) and path.exists():
                parameters[name] = path.read_text()
        exit_code = 0
        if output_model is not None:
            _print_result(output_model.result)
            exit_code = int(output_model.exit_code or 0)
        elif not self.return_outputs and returned:
            # Hera's runner prints nothing for a falsy return value (``if not result: return``).
            _print_result(returned)
        return StepOutcome(exit_code, parameters)


def _print_result(value: Any) -> None:
    print(hera.serialize(value))


def _annotated_output_names(return_outputs: tuple[Any, ...]) -> list[str]:
    names: list[str] = []
    for dest in return_outputs:
        if isinstance(dest, type) and issubclass(dest, hera.OUTPUT_MODELS):
            names.extend(
                dest._get_output(field).name or field
                for field in hera.get_fields(dest)
                if field not in ("exit_code", "result")
            )
        else:
            names.append(dest[1].name)
    return names


def _collect_return_outputs(
    returned: Any, return_outputs: tuple[Any, ...], parameters: dict[str, str]
) -> Any | None:
    """Hera's ``_save_annotated_return_outputs``, writing into ``parameters`` instead of files."""
    values = returned if isinstance(returned, tuple) else (returned,)
    if len(values) != len(return_outputs):
        raise ValueError("The number of outputs does not match the annotation")
    output_model = None
    for value, dest in zip(values, return_outputs, strict=True):
        if isinstance(value, hera.OUTPUT_MODELS):
            output_model = value
            for field, field_value in hera.model_dump(value).items():
                if field in ("exit_code", "result"):
                    continue
                annotation = value._get_output(field)
                _store(parameters, annotation, field_value)
        else:
            expected = hera.get_unsubscripted_type(dest[0])
            if not isinstance(value, expected):
                raise ValueError(
                    f"The type of output `{dest[1].name}`, `{type(value)}` does not match "
                    f"the annotated type `{dest[0]}`"
                )
            _store(parameters, dest[1], value)
    return output_model


def _store(parameters: dict[str, str], annotation: Any, value: Any) -> None:
    dumped = hera.get_dumper_function(annotation)(value)
    if dumped is None:
        return
    parameters[annotation.name] = dumped.decode() if isinstance(dumped, bytes) else str(dumped)


def _json_or_raw(value: Any, adapter: TypeAdapter[Any] | None) -> Any:
    """Hera's ``_parse``: JSON-decode, then validate into the annotated type; raw on undecodable input."""
    if not isinstance(value, str | bytes | bytearray):
        return value
    try:
        loaded = json.loads(value)
    except json.JSONDecodeError:
        return value
    return loaded if adapter is None else adapter.validate_python(loaded)


def _plain_converter(input_name: str, annotation: Any, loader: Callable[[str], Any] | None) -> Converter:
    as_string = annotation is not inspect.Parameter.empty and hera.origin_type_issubtype(
        annotation, (str, NoneType)
    )
    adapter: TypeAdapter[Any] | None = None
    if not as_string and annotation is not inspect.Parameter.empty:
        adapter = TypeAdapter(hera.unwrap_annotation(annotation))

    def convert(inputs: Mapping[str, str], _: Path) -> Any:
        if input_name not in inputs:
            raise StepInputError(f"Parameter {input_name} was not given a value")
        value: Any = inputs[input_name]
        if loader is not None:
            value = loader(value)
        return value if as_string else _json_or_raw(value, adapter)

    return convert


def _input_model_converter(model: type[Any]) -> Converter:
    def convert(inputs: Mapping[str, str], _: Path) -> Any:
        try:
            return hera.map_runner_input(model, dict(inputs))
        except KeyError as missing:
            raise StepInputError(f"Parameter {missing.args[0]} was not given a value") from None

    return convert


def _output_path_converter(name: str) -> Converter:
    def convert(_: Mapping[str, str], outputs_dir: Path) -> Path:
        path = outputs_dir / "parameters" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    return convert


def _refuse_artifacts(entrypoint: str, where: str, annotation: Any) -> None:
    if isinstance(hera.get_workflow_annotation(annotation), hera.Artifact):
        raise StepDefinitionError(
            f"{entrypoint}: {where} is an Artifact; the local runner passes parameters only"
        )


def _import(entrypoint: str) -> Callable[..., Any]:
    module_name, _, function_name = entrypoint.partition(":")
    if not module_name or not function_name:
        raise StepDefinitionError(f"{entrypoint!r} is not of the form module:function")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:
        raise StepDefinitionError(f"cannot import module {module_name!r}: {error}") from None
    function = getattr(module, function_name, None)
    if function is None:
        raise StepDefinitionError(f"module {module_name!r} has no function {function_name!r}")
    function = getattr(function, "wrapped_function", function)  # a Hera @script-decorated function
    if not callable(function):
        raise StepDefinitionError(f"{entrypoint} is not callable")
    return function  # type: ignore[no-any-return]


@functools.cache
def load_step(entrypoint: str) -> StepFunction:
    """Import ``module:function`` and work out, once, how the runner would call it."""
    function = _import(entrypoint)
    signature = inspect.signature(function)
    postponed = [
        name
        for name, annotation in [
            *((n, p.annotation) for n, p in signature.parameters.items()),
            ("return", signature.return_annotation),
        ]
        if isinstance(annotation, str)
    ]
    if postponed:
        raise StepDefinitionError(
            f"{entrypoint}: annotations of {', '.join(postponed)} are strings; Hera's runner reads them"
            " at run time,"
            " so the step module must not use 'from __future__ import annotations'"
        )
    passes_all_inputs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())
    converters: list[tuple[str, Converter]] = []
    output_parameter_paths: list[tuple[str, str]] = []
    for name, parameter in signature.parameters.items():
        annotation = parameter.annotation
        _refuse_artifacts(entrypoint, f"argument {name!r}", annotation)
        workflow_annotation = hera.get_workflow_annotation(annotation)
        unwrapped = hera.unwrap_annotation(annotation)
        if isinstance(workflow_annotation, hera.Parameter) and workflow_annotation.output:
            output_name = workflow_annotation.name or name
            converters.append((name, _output_path_converter(output_name)))
            output_parameter_paths.append((output_name, name))
        elif isinstance(workflow_annotation, hera.Parameter):
            converters.append(
                (
                    name,
                    _plain_converter(workflow_annotation.name or name, annotation, workflow_annotation.loads),
                )
            )
        elif inspect.isclass(unwrapped) and issubclass(unwrapped, hera.INPUT_MODELS):
            for field, info in hera.get_fields(unwrapped).items():
                _refuse_artifacts(entrypoint, f"field {field!r} of {unwrapped.__name__}", info.annotation)
            converters.append((name, _input_model_converter(unwrapped)))
        else:
            converters.append((name, _plain_converter(name, annotation, None)))
    try:
        return_outputs = tuple(hera.extract_return_annotation_output(function))
    except ValueError as error:
        raise StepDefinitionError(f"{entrypoint}: {error}") from None
    for dest in return_outputs:
        if isinstance(dest, tuple):
            _refuse_artifacts(entrypoint, "the return value", dest)
            if isinstance(dest[1], hera.Artifact):
                raise StepDefinitionError(
                    f"{entrypoint}: returns an Artifact; the local runner passes parameters only"
                )
    validated = validate_call(config=ConfigDict(arbitrary_types_allowed=True))(function)
    return StepFunction(
        entrypoint=entrypoint,
        function=validated,
        converters=tuple(converters),
        output_parameter_paths=tuple(output_parameter_paths),
        return_outputs=return_outputs,
        passes_all_inputs=passes_all_inputs,
    )
