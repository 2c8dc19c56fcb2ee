"""Read a compiled workflow and refuse, before anything runs, what the local runner cannot honour.

Input is what Argo would receive: a Hera ``Workflow`` / ``WorkflowTemplate`` /
``CronWorkflow`` object, its dict, or its YAML. A ``Workflow`` that refers to a
``WorkflowTemplate`` (``workflowTemplateRef``) and a ``CronWorkflow`` are
resolved the way Argo resolves them.

The result is the plain data of :mod:`vaultflow.workflows.runner.model`; the
checks of which variables may be used where live in
:mod:`vaultflow.workflows.runner.references`.

Validation is strict and complete: every field is either *supported* (the
runner implements Argo's semantics for it), *pod-only* (it shapes the pod on a
cluster and has no meaning in-process, so it is accepted and ignored), or
refused. Every problem is reported at once, each naming the template, task and
field, so that an unsupported workflow never starts and leaves nothing half
done.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import yaml

from vaultflow.base.durations import parse_argo_duration
from vaultflow.base.errors import InputError
from vaultflow.workflows import entry
from vaultflow.workflows.runner import depends as dep
from vaultflow.workflows.runner import templating
from vaultflow.workflows.runner.invoke import StepDefinitionError, load_step
from vaultflow.workflows.runner.model import (
    BackoffSpec,
    OutputParameterSpec,
    ParameterSpec,
    RetrySpec,
    TaskSpec,
    TemplateLookup,
    TemplateSpec,
    WorkflowSpec,
    as_string,
)
from vaultflow.workflows.runner.problems import Problems
from vaultflow.workflows.runner.references import check_references

JsonObject = dict[str, Any]

RETRY_POLICIES = ("Always", "OnFailure", "OnError", "OnTransientError")
_TASK_NAME = re.compile(r"^[a-zA-Z0-9][-a-zA-Z0-9]*$")
# Hera's runner, started as Hera writes it or through vaultflow's entry (which runs it unchanged).
_RUNNER_MODULES = (entry.HERA_RUNNER_MODULE, entry.MODULE)

# Fields with no in-process meaning: they shape pods and cluster bookkeeping only.
_POD_ONLY_SPEC = {
    "synchronization",  # the controller's queue between workflows; one local run is one workflow
    "securityContext",
    "podGC",
    "ttlStrategy",
    "workflowMetadata",
    "podMetadata",
    "imagePullSecrets",
    "nodeSelector",
    "tolerations",
    "affinity",
    "automountServiceAccountToken",
    "executor",
    "podPriorityClassName",
    "priority",
    "schedulerName",
    "archiveLogs",
    "podDisruptionBudget",
    "hostNetwork",
    "dnsPolicy",
    "dnsConfig",
    "serviceAccountName",
    "artifactGC",
    "volumes",  # mounted into pods; a local step reads its credentials from the runner's environment
}
_SUPPORTED_SPEC = {"entrypoint", "templates", "arguments", "parallelism", "activeDeadlineSeconds", "onExit"}
_POD_ONLY_TEMPLATE = {
    "metadata",
    "securityContext",
    "nodeSelector",
    "tolerations",
    "affinity",
    "serviceAccountName",
    "automountServiceAccountToken",
    "priorityClassName",
    "schedulerName",
    "podSpecPatch",
}
_SUPPORTED_TEMPLATE = {"name", "inputs", "outputs", "retryStrategy", "activeDeadlineSeconds", "parallelism"}
_TEMPLATE_KINDS = (
    "dag",
    "script",
    "container",
    "steps",
    "resource",
    "suspend",
    "http",
    "containerSet",
    "data",
    "plugin",
)
_SCRIPT_FIELDS = {"image", "command", "args", "source", "env", "name"}
_POD_ONLY_SCRIPT = {"imagePullPolicy", "resources", "securityContext", "workingDir", "volumeMounts"}
_TASK_FIELDS = {
    "name",
    "template",
    "arguments",
    "depends",
    "dependencies",
    "when",
    "withItems",
    "withParam",
    "continueOn",
    "description",
}
_PARAMETER_FIELDS = {"name", "value", "default", "enum", "description"}


# --- reading documents ----------------------------------------------------------------------


def to_document(workflow: Any) -> JsonObject:
    """A plain dict of a Hera object, a mapping, or a YAML/JSON text."""
    if hasattr(workflow, "to_dict") and callable(workflow.to_dict):
        return dict(workflow.to_dict())
    if isinstance(workflow, str):
        try:
            loaded = yaml.safe_load(workflow)
        except yaml.YAMLError as error:
            raise InputError(f"workflow document is not valid YAML: {error}") from None
        if not isinstance(loaded, dict):
            raise InputError("workflow document must be a YAML mapping")
        return loaded
    if isinstance(workflow, Mapping):
        return copy.deepcopy(dict(workflow))
    raise InputError(f"cannot read a workflow from {type(workflow).__name__}")


def _merge_template(workflow_spec: Mapping[str, Any], template_spec: Mapping[str, Any]) -> JsonObject:
    """Argo's merge of a Workflow onto the WorkflowTemplate it refers to: the Workflow wins."""
    merged = copy.deepcopy(dict(template_spec))
    for key, value in workflow_spec.items():
        if key == "workflowTemplateRef":
            continue
        if key == "arguments":
            by_name = {p["name"]: dict(p) for p in merged.get("arguments", {}).get("parameters", [])}
            for parameter in value.get("parameters", []):
                by_name[parameter["name"]] = {**by_name.get(parameter["name"], {}), **parameter}
            merged["arguments"] = {"parameters": list(by_name.values())}
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def resolve(document: Mapping[str, Any], lookup: TemplateLookup | None = None) -> tuple[str, str, JsonObject]:
    """Return (kind, name, runnable spec) of a Workflow, WorkflowTemplate or CronWorkflow."""
    kind = document.get("kind")
    metadata = document.get("metadata") or {}
    spec = document.get("spec")
    name = metadata.get("name") or metadata.get("generateName") or ""
    if not isinstance(spec, Mapping):
        raise InputError(f"{kind or 'document'} {name!r}: 'spec' is missing")
    if kind == "CronWorkflow":
        spec = spec.get("workflowSpec")
        if not isinstance(spec, Mapping):
            raise InputError(f"CronWorkflow {name!r}: 'spec.workflowSpec' is missing")
    elif kind not in ("Workflow", "WorkflowTemplate"):
        raise InputError(f"cannot run a {kind!r}: expected Workflow, WorkflowTemplate or CronWorkflow")
    reference = spec.get("workflowTemplateRef")
    if reference is not None:
        if reference.get("clusterScope"):
            raise InputError(f"{kind} {name!r}: ClusterWorkflowTemplate references are not supported")
        template_name = reference.get("name", "")
        template = lookup(template_name) if lookup is not None else None
        if template is None:
            raise InputError(f"{kind} {name!r}: WorkflowTemplate {template_name!r} not found")
        spec = _merge_template(spec, template.get("spec", {}))
        name = name or template_name
    return str(kind), str(name), dict(spec)


