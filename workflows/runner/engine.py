"""Execute a validated workflow in-process with Argo's scheduling semantics.

One coordinator thread owns all state. It walks the DAGs, decides each task
the way Argo's controller does (``depends`` -> Omitted, variables, item
expansion, ``when`` -> Skipped), and hands script attempts to worker threads,
which only call the step function and post the outcome back on a queue.
Retries, backoff and deadlines are timers of the coordinator, so no worker
ever sleeps and no state is shared between threads.

Bounds on concurrency, as in Argo: ``spec.parallelism`` limits running step
attempts in the whole workflow, a DAG template's ``parallelism`` limits its
running children, and ``max_workers`` is a local resource bound on top.

Python cannot stop a thread: a step that exceeds its ``activeDeadlineSeconds``
is marked Failed at its deadline and *abandoned*; whatever it still does is
discarded. Steps must be idempotent anyway, because Argo retries them.
"""

from __future__ import annotations

import heapq
import itertools
import json
import queue
import re
import secrets
import sys
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from vaultflow.base.errors import InputError
from vaultflow.workflows import entry
from vaultflow.workflows.runner import capture, retry, templating, when
from vaultflow.workflows.runner import depends as dep
from vaultflow.workflows.runner.dag_phase import assess_dag
from vaultflow.workflows.runner.invoke import load_step
from vaultflow.workflows.runner.items import aggregate_item, item_scope, task_items
from vaultflow.workflows.runner.model import TaskSpec, TemplateSpec, WorkflowSpec
from vaultflow.workflows.runner.nodes import Attempt, Node, NodeType, Phase
from vaultflow.workflows.runner.references import ancestors
from vaultflow.workflows.runner.result import RunObserver, RunState, WorkflowResult, write_status
from vaultflow.workflows.runner.workers import Workers

_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # Kubernetes' generateName suffix alphabet
_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9._():,=-]+")
_TICK_SECONDS = 0.2
_MAX_RESULT_BYTES = 256 * 1024  # Argo keeps at most the last 256 kB of stdout as outputs.result


@dataclass(frozen=True)
class RunOptions:
    """How to run locally; nothing here changes Argo semantics."""

    run_root: Path = Path("runs")
    max_workers: int = 32
    observer: RunObserver | None = None
    name: str | None = None


def workflow_parameters(spec: WorkflowSpec, given: Mapping[str, str]) -> dict[str, str]:
    """The workflow's parameters with ``given`` applied; bad input is refused before anything runs."""
    declared = {p.name for p in spec.arguments}
    unknown = sorted(set(given) - declared)
    if unknown:
        available = ", ".join(sorted(declared)) or "none"
        raise InputError(
            f"{spec.kind} {spec.name!r}: unknown parameter(s) {', '.join(unknown)} (declared: {available})"
        )
    values: dict[str, str] = {}
    for parameter in spec.arguments:
        value = given.get(
            parameter.name, parameter.value if parameter.value is not None else parameter.default
        )
        if value is None:
            raise InputError(
                f"{spec.kind} {spec.name!r}: parameter {parameter.name!r} is required"
                f" (-p {parameter.name}=...)"
            )
        if parameter.enum is not None and value not in parameter.enum:
            choices = ", ".join(parameter.enum)
            raise InputError(
                f"{spec.kind} {spec.name!r}: parameter {parameter.name!r} must be one of {choices}"
            )
        values[parameter.name] = value
    return values


