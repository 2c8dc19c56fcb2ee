"""Declare a pipeline once: its steps, their dependencies, parameters, retries and timeouts.

A pipeline is data. Each :class:`Step` names a plain, typed function from
``steps/`` and says where its arguments come from; the same declaration
compiles to an Argo ``WorkflowTemplate`` (and a ``CronWorkflow`` per
:class:`Schedule`) and runs unchanged on the local runner::

    from vaultflow.steps import vault
    from vaultflow.workflows.dsl import Pipeline, Param, Retry, Step, param, result

    PIPELINES = [
        Pipeline(
            name="vault-unseal",
            description="Unseal every Vault replica.",
            service_account="vaultflow-bootstrap",
            params=[Param("vault-namespace", default="vault-system")],
            steps=[
                Step("find", vault.find_replicas, args={"namespace": param("vault-namespace")}),
                Step("unseal", vault.unseal, args={"replica": ITEM}, over=result("find"),
                     retry=Retry(limit=5)),
            ],
        )
    ]

Values passed between steps are strings in Argo; the runner converts them to
the annotated types of the step function (JSON for anything but ``str``).
Step outputs are references (a Vault path and version, a commit SHA, a report
path): Argo stores and shows every parameter and output, so a step whose
inputs or outputs are typed as ``pydantic.SecretStr``/``SecretBytes`` is
refused.

Declarations are plain data and check nothing themselves: the checks
(:func:`vaultflow.workflows.checks.check_declaration`) compile the pipeline,
so they run where pipelines are registered (:mod:`vaultflow.workflows.registry`),
before anything runs, and a declaration module imports nothing but this one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from vaultflow.base.errors import InputError

JsonScalar = str | int | float | bool
ArgumentValue = str | int | float | bool
RetryPolicy = Literal["Always", "OnFailure", "OnError", "OnTransientError"]


def _name_of(step: Step | str) -> str:
    return step.name if isinstance(step, Step) else step


def param(name: str) -> str:
    """A reference to a workflow parameter."""
    return f"{{{{workflow.parameters.{name}}}}}"


def result(step: Step | str) -> str:
    """A reference to a step's result (its return value, serialized as the Hera runner prints it)."""
    return f"{{{{tasks.{_name_of(step)}.outputs.result}}}}"


def output(step: Step | str, name: str) -> str:
    """A reference to a named output parameter (``Annotated[T, Parameter(name=...)]``) of a step."""
    return f"{{{{tasks.{_name_of(step)}.outputs.parameters.{name}}}}}"


def outputs(step: Step | str) -> str:
    """The output parameters of every item of a fanned-out step, as a JSON list of maps."""
    return f"{{{{tasks.{_name_of(step)}.outputs.parameters}}}}"


def item(field_name: str | None = None) -> str:
    """The current item of a fanned-out step (``{{item}}``), or one field of it (``{{item.field}}``)."""
    return "{{item}}" if field_name is None else f"{{{{item.{field_name}}}}}"


ITEM = item()
WORKFLOW_NAME = "{{workflow.name}}"
WORKFLOW_STATUS = "{{workflow.status}}"  # Succeeded, Failed or Error; meaningful in the exit handler


@dataclass(frozen=True)
class Param:
    """A workflow parameter. Without a default it must be given at submit time (``-p name=value``)."""

    name: str
    default: str | None = None
    description: str | None = None
    enum: Sequence[str] | None = None


@dataclass(frozen=True)
class Retry:
    """Argo's ``retryStrategy``: ``limit`` retries after the first attempt, with exponential backoff.

    The wait before retry *n* is ``backoff * factor**(n-1)``; no retry starts
    once ``max_duration`` has passed since the first attempt.
    """

    limit: int = 2
    backoff: str = "10s"
    factor: int = 2
    max_duration: str | None = "10m"
    policy: RetryPolicy = "OnFailure"


NO_RETRY = Retry(limit=0)
DEFAULT_RETRY = Retry()


@dataclass(frozen=True)
class Step:
    """One task of a pipeline: a step function, its arguments and when it runs.

    ``depends`` is an Argo depends expression over step names (``"a && b"``,
    ``"check.Failed"``) or a list of steps that must succeed first. ``when``
    is an Argo condition (``"{{workflow.parameters.mode}} == apply"``).
    ``items`` fans the step out over literal values, ``over`` over a JSON list
    produced at run time (usually :func:`result` of an earlier step). ``retry``
    falls back to the pipeline's default; ``timeout`` is a duration (``"5m"``).
    """

    name: str
    function: Callable[..., Any]
    args: Mapping[str, ArgumentValue] = field(default_factory=dict)
    depends: str | Sequence[Step | str] | None = None
    when: str | None = None
    items: Sequence[JsonScalar | Mapping[str, JsonScalar]] | None = None
    over: str | None = None
    retry: Retry | None = None
    timeout: str | None = None
    continue_on_failure: bool = False

    def depends_expression(self) -> str | None:
        if self.depends is None:
            return None
        if isinstance(self.depends, str):
            return self.depends
        return " && ".join(_name_of(dependency) for dependency in self.depends) or None

    @property
    def entrypoint(self) -> str:
        return f"{self.function.__module__}:{self.function.__name__}"


