"""``task demo``: the platform's lifecycle, end to end, on the local sandbox.

Each stage is what an operator does on a real platform, run against the
sandbox (real OpenBao, moto, bare Git repositories, and emulators of what
cannot run here). The demo says so loudly: nothing real is touched.

Stages:
1. validate the secrets catalog;
2. ``vault:deploy``: start the sandbox (OpenBao sealed and uninitialised, clusters named after the
   catalog's, the service accounts Helm would create), onboard every catalog cluster as
   ``vaultflow cluster onboard`` does (the pipelines' accounts and RBAC, their kubeconfig Secrets in
   the workflows cluster: ``sandbox/accounts.py``) and show its status;
3. ``vault:init``: run the ``vault-bootstrap`` pipeline on the local runner, in every cluster as its
   own service account (what its pods have: its token in the workflows cluster, the onboarded
   kubeconfig for the others): init into a 0600 keeper, unseal, configure from the catalog,
   smoke-test with ESO's own login, revoke root;
4. the pipeline's *seed* step created the catalog's missing secrets (generated keys generated;
   static keys, which humans own, get visible sandbox placeholders here); a secret whose rotation
   names a PostgreSQL credential gets the logins the sandbox's PostgreSQL accepts instead, handed
   over as a DBA would (``sandbox/credential_demo.py``; a root token from the keeper's shares,
   revoked right after);
5. ``vaultflow gitops apply --mode pr --merge --wait`` (``apply_catalog``, in the sandbox's
   environment, on the catalog's own ``repoUrl``, which the sandbox routes to its bare repository;
   every cluster reached as the delivery's own service account, never admin):
   the render goes in as a pull request on the sandbox's GitHub whose body carries the preflight
   (every Vault reference read as each cluster's ESO), merged through the API; the apply asks Argo
   CD to refresh (the sandbox's Argo CD, like Argo CD, reads Git on its own only every few minutes)
   and waits until every Application is Synced at the merge commit and every ExternalSecret and
   PushSecret Ready. The repository's first commit (a README, as its team would have created it)
   is made here on a fresh sandbox: a pull request needs a base branch;
6. what that left: the Applications Synced at the merge commit, every ExternalSecret Ready (ESO's
   data-hash), every push in its cloud (keyed fingerprints, never values); then the same apply
   again, which has nothing to change and makes no commit and no pull request;
7. ``vaultflow rotate`` (the ``rotate-secrets`` pipeline on the local runner, logged into Vault as
   the rotation service account), run as a user runs it, in a subprocess with the sandbox's
   environment, and in every cluster as the rotation's own service account (its token in the
   workflows cluster, the onboarded kubeconfig for the others, ``sandbox/accounts.py``: the emulated
   API servers enforce the RBAC the render delivered,
   as a pod of the pipeline would meet it): first ``--all-due --dry-run`` (on a freshly seeded
   sandbox nothing is due, and the demo says so), then every secret with a ``rotation`` by name;
   its report shows each target verified with its latency, and the workloads restarted (the demo
   deploys each one a rotation restarts first, as its team would have, unless it exists);
   ``prod/database`` is set and tested in PostgreSQL first (alternating users): then a login with
   what its consuming Secret holds now is accepted, and so is one with what it held before;
8. a cloud goes down for ESO during the rotation of a secret that rolls back on failure (of those
   pushed to a cloud, the one with the shortest ``verifyTimeout``): its cloud target times out,
   the previous value is written back and verified everywhere, and ``vaultflow rotate`` exits 1,
   as it must; the fault is always lifted, then ESO and Argo CD are asked to recover and every
   Application is Healthy again;
9. monitoring: the sandbox's Prometheus scraping every OpenBao node, every ESO and the Pushgateway
   (every target up), the alerts (stage 8's rollback, pushed by the run's report step, fires
   ``RotationFailed``), ``vaultflow exporter --once`` and ``vaultflow audit`` as the catalog's
   read-only observer. Skipped when Debian's Prometheus packages are not installed.

Run it again after ``task sandbox:down`` and it carries on where the sandbox stopped: the same
Vault comes back initialised and sealed, the bootstrap pipeline unseals it with the keeper's
shares, nothing is re-created, and the GitOps repository has nothing new to commit (no pull
request either); the rotations run again (each writes a new version) and the workloads are left
as they are.

When stage 5's wait times out it names what is stuck: what the apply saw of each Application and
ESO object, then each Application's sync and health, the resources behind an unhealthy one with
their message (ESO's, for ESO's kinds) and its last sync. Run it again
once the cause is gone (``vaultflow sandbox fault PROVIDER --clear`` for an injected fault) and it
recovers by itself, as an operator would (``vaultflow.sandbox.recovery``): ESO validates again the
stores it found invalid and reconciles the objects whose sync failed, Argo CD syncs again a revision
whose automated sync failed (which it never retries on its own).
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from rich.console import Console
from rich.markdown import Markdown
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from vaultflow.base.durations import parse_go_duration
from vaultflow.base.errors import OperationError, VaultflowError
from vaultflow.gitops.catalog import LoadedCatalog, load_catalog
from vaultflow.gitops.catalog.model import Catalog, Secret, WorkloadRef
from vaultflow.gitops.render import application_name, render_catalog
from vaultflow.sandbox import lifecycle
from vaultflow.sandbox.accounts import delivery_kubeconfig, onboard_clusters, pipeline_kubeconfig
from vaultflow.sandbox.admin import AdminClient
from vaultflow.sandbox.catalog_wiring import azure_vault_names, register_app_of_apps, wire_catalog
from vaultflow.sandbox.credential_demo import handover_stage, login_lines, remember
from vaultflow.sandbox.demo_observe import stale_consumer_stage
from vaultflow.sandbox.exporter import enable_exporter
from vaultflow.sandbox.faults import Fault
from vaultflow.sandbox.layout import SandboxPaths
from vaultflow.sandbox.observe import (
    ExternalSecretState,
    Fingerprints,
    PushedValue,
    applications,
    external_secrets,
    pushed_values,
    wait_for,
    wait_for_all,
    wait_for_applications,
)
from vaultflow.sandbox.platform import install_platform_accounts
from vaultflow.sandbox.postgres import postgres_spec
from vaultflow.sandbox.prometheus import alert_states, prometheus_api
from vaultflow.sandbox.recovery import recover
from vaultflow.sandbox.state import SandboxState
from vaultflow.sandbox.status_view import print_status
from vaultflow.steps.delivery.apply import ApplyOptions, ApplyReport, apply_catalog
from vaultflow.steps.delivery.pull_request import repository_name
from vaultflow.steps.rotation.report import ReportSecret, ReportTarget, RotationReport
from vaultflow.steps.rotation.restart import rollout_status
from vaultflow.steps.secrets.seed import SeedResult
from vaultflow.workflows import runner
from vaultflow.workflows.registry import load_registry
from vaultflow.workflows.runner.display import print_summary

console = Console(width=max(Console().width, 130))  # the status tables need the room
DEFAULT_DIR = Path(".sandbox")


def _stage(number: int, title: str) -> None:
    console.rule(f"[bold]{number}. {title}")


DEFAULT_TIMEOUT = 120.0


def ensure_bare_repo(path: Path) -> str:
    """The sandbox's GitOps remote: a bare repository on disk, created on first use."""
    if not (path / "HEAD").is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["git", "init", "--bare", "--initial-branch=main", str(path)], check=True, capture_output=True
        )
    return path.resolve().as_uri()