# --- validation -----------------------------------------------------------------------------


def _unknown_fields(
    problems: Problems, where: str, obj: Mapping[str, Any], supported: set[str], pod_only: Iterable[str] = ()
) -> None:
    allowed = supported | set(pod_only)
    for key in obj:
        if key not in allowed:
            problems.add(where, f"field {key!r} is not supported by the local runner")


def _parameters(problems: Problems, where: str, raw: Any, *, fields: set[str]) -> tuple[ParameterSpec, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.add(where, "must be a list")
        return ()
    parsed: list[ParameterSpec] = []
    for index, item in enumerate(raw):
        here = f"{where}[{index}]"
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            problems.add(here, "a parameter needs a 'name'")
            continue
        here = f"{where}[{item['name']}]"
        if "valueFrom" in item:
            problems.add(here, "'valueFrom' is not supported by the local runner")
        _unknown_fields(problems, here, {k: v for k, v in item.items() if k != "valueFrom"}, fields)
        enum = item.get("enum")
        parsed.append(
            ParameterSpec(
                name=item["name"],
                value=as_string(item["value"]) if item.get("value") is not None else None,
                default=as_string(item["default"]) if item.get("default") is not None else None,
                enum=tuple(as_string(v) for v in enum) if isinstance(enum, list) else None,
            )
        )
    names = [p.name for p in parsed]
    for duplicate in sorted({n for n in names if names.count(n) > 1}):
        problems.add(where, f"parameter {duplicate!r} is declared twice")
    return tuple(parsed)


def _io_section(problems: Problems, where: str, raw: Any) -> Mapping[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        problems.add(where, "must be a mapping")
        return {}
    if raw.get("artifacts"):
        problems.add(where, "artifacts are not supported by the local runner (steps pass references)")
    _unknown_fields(problems, where, raw, {"parameters", "artifacts", "result", "exitCode"})
    return raw


def _outputs(problems: Problems, where: str, raw: Any, kind: str) -> tuple[OutputParameterSpec, ...]:
    section = _io_section(problems, where, raw)
    outputs: list[OutputParameterSpec] = []
    for index, item in enumerate(section.get("parameters") or []):
        name = item.get("name") if isinstance(item, Mapping) else None
        here = f"{where}.parameters[{name or index}]"
        if not isinstance(name, str):
            problems.add(here, "an output parameter needs a 'name'")
            continue
        _unknown_fields(problems, here, item, {"name", "valueFrom", "description"})
        value_from = item.get("valueFrom") or {}
        if kind == "script":
            _unknown_fields(problems, f"{here}.valueFrom", value_from, {"path", "default"})
            if "path" not in value_from:
                problems.add(f"{here}.valueFrom", "a script output parameter needs 'path'")
            default = value_from.get("default")
            outputs.append(
                OutputParameterSpec(name, default=as_string(default) if default is not None else None)
            )
        else:
            _unknown_fields(problems, f"{here}.valueFrom", value_from, {"parameter", "default"})
            if "parameter" not in value_from:
                problems.add(f"{here}.valueFrom", "a dag output parameter needs 'parameter'")
            default = value_from.get("default")
            outputs.append(
                OutputParameterSpec(
                    name,
                    default=as_string(default) if default is not None else None,
                    from_parameter=value_from.get("parameter"),
                )
            )
    return tuple(outputs)


def _check_duration(problems: Problems, where: str, value: Any) -> None:
    if value is None or (isinstance(value, str) and templating.has_references(value)):
        return
    try:
        parse_argo_duration(value)
    except ValueError as error:
        problems.add(where, str(error))


def _retry(problems: Problems, where: str, raw: Any) -> RetrySpec | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        problems.add(where, "must be a mapping")
        return None
    if "expression" in raw:
        problems.add(f"{where}.expression", "retry expressions are not supported by the local runner")
    _unknown_fields(problems, where, raw, {"limit", "retryPolicy", "backoff", "expression"}, {"affinity"})
    policy = raw.get("retryPolicy") or "OnFailure"
    if policy not in RETRY_POLICIES:
        problems.add(f"{where}.retryPolicy", f"{policy!r} is not one of {', '.join(RETRY_POLICIES)}")
    limit = raw.get("limit")
    if isinstance(limit, str) and not templating.has_references(limit) and not limit.isdigit():
        problems.add(f"{where}.limit", f"{limit!r} is not a whole number")
    backoff_raw = raw.get("backoff")
    backoff = None
    if isinstance(backoff_raw, Mapping):
        _unknown_fields(
            problems, f"{where}.backoff", backoff_raw, {"duration", "factor", "maxDuration", "cap"}
        )
        for key in ("duration", "maxDuration", "cap"):
            _check_duration(problems, f"{where}.backoff.{key}", backoff_raw.get(key))
        backoff = BackoffSpec(
            duration=backoff_raw.get("duration"),
            factor=backoff_raw.get("factor"),
            max_duration=backoff_raw.get("maxDuration"),
            cap=backoff_raw.get("cap"),
        )
    return RetrySpec(limit=limit, policy=str(policy), backoff=backoff)


def _script_entrypoint(problems: Problems, where: str, script: Mapping[str, Any]) -> tuple[str, str] | None:
    """The runner module and the ``module:function`` of a Hera runner script, or None if it is not one."""
    _unknown_fields(problems, where, script, _SCRIPT_FIELDS, _POD_ONLY_SCRIPT)
    command = script.get("command") or []
    args = list(script.get("args") or [])
    runner_call = (
        len(command) == 1
        and str(command[0]).rsplit("/", 1)[-1].startswith("python")
        and len(args) == 4
        and args[0] == "-m"
        and args[1] in _RUNNER_MODULES
        and args[2] == "-e"
    )
    if not runner_call:
        problems.add(
            where,
            "only Hera runner scripts (command [python],"
            f" args [-m, {' or '.join(_RUNNER_MODULES)}, -e, module:function]) run locally",
        )
        return None
    if str(script.get("source", "")).strip() != "{{inputs.parameters}}":
        problems.add(f"{where}.source", "a Hera runner script's source must be '{{inputs.parameters}}'")
    # A variable naming a file of a mounted volume belongs to the pod, as the mount does: the local
    # runner has no pods and ignores both (the run's own environment decides, e.g. its KUBECONFIG).
    mounted = [
        str(mount.get("mountPath", "")).rstrip("/") + "/"
        for mount in script.get("volumeMounts") or []
        if isinstance(mount, Mapping) and mount.get("mountPath")
    ]
    for env in script.get("env") or []:
        env_name = env.get("name", "") if isinstance(env, Mapping) else ""
        if any(str(env.get("value", "")).startswith(prefix) for prefix in mounted):
            continue
        if not env_name.startswith("hera__"):
            problems.add(
                f"{where}.env[{env_name}]",
                "environment variables are process-wide and cannot differ per step locally; pass a parameter",
            )
        elif env_name == "hera__pydantic_mode" and str(env.get("value")) != "2":
            problems.add(f"{where}.env[{env_name}]", "only pydantic v2 mode is supported")
    entrypoint = str(args[3])
    try:
        load_step(entrypoint)
    except StepDefinitionError as error:
        problems.add(f"{where}.args", str(error))
        return None
    return str(args[1]), entrypoint


def _continue_on(problems: Problems, where: str, raw: Any) -> dep.ContinueOn:
    if raw is None:
        return dep.ContinueOn()
    if not isinstance(raw, Mapping):
        problems.add(where, "must be a mapping")
        return dep.ContinueOn()
    _unknown_fields(problems, where, raw, {"failed", "error"})
    return dep.ContinueOn(failed=bool(raw.get("failed")), error=bool(raw.get("error")))


def _task(problems: Problems, template_where: str, position: int, raw: Mapping[str, Any]) -> TaskSpec | None:
    name = raw.get("name")
    if not isinstance(name, str) or not _TASK_NAME.match(name):
        problems.add(
            f"{template_where}, task [{position}]", f"task name {name!r} must match {_TASK_NAME.pattern}"
        )
        return None
    where = f"{template_where}, task {name!r}"
    for key in ("templateRef", "inline", "hooks", "onExit", "withSequence"):
        if key in raw:
            problems.add(f"{where}, field {key!r}", "not supported by the local runner")
    _unknown_fields(
        problems, where, raw, _TASK_FIELDS | {"templateRef", "inline", "hooks", "onExit", "withSequence"}
    )
    if not isinstance(raw.get("template"), str):
        problems.add(where, "a task needs 'template'")
        return None
    arguments_raw = raw.get("arguments") or {}
    arguments = _parameters(
        problems,
        f"{where}.arguments.parameters",
        _io_section(problems, f"{where}.arguments", arguments_raw).get("parameters"),
        fields={"name", "value", "description"},
    )
    with_items = raw.get("withItems")
    with_param = raw.get("withParam")
    if with_items is not None and not isinstance(with_items, list):
        problems.add(f"{where}.withItems", "must be a list")
        with_items = None
    if with_items is not None and with_param is not None:
        problems.add(where, "use either 'withItems' or 'withParam', not both")
    if raw.get("depends") and raw.get("dependencies"):
        problems.add(where, "use either 'depends' or 'dependencies', not both")
    return TaskSpec(
        name=name,
        template=raw["template"],
        arguments=tuple((p.name, p.value or "") for p in arguments),
        when=as_string(raw["when"]) if raw.get("when") not in (None, "") else None,
        with_items=tuple(with_items) if with_items is not None else None,
        with_param=as_string(with_param) if with_param is not None else None,
        continue_on=_continue_on(problems, f"{where}.continueOn", raw.get("continueOn")),
    )


def _template(problems: Problems, index: int, raw: Any) -> TemplateSpec | None:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str):
        problems.add(f"spec.templates[{index}]", "a template needs a 'name'")
        return None
    name = raw["name"]
    where = f"template {name!r}"
    kinds = [kind for kind in _TEMPLATE_KINDS if kind in raw]
    if len(kinds) != 1:
        problems.add(where, f"must have exactly one of {', '.join(_TEMPLATE_KINDS)}")
        return None
    kind = kinds[0]
    if kind not in ("dag", "script"):
        problems.add(
            where, f"{kind!r} templates are not supported by the local runner (it runs dag and Hera script)"
        )
        return None
    _unknown_fields(problems, where, raw, _SUPPORTED_TEMPLATE | {kind}, _POD_ONLY_TEMPLATE)
    inputs = _io_section(problems, f"{where}.inputs", raw.get("inputs"))
    parallelism = raw.get("parallelism")
    if parallelism is not None and (not isinstance(parallelism, int) or parallelism < 1):
        problems.add(f"{where}.parallelism", "must be a positive integer")
    deadline = raw.get("activeDeadlineSeconds")
    if isinstance(deadline, str) and not templating.has_references(deadline) and not deadline.isdigit():
        problems.add(f"{where}.activeDeadlineSeconds", f"{deadline!r} is not a whole number of seconds")
    common: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "inputs": _parameters(
            problems, f"{where}.inputs.parameters", inputs.get("parameters"), fields=_PARAMETER_FIELDS
        ),
        "outputs": _outputs(problems, f"{where}.outputs", raw.get("outputs"), kind),
        "retry": _retry(problems, f"{where}.retryStrategy", raw.get("retryStrategy")),
        "active_deadline_seconds": deadline,
        "parallelism": parallelism if isinstance(parallelism, int) else None,
    }
    if kind == "script":
        return _script_template(problems, where, raw["script"], common)
    return _dag_template(problems, where, raw["dag"], common)


