"""The ``rotate-secrets`` pipeline's steps as it runs them: *plan*, *rotate* (one batch), *report*.

Each step logs into Vault as the rotation service account through Kubernetes
auth (in a pod its projected token; elsewhere a token from the workflows
cluster's TokenRequest API, as a kubelet would project it) and revokes that
token when it ends: the rotation never runs as root, and its policies read and
write exactly the rotated paths. A *rotate* step makes its requests with a
child of that token holding only its batch's rotation shards (``batch_token``),
and *plan* groups the batches by shard.

What passes between steps is references: batches of paths, then per secret
the versions, the targets and their timings. Values stay inside *rotate*.
"""

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from hera.workflows import Parameter

from vaultflow.base.errors import InputError, OperationError
from vaultflow.gitops.catalog import LoadedCatalog
from vaultflow.gitops.rotation_shards import RotationShards
from vaultflow.steps.catalog_source import load_catalog_source
from vaultflow.steps.kube.clusters import cluster_clients, kube_context
from vaultflow.steps.observe.push import push_rotation
from vaultflow.steps.rotation.access import check_rotation_access
from vaultflow.steps.rotation.batch_token import batch_token
from vaultflow.steps.rotation.clouds import CloudReaders
from vaultflow.steps.rotation.plan import RotationPlan, plan_rotation, shard_batches
from vaultflow.steps.rotation.report import ReportSecret, RotationReport
from vaultflow.steps.rotation.rotate import Rotator
from vaultflow.steps.vault.active import active_node
from vaultflow.steps.vault.api import VaultApi
from vaultflow.steps.vault.login import kubernetes_login, service_account_token

PUSHGATEWAY_ENV = "VAULTFLOW_PUSHGATEWAY_URL"  # where report pushes the run's metrics (sandbox env sets it)
log = logging.getLogger(__name__)
DEFAULT_BATCH_SIZE = 50  # secrets per rotate step: one shared verification loop, a result well under 256 KB


def rotation_vault(loaded: LoadedCatalog, addresses: str, ca_cert: str = "") -> VaultApi:
    """The active Vault node among ``addresses`` (empty: the catalog's ``vault.address``), logged in as the
    catalog's rotation role (never root)."""
    model = loaded.catalog
    auth = model.vault.kubernetes_auth
    workflows = model.workflows_cluster()
    account = auth.rotation_service_account
    jwt = service_account_token(
        namespace=account.namespace, name=account.name, context=kube_context(loaded, workflows)
    )
    node = active_node(addresses or model.vault.address, ca_cert=ca_cert)
    return kubernetes_login(node, mount=workflows.auth_mount(auth), role=auth.rotation_role, jwt=jwt)


@contextmanager
def connected(
    loaded: LoadedCatalog,
    addresses: str,
    run_id: str,
    ca_cert: str = "",
    readers: CloudReaders | None = None,
    *,
    batch: Sequence[str] | None = None,
) -> Iterator[Rotator]:
    """A ``Rotator`` for one step; its Vault token is revoked when the step ends, whatever happened.

    With ``batch`` (the paths a *rotate* step writes) it works with a child token holding only their
    rotation shards, revoked first.
    """
    vault = rotation_vault(loaded, addresses, ca_cert)
    tokens = [vault]
    try:
        if batch is not None:
            child = batch_token(vault, loaded.catalog, batch)
            if child is not vault:
                tokens.insert(0, child)
        yield Rotator(loaded, tokens[0], cluster_clients(loaded), readers or CloudReaders(), run_id)
    finally:
        for token in tokens:
            try:
                token.revoke_self()
            except OperationError as error:  # it expires with its TTL; the step's outcome matters more
                log.warning("could not revoke the rotation token: %s", error)


def split_paths(paths: str) -> list[str]:
    """``a,b c`` -> ``[a, b, c]``: paths as a parameter (commas or spaces), duplicates dropped."""
    return list(dict.fromkeys(part for part in paths.replace(",", " ").split() if part))


def make_plan(
    rotator: Rotator, *, paths: Sequence[str], all_due: bool, schedule: str = "", now: datetime | None = None
) -> RotationPlan:
    """The plan, refused (InputError, nothing written) when any consumer, in the catalog or found in a
    cluster, could never pick up a new value."""
    plan = plan_rotation(
        rotator.vault,
        rotator.loaded.catalog,
        paths=paths,
        all_due=all_due,
        schedule=schedule or None,
        run_id=rotator.run_id,
        now=now or datetime.now(UTC),
    )
    if plan.secrets:
        found = rotator.discover([planned.path for planned in plan.secrets])
        check_rotation_access(rotator.loaded.catalog, found.values(), rotator.clients)
    return plan


