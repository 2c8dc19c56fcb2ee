"""Compile a :class:`~vaultflow.workflows.dsl.Pipeline` into Hera objects (and from there, Argo YAML).

Every step becomes its own script template (named after the step, so that
retries and timeouts can differ between two uses of one function) that runs
the step function through Hera's runner, started by vaultflow's entry so that
a failed step's reason becomes its node message (:mod:`vaultflow.workflows.entry`):
``python -m vaultflow.workflows.entry -e module:function``. The entry DAG is
called ``main``; an exit step is wrapped in a one-task DAG called
``exit-handler`` so that its arguments can use ``{{workflow.status}}``.

Pods run as the image's non-root user with no privilege escalation and no
capabilities; pods of succeeded steps are garbage-collected. A pipeline's
secret mounts are workflow-level ``volumes`` (Argo substitutes parameters in
them, so the Secret's name can be one) mounted read-only into every step.
"""

from __future__ import annotations

from typing import Any

from hera.workflows import (
    DAG,
    CronWorkflow,
    Parameter,
    RetryStrategy,
    Script,
    Task,
    WorkflowTemplate,
)
from hera.workflows import models as m
from hera.workflows.script import RunnerScriptConstructor

from vaultflow.base import steps_image
from vaultflow.base.durations import parse_argo_duration
from vaultflow.workflows import entry, settings
from vaultflow.workflows.dsl import Param, Pipeline, Retry, Schedule, SecretMount, Step
from vaultflow.workflows.runner.model import as_string

PART_OF_LABEL = "app.kubernetes.io/part-of"
DESCRIPTION_ANNOTATION = "workflows.argoproj.io/description"
ENTRY_TEMPLATE = "main"
EXIT_TEMPLATE = "exit-handler"


class _EntryScriptConstructor(RunnerScriptConstructor):
    """Hera's runner script, started through :mod:`vaultflow.workflows.entry` (same arguments)."""

    def transform_values(self, script: Script) -> None:
        super().transform_values(script)
        if script.args is not None:
            script.args = [entry.MODULE if arg == entry.HERA_RUNNER_MODULE else arg for arg in script.args]


def _retry_strategy(retry: Retry | None) -> RetryStrategy | None:
    if retry is None:
        return None
    return RetryStrategy(
        limit=retry.limit,
        retry_policy=retry.policy,
        backoff=m.Backoff(
            duration=retry.backoff,
            factor=str(retry.factor),
            max_duration=retry.max_duration,
        ),
    )


def _seconds(duration: str | None) -> int | None:
    return None if duration is None else max(1, round(parse_argo_duration(duration)))


def _container_security_context() -> m.SecurityContext:
    return m.SecurityContext(
        allow_privilege_escalation=False,
        capabilities=m.Capabilities(drop=["ALL"]),
        run_as_non_root=True,
    )


def _pod_security_context() -> m.PodSecurityContext:
    return m.PodSecurityContext(
        run_as_non_root=True,
        run_as_user=steps_image.STEPS_UID,
        run_as_group=steps_image.STEPS_UID,
        fs_group=steps_image.STEPS_UID,
        seccomp_profile=m.SeccompProfile(type="RuntimeDefault"),
    )


SECRET_FILE_MODE = 0o440  # read-only for the owner (root) and the pod's fsGroup (the steps' user)


def _volume(mount: SecretMount) -> m.Volume:
    return m.Volume(
        name=mount.name,
        secret=m.SecretVolumeSource(
            secret_name=mount.secret, default_mode=SECRET_FILE_MODE, optional=mount.optional or None
        ),
    )


def _script(pipeline: Pipeline, step: Step, image: str) -> Script:
    mounts = [m.VolumeMount(name=s.name, mount_path=s.path, read_only=True) for s in pipeline.secret_mounts]
    env = [m.EnvVar(name=k, value=v) for s in pipeline.secret_mounts for k, v in sorted(s.env.items())]
    return Script(
        name=step.name,
        source=step.function,
        constructor=_EntryScriptConstructor(),
        image=image,
        image_pull_policy="IfNotPresent",
        retry_strategy=_retry_strategy(pipeline.retry_of(step)),
        active_deadline_seconds=_seconds(step.timeout),
        security_context=_container_security_context(),
        volume_mounts=mounts or None,
        env=env or None,
    )