def validate_stage(catalog_path: Path) -> LoadedCatalog:
    _stage(1, "Validate the secrets catalog")
    loaded = load_catalog(catalog_path)
    catalog = loaded.catalog
    console.print(
        f"{catalog_path}: [green]valid[/green]: {len(catalog.secrets)} secrets, "
        f"{len(catalog.clusters)} clusters, {len(catalog.clouds)} clouds"
    )
    return loaded


def sandbox_stage(loaded: LoadedCatalog, sandbox_dir: Path) -> SandboxState:
    _stage(2, "vault:deploy: start the local sandbox (OpenBao sealed and uninitialised)")
    names = [cluster.name for cluster in loaded.catalog.clusters]
    result = lifecycle.up(
        sandbox_dir,
        cluster_names=names,
        azure_vaults=azure_vault_names(loaded.catalog),
        postgres=postgres_spec(loaded.catalog),  # a rotation sets and tests its credential there
    )
    install_platform_accounts(result.state, loaded.catalog)
    repo_url = ensure_bare_repo(SandboxPaths(Path(result.state.directory)).gitops_repo)
    for line in wire_catalog(result.state, loaded, repo_url=repo_url):
        console.print(f"[dim]{line}[/dim]")
    # `vaultflow cluster onboard` for each catalog cluster, as its admin would: the pipelines' accounts
    # and RBAC there, their kubeconfig Secrets in the workflows cluster (sandbox/accounts.py)
    onboarded = onboard_clusters(result.state, loaded)
    changed = [
        line for line in onboarded if line.rsplit(": ", 1)[-1].startswith(("created", "updated", "replaced"))
    ]
    console.print(
        f"[dim]vaultflow cluster onboard, every catalog cluster: {len(onboarded)} objects, "
        f"{len(changed)} created or changed; the pipelines act as their own service accounts[/dim]"
    )
    exporter = enable_exporter(result.state, loaded)  # logs in to Vault once the bootstrap configured it
    console.print(f"[dim]vaultflow exporter on {exporter}, as the observer, scraped by Prometheus[/dim]")
    for line in result.repaired:
        console.print(f"[yellow]{line}[/yellow]")
    if result.resumed:
        console.print("sandbox started again on its kept state: the same Vault, initialised and sealed")
    else:
        console.print("sandbox started" if result.started else "sandbox already running: unchanged")
    print_status(lifecycle.status(sandbox_dir))
    return result.state


def bootstrap_stage(loaded: LoadedCatalog, state: SandboxState) -> SeedResult:
    _stage(3, "vault:init: the vault-bootstrap pipeline on the local runner")
    registry = load_registry()
    spec = runner.load(registry.document("vault-bootstrap"), lookup=registry.lookup)
    paths = SandboxPaths(Path(state.directory))
    keeper = paths.keeper.as_uri()
    parameters = {
        "vault-addresses": ",".join(node.address for node in state.vault),
        "ca-cert": state.ca_file,  # OpenBao's certificate chains to the sandbox CA
        "keeper": keeper,
        "catalog": str(loaded.source),
        "seed-placeholders": "true",  # the sandbox has no human to set static keys
    }
    # The steps reach every cluster as the bootstrap's service account, as its pods would (their own
    # token in the workflows cluster, the onboarded kubeconfig for the others), under the shipped RBAC.
    account = loaded.catalog.vault.kubernetes_auth.bootstrap_service_account
    os.environ["KUBECONFIG"] = str(pipeline_kubeconfig(state, loaded, account))
    try:
        result = runner.run(spec, parameters, run_root=paths.runs)
    finally:
        os.environ["KUBECONFIG"] = state.kubeconfig  # the later stages' own clients: like kubectl would
    print_summary(console, result)
    if not result.succeeded:
        raise OperationError(f"vault-bootstrap failed: see the step logs in {paths.runs}")
    console.print(
        f"it ran as service account {account.namespace}/{account.name} in every cluster, not as admin"
    )
    console.print(f"unseal shares are in {keeper} (mode 0600); the root token was revoked")
    return SeedResult.model_validate_json(result.node("seed").result or "{}")


