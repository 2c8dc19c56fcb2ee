"""``task demo``: the platform's lifecycle, end to end, on the local sandbox.

Each stage is what an operator does on a real platform, run against the
sandbox (real OpenBao, moto, bare Git repositories, and emulators of what
cannot run here). The demo says so loudly: nothing real is touched.

Stages:
1. validate the secrets catalog;
2. ``vault:deploy``: start the sandbox (OpenBao sealed and uninitialised, clusters named after the
   catalog's, the service accounts Helm would create) and show its status;
3. ``vault:init``: run the ``vault-bootstrap`` pipeline on the local runner: init into a 0600 keeper,
   unseal, configure from the catalog, smoke-test with ESO's own login, revoke root;
4. the pipeline's *seed* step created the catalog's missing secrets (generated keys generated;
   static keys, which humans own, get visible sandbox placeholders here);
5. render the catalog and commit the tree to the sandbox's GitOps repository;
6. Argo CD syncs the commit into the clusters, ESO makes every ExternalSecret Ready and pushes
   to the clouds; shown as ESO's data-hash and keyed fingerprints, never values;
7. ``vaultflow rotate`` (the ``rotate-secrets`` pipeline on the local runner, logged into Vault as
   the rotation service account), run as a user runs it, in a subprocess with the sandbox's
   environment: first ``--all-due --dry-run`` (on a freshly seeded sandbox nothing is due, and the
   demo says so), then every secret with a ``rotation`` by name; its report shows each target
   verified with its latency, and the workloads restarted (the demo deploys each one a rotation
   restarts first, as its team would have, unless it exists);
8. a cloud goes down for ESO during the rotation of a secret that rolls back on failure (of those
   pushed to a cloud, the one with the shortest ``verifyTimeout``): its cloud target times out,
   the previous value is written back and verified everywhere, and ``vaultflow rotate`` exits 1,
   as it must; the fault is always lifted, then ESO and Argo CD are asked to recover and every
   Application is Healthy again.

Run it again after ``task sandbox:down`` and it carries on where the sandbox stopped: the same
Vault comes back initialised and sealed, the bootstrap pipeline unseals it with the keeper's
shares, nothing is re-created, and the GitOps repository has nothing new to commit; the
rotations run again (each writes a new version) and the workloads are left as they are.

When stage 6 times out it names what is stuck: each Application's sync and health, the resources
behind an unhealthy one with their message (ESO's, for ESO's kinds) and its last sync. Run it again
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from vaultflow.base.durations import parse_go_duration
from vaultflow.base.errors import OperationError, VaultflowError
from vaultflow.gitops.catalog import LoadedCatalog, load_catalog
from vaultflow.gitops.catalog.model import Catalog, Secret, WorkloadRef
from vaultflow.gitops.git_delivery import Delivery, deliver
from vaultflow.gitops.render import application_name, render_catalog
from vaultflow.sandbox import lifecycle
from vaultflow.sandbox.admin import AdminClient
from vaultflow.sandbox.catalog_wiring import azure_vault_names, register_app_of_apps, wire_catalog
from vaultflow.sandbox.faults import Fault
from vaultflow.sandbox.layout import SandboxPaths
from vaultflow.sandbox.observe import (
    ExternalSecretState,
    Fingerprints,
    PushedValue,
    external_secrets,
    pushed_values,
    wait_for,
    wait_for_all,
    wait_for_applications,
)
from vaultflow.sandbox.platform import install_platform_accounts
from vaultflow.sandbox.recovery import recover
from vaultflow.sandbox.state import SandboxState
from vaultflow.sandbox.status_view import print_status
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
    result = lifecycle.up(sandbox_dir, cluster_names=names, azure_vaults=azure_vault_names(loaded.catalog))
    install_platform_accounts(result.state, loaded.catalog)
    repo_url = ensure_bare_repo(SandboxPaths(Path(result.state.directory)).gitops_repo)
    for line in wire_catalog(result.state, loaded, repo_url=repo_url):
        console.print(f"[dim]{line}[/dim]")
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
    os.environ["KUBECONFIG"] = state.kubeconfig  # steps reach the emulated clusters like kubectl would
    registry = load_registry()
    spec = runner.load(registry.document("vault-bootstrap"), lookup=registry.lookup)
    paths = SandboxPaths(Path(state.directory))
    keeper = paths.keeper.as_uri()
    parameters = {
        "vault-addresses": ",".join(node.address for node in state.vault),
        "keeper": keeper,
        "catalog": str(loaded.source),
        "seed-placeholders": "true",  # the sandbox has no human to set static keys
    }
    result = runner.run(spec, parameters, run_root=paths.runs)
    print_summary(console, result)
    if not result.succeeded:
        raise OperationError(f"vault-bootstrap failed: see the step logs in {paths.runs}")
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


def render_and_commit_stage(loaded: LoadedCatalog, sandbox_dir: Path) -> tuple[str, Delivery]:
    _stage(5, "Render ESO resources and commit them to the GitOps repository")
    repo_url = ensure_bare_repo(SandboxPaths(sandbox_dir.resolve()).gitops_repo)
    tree = render_catalog(loaded, repo_url=repo_url)
    gitops = loaded.catalog.gitops
    delivery = deliver(tree, repo_url=repo_url, path=gitops.path, branch=gitops.revision)
    kinds = Counter(manifest["kind"] for _, manifest in tree.manifests())
    console.print(f"rendered into [bold]{gitops.path}/[/bold] of {repo_url}")
    table = Table()
    table.add_column("kind")
    table.add_column("count", justify="right")
    for kind, count in sorted(kinds.items()):
        table.add_row(kind, str(count))
    table.add_row("Vault policy (HCL)", str(sum(1 for f in tree.files if f.path.endswith(".hcl"))))
    console.print(table)
    if delivery.commit is None:
        console.print("GitOps repository already up to date: [bold]no commit[/bold]")
    else:
        changes = delivery.changes
        console.print(
            f"committed [bold]{delivery.commit[:12]}[/bold] on {delivery.branch}: "
            f"{len(changes.added)} added, {len(changes.changed)} changed, {len(changes.removed)} removed"
        )
    return repo_url, delivery


def sync_stage(
    loaded: LoadedCatalog,
    state: SandboxState,
    repo_url: str,
    delivery: Delivery,
    fingerprints: Fingerprints,
    *,
    started: float,
    timeout: float = DEFAULT_TIMEOUT,
) -> Synced:
    """``started``: when this run began; what failed before it is what a re-run recovers from."""
    _stage(6, "Argo CD syncs the commit; ESO pulls from Vault and pushes to the clouds")
    root_app = register_app_of_apps(state, loaded, repo_url)
    names = [root_app, *(application_name(cluster) for cluster in loaded.catalog.clusters)]
    revision = delivery.commit or branch_head(
        SandboxPaths(Path(state.directory)).gitops_repo, delivery.branch
    )
    clusters = [cluster.name for cluster in loaded.catalog.clusters]
    for line in recover(state, clusters, names, revision, before=started):  # what failed before this run
        console.print(f"[yellow]{escape(line)}[/yellow]")
    synced = wait_for_applications(state, revision, names, timeout=timeout)
    apps = Table(title="Argo CD Applications (management cluster)")
    for column in ("application", "sync", "health", "revision"):
        apps.add_column(column)
    for app in synced:
        apps.add_row(app.name, app.sync_status, app.health, app.revision[:12])
    console.print(apps)

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
    return Synced(names, revision)


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

    def report_file(self, name: str) -> Path:
        """Where a run of the demo writes a report (``--report``); an older one is removed first, so
        that what is read afterwards is this run's."""
        path = SandboxPaths(self.sandbox_dir).runs / f"demo-{name}-report.json"
        path.unlink(missing_ok=True)
        return path

    def run(self, *extra: str) -> tuple[int, str]:
        """Run it in a subprocess, its command line shown first and its output as it comes (stdout
        and stderr, in order); (exit code, output)."""
        arguments = rotate_arguments(self.catalog, self.sandbox_dir, *extra)
        console.print(f"[bold]$ {escape(shlex.join(['python', '-m', 'vaultflow', *arguments]))}")
        environment = {
            **os.environ,
            **lifecycle.environment(self.state),  # what `vaultflow sandbox env` exports
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
    code, _ = cli.run("--report", str(report_file), *rotated)
    report = _read_report(report_file, code)
    if code != 0:
        raise OperationError(f"`vaultflow rotate` exited {code}: a secret did not rotate (the report above)")
    for secret in report.secrets:
        console.print(f"[green]✔[/green] {escape(rotated_line(secret))}")
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


def fault_stage(loaded: LoadedCatalog, cli: RotateCli, synced: Synced, *, timeout: float) -> None:
    _stage(8, "A cloud fault during a rotation, and the rollback")
    secret = fault_candidate(loaded.catalog)
    if secret is None or secret.rotation is None:
        console.print(
            "no rotated secret of this catalog is pushed to a cloud and rolls back on failure: skipped"
        )
        return
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
            "seconds each wait of stage 6 gives Argo CD and ESO, and stages 7-8 a workload's rollout "
            "and the recovery after the fault (default %(default)g)"
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
        repo_url, delivery = render_and_commit_stage(loaded, args.dir)
        synced = sync_stage(
            loaded, state, repo_url, delivery, Fingerprints(), started=started, timeout=args.timeout
        )
        cli = RotateCli(state, args.catalog, args.dir)
        rotation_stage(loaded, cli, timeout=args.timeout)
        fault_stage(loaded, cli, synced, timeout=args.timeout)
    except VaultflowError as error:
        console.print(f"[red]error:[/red] {escape(str(error))}")  # controllers' messages are not markup
        return error.exit_code
    console.rule("[green]demo finished")
    console.print(closing_hint(args.dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
