"""Fixtures for the workflow tests: a place for runs, and a one-liner to run a pipeline locally."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from vaultflow.workflows import runner
from vaultflow.workflows.checks import check_declaration
from vaultflow.workflows.compile import workflow_template
from vaultflow.workflows.dsl import NO_RETRY, Pipeline, Step


def pipeline(name: str, steps: Sequence[Step], **options: Any) -> Pipeline:
    """A test pipeline, checked as the registry checks it: no retries unless a test asks for them."""
    options.setdefault("description", f"test pipeline {name}")
    options.setdefault("default_retry", NO_RETRY)
    declared = Pipeline(name=name, steps=steps, **options)
    check_declaration(declared)
    return declared


RunPipeline = Callable[..., runner.WorkflowResult]


@pytest.fixture
def run_root(tmp_path: Path) -> Path:
    return tmp_path / "runs"


@pytest.fixture
def run_pipeline(run_root: Path) -> RunPipeline:
    def run(pipeline: Pipeline, **parameters: str) -> runner.WorkflowResult:
        return runner.run(workflow_template(pipeline), parameters, run_root=run_root)

    return run
