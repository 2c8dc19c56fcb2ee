"""``vaultflow gitops apply``: render the catalog, deliver it through Git, and know when it has arrived.

Two modes:

* ``push``: one commit on the branch Argo CD follows (``gitops.revision``),
  made only when the rendered tree differs from what is there; a push that
  lost a race is rebuilt on the new head and retried with backoff
  (``vaultflow.gitops.git_delivery``);
* ``pr``: the same commit on a branch of its own, ``vaultflow/<path slug>``,
  rebuilt on the base's head each time, and a pull request from it, opened or
  (when one is open for that branch) updated; its body lists what changes
  (kinds and names) and carries the preflight report, run here when Vault is
  reachable, and the preflight's verdict is the head commit's
  ``vaultflow/preflight`` status.

With ``wait``, Argo CD is asked to refresh each Application that reads a
changed path and the platform is awaited at the pushed commit (in ``pr`` mode,
at the merge commit, once the pull request is merged: by someone, or here with
``merge``), as ``argocd_wait`` describes. In ``pr`` mode GitHub is asked first,
so a token it refuses fails before anything is pushed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from vaultflow.base.errors import OperationError, VaultflowError
from vaultflow.gitops.catalog import LoadedCatalog
from vaultflow.gitops.git_delivery import (
    FileObjects,
    Workspace,
    open_workspace,
    proposal_branch,
    propose_tree,
    push_tree,
    redact_url_credentials,
)
from vaultflow.gitops.render import RenderedTree, render_catalog
from vaultflow.gitops.tree_writer import TreeChanges
from vaultflow.steps.delivery.argocd_wait import (
    Tracking,
    WaitReport,
    WatchedApplication,
    WatchedObject,
    applications_of,
    covers,
    list_applications,
    normal_repo_url,
    wait_for_sync,
)
from vaultflow.steps.delivery.pull_request import GitHubRepository, PullRequestState, connect_for

Mode = Literal["push", "pr"]
Say = Callable[[str], None]
ARGOCD_CONTEXT_ENV = "VAULTFLOW_ARGOCD_CONTEXT"
IN_CLUSTER_SERVER, IN_CLUSTER_NAME = "https://kubernetes.default.svc", "in-cluster"
_FILES_IN_BODY = 200
_FILES_SAID = 20


@dataclass(frozen=True)
class ApplyOptions:
    repo_url: str
    branch: str
    path: str
    mode: Mode = "push"
    wait: bool = True
    merge: bool = False
    timeout: float = 600.0
    argocd_context: str | None = None
    vault_addresses: str = ""
    ca_cert: str = ""
    # Added to every git command's environment (a credential helper: the pipeline's mounted token).
    git_environment: Mapping[str, str] = field(default_factory=dict)


class ChangedFile(BaseModel):
    change: Literal["added", "changed", "removed"]
    path: str  # in the repository
    objects: list[str]  # kinds and names, never a value


class PullRequestReport(BaseModel):
    number: int
    url: str
    action: Literal["opened", "updated"]
    branch: str
    base: str
    pushed: bool  # this run pushed a new commit to the branch
    merged: bool
    merge_commit: str | None


class ApplyReport(BaseModel):
    mode: Mode
    repository: str
    branch: str
    path: str
    commit: str | None  # the commit this run made (on the branch, or the proposal branch); None: nothing
    revision: str | None  # what Argo CD must be at; None when there is nothing to wait for
    attempts: int
    files: list[ChangedFile]
    pull_request: PullRequestReport | None = None
    preflight: str | None = None  # one line: what preflight found, or why it did not run
    wait: WaitReport | None = None

    @property
    def converged(self) -> bool:
        return self.wait is None or self.wait.converged


def argocd_context(loaded: LoadedCatalog, explicit: str | None, environ: Mapping[str, str]) -> str | None:
    """The kubeconfig context of the cluster Argo CD runs in (its Applications live there).

    ``--argocd-context``, else ``$VAULTFLOW_ARGOCD_CONTEXT``, else the catalog cluster that Argo CD
    calls in-cluster (``https://kubernetes.default.svc`` or ``in-cluster``: Argo CD runs in it),
    else the current context.
    """
    from vaultflow.steps.kube.clusters import kube_context

    if explicit:
        return explicit
    if environ.get(ARGOCD_CONTEXT_ENV):
        return environ[ARGOCD_CONTEXT_ENV]
    for cluster in loaded.catalog.clusters:
        server = (cluster.argocd.server or "").rstrip("/")
        if server == IN_CLUSTER_SERVER or cluster.argocd.name == IN_CLUSTER_NAME:
            return kube_context(loaded, cluster)
    return None


def _counts(changes: TreeChanges) -> str:
    return f"{len(changes.added)} added, {len(changes.changed)} changed, {len(changes.removed)} removed"


def _say_files(files: list[ChangedFile], say: Say) -> None:
    letters = {"added": "A", "changed": "M", "removed": "D"}
    for changed in files[:_FILES_SAID]:
        objects = f": {', '.join(changed.objects)}" if changed.objects else ""
        say(f"  {letters[changed.change]} {changed.path}{objects}")
    if len(files) > _FILES_SAID:
        say(f"  and {len(files) - _FILES_SAID} more files")


def _files(changes: TreeChanges, objects: FileObjects, path: str) -> list[ChangedFile]:
    listed: list[ChangedFile] = []
    for change, paths in (
        ("added", changes.added),
        ("changed", changes.changed),
        ("removed", changes.removed),
    ):
        listed += [
            ChangedFile(change=change, path=f"{path}/{p}", objects=[str(o) for o in objects.get(p, [])])
            for p in paths
        ]
    return listed


def apply_catalog(
    loaded: LoadedCatalog, options: ApplyOptions, *, environ: Mapping[str, str], say: Say
) -> ApplyReport:
    """Render, deliver (``options.mode``), and with ``options.wait`` wait for the platform."""
    deadline = time.monotonic() + options.timeout
    tree = render_catalog(loaded, repo_url=options.repo_url)
    github = connect_for(options.repo_url, environ) if options.mode == "pr" else None
    try:
        with open_workspace(
            options.repo_url, options.branch, environment=options.git_environment
        ) as workspace:
            if github is None:
                report, fresh = _push(workspace, tree, options, say)
            else:
                report, fresh = _propose(
                    loaded, workspace, tree, options, github=github, deadline=deadline, say=say
                )
            if options.wait and report.revision is not None and report.wait is None:
                report.wait = _wait(
                    loaded,
                    options,
                    workspace,
                    tree,
                    report=report,
                    fresh=fresh,
                    deadline=deadline,
                    environ=environ,
                    say=say,
                )
            return report
    finally:
        if github is not None:
            github.close()


def _base_report(options: ApplyOptions) -> dict[str, Any]:
    return {
        "mode": options.mode,
        "repository": redact_url_credentials(options.repo_url),
        "branch": options.branch,
        "path": options.path,
    }


def _push(
    workspace: Workspace, tree: RenderedTree, options: ApplyOptions, say: Say
) -> tuple[ApplyReport, set[str]]:
    delivery = push_tree(workspace, tree, path=options.path)
    if delivery.commit is None:
        say(f"nothing to change: {options.branch} already holds what the catalog renders (no commit)")
    else:
        retried = (
            f" after {delivery.attempts} attempts (the branch moved meanwhile)"
            if delivery.attempts > 1
            else ""
        )
        say(f"committed {delivery.commit[:12]} on {options.branch}: {_counts(delivery.changes)}{retried}")
    files = _files(delivery.changes, delivery.objects, options.path)
    _say_files(files, say)
    revision = delivery.commit or workspace.head()
    report = ApplyReport(
        **_base_report(options),
        commit=delivery.commit,
        revision=revision,
        attempts=delivery.attempts,
        files=files,
    )
    return report, {f.path for f in files if f.change != "removed"}


def _propose(
    loaded: LoadedCatalog,
    workspace: Workspace,
    tree: RenderedTree,
    options: ApplyOptions,
    *,
    github: GitHubRepository,
    deadline: float,
    say: Say,
) -> tuple[ApplyReport, set[str]]:
    markdown, verdict, preflight_line = _preflight(loaded, options, say)
    head = proposal_branch(options.path)
    proposal = propose_tree(workspace, tree, path=options.path, branch=head)
    files = _files(proposal.changes, proposal.objects, options.path)
    fresh = {f.path for f in files if f.change != "removed"}
    report = ApplyReport(
        **_base_report(options),
        commit=proposal.commit if proposal.pushed else None,
        revision=None,
        attempts=proposal.attempts,
        files=files,
        preflight=preflight_line,
    )
    if proposal.commit is None:
        say(f"nothing to change: {options.branch} already holds what the catalog renders (no pull request)")
        report.revision = proposal.base
        return report, set()
    against = f"{_counts(proposal.changes)} against {options.branch}"
    if proposal.pushed:
        say(f"committed {proposal.commit[:12]} on {head}: {against}")
    else:
        say(f"{head} already holds this render ({against}): nothing to push")
    _say_files(files, say)
    body = pull_request_body(
        catalog=str(loaded.source),
        path=options.path,
        base=options.branch,
        base_sha=proposal.base,
        head_sha=proposal.commit,
        files=files,
        preflight=markdown,
    )
    title = f"vaultflow: render the secrets catalog into {options.path}/"
    state, action = github.open_or_update(head=head, base=options.branch, title=title, body=body)
    if verdict is not None:
        github.set_status(proposal.commit, *verdict)
    report.pull_request = _pull_report(state, action, head, options.branch, proposal.pushed)
    say(f"{action} pull request #{state.number}: {state.url}")
    if options.merge:
        state = github.merge(state.number, proposal.commit)
        say(f"merged pull request #{state.number} into {options.branch} at {(state.merge_commit or '')[:12]}")
    elif options.wait:
        say(f"waiting for pull request #{state.number} to be merged ({state.url})")
        started = time.monotonic()
        try:
            state = github.wait_merged(state.number, max(0.0, deadline - started))
        except OperationError as error:
            report.wait = WaitReport(
                commit=proposal.commit,
                converged=False,
                seconds=round(time.monotonic() - started, 1),
                applications=[],
                objects=[],
                pending=[str(error)],
            )
            return report, fresh
    report.pull_request = _pull_report(state, action, head, options.branch, proposal.pushed)
    report.revision = state.merge_commit
    return report, fresh


def _pull_report(
    state: PullRequestState, action: Literal["opened", "updated"], head: str, base: str, pushed: bool
) -> PullRequestReport:
    return PullRequestReport(
        number=state.number,
        url=state.url,
        action=action,
        branch=head,
        base=base,
        pushed=pushed,
        merged=state.merged,
        merge_commit=state.merge_commit,
    )


def _preflight(
    loaded: LoadedCatalog, options: ApplyOptions, say: Say
) -> tuple[str, tuple[Literal["success", "failure"], str] | None, str]:
    """(the Markdown for the body, the commit status to set or None, one line for the report).

    Preflight needs Vault and the clusters; without a Vault address, or when it cannot run, the
    body says so instead of the apply failing: the pull request is still worth opening.
    """
    from vaultflow.steps.delivery.preflight import eso_access, preflight

    if not options.vault_addresses:
        why = "no Vault address (set VAULT_ADDRESSES or pass --vault-addresses)"
        return f"_Preflight did not run: {why}._\n", None, f"did not run: {why}"
    say("preflight: reading every Vault reference as each cluster's ESO")
    try:
        access = eso_access(loaded, options.vault_addresses, options.ca_cert)
        try:
            report = preflight(loaded, access)
        finally:
            for cluster in access.values():
                cluster.api_client.close()
    except VaultflowError as error:
        return f"_Preflight could not run: {error}_\n", None, f"could not run: {error}"
    if report.findings:
        line = f"{len(report.findings)} finding(s), {report.references} Vault references checked"
        return report.to_markdown(), ("failure", line), line
    line = f"no finding, {report.references} Vault references checked"
    return report.to_markdown(), ("success", line), line


def pull_request_body(
    *,
    catalog: str,
    path: str,
    base: str,
    base_sha: str,
    head_sha: str,
    files: list[ChangedFile],
    preflight: str,
) -> str:
    """What the pull request says: where the change comes from, what it changes (kinds and names,
    never a value), and the preflight report. Rewritten on every apply."""
    counts = {
        change: sum(1 for f in files if f.change == change) for change in ("added", "changed", "removed")
    }
    lines = [
        f"Rendered by `vaultflow gitops apply` from `{catalog}` into `{path}/`, "
        f"on `{base}` at `{base_sha[:12]}` (head `{head_sha[:12]}`).",
        "",
        f"**Changes**: {counts['added']} added, {counts['changed']} changed, {counts['removed']} removed.",
        "",
        "<details><summary>Files (kinds and names of their objects)</summary>",
        "",
    ]
    letter = {"added": "A", "changed": "M", "removed": "D"}
    for changed in files[:_FILES_IN_BODY]:
        objects = f": {', '.join(changed.objects)}" if changed.objects else ""
        lines.append(f"- {letter[changed.change]} `{changed.path}`{objects}")
    if len(files) > _FILES_IN_BODY:
        lines.append(f"- and {len(files) - _FILES_IN_BODY} more files")
    lines += ["", "</details>", "", "### Preflight", "", preflight.rstrip(), ""]
    lines.append(
        "_Merge to deliver: Argo CD syncs the base branch. Updated by every `vaultflow gitops apply`._"
    )
    return "\n".join(lines) + "\n"


def _wait(
    loaded: LoadedCatalog,
    options: ApplyOptions,
    workspace: Workspace,
    tree: RenderedTree,
    *,
    report: ApplyReport,
    fresh: set[str],
    deadline: float,
    environ: Mapping[str, str],
    say: Say,
    verify_objects: bool = True,
) -> WaitReport:
    """Wait for the Applications of the changed paths (every path of the tree when nothing changed:
    the platform is checked at the branch's head), then (``verify_objects``) for ESO."""
    from vaultflow.steps.kube import api_client
    from vaultflow.steps.kube.clusters import cluster_clients

    revision = report.revision
    assert revision is not None
    all_files = {f"{options.path}/{p}" for p in tree.by_path()}
    changed = {f.path for f in report.files} or all_files
    gitops = loaded.catalog.gitops
    tracking = Tracking(
        repo_urls=frozenset({normal_repo_url(options.repo_url), normal_repo_url(gitops.repo_url)}),
        branch=options.branch,
        default_branch=workspace.default_branch,
    )
    argocd = api_client(argocd_context(loaded, options.argocd_context, environ))
    clusters = cluster_clients(loaded)
    try:
        apps = applications_of(
            changed,
            rendered=[m for _, m in tree.manifests() if m["kind"] == "Application"],
            live=list_applications(argocd, gitops.argocd_namespace),
            tracking=tracking,
            owned=options.path,
            tree_files=all_files,
        )
        if not apps:
            return WaitReport(
                commit=revision,
                converged=False,
                seconds=0.0,
                applications=[],
                objects=[],
                pending=[
                    f"no Argo CD Application in namespace {gitops.argocd_namespace} reads the changed paths "
                    f"of {options.branch} (is the app-of-apps of {options.path}/argocd registered?)"
                ],
            )
        objects = _watched_objects(tree, options.path, apps, fresh) if verify_objects else []
        say(
            f"waiting for {len(apps)} Application(s) at {revision[:12]}, then {len(objects)} "
            "ExternalSecret(s)/PushSecret(s) Ready (Argo CD asked to refresh)"
        )
        return wait_for_sync(
            argocd,
            apps,
            objects,
            clusters,
            commit=revision,
            accept=lambda seen: workspace.contains(revision, seen),
            timeout=max(0.0, deadline - time.monotonic()),
        )
    finally:
        argocd.close()
        for api in clusters.values():
            api.close()


def wait_delivered(
    loaded: LoadedCatalog,
    options: ApplyOptions,
    *,
    revision: str,
    files: list[ChangedFile],
    environ: Mapping[str, str],
    say: Say,
    verify_objects: bool = True,
) -> WaitReport:
    """The wait of :func:`apply_catalog`, for a delivery an earlier call made with ``wait=False`` (the
    ``apply-eso-resources`` pipeline's own steps): Argo CD at ``revision`` for the Applications of
    ``files`` (empty: every path of the tree), then, with ``verify_objects``, ESO Ready."""
    deadline = time.monotonic() + options.timeout
    tree = render_catalog(loaded, repo_url=options.repo_url)
    report = ApplyReport(**_base_report(options), commit=None, revision=revision, attempts=0, files=files)
    fresh = {f.path for f in files if f.change != "removed"}
    with open_workspace(options.repo_url, options.branch, environment=options.git_environment) as workspace:
        return _wait(
            loaded,
            options,
            workspace,
            tree,
            report=report,
            fresh=fresh,
            deadline=deadline,
            environ=environ,
            say=say,
            verify_objects=verify_objects,
        )


def _watched_objects(
    tree: RenderedTree, path: str, apps: list[WatchedApplication], fresh: set[str]
) -> list[WatchedObject]:
    """Every rendered ExternalSecret and PushSecret that one of ``apps`` syncs (``clusters/<name>/``)."""
    found = []
    for relative, manifest in tree.manifests():
        kind = manifest["kind"]
        parts = relative.split("/")
        if kind not in ("ExternalSecret", "PushSecret") or len(parts) < 3 or parts[0] != "clusters":
            continue
        full = f"{path}/{relative}"
        app = next((a for a in apps if covers(a.path, [full])), None)
        if app is None:
            continue
        metadata = manifest["metadata"]
        found.append(
            WatchedObject(
                kind=kind,
                cluster=parts[1],
                namespace=str(metadata.get("namespace") or ""),
                name=str(metadata["name"]),
                application=app.key,
                changed=full in fresh,
            )
        )
    return found