def seed_stage(seeded: SeedResult) -> None:
    _stage(4, "The catalog's secrets in Vault (the pipeline's seed step)")
    table = Table(title="Vault (values never shown)")
    for column in ("path", "keys", "version", "this run"):
        table.add_column(column)
    for secret in seeded.secrets:
        table.add_row(
            secret.path, ", ".join(secret.keys), str(secret.version), "created" if secret.created else "kept"
        )
    console.print(table)


README = (
    "# Platform GitOps repository\n\n"
    "What Argo CD syncs into the clusters. `vaultflow gitops apply` renders the secrets catalog into\n"
    "`eso-resources/` through pull requests; nobody applies these manifests by hand.\n\n"
    "(This copy is the vaultflow local sandbox's.)\n"
)


def _git(repo: Path, *arguments: str, text_input: str | None = None) -> str:
    done = subprocess.run(
        ["git", "--git-dir", str(repo), *arguments],
        input=text_input,
        capture_output=True,
        text=True,
        check=False,
        env={
            **os.environ,
            "GIT_AUTHOR_NAME": "platform-team",
            "GIT_AUTHOR_EMAIL": "platform-team@example.com",
            "GIT_COMMITTER_NAME": "platform-team",
            "GIT_COMMITTER_EMAIL": "platform-team@example.com",
        },
    )
    if done.returncode != 0:
        raise OperationError(f"git {arguments[0]} on {repo}: {done.stderr.strip()}")
    return done.stdout.strip()


def ensure_base_branch(repo: Path, branch: str) -> str | None:
    """The GitOps repository as the platform team created it: ``branch`` with a README (a pull request
    needs a base). The commit made, None when the branch exists (nothing is changed then)."""
    found = subprocess.run(
        ["git", "--git-dir", str(repo), "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"],
        capture_output=True,
        check=False,
    )
    if found.returncode == 0:
        return None
    blob = _git(repo, "hash-object", "-w", "--stdin", text_input=README)
    tree = _git(repo, "mktree", text_input=f"100644 blob {blob}\tREADME.md\n")
    commit = _git(repo, "commit-tree", tree, "-m", "Initial commit")
    _git(repo, "update-ref", f"refs/heads/{branch}", commit, "0" * 40)  # only if it still does not exist
    return commit


@contextmanager
def sandbox_environment(state: SandboxState) -> Iterator[dict[str, str]]:
    """This process in the sandbox's environment (what `vaultflow sandbox env` exports) while the
    delivery runs: the git processes it starts reach the catalog's ``repoUrl`` through Git's
    ``insteadOf``, PyGithub the GitHub emulator, the Kubernetes client the emulated clusters."""
    added = lifecycle.environment(state)
    saved = {name: os.environ.get(name) for name in added}
    os.environ.update(added)
    try:
        yield dict(os.environ)
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def apply_options(loaded: LoadedCatalog, state: SandboxState, *, timeout: float) -> ApplyOptions:
    """``vaultflow gitops apply --mode pr --merge --wait`` after ``eval "$(vaultflow sandbox env)"``:
    the catalog's own repository, branch and path, the preflight reading the sandbox's Vault."""
    gitops = loaded.catalog.gitops
    return ApplyOptions(
        repo_url=gitops.repo_url,
        branch=gitops.revision,
        path=gitops.path,
        mode="pr",
        merge=True,
        wait=True,
        timeout=timeout,
        argocd_context=state.management_cluster.name,
        vault_addresses=lifecycle.environment(state)["VAULT_ADDRESSES"],
        ca_cert=lifecycle.environment(state)["VAULT_CACERT"],
    )


@dataclass(frozen=True)
class Delivered:
    """What stage 5 delivered: the first apply's report and the Applications that sync the path."""

    report: ApplyReport
    applications: list[str]
    repo: Path  # the bare repository the catalog's repoUrl is routed to


def _say(line: str) -> None:
    console.print(f"[dim]  {escape(line)}[/dim]")


def _apply(
    loaded: LoadedCatalog, state: SandboxState, options: ApplyOptions, names: list[str]
) -> ApplyReport:
    """One ``apply_catalog``; OperationError naming what is stuck when Argo CD or ESO did not get there
    (the apply's own findings, then the sandbox's view of each Application)."""
    # every cluster reached as the delivery's own service account (sandbox/accounts.py), not as admin
    kubeconfig = delivery_kubeconfig(state, loaded)
    with sandbox_environment(state) as environ:
        os.environ["KUBECONFIG"] = environ["KUBECONFIG"] = str(kubeconfig)
        report = apply_catalog(loaded, options, environ=environ, say=_say)
    if report.converged:
        return report
    wait = report.wait
    assert wait is not None  # not converged: there was a wait
    for line in wait.pending:
        console.print(f"[red]✖[/red] {escape(line)}")
    seen = {app.name: app.describe() for app in applications(state)}
    described = [seen.get(name, f"{name} missing") for name in names]
    objects = [line for line in wait.pending if not line.startswith("Application ")]
    raise OperationError(
        f"timed out after {options.timeout:g}s waiting for Applications {', '.join(names)} Synced and "
        f"Healthy at {wait.commit[:12]}, then every ExternalSecret and PushSecret Ready "
        f"(last seen: {' | '.join(described + objects)})"
    )


