"""The ``apply-eso-resources`` pipeline's steps: *preflight*, *apply*, *wait-for-sync*, *verify-ready*.

Each wraps the library ``vaultflow gitops`` uses (``preflight``, ``apply_catalog``
without its wait, then the wait's two halves from ``wait_delivered``), so the
pipeline and the CLI deliver the same way. What passes between steps is
references: the commit, the revision Argo CD must reach, the pull request's
number, the changed files' paths. Nothing here reads a secret value: preflight
reads each Vault reference's keys as ESO would and reports only findings.

Git and GitHub credentials: in a pod, the pipeline mounts the Secret its
``git-credentials-secret`` parameter names at ``GIT_CREDENTIALS_DIR``; its key
``token`` is then the token for both, read from the file when needed (Git
through a credential helper, the GitHub API through
``$VAULTFLOW_GITHUB_TOKEN_FILE``), never put in a URL, an argument or an
output. Without that directory (the local runner, the CLI), the step's
environment decides, as for the CLI: Git's own configuration (a credential
helper or ``url.<x>.insteadOf``) and ``$VAULTFLOW_GITHUB_TOKEN_FILE`` or
``$GITHUB_TOKEN`` (docs/gitops.md, "The pipeline").
"""

import json
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

from hera.workflows import Parameter

from vaultflow.base.durations import parse_go_duration
from vaultflow.base.errors import InputError, OperationError
from vaultflow.gitops.catalog import LoadedCatalog
from vaultflow.gitops.git_delivery import credential_helper_environment
from vaultflow.steps.catalog_source import load_catalog_source
from vaultflow.steps.delivery.apply import ApplyOptions, ChangedFile, apply_catalog, wait_delivered
from vaultflow.steps.delivery.argocd_wait import WaitReport
from vaultflow.steps.delivery.pull_request import TOKEN_FILE_ENV

log = logging.getLogger(__name__)
MODES = ("push", "pr")
# Argo keeps an output parameter in the workflow object (etcd: 1.5 MB for all of it): past this many
# changed files the wait covers every path of the tree instead of naming them.
MAX_CHANGED_FILES = 1000
_PATH = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")
# Where apply-eso-resources mounts its Git credential Secret (workflows/pipelines/apply_eso_resources.py).
GIT_CREDENTIALS_DIR = Path("/var/run/secrets/vaultflow.io/git")
TOKEN_KEY = "token"  # the Secret's key holding the token (GitHub: a fine-grained token or an App's)


def credentials(
    environ: Mapping[str, str], directory: Path = GIT_CREDENTIALS_DIR
) -> tuple[dict[str, str], dict[str, str]]:
    """(the environment the GitHub client reads, what to add to git's) for this step.

    With the mounted token (``directory``/``token``): the GitHub client reads that file unless
    ``$VAULTFLOW_GITHUB_TOKEN_FILE`` says otherwise, and git gets a credential helper answering with
    it. Without it: the step's own environment, unchanged, and nothing added to git's."""
    token = directory / TOKEN_KEY
    if not token.is_file():
        return dict(environ), {}
    github = {TOKEN_FILE_ENV: str(token), **environ}
    return github, credential_helper_environment(token, environ)


def _seconds(timeout: str) -> float:
    try:
        seconds = parse_go_duration(timeout)
    except ValueError as error:
        raise InputError(f"timeout: {error}") from None
    if seconds <= 0:
        raise InputError(f"timeout must be positive (got {timeout})")
    return seconds


def delivery_options(
    loaded: LoadedCatalog,
    *,
    mode: str,
    repo: str = "",
    branch: str = "",
    path: str = "",
    timeout: str = "10m",
    addresses: str = "",
    ca_cert: str = "",
    merge: bool = False,
) -> ApplyOptions:
    """The CLI's defaults (the catalog's ``gitops`` block) for what a parameter leaves empty; never waits:
    the pipeline's later steps do."""
    if mode not in MODES:
        raise InputError(f"mode must be push or pr, not {mode!r}")
    if merge and mode != "pr":
        raise InputError("merge merges the pull request: it needs mode=pr")
    gitops = loaded.catalog.gitops
    _, git_environment = credentials(os.environ)
    target = (path or gitops.path).strip("/")
    if not _PATH.fullmatch(target) or ".." in target.split("/"):
        raise InputError(f"path {path!r}: a relative directory of the repository, such as eso-resources")
    return ApplyOptions(
        repo_url=repo or gitops.repo_url,
        branch=branch or gitops.revision,
        path=target,
        mode="pr" if mode == "pr" else "push",
        wait=False,
        merge=merge,
        timeout=_seconds(timeout),
        vault_addresses=addresses or loaded.catalog.vault.address,
        ca_cert=ca_cert,
        git_environment=git_environment,
    )


def preflight(
    catalog: str, addresses: str, *, fail_on_findings: bool = True, ca_cert: str = ""
) -> dict[str, int]:
    """*preflight*: read every Vault reference as each cluster's ESO would; with ``fail_on_findings`` a
    finding fails the run here, before anything is committed."""
    from vaultflow.steps.delivery.preflight import eso_access
    from vaultflow.steps.delivery.preflight import preflight as run_preflight

    loaded = load_catalog_source(catalog)
    access = eso_access(loaded, addresses, ca_cert)
    try:
        report = run_preflight(loaded, access)
    finally:
        for cluster in access.values():
            cluster.api_client.close()
    for finding in report.findings:
        log.info(
            "%s: %s%s: %s (%s)",
            finding.check,
            f"{finding.cluster} " if finding.cluster else "",
            finding.subject,
            finding.message,
            finding.location or "-",
        )
    log.info("%d finding(s), %d Vault references checked", len(report.findings), report.references)
    if report.findings and fail_on_findings:
        raise OperationError(
            f"preflight: {len(report.findings)} finding(s) in {report.references} Vault references; "
            "nothing committed (fail-on-findings=false delivers anyway)"
        )
    return {"findings": len(report.findings), "references": report.references}


