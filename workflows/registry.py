"""Find pipelines by name: what ``vaultflow run``, ``workflows render`` and ``workflows submit`` use.

Pipelines live in modules of the :mod:`vaultflow.workflows.pipelines` package, each
exposing ``PIPELINES`` (a sequence of :class:`~vaultflow.workflows.dsl.Pipeline`).
Adding a pipeline is adding a module: nothing else needs to know about it.
Every pipeline is checked (:func:`~vaultflow.workflows.checks.check_declaration`)
as it is registered, so a wrong declaration is refused, naming the pipeline and
step, before anything is rendered, submitted or run.
``VAULTFLOW_PIPELINE_MODULES`` (comma-separated module names) adds modules
from elsewhere, for a deployment's own pipelines or for tests.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from typing import Any

from vaultflow.base.errors import InputError
from vaultflow.workflows.checks import check_declaration
from vaultflow.workflows.compile import cron_workflow, workflow_template
from vaultflow.workflows.compile import documents as pipeline_documents
from vaultflow.workflows.dsl import Pipeline

EXTRA_MODULES_ENV = "VAULTFLOW_PIPELINE_MODULES"


class Registry:
    """Named pipelines, and the Argo documents they compile to."""

    def __init__(self, pipelines: Iterable[Pipeline] = ()) -> None:
        self._pipelines: dict[str, Pipeline] = {}
        for pipeline in pipelines:
            self.add(pipeline)

    def add(self, pipeline: Pipeline) -> None:
        """Register a pipeline; ``InputError`` if its declaration is wrong or a name is taken."""
        check_declaration(pipeline)
        names = [pipeline.name, *(pipeline.cron_name(s) for s in pipeline.schedules)]
        for name in names:
            if name in self._names():
                raise InputError(f"pipeline {pipeline.name!r}: the name {name!r} is already registered")
        self._pipelines[pipeline.name] = pipeline

    def _names(self) -> set[str]:
        names = set(self._pipelines)
        for pipeline in self._pipelines.values():
            names.update(pipeline.cron_name(s) for s in pipeline.schedules)
        return names

    def __iter__(self) -> Iterator[Pipeline]:
        return iter(sorted(self._pipelines.values(), key=lambda p: p.name))

    def __len__(self) -> int:
        return len(self._pipelines)

    def names(self) -> list[str]:
        return sorted(self._pipelines)

    def has(self, name: str) -> bool:
        """True for a pipeline name and for the name of one of its CronWorkflows."""
        return name in self._names()

    def pipeline_for(self, name: str) -> Pipeline:
        """The pipeline of a WorkflowTemplate or CronWorkflow name."""
        for pipeline in self._pipelines.values():
            if name == pipeline.name or any(pipeline.cron_name(s) == name for s in pipeline.schedules):
                return pipeline
        return self.get(name)

    def get(self, name: str) -> Pipeline:
        pipeline = self._pipelines.get(name)
        if pipeline is None:
            raise InputError(
                f"unknown workflow template {name!r} (known: {', '.join(self.names()) or 'none'})"
            )
        return pipeline

    def document(self, name: str, image: str | None = None) -> dict[str, Any]:
        """The WorkflowTemplate or CronWorkflow called ``name``."""
        if name in self._pipelines:
            return dict(workflow_template(self._pipelines[name], image).to_dict())
        for pipeline in self._pipelines.values():
            for schedule in pipeline.schedules:
                if pipeline.cron_name(schedule) == name:
                    return dict(cron_workflow(pipeline, schedule).to_dict())
        known = ", ".join(sorted(self._names())) or "none"
        raise InputError(f"unknown workflow template or cron workflow {name!r} (known: {known})")

    def with_catalog(self, catalog: Any) -> Registry:
        """These pipelines, each with the CronWorkflows its ``catalog_schedules`` finds in ``catalog``."""
        return Registry(
            [
                replace(p, schedules=[*p.schedules, *p.catalog_schedules(catalog)])
                if p.catalog_schedules
                else p
                for p in self
            ]
        )

    def documents(self, image: str | None = None) -> list[dict[str, Any]]:
        """Every WorkflowTemplate and CronWorkflow, in a stable order."""
        return [doc for pipeline in self for doc in pipeline_documents(pipeline, image)]

    def lookup(self, name: str) -> Mapping[str, Any] | None:
        """A WorkflowTemplate by name, for resolving ``workflowTemplateRef`` (runner's ``TemplateLookup``)."""
        pipeline = self._pipelines.get(name)
        return workflow_template(pipeline).to_dict() if pipeline is not None else None


def _modules() -> list[str]:
    import vaultflow.workflows.pipelines as package

    names = sorted(f"{package.__name__}.{info.name}" for info in pkgutil.iter_modules(package.__path__))
    extra = [name.strip() for name in os.environ.get(EXTRA_MODULES_ENV, "").split(",") if name.strip()]
    return names + extra


def load_registry(modules: Iterable[str] | None = None) -> Registry:
    """Import the pipeline modules and register their ``PIPELINES``."""
    registry = Registry()
    for module_name in modules if modules is not None else _modules():
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            raise InputError(f"cannot import pipeline module {module_name!r}: {error}") from None
        pipelines = getattr(module, "PIPELINES", None)
        if pipelines is None:
            raise InputError(f"pipeline module {module_name!r} has no PIPELINES")
        for pipeline in pipelines:
            registry.add(pipeline)
    return registry
