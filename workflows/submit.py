"""Submit a WorkflowTemplate to an Argo Server through Hera's ``WorkflowsService``, and follow it.

Connection settings follow the ``argo`` CLI: ``ARGO_SERVER`` (``host:port`` or
a URL), ``ARGO_TOKEN``, ``ARGO_NAMESPACE``, ``ARGO_SECURE`` (https unless
``false``) and ``ARGO_INSECURE_SKIP_VERIFY``. TLS certificates are verified
unless skipping is asked for explicitly, and a token is never sent in clear
text to anything but this machine. The token is read from the environment
only, never from a flag (flags end up in shell history and process lists),
and never appears in a message.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from vaultflow.base.errors import InputError, OperationError
from vaultflow.base.retry import poll_until
from vaultflow.steps.transport import transport_cause

FINISHED_PHASES = ("Succeeded", "Failed", "Error")
DEFAULT_NAMESPACE = "argo"


@dataclass(frozen=True)
class ArgoConnection:
    """Where the Argo Server is and how to talk to it (the token stays out of ``repr``)."""

    url: str
    namespace: str
    verify_tls: bool
    token: str | None = None

    def __repr__(self) -> str:
        return f"ArgoConnection(url={self.url!r}, namespace={self.namespace!r}, verify_tls={self.verify_tls})"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes")


def connection(
    server: str | None = None,
    namespace: str | None = None,
    *,
    insecure_skip_verify: bool = False,
    environ: Mapping[str, str] | None = None,
) -> ArgoConnection:
    """Build the connection from flags and the ``ARGO_*`` environment; refuse unsafe combinations."""
    env = os.environ if environ is None else environ
    server = (server or env.get("ARGO_SERVER") or "").strip()
    if not server:
        raise InputError(
            "no Argo Server: set ARGO_SERVER (host:port or https://host:port) or pass --argo-server"
        )
    if "://" not in server:
        scheme = "http" if (env.get("ARGO_SECURE") or "").strip().lower() == "false" else "https"
        server = f"{scheme}://{server}"
    parts = urlsplit(server)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"ARGO_SERVER {server!r} is not an http(s) address")
    token = (env.get("ARGO_TOKEN") or "").strip() or None
    if parts.scheme == "http" and token and not _is_loopback(parts.hostname):
        raise InputError(
            f"refusing to send ARGO_TOKEN in clear text to {parts.hostname}:"
            " use https (the Argo Server's default)"
        )
    return ArgoConnection(
        url=server.rstrip("/") + "/",
        namespace=namespace or env.get("ARGO_NAMESPACE") or DEFAULT_NAMESPACE,
        verify_tls=not (insecure_skip_verify or _truthy(env.get("ARGO_INSECURE_SKIP_VERIFY"))),
        token=token,
    )


def _service(conn: ArgoConnection) -> Any:
    from hera.workflows import WorkflowsService

    return WorkflowsService(
        host=conn.url, verify_ssl=conn.verify_tls, token=conn.token, namespace=conn.namespace
    )


def _call(conn: ArgoConnection, what: str, action: Callable[[], Any]) -> Any:
    """Run one API call; turn transport and server errors into one clear sentence."""
    import requests
    from hera.exceptions import HeraException, NotFound, Unauthorized

    try:
        return action()
    except NotFound as error:
        raise OperationError(
            f"{what}: not found on {conn.url} in namespace {conn.namespace} ({error})"
        ) from None
    except Unauthorized:
        raise OperationError(f"{what}: the Argo Server refused the credentials (check ARGO_TOKEN)") from None
    except HeraException as error:
        raise OperationError(f"{what}: the Argo Server answered {type(error).__name__}: {error}") from None
    except requests.exceptions.SSLError as error:
        raise OperationError(
            f"{what}: TLS verification of {conn.url} failed ({transport_cause(error)};"
            " trust its CA, or --insecure-skip-verify for a test server)"
        ) from None
    except requests.exceptions.RequestException as error:
        cause = transport_cause(error, host=urlsplit(conn.url).hostname or "")
        raise OperationError(f"{what}: cannot reach the Argo Server at {conn.url} ({cause})") from None


def upload_template(conn: ArgoConnection, document: Mapping[str, Any]) -> None:
    """Create or update a WorkflowTemplate (development; in production Argo CD deploys templates from Git)."""
    from hera.exceptions import AlreadyExists
    from hera.workflows.models import (
        WorkflowTemplate,
        WorkflowTemplateCreateRequest,
        WorkflowTemplateUpdateRequest,
    )

    service = _service(conn)
    name = document["metadata"]["name"]
    template = WorkflowTemplate.model_validate(
        {**document, "metadata": {**document["metadata"], "namespace": conn.namespace}}
    )
    try:
        _call(
            conn,
            f"create WorkflowTemplate {name}",
            lambda: service.create_workflow_template(
                WorkflowTemplateCreateRequest(template=template), namespace=conn.namespace
            ),
        )
    except OperationError as error:
        if not isinstance(error.__context__, AlreadyExists) and "AlreadyExists" not in str(error):
            raise
        current = _call(
            conn, f"get WorkflowTemplate {name}", lambda: service.get_workflow_template(name, conn.namespace)
        )
        template.metadata.resource_version = current.metadata.resource_version
        _call(
            conn,
            f"update WorkflowTemplate {name}",
            lambda: service.update_workflow_template(
                name, WorkflowTemplateUpdateRequest(template=template), namespace=conn.namespace
            ),
        )


def submit(conn: ArgoConnection, kind: str, name: str, parameters: Mapping[str, str]) -> str:
    """Submit a Workflow from a WorkflowTemplate or CronWorkflow (``argo submit --from``); return its name."""
    from hera.workflows.models import SubmitOpts, WorkflowSubmitRequest

    service = _service(conn)
    request = WorkflowSubmitRequest(
        namespace=conn.namespace,
        resource_kind=kind,
        resource_name=name,
        submit_options=SubmitOpts(parameters=[f"{key}={value}" for key, value in parameters.items()] or None),
    )
    workflow = _call(
        conn, f"submit {kind} {name}", lambda: service.submit_workflow(request, namespace=conn.namespace)
    )
    if workflow.metadata.name is None:
        raise OperationError(f"submit {kind} {name}: the Argo Server returned a workflow without a name")
    return str(workflow.metadata.name)


@dataclass(frozen=True)
class WorkflowOutcome:
    name: str
    phase: str
    message: str
    nodes: Mapping[str, Any]


def wait(
    conn: ArgoConnection,
    workflow_name: str,
    *,
    poll_seconds: float = 2.0,
    timeout_seconds: float | None = None,
    on_poll: Callable[[WorkflowOutcome], None] | None = None,
) -> WorkflowOutcome:
    """Poll the workflow until it Succeeded, Failed or Errored (or ``timeout_seconds`` passed).

    Polls back off from a quarter of a second up to ``poll_seconds`` (with jitter): a short
    workflow is seen finished at once, a long one is not asked every quarter second.
    """
    service = _service(conn)

    def observe() -> WorkflowOutcome:
        workflow = _call(
            conn,
            f"get Workflow {workflow_name}",
            lambda: service.get_workflow(workflow_name, namespace=conn.namespace),
        )
        status = workflow.status
        outcome = WorkflowOutcome(
            name=workflow_name,
            phase=str(status.phase or "Pending") if status is not None else "Pending",
            message=str(status.message or "") if status is not None else "",
            nodes={
                k: v.model_dump(by_alias=True, exclude_none=True)
                for k, v in ((status.nodes or {}) if status else {}).items()
            },
        )
        if on_poll is not None:
            on_poll(outcome)
        return outcome

    return poll_until(
        observe,
        lambda outcome: outcome.phase in FINISHED_PHASES,
        what=f"workflow {workflow_name} to finish",
        timeout=timeout_seconds,
        initial=min(0.25, poll_seconds),
        maximum=poll_seconds,
        describe=lambda outcome: outcome.phase,
    )