def plan(
    catalog: str,
    addresses: str,
    run_id: str,
    *,
    paths: str = "",
    all_due: bool = False,
    schedule: str = "",
    batch_size: int = DEFAULT_BATCH_SIZE,
    ca_cert: str = "",
) -> Annotated[list[dict[str, str]], Parameter(name="batches")]:
    """*plan*: the secrets to rotate, in batches (``[{"paths": "a,b", "versions": "3,7"}]``) for *rotate*
    to fan out over.

    With nothing to rotate it is one empty batch, not none: Argo skips a task whose ``withParam``
    is empty, and the *report* after it could not resolve its result then; the run ends
    Succeeded with an empty report instead.
    """
    if batch_size < 1:
        raise InputError(f"batch-size must be at least 1, not {batch_size}")
    loaded = load_catalog_source(catalog)
    with connected(loaded, addresses, run_id, ca_cert) as rotator:
        planned = make_plan(rotator, paths=split_paths(paths), all_due=all_due, schedule=schedule)
    chosen = planned.secrets
    log.info(
        "rotating %d secrets%s",
        len(chosen),
        f"; not due: {', '.join(planned.not_due)}" if planned.not_due else "",
    )
    batches = shard_batches(chosen, RotationShards(loaded.catalog), batch_size)
    return [
        {"paths": ",".join(s.path for s in batch), "versions": ",".join(str(s.version) for s in batch)}
        for batch in batches
    ] or [{"paths": "", "versions": ""}]


def rotate(
    catalog: str, addresses: str, run_id: str, paths: str, versions: str, *, ca_cert: str = ""
) -> dict[str, Any]:
    """*rotate*: write, force-sync, verify, restart or roll back one batch; its report entries.

    ``versions`` holds, for each of ``paths`` in order, the version the plan saw.
    """
    if not paths and not versions:  # the empty batch of a run with nothing to rotate
        return {"secrets": []}
    listed, seen = paths.split(","), versions.split(",")
    if len(listed) != len(seen) or not all(v.isdigit() for v in seen):
        raise InputError(f"paths {paths!r} and versions {versions!r}: one version per path, as *plan* gives")
    loaded = load_catalog_source(catalog)
    with connected(loaded, addresses, run_id, ca_cert, batch=listed) as rotator:
        entries = rotator.rotate(dict(zip(listed, map(int, seen), strict=True)))
    for entry in entries:
        log.info("%s: %s%s", entry.path, entry.outcome, f" ({entry.message})" if entry.message else "")
    return {"secrets": [entry.model_dump(mode="json", by_alias=True) for entry in entries]}


def report(run_id: str, batches: str, *, report_file: str = "") -> dict[str, Any]:
    """*report*: the run's report from every batch; written to ``report_file`` (JSON) when given,
    and its counts and timings pushed to ``$VAULTFLOW_PUSHGATEWAY_URL`` when set.

    Fails (exit 1) when any secret was not rotated, after its rollback where configured.
    """
    secrets = [
        ReportSecret.model_validate(s) for batch in _batches(batches) for s in batch.get("secrets", [])
    ]
    full = RotationReport(run_id=run_id, secrets=secrets)
    if report_file:
        target = Path(report_file)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(target.name + ".tmp")
        temporary.write_text(full.to_json(), encoding="utf-8")
        temporary.replace(target)  # a reader never sees half a report
    log.info("%s", full.to_markdown())
    gateway = os.environ.get(PUSHGATEWAY_ENV, "")
    if gateway:
        push_rotation(full, gateway)
    counts = {o: sum(1 for s in secrets if s.outcome == o) for o in ("Rotated", "RolledBack", "Failed")}
    if full.failed():
        failed = [f"{s.path} ({s.outcome})" for s in secrets if s.outcome in ("RolledBack", "Failed")]
        raise OperationError(f"{len(failed)} of {len(secrets)} secrets did not rotate: {', '.join(failed)}")
    return {"runId": run_id, **counts, "report": report_file}


def _batches(batches: str) -> list[dict[str, Any]]:
    import json

    if not batches.strip() or batches.startswith("{{"):  # no batch ran: nothing was due
        return []
    try:
        parsed = json.loads(batches)
    except json.JSONDecodeError as error:
        raise InputError(f"batches: not the JSON list the rotate step produces ({error})") from None
    return [b for b in parsed if isinstance(b, dict)] if isinstance(parsed, list) else []