def _preflight_section(state: SandboxState, loaded: LoadedCatalog, number: int) -> str:
    """The pull request's body as the GitHub emulator serves it, from its ``### Preflight`` heading."""
    from github import Auth, Github

    token = Path(state.github_token_file).read_text(encoding="utf-8").strip()
    github = Github(
        base_url=state.github_api_url,
        auth=Auth.Token(token),
        verify=state.ca_file,
        seconds_between_requests=None,
        seconds_between_writes=None,
    )
    try:
        body = github.get_repo(repository_name(loaded.catalog.gitops.repo_url)).get_pull(number).body or ""
    finally:
        github.close()
    heading = body.find("### Preflight")
    return body[heading:] if heading >= 0 else "(the body has no preflight section)"


def delivery_stage(
    loaded: LoadedCatalog, state: SandboxState, *, started: float, timeout: float = DEFAULT_TIMEOUT
) -> Delivered:
    """``started``: when this run began; what failed before it is what a re-run recovers from."""
    _stage(5, "Deliver through a pull request: preflight in its body, merged through the API")
    gitops = loaded.catalog.gitops
    repo = SandboxPaths(Path(state.directory)).gitops_repo
    initial = ensure_base_branch(repo, gitops.revision)
    if initial is not None:
        console.print(
            f"the GitOps repository {gitops.repo_url} (the sandbox's {repo}) gets its first commit "
            f"{initial[:12]} on {gitops.revision}, a README, as its team would have created it"
        )
    tree = render_catalog(loaded, repo_url=gitops.repo_url)
    kinds = Counter(manifest["kind"] for _, manifest in tree.manifests())
    table = Table(title=f"What the catalog renders into {gitops.path}/")
    table.add_column("kind")
    table.add_column("count", justify="right")
    for kind, count in sorted(kinds.items()):
        table.add_row(kind, str(count))
    table.add_row("Vault policy (HCL)", str(sum(1 for f in tree.files if f.path.endswith(".hcl"))))
    console.print(table)

    root_app = register_app_of_apps(state, loaded, gitops.repo_url)
    names = [root_app, *(application_name(cluster) for cluster in loaded.catalog.clusters)]
    spec = state.spec
    console.print(
        f"Argo CD: the app-of-apps [bold]{root_app}[/bold] over {gitops.path}/argocd is registered (the one "
        f"Application a platform team creates by hand); the sandbox's Argo CD reads Git every "
        f"{spec.argocd_reconciliation_timeout:g}s (+ up to {spec.argocd_reconciliation_jitter:g}s) on its "
        "own, as Argo CD does: the apply asks it to refresh instead"
    )
    clusters = [cluster.name for cluster in loaded.catalog.clusters]
    head = branch_head(repo, gitops.revision)
    for line in recover(state, clusters, names, head, before=started):  # what failed before this run
        console.print(f"[yellow]{escape(line)}[/yellow]")

    console.print(
        f"[bold]$ vaultflow gitops apply --catalog {escape(str(loaded.source))} --mode pr --merge --wait"
    )
    console.print(
        "[dim]as service account argo/vaultflow-delivery in every cluster (its own token in the workflows "
        "cluster and Argo CD's, the onboarded kubeconfig for the others), under the shipped RBAC[/dim]"
    )
    report = _apply(loaded, state, apply_options(loaded, state, timeout=timeout), names)
    if report.preflight:
        console.print(f"preflight: {escape(report.preflight)}")
    pull = report.pull_request
    if pull is None:
        console.print(
            f"nothing to deliver: {gitops.revision} already holds what the catalog renders: "
            "no pull request, [bold]no commit[/bold]"
        )
    else:
        console.print(
            f"pull request [bold]#{pull.number}[/bold] {pull.action} from {pull.branch}: {pull.url}; "
            f"merged through the API into {pull.base} at [bold]{(pull.merge_commit or '')[:12]}[/bold]"
        )
        console.print(
            Panel(
                Markdown(_preflight_section(state, loaded, pull.number)),
                title=f"pull request #{pull.number}, its body as GitHub shows it (the preflight part)",
            )
        )
    return Delivered(report, names, repo)