def _script_template(
    problems: Problems, where: str, script: Any, common: dict[str, Any]
) -> TemplateSpec | None:
    if not isinstance(script, Mapping):
        problems.add(f"{where}.script", "must be a mapping")
        return None
    runner_call = _script_entrypoint(problems, f"{where}.script", script)
    if runner_call is None:
        return TemplateSpec(**common)
    runner_module, entrypoint = runner_call
    return TemplateSpec(**common, entrypoint=entrypoint, runner_module=runner_module)


def _dag_template(problems: Problems, where: str, dag: Any, common: dict[str, Any]) -> TemplateSpec | None:
    if not isinstance(dag, Mapping) or not isinstance(dag.get("tasks"), list) or not dag["tasks"]:
        problems.add(f"{where}.dag", "needs a non-empty 'tasks' list")
        return None
    if "target" in dag:
        problems.add(f"{where}.dag.target", "not supported by the local runner")
    _unknown_fields(problems, f"{where}.dag", dag, {"tasks", "failFast", "target"})
    if common["retry"] is not None:
        problems.add(f"{where}.retryStrategy", "retrying a whole dag is not supported by the local runner")
    tasks = [
        task
        for position, item in enumerate(dag["tasks"])
        if isinstance(item, Mapping) and (task := _task(problems, where, position, item)) is not None
    ]
    names = [task.name for task in tasks]
    for duplicate in sorted({n for n in names if names.count(n) > 1}):
        problems.add(where, f"task {duplicate!r} is declared twice")
    tasks = _with_depends(problems, where, tasks, dag["tasks"])
    return TemplateSpec(**common, tasks=tuple(tasks))


