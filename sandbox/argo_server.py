"""The sandbox's Argo Server: the REST endpoints Hera's ``WorkflowsService`` calls, run by the local runner.

Served, in the Argo Server's JSON shapes (grpc-gateway errors included):

* ``/api/v1/workflow-templates/{ns}``: create, list; ``.../{name}``: get, update, delete;
* ``/api/v1/cron-workflows/{ns}``: create, list; ``.../{name}``: get, delete;
* ``/api/v1/workflows/{ns}``: create, list; ``.../submit``: submit from a
  WorkflowTemplate or CronWorkflow (``argo submit --from``); ``.../{name}``: get;
* ``/api/v1/version``.

A created or submitted Workflow is validated (an invalid one is refused with
400, like the real server refuses what its controller could not run) and then
run by the local runner on a background thread; its ``status`` (phase,
message, nodes with outputs) is what the runner reports, updated while it runs.
So ``vaultflow workflows submit --wait`` goes through the real Hera client and
ends with the workflow's real phase. It is a local sandbox, not Argo: it runs
what the local runner runs (DAG and Hera runner script templates).

Requests must carry ``Authorization: Bearer <token>`` when the server has a token.
"""

from __future__ import annotations

import copy
import hmac
import itertools
import secrets
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vaultflow.base.errors import InputError
from vaultflow.sandbox.http import HttpServer, Request, Response, Router

_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
# grpc status codes the Argo Server's gateway puts in error bodies
_INVALID_ARGUMENT, _NOT_FOUND, _ALREADY_EXISTS, _UNAUTHENTICATED, _ABORTED = 3, 5, 6, 16, 10
_HTTP = {_INVALID_ARGUMENT: 400, _NOT_FOUND: 404, _ALREADY_EXISTS: 409, _UNAUTHENTICATED: 401, _ABORTED: 409}
_KINDS = {"workflow-templates": "WorkflowTemplate", "cron-workflows": "CronWorkflow", "workflows": "Workflow"}


def _error(code: int, message: str) -> Response:
    return Response.json({"code": code, "message": message}, status=_HTTP[code])


def _now() -> str:
    return datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Publisher:
    """Runner observer that copies the run's status into the stored Workflow."""

    wants_ticks = False

    def __init__(self, server: ArgoServer, namespace: str, name: str) -> None:
        self._server, self._namespace, self._name = server, namespace, name

    def _publish(self, state: Any) -> None:
        from vaultflow.workflows.runner.result import status_of

        self._server._set_status(self._namespace, self._name, status_of(state))

    def run_started(self, state: Any) -> None:
        self._publish(state)

    def run_updated(self, state: Any) -> None:
        self._publish(state)

    def run_finished(self, state: Any) -> None:
        self._publish(state)