def _resolve_inputs(template: TemplateSpec, arguments: Mapping[str, str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for parameter in template.inputs:
        value = arguments.get(parameter.name)
        if value is None:
            value = parameter.value if parameter.value is not None else parameter.default
        if value is None:
            raise ValueError(f"inputs.parameters.{parameter.name} was not supplied")
        if parameter.enum is not None and value not in parameter.enum:
            raise ValueError(f"inputs.parameters.{parameter.name}: value not in enum {list(parameter.enum)}")
        values[parameter.name] = value
    return values


def _input_scope(template: TemplateSpec, inputs: Mapping[str, str]) -> dict[str, str]:
    scope = {f"inputs.parameters.{name}": value for name, value in inputs.items()}
    if template.kind == "script":
        scope["inputs.parameters"] = json.dumps([{"name": k, "value": v} for k, v in inputs.items()])
    return scope


def _node_id(workflow_name: str, node_name: str) -> str:
    """Argo's node id: ``<workflow>-<fnv32a(node name)>``; the root node's id is the workflow name."""
    if node_name == workflow_name:
        return workflow_name
    digest = 0x811C9DC5
    for byte in node_name.encode():
        digest = ((digest ^ byte) * 0x01000193) & 0xFFFFFFFF
    return f"{workflow_name}-{digest}"


@dataclass
class _PodRun:
    """A script node: its template, resolved inputs and retry bookkeeping."""

    node: Node
    template: TemplateSpec
    inputs: dict[str, str]
    owner: _DagRun | None
    limit: int | None
    deadline_seconds: float | None
    token: object | None = None
    first_started_monotonic: float | None = None


@dataclass
class _Launch:
    """A node decided to run, waiting for a parallelism slot of its DAG."""

    node: Node
    template: TemplateSpec
    inputs: dict[str, str]


@dataclass
class _DagRun:
    node: Node
    template: TemplateSpec
    scope: dict[str, str]
    parent: _DagRun | None
    task_nodes: dict[str, Node] = field(default_factory=dict)
    unstarted: list[TaskSpec] = field(default_factory=list)
    waiting: deque[_Launch] = field(default_factory=deque)
    running_children: int = 0
    ancestry: dict[str, set[str]] = field(default_factory=dict)
    leaves: list[str] = field(default_factory=list)
    done: bool = False


@dataclass(frozen=True)
class _AttemptDone:
    pod: _PodRun
    token: object
    exit_code: int
    stdout: str
    parameters: dict[str, str]
    termination_message: str = ""


def _failed_container_message(exit_code: int, termination_message: str) -> str:
    """Argo's node message for a failed main container (``inferFailedReason`` in ``operator.go``).

    ``Error`` is the reason the kubelet gives a container that exited non-zero;
    the termination message, when the step wrote one, follows it.
    """
    message = f"main: Error (exit code {exit_code})"
    return f"{message}: {termination_message}" if termination_message else message


class Engine:
    """Runs one workflow to completion; create one per run."""

    def __init__(self, spec: WorkflowSpec, parameters: Mapping[str, str], options: RunOptions) -> None:
        self._spec = spec
        self._options = options
        name = (
            options.name or f"{spec.generate_name}{''.join(secrets.choice(_NAME_ALPHABET) for _ in range(5))}"
        )
        if not spec.generate_name and options.name is None:
            name = spec.name
        run_dir = options.run_root / name
        suffix = itertools.count(2)
        while run_dir.exists():
            run_dir = options.run_root / f"{name}-{next(suffix)}"
        self.state = RunState(
            name=name,
            namespace=spec.namespace,
            entrypoint=spec.entrypoint,
            parameters=workflow_parameters(spec, parameters),
            run_dir=run_dir,
            started_at=time.time(),
        )
        self._global_scope = {f"workflow.parameters.{k}": v for k, v in self.state.parameters.items()}
        self._global_scope.update(
            {
                "workflow.name": name,
                "workflow.namespace": spec.namespace,
                "workflow.uid": str(uuid.uuid4()),
                "workflow.status": Phase.RUNNING.value,
                "workflow.serviceAccountName": spec.service_account or "default",
            }
        )
        self._events: queue.SimpleQueue[_AttemptDone] = queue.SimpleQueue()
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._timer_sequence = itertools.count()
        self._dag_runs: list[_DagRun] = []
        self._pods_waiting: deque[_PodRun] = deque()
        self._running_pods = 0
        self._deadline_exceeded = False
        self._deadline_hit = False
        self._pods: dict[str, _PodRun] = {}
        self._exit_node: Node | None = None
        self._changed = True
        self._workers = Workers()

    # -- public ------------------------------------------------------------------------------

    def run(self) -> WorkflowResult:
        self.state.run_dir.mkdir(parents=True, exist_ok=True)
        observer = self._options.observer
        with capture.routing(self._spec.step_packages):
            if observer is not None:
                observer.run_started(self.state)
            try:
                self._start_root()
                if self._spec.active_deadline_seconds is not None:
                    self._after(self._spec.active_deadline_seconds, self._workflow_deadline)
                self._loop()
            except BaseException:
                self._abandon_running("interrupted")
                self._finish_workflow(Phase.FAILED, "interrupted")
                raise
            finally:
                self._workers.shutdown()
                write_status(self.state)
                if observer is not None:
                    observer.run_finished(self.state)
        return WorkflowResult(self.state)

    # -- the coordinator loop ----------------------------------------------------------------

    def _loop(self) -> None:
        observer = self._options.observer
        while True:
            self._advance()
            if self._changed and observer is not None:
                observer.run_updated(self.state)
            self._changed = False
            if self.state.finished_at is not None:
                return
            timeout = self._next_timeout(observer is not None and observer.wants_ticks)
            try:
                event = self._events.get(timeout=timeout) if timeout is None or timeout > 0 else None
            except queue.Empty:
                event = None
            if event is not None:
                self._attempt_done(event)
                while True:  # drain: one advance for a burst of completions
                    try:
                        self._attempt_done(self._events.get_nowait())
                    except queue.Empty:
                        break
            elif observer is not None and observer.wants_ticks:
                self._changed = True
            self._fire_timers()

    def _next_timeout(self, ticks: bool) -> float | None:
        timeout = None
        if self._timers:
            timeout = max(0.0, self._timers[0][0] - time.monotonic())
        if ticks:
            timeout = _TICK_SECONDS if timeout is None else min(timeout, _TICK_SECONDS)
        return timeout

    def _after(self, seconds: float, callback: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (time.monotonic() + seconds, next(self._timer_sequence), callback))

    def _fire_timers(self) -> None:
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _, _, callback = heapq.heappop(self._timers)
            callback()

    def _advance(self) -> None:
        progressed = True
        while progressed:
            progressed = False
            for dag_run in list(self._dag_runs):
                if not dag_run.done and self._step_dag(dag_run):
                    progressed = True
            if self._start_waiting_pods():
                progressed = True
            if self._maybe_finish():
                progressed = True
            if progressed:
                self._changed = True

    # -- nodes -------------------------------------------------------------------------------

    def _new_node(
        self, name: str, display_name: str, node_type: NodeType, template: str | None, parent: Node | None
    ) -> Node:
        node = Node(
            id=_node_id(self.state.name, name),
            name=name,
            display_name=display_name,
            type=node_type,
            template=template,
            parent_id=parent.id if parent is not None else None,
        )
        self.state.nodes[node.id] = node
        if parent is not None:
            parent.children.append(node.id)
        self._changed = True
        return node

    def _fulfil(self, node: Node, phase: Phase, message: str = "") -> None:
        now = time.time()
        node.phase = phase
        node.message = message
        if node.started_at is None:
            node.started_at = now
        node.finished_at = now
        self._changed = True

    def _log_path(self, node: Node) -> Path:
        relative = node.name.removeprefix(self.state.name + ".") or "main"
        safe = _UNSAFE_FILE_CHARS.sub("_", relative)[:200]
        return self.state.run_dir / f"{safe}.log"

    # -- starting the workflow and its exit handler -------------------------------------------

    def _start_root(self) -> None:
        template = self._spec.templates[self._spec.entrypoint]
        arguments = dict(self.state.parameters)
        self._start_top_level(self.state.name, self.state.name, template, arguments)

    def _start_top_level(
        self, name: str, display_name: str, template: TemplateSpec, arguments: Mapping[str, str]
    ) -> None:
        """Start the entrypoint or the exit handler (they get the workflow's arguments, as in Argo)."""
        node_type = NodeType.DAG if template.kind == "dag" else NodeType.POD
        node = self._new_node(name, display_name, node_type, template.name, None)
        try:
            inputs = _resolve_inputs(template, arguments)
        except ValueError as error:
            self._fulfil(node, Phase.ERROR, str(error))
            return
        self._launch(_Launch(node, template, inputs), None)

    def _launch(self, launch: _Launch, owner: _DagRun | None) -> None:
        node, template, inputs = launch.node, launch.template, launch.inputs
        node.inputs = inputs
        node.started_at = time.time()
        node.phase = Phase.RUNNING if template.kind == "dag" else Phase.PENDING
        scope = {**self._global_scope, **_input_scope(template, inputs)}
        if template.kind == "dag":
            self._dag_runs.append(self._new_dag_run(node, template, scope, owner))
            return
        try:
            limit = retry.retry_limit(template.retry, lambda text: templating.substitute(text, scope))
            deadline = self._template_deadline(template, scope)
        except (ValueError, templating.UnresolvedVariable) as error:
            self._fulfil(node, Phase.ERROR, str(error))
            self._child_fulfilled(node, owner)
            return
        node.log_path = self._log_path(node)
        pod = _PodRun(node, template, inputs, owner, limit, deadline)
        self._pods[node.id] = pod
        self._pods_waiting.append(pod)

    @staticmethod
    def _template_deadline(template: TemplateSpec, scope: Mapping[str, str]) -> float | None:
        if template.active_deadline_seconds is None:
            return None
        text = templating.substitute(str(template.active_deadline_seconds), scope)
        if not text.strip().isdigit():
            raise ValueError(f"activeDeadlineSeconds {text!r} is not a whole number")
        return float(text)

    def _maybe_finish(self) -> bool:
        """Start the exit handler or end the workflow once the entrypoint is done; True if either happened."""
        if self.state.finished_at is not None or self._running_pods or self._pods_waiting:
            return False
        root = self.state.nodes[_node_id(self.state.name, self.state.name)]
        if not root.phase.fulfilled:
            return False
        if self._spec.on_exit is not None and self._exit_node is None:
            self._start_exit_handler(root.phase)
            return True
        if self._exit_node is not None and not self._exit_node.phase.fulfilled:
            return False
        phase, message = root.phase, root.message
        if self._deadline_hit:
            message = f"activeDeadlineSeconds ({self._spec.active_deadline_seconds}s) exceeded"
        if phase in (Phase.SKIPPED, Phase.OMITTED):
            phase = Phase.SUCCEEDED
        if phase is Phase.SUCCEEDED and self._exit_node is not None and self._exit_node.phase.failed_or_error:
            # Argo: a succeeded workflow whose exit handler failed is not successful.
            phase, message = self._exit_node.phase, self._exit_node.message or "exit handler failed"
        self._finish_workflow(phase, message)
        return True

    def _start_exit_handler(self, phase: Phase) -> None:
        status = Phase.SUCCEEDED if phase in (Phase.SKIPPED, Phase.OMITTED) else phase
        self._global_scope["workflow.status"] = status.value
        self._deadline_exceeded = False  # the exit handler runs after a deadline too
        template = self._spec.templates[str(self._spec.on_exit)]
        name = f"{self.state.name}.onExit"
        # In Argo's status the exit handler is a sibling of the entrypoint node, not its child.
        self._start_top_level(name, "onExit", template, self.state.parameters)
        self._exit_node = self.state.nodes[_node_id(self.state.name, name)]

    def _finish_workflow(self, phase: Phase, message: str) -> None:
        self.state.phase = phase
        self.state.message = message
        self.state.finished_at = time.time()
        self._changed = True

    # -- DAGs --------------------------------------------------------------------------------

    def _new_dag_run(
        self, node: Node, template: TemplateSpec, scope: dict[str, str], owner: _DagRun | None
    ) -> _DagRun:
        dependencies = {name for task in template.tasks for name in task.dependencies}
        return _DagRun(
            node=node,
            template=template,
            scope=scope,
            parent=owner,
            unstarted=list(template.tasks),
            ancestry={task.name: ancestors(template, task.name) for task in template.tasks},
            leaves=sorted(task.name for task in template.tasks if task.name not in dependencies),
        )

    def _step_dag(self, run: _DagRun) -> bool:
        """Decide every task whose dependencies are fulfilled, start what fits; True if anything changed."""
        progressed = False
        if not self._deadline_exceeded:
            still: list[TaskSpec] = []
            for task in run.unstarted:
                if all(self._task_fulfilled(run, name) for name in task.dependencies):
                    self._decide_task(run, task)
                    progressed = True
                else:
                    still.append(task)
            run.unstarted = still
        limit = run.template.parallelism
        while run.waiting and not self._deadline_exceeded and (limit is None or run.running_children < limit):
            run.running_children += 1
            self._launch(run.waiting.popleft(), run)
            progressed = True
        if self._dag_complete(run):
            self._complete_dag(run)
            progressed = True
        return progressed

    @staticmethod
    def _task_fulfilled(run: _DagRun, name: str) -> bool:
        node = run.task_nodes.get(name)
        return node is not None and node.phase.fulfilled

    def _outcome(self, run: _DagRun, name: str) -> dep.TaskOutcome:
        node = run.task_nodes[name]
        if node.type is not NodeType.TASK_GROUP:
            return dep.TaskOutcome(node.phase)
        phases = [self.state.nodes[child].phase for child in node.children]
        return dep.TaskOutcome(
            node.phase,
            any_succeeded=any(p is Phase.SUCCEEDED for p in phases),
            all_failed=bool(phases) and all(p is Phase.FAILED for p in phases),
        )

    def _task_scope(self, run: _DagRun, visible: set[str]) -> dict[str, str]:
        scope = dict(run.scope)
        for name in visible:
            node = run.task_nodes.get(name)
            if node is None:
                continue
            prefix = f"tasks.{name}"
            scope[f"{prefix}.status"] = node.phase.value
            if node.type is NodeType.TASK_GROUP:
                children = [self.state.nodes[child] for child in node.children]
                scope[f"{prefix}.outputs.parameters"] = json.dumps(
                    [c.parameters for c in children if c.parameters], separators=(",", ":")
                )
                template = self._spec.templates[run.template.task(name).template]
                if template.kind == "script":
                    scope[f"{prefix}.outputs.result"] = json.dumps(
                        [aggregate_item(c.result) for c in children if c.result is not None],
                        separators=(",", ":"),
                        sort_keys=True,
                    )
                continue
            if node.result is not None:
                scope[f"{prefix}.outputs.result"] = node.result
            for key, value in node.parameters.items():
                scope[f"{prefix}.outputs.parameters.{key}"] = value
        return scope

    def _decide_task(self, run: _DagRun, task: TaskSpec) -> None:
        """Argo's executeDAGTask for a task whose dependencies are all fulfilled."""
        node_name = f"{run.node.name}.{task.name}"
        if task.depends is not None:
            outcomes = {name: self._outcome(run, name) for name in task.dependencies}
            if not dep.evaluate(task.depends, outcomes):
                node = self._new_node(node_name, task.name, NodeType.SKIPPED, task.template, run.node)
                run.task_nodes[task.name] = node
                self._fulfil(node, Phase.OMITTED, "omitted: depends condition not met")
                return
        scope = self._task_scope(run, run.ancestry[task.name])
        template = self._spec.templates[task.template]
        node_type = NodeType.DAG if template.kind == "dag" else NodeType.POD
        try:
            arguments = {
                n: templating.substitute(v, scope, allow_unresolved=task.expands) for n, v in task.arguments
            }
            condition = (
                templating.substitute(task.when, scope, allow_unresolved=task.expands) if task.when else None
            )
            items = task_items(task, scope)
        except (templating.UnresolvedVariable, ValueError) as error:
            node = self._new_node(node_name, task.name, NodeType.SKIPPED, task.template, run.node)
            run.task_nodes[task.name] = node
            self._fulfil(node, Phase.ERROR, str(error))
            return
        if items is None:
            node = self._new_node(node_name, task.name, node_type, task.template, run.node)
            run.task_nodes[task.name] = node
            self._run_if(run, node, template, arguments, condition)
            return
        if not items:
            node = self._new_node(node_name, task.name, NodeType.SKIPPED, task.template, run.node)
            run.task_nodes[task.name] = node
            self._fulfil(node, Phase.SKIPPED, "Skipped, empty params")
            return
        group = self._new_node(node_name, task.name, NodeType.TASK_GROUP, task.template, run.node)
        group.phase, group.started_at = Phase.RUNNING, time.time()
        run.task_nodes[task.name] = group
        for index, item in enumerate(items):
            variables, label = item_scope(item)
            display = f"{task.name}({index}:{label})"
            child = self._new_node(f"{run.node.name}.{display}", display, node_type, task.template, group)
            try:
                item_arguments = {n: templating.substitute(v, variables) for n, v in arguments.items()}
                item_condition = templating.substitute(condition, variables) if condition else None
            except templating.UnresolvedVariable as error:
                self._fulfil(child, Phase.ERROR, str(error))
                continue
            self._run_if(run, child, template, item_arguments, item_condition)
        self._update_group(group)

    def _run_if(
        self,
        run: _DagRun,
        node: Node,
        template: TemplateSpec,
        arguments: Mapping[str, str],
        condition: str | None,
    ) -> None:
        if condition is not None:
            try:
                proceed = when.evaluate(condition)
            except when.WhenError as error:
                node.type = NodeType.SKIPPED
                self._fulfil(node, Phase.ERROR, f"invalid 'when' expression {condition!r}: {error}")
                return
            if not proceed:
                node.type = NodeType.SKIPPED
                self._fulfil(node, Phase.SKIPPED, f"when '{condition}' evaluated false")
                return
        try:
            inputs = _resolve_inputs(template, arguments)
        except ValueError as error:
            self._fulfil(node, Phase.ERROR, str(error))
            return
        run.waiting.append(_Launch(node, template, inputs))

    def _update_group(self, group: Node) -> None:
        children = [self.state.nodes[child] for child in group.children]
        if not all(child.phase.fulfilled for child in children):
            return
        phase = Phase.SUCCEEDED
        for child in children:
            if child.phase.failed_or_error:
                phase = child.phase
        self._fulfil(group, phase)

    def _child_fulfilled(self, node: Node, owner: _DagRun | None) -> None:
        """Bookkeeping when a node launched by ``owner`` (a DAG) reaches its end."""
        if owner is None:
            return
        owner.running_children -= 1
        parent = self.state.nodes.get(node.parent_id or "")
        if parent is not None and parent.type is NodeType.TASK_GROUP:
            self._update_group(parent)

    def _dag_complete(self, run: _DagRun) -> bool:
        if run.done or run.waiting or run.running_children:
            return False
        if run.unstarted and not self._deadline_exceeded:
            return False
        return all(node.phase.fulfilled for node in run.task_nodes.values())

    def _complete_dag(self, run: _DagRun) -> None:
        run.done = True
        if self._deadline_exceeded and (
            run.unstarted or any(n.phase.failed_or_error for n in run.task_nodes.values())
        ):
            phase, message = Phase.FAILED, "Step exceeded its deadline"
        else:
            phase, message = assess_dag(run.template, run.task_nodes, run.leaves, self.state.nodes)
        if phase is Phase.SUCCEEDED and run.template.outputs:
            scope = self._task_scope(run, set(run.task_nodes))
            try:
                for output in run.template.outputs:
                    try:
                        value = templating.substitute(output.from_parameter or "", scope)
                    except templating.UnresolvedVariable:
                        if output.default is None:
                            raise
                        value = output.default
                    run.node.parameters[output.name] = value
            except templating.UnresolvedVariable as error:
                phase, message = Phase.ERROR, str(error)
        self._fulfil(run.node, phase, message)
        self._child_fulfilled(run.node, run.parent)

    # -- step attempts -----------------------------------------------------------------------

    def _start_waiting_pods(self) -> bool:
        started = False
        limit = self._spec.parallelism
        while self._pods_waiting and not self._deadline_exceeded:
            if limit is not None and self._running_pods >= limit:
                break
            if self._running_pods >= self._options.max_workers:
                break
            self._start_attempt(self._pods_waiting.popleft())
            started = True
        return started

    def _start_attempt(self, pod: _PodRun) -> None:
        now = time.monotonic()
        if pod.first_started_monotonic is None:
            pod.first_started_monotonic = now
        attempt = Attempt(number=len(pod.node.attempts) + 1, started_at=time.time())
        pod.node.attempts.append(attempt)
        pod.node.phase = Phase.RUNNING
        pod.node.message = ""
        token = object()
        pod.token = token
        self._running_pods += 1
        self._changed = True
        if pod.deadline_seconds is not None:
            self._after(pod.deadline_seconds, lambda: self._attempt_deadline(pod, token))
        step = load_step(str(pod.template.entrypoint))
        log_path = pod.node.log_path or self._log_path(pod.node)
        outputs_dir = self.state.run_dir / ".outputs" / f"{log_path.stem}.{attempt.number}"
        events = self._events

        termination_log = outputs_dir / "termination-log"  # the pod's /dev/termination-log
        through_entry = pod.template.runner_module == entry.MODULE

        def execute() -> None:
            sink = capture.StepSink(log_path)
            exit_code, parameters = 1, {}
            with capture.step_output(sink):
                if attempt.number > 1:
                    print(f"--- attempt {attempt.number} ---", file=sys.stderr)
                try:
                    outcome = step.call(pod.inputs, outputs_dir)
                    exit_code, parameters = outcome.exit_code, outcome.parameters
                except Exception as error:
                    if through_entry:  # as vaultflow's entry reports it in the pod
                        termination_log.parent.mkdir(parents=True, exist_ok=True)
                        exit_code = entry.report_failure(error, termination_log)
                    else:  # as Python reports it under Hera's runner alone
                        traceback.print_exc()
                except BaseException:
                    traceback.print_exc()
            stdout = sink.stdout()
            sink.close()
            message = entry.read_termination_message(termination_log) if exit_code != 0 else ""
            events.put(_AttemptDone(pod, token, exit_code, stdout, parameters, message))

        self._workers.submit(execute)

    def _attempt_done(self, done: _AttemptDone) -> None:
        pod = done.pod
        if pod.token is not done.token:
            return  # abandoned at a deadline: its late outcome is discarded
        pod.token = None
        self._running_pods -= 1
        attempt = pod.node.attempts[-1]
        attempt.finished_at = time.time()
        pod.node.result = done.stdout.removesuffix("\n")[-_MAX_RESULT_BYTES:]
        if done.exit_code != 0:
            attempt.phase = Phase.FAILED
            attempt.message = _failed_container_message(done.exit_code, done.termination_message)
            self._after_failure(pod, Phase.FAILED, attempt.message)
            return
        missing = []
        for output in pod.template.outputs:
            value = done.parameters.get(output.name, output.default)
            if value is None:
                missing.append(output.name)
            else:
                pod.node.parameters[output.name] = value
        if missing:
            attempt.phase = Phase.ERROR
            attempt.message = f"output parameter(s) {', '.join(missing)} were not written by the step"
            self._after_failure(pod, Phase.ERROR, attempt.message)
            return
        attempt.phase = Phase.SUCCEEDED
        self._fulfil(pod.node, Phase.SUCCEEDED)
        self._child_fulfilled(pod.node, pod.owner)

    def _attempt_deadline(self, pod: _PodRun, token: object) -> None:
        if pod.token is not token:
            return
        pod.token = None
        self._running_pods -= 1
        attempt = pod.node.attempts[-1]
        attempt.finished_at = time.time()
        attempt.phase = Phase.FAILED
        attempt.message = "Pod was active on the node longer than the specified deadline"
        self._after_failure(pod, Phase.FAILED, attempt.message)

    def _after_failure(self, pod: _PodRun, phase: Phase, message: str) -> None:
        """Argo's processNodeRetries: retry with backoff, or end the node with this phase."""
        try:
            decision = self._retry_decision(pod, phase)
        except (ValueError, templating.UnresolvedVariable) as error:
            decision = f"retryStrategy: {error}"
        if isinstance(decision, str):
            self._fulfil(pod.node, phase, decision or message)
            self._child_fulfilled(pod.node, pod.owner)
            return
        pod.node.message = f"{message}; retrying in {decision:.3g}s"
        self._changed = True
        self._after(decision, lambda: self._retry_now(pod))

    def _retry_now(self, pod: _PodRun) -> None:
        if pod.node.phase.fulfilled:
            return  # failed meanwhile by the workflow deadline
        if self._deadline_exceeded:
            self._fulfil(pod.node, Phase.FAILED, "Step exceeded its deadline")
            self._child_fulfilled(pod.node, pod.owner)
            return
        self._pods_waiting.append(pod)
        self._changed = True

    def _retry_decision(self, pod: _PodRun, phase: Phase) -> float | str:
        """Seconds to wait before the next attempt, or the reason (possibly empty) not to retry."""
        strategy = pod.template.retry
        if strategy is None or self._deadline_exceeded or not retry.retries_on(strategy.policy, phase):
            return ""
        if pod.limit is not None and len(pod.node.attempts) > pod.limit:
            return retry.NO_RETRIES_LEFT
        scope = {**self._global_scope, **_input_scope(pod.template, pod.inputs)}
        backoff = retry.resolve_backoff(strategy.backoff, lambda text: templating.substitute(text, scope))
        first_started = pod.first_started_monotonic
        now = time.monotonic()
        return retry.next_wait(
            backoff, len(pod.node.attempts), now if first_started is None else first_started, now
        )

    # -- deadlines and interruption ----------------------------------------------------------

    def _workflow_deadline(self) -> None:
        if self.state.finished_at is not None or self._exit_node is not None:
            return
        self._deadline_exceeded = True
        self._deadline_hit = True
        self._abandon_running("Step exceeded its deadline")
        while self._pods_waiting:
            pod = self._pods_waiting.popleft()
            self._fulfil(pod.node, Phase.FAILED, "Step exceeded its deadline")
            self._child_fulfilled(pod.node, pod.owner)
        for run in self._dag_runs:
            while run.waiting:
                launch = run.waiting.popleft()
                self._fulfil(launch.node, Phase.FAILED, "Step exceeded its deadline")
                parent = self.state.nodes.get(launch.node.parent_id or "")
                if parent is not None and parent.type is NodeType.TASK_GROUP:
                    self._update_group(parent)
        self._changed = True

    def _abandon_running(self, message: str) -> None:
        """Fail every step attempt that is running or waiting for its retry backoff."""
        waiting = {id(pod) for pod in self._pods_waiting}
        for pod in self._pods.values():
            if pod.node.phase is not Phase.RUNNING or id(pod) in waiting:
                continue
            if pod.token is not None:
                pod.token = None
                self._running_pods -= 1
                pod.node.attempts[-1].phase = Phase.FAILED
                pod.node.attempts[-1].finished_at = time.time()
            self._fulfil(pod.node, Phase.FAILED, message)
            self._child_fulfilled(pod.node, pod.owner)