def _task(step: Step, template: Script) -> Task:
    return Task(
        name=step.name,
        template=template,
        arguments={name: as_string(value) for name, value in step.args.items()},
        depends=step.depends_expression(),
        when=step.when,
        with_items=list(step.items) if step.items is not None else None,
        with_param=step.over,
        continue_on=m.ContinueOn(failed=True) if step.continue_on_failure else None,
    )


def _parameter(param: Param) -> Parameter:
    """A workflow parameter; one without a default has no ``value``, so Argo requires it at submit.

    (Hera spells an explicit ``value=None`` as the string ``'null'``, which Argo would then pass on.)
    """
    enum = list(param.enum) if param.enum else None
    if param.default is None:
        return Parameter(name=param.name, description=param.description, enum=enum)
    return Parameter(name=param.name, value=param.default, description=param.description, enum=enum)


def workflow_template(pipeline: Pipeline, image: str | None = None) -> WorkflowTemplate:
    """The pipeline as a Hera ``WorkflowTemplate`` (``image`` defaults to ``VAULTFLOW_IMAGE``)."""
    image = image or steps_image.image()
    labels = {PART_OF_LABEL: "vaultflow", **pipeline.labels}
    # Built outside the template's context, Hera lists them after the DAGs that use them: main comes first.
    exit_steps = [pipeline.on_exit] if pipeline.on_exit is not None else []
    scripts = {step.name: _script(pipeline, step, image) for step in [*pipeline.steps, *exit_steps]}
    with WorkflowTemplate(
        name=pipeline.name,
        labels=labels,
        annotations={DESCRIPTION_ANNOTATION: pipeline.description},
        entrypoint=ENTRY_TEMPLATE,
        arguments=[_parameter(p) for p in pipeline.params],
        service_account_name=pipeline.service_account or settings.DEFAULT_SERVICE_ACCOUNT,
        automount_service_account_token=True,
        parallelism=pipeline.parallelism,
        active_deadline_seconds=_seconds(pipeline.timeout),
        on_exit=EXIT_TEMPLATE if pipeline.on_exit is not None else None,
        security_context=_pod_security_context(),
        pod_gc=m.PodGC(strategy="OnPodSuccess"),
        # What the NetworkPolicies select the steps' pods by (argocd-apps/workflows/network/).
        pod_metadata=m.Metadata(labels={PART_OF_LABEL: "vaultflow"}),
        synchronization=m.Synchronization(mutexes=[m.Mutex(name=pipeline.mutex)]) if pipeline.mutex else None,
        volumes=[_volume(mount) for mount in pipeline.secret_mounts] or None,
    ) as template:
        with DAG(name=ENTRY_TEMPLATE):
            for step in pipeline.steps:
                _task(step, scripts[step.name])
        if pipeline.on_exit is not None:
            with DAG(name=EXIT_TEMPLATE):
                _task(pipeline.on_exit, scripts[pipeline.on_exit.name])
    return template


def cron_workflow(pipeline: Pipeline, schedule: Schedule) -> CronWorkflow:
    """A CronWorkflow that submits the pipeline's WorkflowTemplate (one definition, deployed once)."""
    return CronWorkflow(
        name=pipeline.cron_name(schedule),
        labels={PART_OF_LABEL: "vaultflow", **pipeline.labels},
        annotations={DESCRIPTION_ANNOTATION: f"{pipeline.description} (schedule {schedule.name})"},
        schedules=[schedule.cron],
        timezone=schedule.timezone,
        concurrency_policy=schedule.concurrency_policy,
        starting_deadline_seconds=schedule.starting_deadline_seconds,
        successful_jobs_history_limit=3,
        failed_jobs_history_limit=3,
        suspend=schedule.suspend or None,
        workflow_template_ref=m.WorkflowTemplateRef(name=pipeline.name),
        arguments=dict(schedule.arguments) or None,
    )


def documents(pipeline: Pipeline, image: str | None = None) -> list[dict[str, Any]]:
    """The Argo documents of a pipeline: its WorkflowTemplate, then its CronWorkflows."""
    docs = [workflow_template(pipeline, image).to_dict()]
    docs.extend(cron_workflow(pipeline, schedule).to_dict() for schedule in pipeline.schedules)
    return docs