class ArgoServer:
    """An in-process Argo Server emulator on 127.0.0.1 (``port=0``: a free port)."""

    def __init__(
        self, *, run_root: Path, token: str | None = None, port: int = 0, ssl_context: Any = None
    ) -> None:
        self.token = token
        self.run_root = run_root
        self._objects: dict[tuple[str, str, str], dict[str, Any]] = {}  # (kind, namespace, name) -> object
        self._lock = threading.Lock()
        self._versions = itertools.count(1)
        self._runs: list[threading.Thread] = []
        self._http = HttpServer(self._router(), port=port, ssl_context=ssl_context, name="argo-server")

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self._http.url

    def start(self) -> ArgoServer:
        self._http.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._http.stop()
        for thread in self._runs:
            thread.join(timeout)

    def __enter__(self) -> ArgoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- routing -----------------------------------------------------------------------------

    def _router(self) -> Router:
        router = Router(
            not_found=lambda r: _error(_NOT_FOUND, f"no route for {r.path}"),
            method_not_allowed=lambda r: _error(_INVALID_ARGUMENT, f"{r.method} not allowed on {r.path}"),
        )
        router.add(
            "GET",
            "/api/v1/version",
            self._authenticated(lambda r: Response.json({"version": "v4.0.6+sandbox"})),
        )
        router.add("POST", "/api/v1/workflows/{namespace}/submit", self._authenticated(self._submit))
        for plural in _KINDS:
            router.add("GET", f"/api/v1/{plural}/{{namespace}}", self._authenticated(self._list(plural)))
            router.add("POST", f"/api/v1/{plural}/{{namespace}}", self._authenticated(self._create(plural)))
            router.add(
                "GET", f"/api/v1/{plural}/{{namespace}}/{{name}}", self._authenticated(self._get(plural))
            )
            router.add(
                "DELETE",
                f"/api/v1/{plural}/{{namespace}}/{{name}}",
                self._authenticated(self._delete(plural)),
            )
        router.add(
            "PUT", "/api/v1/workflow-templates/{namespace}/{name}", self._authenticated(self._update_template)
        )
        return router

    def _authenticated(self, handler: Any) -> Any:
        def guarded(request: Request) -> Response:
            if self.token is not None:
                given = request.header("authorization").removeprefix("Bearer ").strip()
                if not hmac.compare_digest(given.encode(), self.token.encode()):
                    return _error(
                        _UNAUTHENTICATED,
                        "token not valid. see https://argo-workflows.readthedocs.io/en/latest/faq/",
                    )
            return handler(request)  # type: ignore[no-any-return]

        return guarded

    # -- storage -----------------------------------------------------------------------------

    def _store(
        self, kind: str, namespace: str, obj: dict[str, Any], *, create: bool
    ) -> dict[str, Any] | Response:
        metadata = obj.setdefault("metadata", {})
        name = metadata.get("name")
        if not name and metadata.get("generateName"):
            name = metadata["generateName"] + "".join(secrets.choice(_NAME_ALPHABET) for _ in range(5))
        if not name:
            return _error(_INVALID_ARGUMENT, "metadata.name or metadata.generateName is required")
        key = (kind, namespace, name)
        with self._lock:
            current = self._objects.get(key)
            if create and current is not None:
                return _error(_ALREADY_EXISTS, f'{kind.lower()}s.argoproj.io "{name}" already exists')
            if not create:
                if current is None:
                    return _error(_NOT_FOUND, f'{kind.lower()}s.argoproj.io "{name}" not found')
                expected = metadata.get("resourceVersion")
                if expected and expected != current["metadata"]["resourceVersion"]:
                    return _error(
                        _ABORTED, f"the object has been modified; resourceVersion {expected} is stale"
                    )
            metadata.update(
                name=name,
                namespace=namespace,
                uid=current["metadata"]["uid"] if current else str(uuid.uuid4()),
                resourceVersion=str(next(self._versions)),
                creationTimestamp=current["metadata"]["creationTimestamp"] if current else _now(),
            )
            obj.setdefault("apiVersion", "argoproj.io/v1alpha1")
            obj["kind"] = kind
            self._objects[key] = obj
            return copy.deepcopy(obj)

    def _find(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._objects.get((kind, namespace, name))
            return copy.deepcopy(found) if found is not None else None

    def _set_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        with self._lock:
            workflow = self._objects.get(("Workflow", namespace, name))
            if workflow is None:
                return
            workflow["status"] = status
            labels = workflow["metadata"].setdefault("labels", {})
            labels["workflows.argoproj.io/phase"] = status["phase"]
            if status.get("finishedAt"):
                labels["workflows.argoproj.io/completed"] = "true"
            workflow["metadata"]["resourceVersion"] = str(next(self._versions))

    def template_lookup(self, namespace: str) -> Any:
        """The runner's TemplateLookup over this namespace's WorkflowTemplates."""
        return lambda name: self._find("WorkflowTemplate", namespace, name)

    # -- handlers ----------------------------------------------------------------------------

    def _list(self, plural: str) -> Any:
        kind = _KINDS[plural]

        def handler(request: Request) -> Response:
            namespace = request.params["namespace"]
            with self._lock:
                items = [
                    copy.deepcopy(o)
                    for (k, ns, _), o in sorted(self._objects.items())
                    if k == kind and ns == namespace
                ]
            return Response.json({"metadata": {"resourceVersion": str(next(self._versions))}, "items": items})

        return handler

    def _get(self, plural: str) -> Any:
        kind = _KINDS[plural]

        def handler(request: Request) -> Response:
            found = self._find(kind, request.params["namespace"], request.params["name"])
            if found is None:
                return _error(
                    _NOT_FOUND, f'{plural.replace("-", "")}.argoproj.io "{request.params["name"]}" not found'
                )
            return Response.json(found)

        return handler

    def _delete(self, plural: str) -> Any:
        kind = _KINDS[plural]

        def handler(request: Request) -> Response:
            with self._lock:
                removed = self._objects.pop((kind, request.params["namespace"], request.params["name"]), None)
            if removed is None:
                return _error(
                    _NOT_FOUND, f'{plural.replace("-", "")}.argoproj.io "{request.params["name"]}" not found'
                )
            return Response.json({})

        return handler

    def _create(self, plural: str) -> Any:
        kind = _KINDS[plural]
        body_key = {"WorkflowTemplate": "template", "CronWorkflow": "cronWorkflow", "Workflow": "workflow"}[
            kind
        ]

        def handler(request: Request) -> Response:
            namespace = request.params["namespace"]
            body = request.json() or {}
            obj = body.get(body_key)
            if not isinstance(obj, dict):
                return _error(_INVALID_ARGUMENT, f"request body needs {body_key!r}")
            if kind == "Workflow":
                return self._start_workflow(namespace, obj)
            invalid = self._invalid(namespace, {**obj, "kind": kind})
            if invalid is not None:
                return invalid
            stored = self._store(kind, namespace, obj, create=True)
            return stored if isinstance(stored, Response) else Response.json(stored)

        return handler

    def _update_template(self, request: Request) -> Response:
        namespace, name = request.params["namespace"], request.params["name"]
        template = (request.json() or {}).get("template")
        if not isinstance(template, dict) or template.get("metadata", {}).get("name", name) != name:
            return _error(_INVALID_ARGUMENT, "request body needs 'template' named as in the path")
        invalid = self._invalid(namespace, {**template, "kind": "WorkflowTemplate"})
        if invalid is not None:
            return invalid
        template.setdefault("metadata", {})["name"] = name
        stored = self._store("WorkflowTemplate", namespace, template, create=False)
        return stored if isinstance(stored, Response) else Response.json(stored)

    def _submit(self, request: Request) -> Response:
        namespace = request.params["namespace"]
        body = request.json() or {}
        kind, name = body.get("resourceKind"), body.get("resourceName")
        options = body.get("submitOptions") or {}
        if kind not in ("WorkflowTemplate", "CronWorkflow") or not name:
            return _error(
                _INVALID_ARGUMENT, "resourceKind must be WorkflowTemplate or CronWorkflow, with resourceName"
            )
        source = self._find(kind, namespace, name)
        if source is None:
            plural = "workflowtemplates" if kind == "WorkflowTemplate" else "cronworkflows"
            return _error(_NOT_FOUND, f'{plural}.argoproj.io "{name}" not found')
        parameters = []
        for assignment in options.get("parameters") or []:
            key, separator, value = str(assignment).partition("=")
            if not separator:
                return _error(_INVALID_ARGUMENT, f"parameter {assignment!r} is not key=value")
            parameters.append({"name": key, "value": value})
        if kind == "WorkflowTemplate":
            spec: dict[str, Any] = {"workflowTemplateRef": {"name": name}}
            generate_name = options.get("generateName") or f"{name}-"
        else:
            spec = copy.deepcopy(source["spec"]["workflowSpec"])
            generate_name = options.get("generateName") or f"{name}-"
        if parameters:
            by_name = {p["name"]: p for p in spec.get("arguments", {}).get("parameters", [])}
            by_name.update({p["name"]: p for p in parameters})
            spec["arguments"] = {"parameters": list(by_name.values())}
        source_label = "workflow-template" if kind == "WorkflowTemplate" else "cron-workflow"
        labels = {f"workflows.argoproj.io/{source_label}": name}
        metadata: dict[str, Any] = {"labels": labels}
        if options.get("name"):
            metadata["name"] = options["name"]
        else:
            metadata["generateName"] = generate_name
        return self._start_workflow(namespace, {"metadata": metadata, "spec": spec})

    # -- running -----------------------------------------------------------------------------

    def _invalid(self, namespace: str, document: Mapping[str, Any]) -> Response | None:
        """Validate like the server's lint: the local runner must accept the document."""
        from vaultflow.workflows import runner

        try:
            runner.load(dict(document), lookup=self.template_lookup(namespace))
        except InputError as error:
            return _error(_INVALID_ARGUMENT, str(error))
        return None

    def _start_workflow(self, namespace: str, workflow: dict[str, Any]) -> Response:
        from vaultflow.workflows import runner

        workflow["kind"] = "Workflow"
        workflow.setdefault("metadata", {}).setdefault("namespace", namespace)
        try:
            spec = runner.load(copy.deepcopy(workflow), lookup=self.template_lookup(namespace))
            runner.workflow_parameters(spec, {})
        except InputError as error:
            return _error(_INVALID_ARGUMENT, str(error))
        stored = self._store("Workflow", namespace, workflow, create=True)
        if isinstance(stored, Response):
            return stored
        name = stored["metadata"]["name"]
        self._set_status(namespace, name, {"phase": "Pending", "startedAt": _now()})
        thread = threading.Thread(
            target=self._run, args=(namespace, name, spec), name=f"argo-run-{name}", daemon=True
        )
        self._runs.append(thread)
        thread.start()
        return Response.json(self._find("Workflow", namespace, name))

    def _run(self, namespace: str, name: str, spec: Any) -> None:
        from vaultflow.workflows import runner

        try:
            runner.run(
                spec, {}, run_root=self.run_root, name=name, observer=_Publisher(self, namespace, name)
            )
        except Exception as error:  # the runner failed itself: report it as Argo reports an Error
            self._set_status(
                namespace,
                name,
                {"phase": "Error", "message": f"{type(error).__name__}", "finishedAt": _now()},
            )

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait until every submitted workflow finished (tests)."""
        deadline = time.monotonic() + timeout
        for thread in list(self._runs):
            thread.join(max(0.0, deadline - time.monotonic()))
