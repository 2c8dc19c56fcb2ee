"""``task demo``: the platform's lifecycle, end to end, on the local sandbox.

Each stage is what an operator does on a real platform, run against the
sandbox (real OpenBao, moto, bare Git repositories, and emulators of what
cannot run here). The demo says so loudly: nothing real is touched.

Stages so far:
1. validate the secrets catalog;
2. ``vault:deploy``: start the sandbox (OpenBao sealed and uninitialised, clusters named after the
   catalog's, the service accounts Helm would create) and show its status;
3. ``vault:init``: run the ``vault-bootstrap`` pipeline on the local runner: init into a 0600 keeper,
   unseal, configure from the catalog, smoke-test with ESO's own login, revoke root;
4. the pipeline's *seed* step created the catalog's missing secrets (generated keys generated;
   static keys, which humans own, get visible sandbox placeholders here);
5. render the catalog and commit the tree to the sandbox's GitOps repository;
6. Argo CD syncs the commit into the clusters, ESO makes every ExternalSecret Ready and pushes
   to the clouds; shown as ESO's data-hash and keyed fingerprints, never values.

Run it again after ``task sandbox:down`` and it carries on where the sandbox stopped: the same
Vault comes back initialised and sealed, the bootstrap pipeline unseals it with the keeper's
shares, nothing is re-created, and the GitOps repository has nothing new to commit.

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
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from vaultflow.base.errors import OperationError, VaultflowError
from vaultflow.gitops.catalog import LoadedCatalog, load_catalog
from vaultflow.gitops.git_delivery import Delivery, deliver
from vaultflow.gitops.render import application_name, render_catalog
from vaultflow.sandbox import lifecycle
from vaultflow.sandbox.catalog_wiring import azure_vault_names, register_app_of_apps, wire_catalog
from vaultflow.sandbox.layout import SandboxPaths
from vaultflow.sandbox.observe import (
    ExternalSecretState,
    Fingerprints,
    PushedValue,
    external_secrets,
    pushed_values,
    wait_for_all,
    wait_for_applications,
)
from vaultflow.sandbox.platform import install_platform_accounts
from vaultflow.sandbox.recovery import recover
from vaultflow.sandbox.state import SandboxState
from vaultflow.sandbox.status_view import print_status
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
) -> None:
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


def _not_ready(es: ExternalSecretState) -> str:
    return f"{es.cluster} {es.namespace}/{es.name} {es.reason or 'not Ready'}: {es.message}"


def _absent(value: PushedValue) -> str:
    return f"{value.cloud} {value.remote_key} absent"


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
        help="seconds each wait of stage 6 gives Argo CD and ESO (default %(default)g)",
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
        sync_stage(loaded, state, repo_url, delivery, Fingerprints(), started=started, timeout=args.timeout)
    except VaultflowError as error:
        console.print(f"[red]error:[/red] {escape(str(error))}")  # controllers' messages are not markup
        return error.exit_code
    console.rule("[green]demo finished")
    console.print(closing_hint(args.dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