def apply(
    catalog: str,
    mode: str,
    *,
    repo: str = "",
    branch: str = "",
    path: str = "",
    addresses: str = "",
    ca_cert: str = "",
    merge: bool = False,
) -> tuple[
    Annotated[str, Parameter(name="commit")],
    Annotated[str, Parameter(name="revision")],
    Annotated[str, Parameter(name="pull-request")],
    Annotated[str, Parameter(name="changed")],
]:
    """*apply*: render and commit (push) or propose (pr) without waiting.

    Outputs: the commit made (empty: nothing changed), the revision Argo CD must reach (empty while a
    pull request waits to be merged), the pull request's number (empty in push mode), and the changed
    files as JSON (``[{"change": ..., "path": ...}]``; empty past ``MAX_CHANGED_FILES``: every path).
    """
    loaded = load_catalog_source(catalog)
    options = delivery_options(
        loaded,
        mode=mode,
        repo=repo,
        branch=branch,
        path=path,
        addresses=addresses,
        ca_cert=ca_cert,
        merge=merge,
    )
    environ, _ = credentials(os.environ)
    report = apply_catalog(loaded, options, environ=environ, say=log.info)
    if report.preflight:
        log.info("preflight (pull request body): %s", report.preflight)
    files = [{"change": f.change, "path": f.path} for f in report.files]
    if len(files) > MAX_CHANGED_FILES:
        log.info("%d files changed: the wait covers every path of the tree", len(files))
        files = []
    pull = report.pull_request
    return (
        report.commit or "",
        report.revision or "",
        str(pull.number) if pull is not None else "",
        json.dumps(files),
    )


def _changed(changed: str) -> list[ChangedFile]:
    if not changed.strip():
        return []
    try:
        listed = json.loads(changed)
    except json.JSONDecodeError as error:
        raise InputError(f"changed: not the JSON list the apply step produces ({error})") from None
    return [ChangedFile(change=f["change"], path=f["path"], objects=[]) for f in listed]


def _failed(wait: WaitReport, what: str) -> OperationError:
    return OperationError(
        f"{what} not reached at {wait.commit[:12]} after {wait.seconds:g}s: " + "; ".join(wait.pending)
    )


def wait_for_sync(
    catalog: str,
    mode: str,
    revision: str,
    *,
    pull_request: str = "",
    changed: str = "",
    repo: str = "",
    branch: str = "",
    path: str = "",
    timeout: str = "10m",
) -> Annotated[str, Parameter(name="revision")]:
    """*wait-for-sync*: (pr mode) the pull request merged, then every Application of the changed paths
    synced at the revision, compared after the sync, Synced and Healthy. Output: that revision."""
    loaded = load_catalog_source(catalog)
    options = delivery_options(loaded, mode=mode, repo=repo, branch=branch, path=path, timeout=timeout)
    if not revision:
        if not pull_request.isdigit():
            raise InputError("wait-for-sync needs the apply step's revision or pull request number")
        revision = _merge_commit(options, int(pull_request))
    wait = wait_delivered(
        loaded,
        options,
        revision=revision,
        files=_changed(changed),
        environ=os.environ,
        say=log.info,
        verify_objects=False,
    )
    for app in wait.applications:
        log.info("%s/%s: %s %s at %s", app.namespace, app.name, app.sync, app.health, app.revision[:12])
    if not wait.converged:
        raise _failed(wait, "Argo CD sync")
    return revision


def _merge_commit(options: ApplyOptions, number: int) -> str:
    from vaultflow.steps.delivery.pull_request import connect_for

    github = connect_for(options.repo_url, credentials(os.environ)[0])
    try:
        log.info("waiting for pull request #%d to be merged", number)
        state = github.wait_merged(number, options.timeout)
    finally:
        github.close()
    if not state.merge_commit:
        raise OperationError(f"pull request #{number} was merged without a merge commit to wait for")
    log.info("pull request #%d merged at %s", number, state.merge_commit[:12])
    return state.merge_commit


def verify_ready(
    catalog: str,
    revision: str,
    *,
    changed: str = "",
    repo: str = "",
    branch: str = "",
    path: str = "",
    timeout: str = "10m",
) -> dict[str, int | str]:
    """*verify-ready*: every rendered ExternalSecret and PushSecret of those Applications Ready, ESO
    having processed its generation (and refreshed a changed one after the sync that applied it)."""
    loaded = load_catalog_source(catalog)
    options = delivery_options(loaded, mode="push", repo=repo, branch=branch, path=path, timeout=timeout)
    wait = wait_delivered(
        loaded, options, revision=revision, files=_changed(changed), environ=os.environ, say=log.info
    )
    for obj in wait.objects:
        log.info("%s %s %s/%s: %s", obj.kind, obj.cluster, obj.namespace, obj.name, obj.message)
    if not wait.converged:
        raise _failed(wait, "ExternalSecrets/PushSecrets Ready")
    return {"revision": revision, "applications": len(wait.applications), "objects": len(wait.objects)}