def sync_stage(
    loaded: LoadedCatalog,
    state: SandboxState,
    delivered: Delivered,
    fingerprints: Fingerprints,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> Synced:
    _stage(6, "Argo CD synced what was merged; ESO pulled from Vault and pushed to the clouds")
    report = delivered.report
    assert report.wait is not None and report.revision is not None  # a converged apply with --wait
    revision = report.revision
    apps = Table(title=f"Argo CD Applications (management cluster), awaited at {revision[:12]}")
    for column in ("application", "sync", "health", "revision", "synced at that commit"):
        apps.add_column(column)
    for app in report.wait.applications:
        apps.add_row(app.name, app.sync, app.health, app.revision[:12], "yes" if app.converged else "no")
    console.print(apps)

    clusters = [cluster.name for cluster in loaded.catalog.clusters]
    ready = wait_for_all(
        lambda: external_secrets(state, clusters),
        "ready",
        _not_ready,
        what="every ExternalSecret Ready",
        timeout=timeout,
    )
    secrets_table = Table(title="ExternalSecrets")
    for column in ("cluster", "namespace", "name", "ready", "reason", "data-hash (of the Secret)"):
        secrets_table.add_column(column)
    for es in ready:
        secrets_table.add_row(
            es.cluster, es.namespace, es.name, "yes" if es.ready else "no", es.reason, es.data_hash[:16]
        )
    console.print(secrets_table)

    pushed = wait_for_all(
        lambda: pushed_values(state, loaded, fingerprints),
        "fingerprint",
        _absent,
        what="every pushed value present in its cloud",
        timeout=timeout,
    )
    pushes_table = Table(title="Pushed to the clouds (emulated); equal fingerprints: equal values (this run)")
    for column in ("cloud", "provider", "remote key", "value fingerprint"):
        pushes_table.add_column(column)
    for value in pushed:
        pushes_table.add_row(value.cloud, value.provider, value.remote_key, value.fingerprint or "-")
    console.print(pushes_table)

    gitops = loaded.catalog.gitops
    console.print("Apply again, with nothing to change:")
    console.print(
        f"[bold]$ vaultflow gitops apply --catalog {escape(str(loaded.source))} --mode pr --merge --wait"
    )
    before = branch_head(delivered.repo, gitops.revision)
    again = _apply(loaded, state, apply_options(loaded, state, timeout=timeout), delivered.applications)
    after = branch_head(delivered.repo, gitops.revision)
    if again.commit is not None or again.pull_request is not None or after != before:
        raise OperationError(
            f"the second apply changed the repository ({gitops.revision} {before[:12]} -> {after[:12]}): "
            "rendering is not deterministic"
        )
    console.print(
        f"second apply: nothing to change, [bold]no commit[/bold] and no pull request; {gitops.revision} "
        f"still at {after[:12]}, every Application still Synced there"
    )
    return Synced(delivered.applications, revision)


@dataclass(frozen=True)
class Synced:
    """What stage 6 saw Synced and Healthy: stage 8 waits for the same again once its fault is lifted."""

    applications: list[str]
    revision: str


def _not_ready(es: ExternalSecretState) -> str:
    return f"{es.cluster} {es.namespace}/{es.name} {es.reason or 'not Ready'}: {es.message}"


def _absent(value: PushedValue) -> str:
    return f"{value.cloud} {value.remote_key} absent"


# ---------------------------------------------------------------- stages 7 and 8: rotation

_WORKLOAD_PLURALS = {"Deployment": "deployments", "StatefulSet": "statefulsets", "DaemonSet": "daemonsets"}


def restarted_workloads(catalog: Catalog) -> list[WorkloadRef]:
    """Every workload a rotation of the catalog restarts, once each, in catalog order."""
    found: dict[tuple[str, str, str, str], WorkloadRef] = {}
    for secret in catalog.secrets:
        for ref in secret.rotation.restart if secret.rotation else []:
            found.setdefault((ref.cluster, ref.namespace, ref.kind, ref.name), ref)
    return list(found.values())


def workload_manifest(ref: WorkloadRef, secret_names: list[str]) -> dict[str, Any]:
    """The workload as its team would have deployed it: its pods read ``secret_names`` through
    ``envFrom`` (read when a pod starts, which is why the rotation restarts it)."""
    labels = {"app.kubernetes.io/name": ref.name}
    container = {
        "name": ref.name,
        "image": f"registry.example.com/{ref.namespace}/{ref.name}:1.0.0",
        "envFrom": [{"secretRef": {"name": name}} for name in secret_names],
    }
    spec: dict[str, Any] = {
        "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
    }
    if ref.kind != "DaemonSet":
        spec["replicas"] = 2
    if ref.kind == "StatefulSet":
        spec["serviceName"] = ref.name
    return {
        "apiVersion": "apps/v1",
        "kind": ref.kind,
        "metadata": {"name": ref.name, "namespace": ref.namespace, "labels": labels},
        "spec": spec,
    }


def _secrets_read_by(catalog: Catalog, ref: WorkloadRef) -> list[str]:
    """The Secrets of the catalog's consumers beside ``ref`` whose rotation restarts it."""
    names = [
        consumer.secret_name
        for secret in catalog.secrets
        if secret.rotation and ref in secret.rotation.restart
        for consumer in secret.consumers
        if (consumer.cluster, consumer.namespace) == (ref.cluster, ref.namespace)
    ]
    return list(dict.fromkeys(names))


def ensure_workloads(state: SandboxState, catalog: Catalog, *, timeout: float) -> list[str]:
    """Create each workload a rotation restarts if it does not exist (a team deployed it; the demo
    stands in), and wait until it is rolled out; one line per workload."""
    return [_ensure_workload(state, catalog, ref, timeout) for ref in restarted_workloads(catalog)]


def _ensure_workload(state: SandboxState, catalog: Catalog, ref: WorkloadRef, timeout: float) -> str:
    plural, where = _WORKLOAD_PLURALS[ref.kind], f"{ref.kind} {ref.namespace}/{ref.name} in {ref.cluster}"
    with config.new_client_from_config(config_file=state.kubeconfig, context=ref.cluster) as api:
        custom = client.CustomObjectsApi(api)  # the apps/v1 REST paths, as kubectl apply uses them
        body = workload_manifest(ref, _secrets_read_by(catalog, ref))
        try:
            custom.create_namespaced_custom_object("apps", "v1", ref.namespace, plural, body)
            done = "created, as its team's deployment would have"
        except ApiException as error:
            if error.status != 409:
                raise OperationError(f"{where}: cannot create it: {error.status} {error.reason}") from None
            done = "already deployed: unchanged"
        status = wait_for(
            lambda: _rolled_out(custom, ref, plural), timeout=timeout, what=f"{where} rolled out"
        )
    return f"{where}: {done}; {status}"


def _rolled_out(custom: Any, ref: WorkloadRef, plural: str) -> str | None:
    found = custom.get_namespaced_custom_object("apps", "v1", ref.namespace, plural, ref.name)
    status = rollout_status(ref.kind, found)
    return status.message if status.state == "done" else None


def rotate_arguments(catalog: Path, sandbox_dir: Path, *extra: str) -> list[str]:
    """``vaultflow rotate``'s arguments on the sandbox: those of ``task rotate -- EXTRA``, and
    ``--quiet`` (the demo's output is no terminal for a live tree)."""
    runs = SandboxPaths(sandbox_dir).runs
    return ["rotate", "--catalog", str(catalog), "--run-dir", str(runs), "--quiet", *extra]


@dataclass(frozen=True)
class RotateCli:
    """``vaultflow rotate`` as the demo runs it: what a user runs after ``eval "$(vaultflow sandbox
    env)"``, on the catalog as the user named it."""

    state: SandboxState
    catalog: Path
    sandbox_dir: Path
    rotation_kubeconfig: Path | None = None  # the rotation's own identity in every cluster (accounts.py)

    def report_file(self, name: str) -> Path:
        """Where a run of the demo writes a report (``--report``); an older one is removed first, so
        that what is read afterwards is this run's."""
        path = SandboxPaths(self.sandbox_dir).runs / f"demo-{name}-report.json"
        path.unlink(missing_ok=True)
        return path

    def run(self, *extra: str) -> tuple[int, str]:
        """Run it in a subprocess, its command line shown first and its output as it comes (stdout
        and stderr, in order); (exit code, output)."""
        return self.vaultflow(
            *rotate_arguments(self.catalog, self.sandbox_dir, *extra), kubeconfig=self.rotation_kubeconfig
        )

    def vaultflow(
        self, *arguments: str, show: bool = True, kubeconfig: Path | None = None
    ) -> tuple[int, str]:
        """Any ``vaultflow`` command, run the same way (``show=False``: its output is returned only;
        ``kubeconfig``: the clusters reached as the identity it holds instead of the admin's)."""
        console.print(f"[bold]$ {escape(shlex.join(['python', '-m', 'vaultflow', *arguments]))}")
        environment = {
            **os.environ,
            **lifecycle.environment(self.state),  # what `vaultflow sandbox env` exports
            **({"KUBECONFIG": str(kubeconfig)} if kubeconfig else {}),
            "COLUMNS": str(console.width),  # its tables as wide as the demo's
            "PYTHONUNBUFFERED": "1",  # each line as it is printed, not when the run ends
        }
        lines = []
        with subprocess.Popen(
            [sys.executable, "-m", "vaultflow", *arguments],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ) as process:
            assert process.stdout is not None  # stdout=PIPE
            for line in process.stdout:
                lines.append(line)
                if show:
                    console.out(line.rstrip("\n"), highlight=False)  # as printed: no markup, no re-wrapping
        return process.wait(), "".join(lines)


def planned_paths(dry_run_output: str) -> list[str]:
    """The paths a ``vaultflow rotate --dry-run`` (table output) plans: its ``- PATH (...)`` lines."""
    return [line[2:].split(" (", 1)[0] for line in dry_run_output.splitlines() if line.startswith("- ")]


def _read_report(path: Path, code: int) -> RotationReport:
    if not path.is_file():
        raise OperationError(f"`vaultflow rotate` exited {code} without a report: see its output above")
    return RotationReport.model_validate_json(path.read_text(encoding="utf-8"))


def _where(target: ReportTarget) -> str:
    place = f"{target.cluster}/{target.namespace}"
    return f"{target.cloud} (pushed from {place})" if target.cloud else place


def rotated_line(secret: ReportSecret) -> str:
    """One secret of the report in words: its outcome, its targets' latency and its restarts."""
    verified = [t for t in secret.targets if t.phase == "Verified"]
    slowest = max((t.seconds or 0.0 for t in verified), default=0.0)
    line = (
        f"{secret.path}: {secret.outcome} v{secret.previous_version} → v{secret.new_version}; "
        f"{len(verified)}/{len(secret.targets)} targets Verified holding the new version "
        f"(the slowest after {slowest:.1f}s)"
    )
    restarts = [f"{r.kind} {r.namespace}/{r.name} in {r.cluster} {r.phase}" for r in secret.restarts]
    return line + (f"; then {', '.join(restarts)}" if restarts else "")


def rotation_stage(loaded: LoadedCatalog, cli: RotateCli, *, timeout: float) -> None:
    _stage(7, "Rotate the secrets (the rotate-secrets pipeline)")
    rotated = [secret.path for secret in loaded.catalog.secrets if secret.rotation is not None]
    if not rotated:
        console.print("no secret of this catalog has a [bold]rotation[/bold]: nothing to rotate")
        return
    for line in ensure_workloads(cli.state, loaded.catalog, timeout=timeout):
        console.print(escape(line))
    quoted = shlex.quote(str(cli.sandbox_dir))
    console.print(
        f'Each command runs in the sandbox\'s environment (`eval "$(vaultflow sandbox env --dir {quoted})"`, '
        "or `task rotate -- ARGS`), logged into Vault as the rotation service account (Kubernetes auth), "
        "never as root. First what the schedules ask for, as a dry run:"
    )
    if cli.rotation_kubeconfig is not None:
        account = loaded.catalog.vault.kubernetes_auth.rotation_service_account
        console.print(
            f"In every cluster it acts as service account {account.namespace}/{account.name}, under the "
            f"RBAC the render delivered (kubeconfig {escape(str(cli.rotation_kubeconfig))}), not as admin."
        )
    code, output = cli.run("--all-due", "--dry-run")
    if code != 0:
        raise OperationError(f"`vaultflow rotate --all-due --dry-run` exited {code}: see its output above")
    due = planned_paths(output)
    if due:
        console.print(f"due now: {', '.join(due)} (a schedule fired since it was last written)")
    else:
        console.print(
            "[bold]nothing is due[/bold]: no schedule has fired since each secret was last written "
            "(the seed wrote them minutes ago, or an earlier run of the demo rotated them). "
            "A rotation by name does not wait for the schedule:"
        )
    report_file = cli.report_file("rotation")
    logins = remember(loaded, cli.state)  # what each database credential's consumer holds before
    code, _ = cli.run("--report", str(report_file), *rotated)
    report = _read_report(report_file, code)
    if code != 0:
        raise OperationError(f"`vaultflow rotate` exited {code}: a secret did not rotate (the report above)")
    for secret in report.secrets:
        console.print(f"[green]✔[/green] {escape(rotated_line(secret))}")
    for line in login_lines(loaded, cli.state, logins):  # set and tested in PostgreSQL before promoted
        console.print(escape(line))
    console.print(f"report (JSON, references and timings only): {report_file}")


def fault_candidate(catalog: Catalog) -> Secret | None:
    """The secret stage 8 rotates with a cloud down: one that rolls back on failure and is pushed to a
    cloud; of those, the one with the shortest ``verifyTimeout`` (the demo waits it out)."""
    candidates = [
        (parse_go_duration(secret.rotation.verify_timeout), index, secret)
        for index, secret in enumerate(catalog.secrets)
        if secret.rotation and secret.rotation.on_failure == "rollback" and secret.pushes
    ]
    return min(candidates, key=lambda c: c[:2])[2] if candidates else None


def fault_stage(loaded: LoadedCatalog, cli: RotateCli, synced: Synced, *, timeout: float) -> bool:
    """True when a rotation rolled back (the catalog has a secret to run it on)."""
    _stage(8, "A cloud fault during a rotation, and the rollback")
    secret = fault_candidate(loaded.catalog)
    if secret is None or secret.rotation is None:
        console.print(
            "no rotated secret of this catalog is pushed to a cloud and rolls back on failure: skipped"
        )
        return False
    cloud = loaded.catalog.cloud(secret.pushes[0].cloud)
    provider = cloud.provider
    console.print(
        f"{provider} goes down for ESO (`vaultflow sandbox fault {provider} --down`): ESO cannot push "
        f"{secret.path} to {cloud.name}. The rotation waits its verifyTimeout "
        f"({secret.rotation.verify_timeout}) for {cloud.name} to hold the new value, then rolls back "
        "(onFailure: rollback): exit 1, the expected outcome here."
    )
    report_file = cli.report_file("rollback")
    admin = AdminClient.for_state(cli.state)
    try:
        admin.set_fault(provider, Fault(down=True))
        code, _ = cli.run("--report", str(report_file), secret.path)
    finally:  # whatever happened, the sandbox is left without the fault
        admin.clear_faults(provider)
        console.print(
            f"fault lifted: {provider} answers ESO again (`vaultflow sandbox fault {provider} --clear`)"
        )
    for line in rollback_lines(_read_report(report_file, code), code):
        console.print(escape(line))
    clusters = [cluster.name for cluster in loaded.catalog.clusters]
    for line in recover(cli.state, clusters, synced.applications, synced.revision, before=time.time()):
        console.print(f"[yellow]{escape(line)}[/yellow]")
    wait_for_applications(cli.state, synced.revision, synced.applications, timeout=timeout)
    console.print(f"every Application Synced and Healthy again: ESO pushes to {cloud.name} again")
    return True


def monitoring_stage(loaded: LoadedCatalog, cli: RotateCli, *, rolled_back: bool, timeout: float) -> None:
    _stage(9, "Monitoring: Prometheus, the alerts, the exporter and the audit")
    state = cli.state
    if not state.prometheus:
        console.print("Prometheus is not installed on this machine: skipped (`task demo` installs it)")
        return
    wait_for(
        lambda: _targets(state.prometheus) if all(up for _, up in _targets(state.prometheus)) else None,
        timeout=timeout,
        what="every Prometheus target up",
    )
    table = Table(title=f"Prometheus {state.prometheus}: what it scrapes")
    for column in ("job", "target", "health"):
        table.add_column(column)
    for target in prometheus_api(state.prometheus, "targets?state=active")["activeTargets"]:
        table.add_row(target["labels"]["job"], target["labels"]["instance"], target["health"])
    console.print(table)
    if rolled_back:  # stage 8's run pushed its outcome: the alert that reads it fires
        console.print("stage 8's rotation rolled back: its report step pushed that to the Pushgateway")
        wait_for(
            lambda: alert_states(state.prometheus, "RotationFailed") == ["firing"] or None,
            timeout=timeout,
            what="the RotationFailed alert to fire",
        )
    alerts = prometheus_api(state.prometheus, "alerts")["alerts"]
    for alert in alerts:
        labels = alert["labels"]
        console.print(f"alert {labels['alertname']} ({labels.get('severity', '?')}): {alert['state']}")
    if not alerts:
        console.print("no alert pending or firing: Vault unsealed, ESO syncing, rotations on schedule")
    console.print(
        "the exporter and the audit read Vault as the catalog's observer (Kubernetes auth, policy "
        "vaultflow-observer: metadata only), never root:"
    )
    code, scrape = cli.vaultflow("exporter", "--catalog", str(cli.catalog), "--once", show=False)
    if code != 0:
        raise OperationError(f"vaultflow exporter --once exited {code}")
    shown = [line for line in scrape.splitlines() if line.startswith(EXPORTER_SHOWN)]
    console.print(f"{len(scrape.splitlines())} lines scraped; of them:")
    for line in shown:
        console.out(line, highlight=False)
    code, _ = cli.vaultflow("audit", "--catalog", str(cli.catalog))
    if code not in (0, 1):
        raise OperationError(f"vaultflow audit exited {code}")
    if code == 1:
        console.print("the audit found the drift above (exit 1)")


EXPORTER_SHOWN = ("vaultflow_secret_rotation_overdue_seconds", "vaultflow_exporter_source_up")


def _targets(url: str) -> list[tuple[str, bool]]:
    return [
        (target["labels"]["job"], target["health"] == "up")
        for target in prometheus_api(url, "targets?state=active")["activeTargets"]
    ]


def rollback_lines(report: RotationReport, code: int) -> list[str]:
    """What stage 8's report says, in words; OperationError unless its one secret failed and was
    rolled back in full."""
    if len(report.secrets) != 1:
        raise OperationError(f"expected one secret in the report, found {len(report.secrets)}")
    entry = report.secrets[0]
    rolled_back = all(t.phase == "Verified" for t in entry.rollback_targets) and entry.rollback_targets
    if code != 1 or entry.outcome != "RolledBack" or not rolled_back:
        raise OperationError(
            f"{entry.path}: expected a failed rotation rolled back everywhere, got exit {code} and "
            f"{entry.outcome}{': ' + entry.message if entry.message else ''} (the report above)"
        )
    lines = [
        f"✖ {t.kind} {t.name} in {_where(t)}: {t.phase}: {t.message}"
        for t in entry.targets
        if t.phase != "Verified"
    ]
    verified = ", ".join(f"{t.kind} {t.name}" for t in entry.rollback_targets)
    lines.append(
        f"↺ {entry.path}: {entry.outcome}: the previous value written back as v{entry.rollback_version}, "
        f"and every target Verified holding it again ({verified})"
    )
    lines.append(
        "`vaultflow rotate` exited 1, as it must: the secret did not rotate; nothing is left half-rotated"
    )
    return lines


def branch_head(repo: Path, branch: str) -> str:
    """The commit ``branch`` points at in the bare repository: what Argo CD syncs when nothing was
    committed this run (the Applications may not have synced it yet, after a restart for one)."""
    found = subprocess.run(
        ["git", "--git-dir", str(repo), "rev-parse", "--verify", f"refs/heads/{branch}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode != 0:
        raise OperationError(f"{repo} has no branch {branch}: {found.stderr.strip()}")
    return found.stdout.strip()


def closing_hint(sandbox_dir: Path) -> str:
    """How to explore and stop the sandbox the demo ran in, naming its directory."""
    quoted = shlex.quote(str(sandbox_dir))
    task_dir = "" if sandbox_dir == DEFAULT_DIR else f" SANDBOX_DIR={quoted}"
    return (
        f"The sandbox keeps running in {sandbox_dir}: explore it with "
        f'`eval "$(vaultflow sandbox env --dir {quoted})"`; '
        f"stop it with `task sandbox:down{task_dir}` (its state is kept for the next `task demo`; "
        f"`vaultflow sandbox down --purge --dir {quoted}` removes it)."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vaultflow.sandbox.demo", description=__doc__)
    parser.add_argument("--catalog", type=Path, default=Path("examples/catalog.yaml"))
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="sandbox state directory")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        help=(
            "seconds each delivery of stages 5-6 (preflight, pull request, merge, Argo CD and ESO) and "
            "each wait of stage 6 take at most, and stages 7-8 a workload's rollout and the recovery "
            "after the fault (default %(default)g)"
        ),
    )
    args = parser.parse_args(argv)
    started = time.time()
    console.print(
        Panel(
            "vaultflow demo on the [bold]LOCAL SANDBOX[/bold]: real OpenBao, moto and Git on this machine, "
            "emulators for Kubernetes, ESO, Argo CD, GCP and Azure. No real cluster or cloud is touched.",
            style="yellow",
        )
    )
    try:
        loaded = validate_stage(args.catalog)
        state = sandbox_stage(loaded, args.dir)
        seed_stage(bootstrap_stage(loaded, state))
        handover_stage(loaded, state, lambda line: console.print(escape(line)))
        delivered = delivery_stage(loaded, state, started=started, timeout=args.timeout)
        synced = sync_stage(loaded, state, delivered, Fingerprints(), timeout=args.timeout)
        rotation_account = loaded.catalog.vault.kubernetes_auth.rotation_service_account
        cli = RotateCli(state, args.catalog, args.dir, pipeline_kubeconfig(state, loaded, rotation_account))
        rotation_stage(loaded, cli, timeout=args.timeout)
        rolled_back = fault_stage(loaded, cli, synced, timeout=args.timeout)
        monitoring_stage(loaded, cli, rolled_back=rolled_back, timeout=args.timeout)
        stale_consumer_stage(
            loaded,
            state,
            vaultflow=cli.vaultflow,
            console=console,
            applications=synced.applications,
            revision=synced.revision,
            timeout=args.timeout,
        )
    except VaultflowError as error:
        console.print(f"[red]error:[/red] {escape(str(error))}")  # controllers' messages are not markup
        return error.exit_code
    console.rule("[green]demo finished")
    console.print(closing_hint(args.dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