def _with_depends(
    problems: Problems, where: str, tasks: list[TaskSpec], raw_tasks: list[Any]
) -> list[TaskSpec]:
    """Parse ``depends`` / ``dependencies`` now that every task (and its continueOn) is known."""
    by_name = {task.name: task for task in tasks}
    continue_on = {task.name: task.continue_on for task in tasks}
    raw_by_name = {raw.get("name"): raw for raw in raw_tasks if isinstance(raw, Mapping)}
    result: list[TaskSpec] = []
    for task in tasks:
        raw = raw_by_name[task.name]
        here = f"{where}, task {task.name!r}"
        expr: dep.Expr | None = None
        try:
            if raw.get("depends"):
                expr = dep.parse(str(raw["depends"]), continue_on)
            elif raw.get("dependencies"):
                expr = dep.from_dependencies([str(d) for d in raw["dependencies"]], continue_on)
        except dep.DependsSyntaxError as error:
            field_name = "depends" if raw.get("depends") else "dependencies"
            problems.add(f"{here}, field {field_name!r}", str(error))
        if expr is not None:
            for dependency in dep.task_names(expr):
                if dependency not in by_name:
                    problems.add(f"{here}, field 'depends'", f"unknown task {dependency!r}")
                elif dependency == task.name:
                    problems.add(f"{here}, field 'depends'", "a task cannot depend on itself")
            for ref in dep.group_results(expr):
                dependency_task = by_name.get(ref.task)
                if dependency_task is not None and not dependency_task.expands:
                    problems.add(
                        f"{here}, field 'depends'",
                        f"'{ref.task}.{ref.result}' needs {ref.task!r} to use withItems or withParam",
                    )
        result.append(TaskSpec(**{**task.__dict__, "depends": expr}))
    _check_cycles(problems, where, result)
    return result