@dataclass(frozen=True)
class SecretMount:
    """A Kubernetes Secret mounted read-only, as files, into the pod of every step.

    How a pipeline gets a credential (a Git token, a kubeconfig) without it ever being a parameter,
    an output or an environment variable, which Argo stores or shows: the step reads the file.
    ``secret`` is the Secret's name in the workflow's namespace, usually ``param("...")`` so that
    whoever submits chooses it; ``path`` is the directory its keys appear in, one file per key
    (mode 0440, group-readable by the steps' user through the pod's ``fsGroup``). An ``optional``
    Secret that does not exist mounts an empty directory instead of keeping the pod from starting.

    Pods only: the local runner has none, and its steps find their credentials in the runner's own
    environment (a step should treat a missing ``path`` as "not in a pod").
    """

    name: str  # the volume's name: a DNS label, unique in the pipeline
    secret: str
    path: str  # absolute
    optional: bool = False
    # Environment variables of every step's container naming a file of the mount (``KUBECONFIG``: the
    # kubeconfig Secret's ``config``); pods only, like the mount. A missing optional file is no file:
    # a client that reads a list of paths (the Kubernetes client's KUBECONFIG) skips it.
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Schedule:
    """A CronWorkflow that submits the pipeline's template on a schedule (rotations)."""

    name: str
    cron: str
    arguments: Mapping[str, str] = field(default_factory=dict)
    timezone: str = "UTC"
    concurrency_policy: Literal["Allow", "Forbid", "Replace"] = "Forbid"
    starting_deadline_seconds: int = 300
    suspend: bool = False


@dataclass(frozen=True)
class Pipeline:
    """A named pipeline: compiles to a WorkflowTemplate called ``name`` (plus its CronWorkflows).

    ``mutex`` names an Argo ``synchronization`` mutex: the controller runs one
    workflow holding it at a time and queues the others. ``secret_mounts`` are
    mounted into every step's pod (:class:`SecretMount`).
    """

    name: str
    description: str
    steps: Sequence[Step]
    params: Sequence[Param] = ()
    on_exit: Step | None = None
    service_account: str | None = None
    parallelism: int | None = None
    timeout: str | None = None
    default_retry: Retry = DEFAULT_RETRY
    schedules: Sequence[Schedule] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    mutex: str | None = None
    secret_mounts: Sequence[SecretMount] = ()
    # CronWorkflows that depend on a catalog (rotation schedules): rendered by
    # ``vaultflow workflows render --catalog`` (see ``Registry.with_catalog``).
    catalog_schedules: Callable[[Any], Sequence[Schedule]] | None = None

    def step(self, name: str) -> Step:
        for candidate in self.steps:
            if candidate.name == name:
                return candidate
        raise InputError(f"pipeline {self.name!r} has no step {name!r}")

    def cron_name(self, schedule: Schedule) -> str:
        return f"{self.name}-{schedule.name}"

    def retry_of(self, step: Step) -> Retry | None:
        chosen = step.retry if step.retry is not None else self.default_retry
        return None if chosen.limit == 0 else chosen


# Vault's CA in the step pods (issue 14): the Secret that ``vault-ca-secret`` names (key ``ca.crt``,
# e.g. a copy of the Vault server TLS Secret's CA in the workflows' namespace) is mounted read-only
# at VAULT_CA_DIR in every step; ``ca-cert=/etc/vaultflow/vault-ca/ca.crt`` makes the steps verify
# Vault's certificate with it. Optional: a Vault with a publicly trusted certificate needs none.
VAULT_CA_DIR = "/etc/vaultflow/vault-ca"
VAULT_CA_FILE = f"{VAULT_CA_DIR}/ca.crt"
VAULT_CA_SECRET = Param(
    "vault-ca-secret",
    default="vaultflow-vault-ca",
    description=f"Secret (key ca.crt) mounted at {VAULT_CA_DIR} in every step; optional.",
)
CA_CERT = Param(
    "ca-cert",
    default="",
    description=f"CA bundle file to verify Vault (empty: system trust; {VAULT_CA_FILE}: vault-ca-secret's).",
)


# The other catalog clusters in the step pods: the kubeconfig Secret ``vaultflow cluster onboard`` writes
# for the pipeline's account (key ``config``: a context per onboarded cluster, the account's token there),
# mounted at KUBECONFIG_DIR with KUBECONFIG pointing at it. Optional: a catalog of one cluster, the
# workflows one, needs none; the pod's own cluster stays in-cluster (steps/kube/clusters.py).
KUBECONFIG_DIR = "/etc/vaultflow/kubeconfig"
KUBECONFIG_FILE = f"{KUBECONFIG_DIR}/config"
KUBECONFIG_SECRET_PARAM = "kubeconfig-secret"


def kubeconfig_secret_param(account: str) -> Param:
    return Param(
        KUBECONFIG_SECRET_PARAM,
        default=f"vaultflow-kubeconfig-{account}",
        description=(
            f"Secret (key config: the other clusters' contexts as {account}, written by vaultflow cluster "
            f"onboard) mounted at {KUBECONFIG_DIR} as KUBECONFIG in every step; optional."
        ),
    )


def kubeconfig_mount() -> SecretMount:
    """The ``kubeconfig-secret`` Secret at ``KUBECONFIG_DIR``, ``KUBECONFIG`` set to its ``config``."""
    return SecretMount(
        name="kubeconfig",
        secret=param(KUBECONFIG_SECRET_PARAM),
        path=KUBECONFIG_DIR,
        optional=True,
        env={"KUBECONFIG": KUBECONFIG_FILE},
    )


def vault_ca_mount() -> SecretMount:
    """The ``vault-ca-secret`` Secret at ``VAULT_CA_DIR`` (optional: absent, an empty directory)."""
    return SecretMount(name="vault-ca", secret=param(VAULT_CA_SECRET.name), path=VAULT_CA_DIR, optional=True)
