"""``rotate-secrets``: plan, then rotate in batches (write, force-sync, verify, restart or roll back),
then report; one CronWorkflow per distinct rotation schedule of the catalog.

*plan* refuses the run before anything is written when a consumer could never
pick up a new value. *rotate* fans out over batches of secrets, at most
``PARALLEL_BATCHES`` at a time; each batch does every stage in one step
(``vaultflow.steps.rotation.rotate``): the values stay in that step, and one
verification loop lists each consuming namespace once per round for the whole
batch. *report* gathers the batches into the rotation report and fails the run
when any secret did not rotate.

Every CronWorkflow passes ``all-due=true`` and its schedule: a run rotates only
the secrets of that schedule that are due (their last rotation, recorded in
Vault, is older than the schedule's previous tick), so a late or repeated tick
rotates nothing twice. ``concurrencyPolicy: Forbid`` keeps a slow run from
overlapping the next; ``startingDeadlineSeconds`` lets a tick missed while the
controller was down still start within that window.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from vaultflow.steps.rotation import tasks
from vaultflow.workflows.dsl import (
    CA_CERT,
    VAULT_CA_SECRET,
    WORKFLOW_NAME,
    Param,
    Pipeline,
    Retry,
    Schedule,
    Step,
    item,
    kubeconfig_mount,
    kubeconfig_secret_param,
    output,
    param,
    result,
    vault_ca_mount,
)

PARALLEL_BATCHES = 4
STARTING_DEADLINE_SECONDS = 900  # a tick missed by up to 15 minutes (a controller restart) still runs
VAULT = {"catalog": param("catalog"), "addresses": param("vault-addresses"), "ca_cert": param("ca-cert")}
# A failed step failed for a reason a retry will not change (a refusal, a denied path, a target that
# never converged: the steps already wait). Argo retries only errors: a pod evicted or lost with its node.
# A retried step with the same run id writes nothing twice (see steps/rotation/write.py).
INFRASTRUCTURE = Retry(limit=2, backoff="10s", factor=2, max_duration="5m", policy="OnError")


def schedule_name(cron: str) -> str:
    """A stable DNS-safe name per schedule expression (the expression itself is in the arguments)."""
    return hashlib.sha256(cron.encode()).hexdigest()[:8]


def catalog_schedules(catalog: Any) -> Sequence[Schedule]:
    """One CronWorkflow per distinct ``rotation.schedule`` of the catalog, in a stable order."""
    crons = sorted({s.rotation.schedule for s in catalog.secrets if s.rotation is not None})
    return [
        Schedule(
            name=schedule_name(cron),
            cron=cron,
            arguments={"all-due": "true", "schedule": cron},
            concurrency_policy="Forbid",
            starting_deadline_seconds=STARTING_DEADLINE_SECONDS,
        )
        for cron in crons
    ]


PIPELINES = [
    Pipeline(
        name="rotate-secrets",
        description="Rotate secrets in Vault and prove every cluster and cloud holds the new value.",
        service_account="vaultflow-rotation",
        timeout="2h",
        parallelism=PARALLEL_BATCHES,
        default_retry=INFRASTRUCTURE,
        catalog_schedules=catalog_schedules,
        secret_mounts=[vault_ca_mount(), kubeconfig_mount()],
        params=[
            Param(
                "vault-addresses",
                default="",
                description="Vault addresses, comma-separated (empty: the catalog's vault.address).",
            ),
            Param(
                "catalog",
                default="configmap://argo/vaultflow-catalog",
                description="The secrets catalog: a file, or configmap://<namespace>/<name>[/<key>].",
            ),
            Param("paths", default="", description="Catalog paths to rotate now, comma-separated."),
            Param(
                "all-due",
                default="false",
                enum=["true", "false"],
                description="Also rotate every secret whose schedule says a rotation is due.",
            ),
            Param("schedule", default="", description="With all-due: only the secrets of this schedule."),
            Param(
                "batch-size",
                default=str(tasks.DEFAULT_BATCH_SIZE),
                description="Secrets per rotate step (each batch shares one verification loop).",
            ),
            CA_CERT,
            VAULT_CA_SECRET,
            kubeconfig_secret_param("vaultflow-rotation"),
            Param("report-file", default="", description="Where the report step writes the JSON report."),
        ],
        steps=[
            Step(
                "plan",
                tasks.plan,
                args={
                    **VAULT,
                    "run_id": WORKFLOW_NAME,
                    "paths": param("paths"),
                    "all_due": param("all-due"),
                    "schedule": param("schedule"),
                    "batch_size": param("batch-size"),
                },
            ),
            Step(
                "rotate",
                tasks.rotate,
                args={**VAULT, "run_id": WORKFLOW_NAME, "paths": item("paths"), "versions": item("versions")},
                over=output("plan", "batches"),
                depends="plan",
            ),
            Step(
                "report",
                tasks.report,
                args={
                    "run_id": WORKFLOW_NAME,
                    "batches": result("rotate"),
                    "report_file": param("report-file"),
                },
                depends="rotate",
            ),
        ],
    )
]