def _check_cycles(problems: Problems, where: str, tasks: Sequence[TaskSpec]) -> None:
    graph = {task.name: [d for d in task.dependencies if d != task.name] for task in tasks}
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> bool:
        if state.get(name) == 1:
            cycle = [*path[path.index(name) :], name]
            problems.add(where, f"dependency cycle: {' -> '.join(cycle)}")
            return True
        if state.get(name) == 2:
            return False
        state[name] = 1
        for dependency in graph.get(name, []):
            if visit(dependency, [*path, name]):
                return True
        state[name] = 2
        return False

    for name in graph:
        if visit(name, []):
            return


def load(workflow: Any, lookup: TemplateLookup | None = None) -> WorkflowSpec:
    """Resolve and validate ``workflow``; raise ``InputError`` listing every problem."""
    document = to_document(workflow)
    kind, name, raw_spec = resolve(document, lookup)
    problems = Problems(f"{kind} {name!r}")
    _unknown_fields(problems, "spec", raw_spec, _SUPPORTED_SPEC, _POD_ONLY_SPEC | {"workflowTemplateRef"})
    arguments = _parameters(
        problems,
        "spec.arguments.parameters",
        _io_section(problems, "spec.arguments", raw_spec.get("arguments")).get("parameters"),
        fields=_PARAMETER_FIELDS,
    )
    templates: dict[str, TemplateSpec] = {}
    raw_templates = raw_spec.get("templates")
    if not isinstance(raw_templates, list) or not raw_templates:
        problems.add("spec.templates", "needs at least one template")
        raw_templates = []
    for index, raw in enumerate(raw_templates):
        template = _template(problems, index, raw)
        if template is None:
            continue
        if template.name in templates:
            problems.add(f"template {template.name!r}", "is declared twice")
        templates[template.name] = template
    entrypoint = raw_spec.get("entrypoint")
    declared_names = {raw.get("name") for raw in raw_templates if isinstance(raw, Mapping)}
    if not isinstance(entrypoint, str):
        problems.add("spec.entrypoint", "is missing")
    elif entrypoint not in declared_names:
        problems.add("spec.entrypoint", f"unknown template {entrypoint!r}")
    on_exit = raw_spec.get("onExit")
    if on_exit is not None and on_exit not in declared_names:
        problems.add("spec.onExit", f"unknown template {on_exit!r}")
    parallelism = raw_spec.get("parallelism")
    if parallelism is not None and (not isinstance(parallelism, int) or parallelism < 1):
        problems.add("spec.parallelism", "must be a positive integer")
    deadline = raw_spec.get("activeDeadlineSeconds")
    if deadline is not None and (not isinstance(deadline, int) or deadline < 1):
        problems.add("spec.activeDeadlineSeconds", "must be a positive integer")
    metadata = document.get("metadata") or {}
    if kind == "Workflow":
        generate_name = "" if metadata.get("name") else str(metadata.get("generateName") or "")
    else:
        generate_name = f"{name}-"
    spec = WorkflowSpec(
        kind=kind,
        name=name,
        generate_name=generate_name,
        namespace=str(metadata.get("namespace") or "default"),
        entrypoint=str(entrypoint),
        arguments=arguments,
        templates=templates,
        parallelism=parallelism if isinstance(parallelism, int) else None,
        active_deadline_seconds=deadline if isinstance(deadline, int) else None,
        on_exit=on_exit,
        service_account=raw_spec.get("serviceAccountName"),
        step_packages=tuple(
            sorted(
                {t.entrypoint.split(".", 1)[0].split(":", 1)[0] for t in templates.values() if t.entrypoint}
            )
        ),
    )
    check_references(problems, spec)
    problems.raise_if_any()
    return spec
