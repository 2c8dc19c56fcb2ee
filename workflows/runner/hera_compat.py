"""The one place that reaches into Hera's runner internals.

The local runner must convert a step's inputs and outputs exactly as
``python -m hera.workflows.runner`` does in a pod. Hera keeps the pieces that
decide this (annotation inspection, ``Input`` model mapping, output dumpers) in
private modules, so they are imported here and nowhere else: a Hera upgrade
that moves them breaks this file, and ``tests/workflows/test_invoke.py``
compares the local runner with the real runner subprocess on the same inputs
so that a change in behaviour cannot go unnoticed either.
"""

from __future__ import annotations

from hera.shared._pydantic import get_fields, model_dump
from hera.shared._type_util import (
    get_unsubscripted_type,
    get_workflow_annotation,
    is_subscripted,
    origin_type_issubtype,
    unwrap_annotation,
)
from hera.shared.serialization import serialize
from hera.workflows import Artifact, Parameter
from hera.workflows._runner.script_annotations_util import _get_dumper_function, map_runner_input
from hera.workflows.io.v1 import Input as InputV1
from hera.workflows.io.v1 import Output as OutputV1
from hera.workflows.io.v2 import Input as InputV2
from hera.workflows.io.v2 import Output as OutputV2
from hera.workflows.script import _extract_return_annotation_output

INPUT_MODELS = (InputV1, InputV2)
OUTPUT_MODELS = (OutputV1, OutputV2)

__all__ = [
    "INPUT_MODELS",
    "OUTPUT_MODELS",
    "Artifact",
    "Parameter",
    "extract_return_annotation_output",
    "get_dumper_function",
    "get_fields",
    "get_unsubscripted_type",
    "get_workflow_annotation",
    "is_subscripted",
    "map_runner_input",
    "model_dump",
    "origin_type_issubtype",
    "serialize",
    "unwrap_annotation",
]

extract_return_annotation_output = _extract_return_annotation_output
get_dumper_function = _get_dumper_function
