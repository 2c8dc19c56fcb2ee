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
   to the clouds; shown as hashes and digests, never values.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import TypeVar

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from vaultflow.base.errors import OperationError, VaultflowError
from vaultflow.cli.sandbox import print_status
from vaultflow.gitops.catalog import LoadedCatalog, load_catalog
from vaultflow.gitops.git_delivery import Delivery, deliver
from vaultflow.gitops.render import application_name, render_catalog
from vaultflow.sandbox import lifecycle
from vaultflow.sandbox.catalog_wiring import azure_vault_names, register_app_of_apps, wire_catalog
from vaultflow.sandbox.observe import (
    applications,
    external_secrets,
    pushed_values,
    wait_for,
    wait_for_applications,
)
from vaultflow.sandbox.platform import install_platform_accounts
from vaultflow.sandbox.state import SandboxState
from vaultflow.steps.secrets.seed import SeedResult
from vaultflow.workflows import runner
from vaultflow.workflows.registry import load_registry
from vaultflow.workflows.runner.display import summary

console = Console(width=max(Console().width, 130))  # the status tables need the room
T = TypeVar("T")


def _stage(number: int, title: str) -> None:
    console.rule(f"[bold]{number}. {title}")


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
    for line in wire_catalog(result.state, loaded, repo_url=ensure_bare_repo(sandbox_dir / "gitops.git")):
        console.print(f"[dim]{line}[/dim]")
    console.print("sandbox started" if result.started else "sandbox already running: unchanged")
    print_status(lifecycle.status(sandbox_dir))
    return result.state


def bootstrap_stage(loaded: LoadedCatalog, state: SandboxState) -> SeedResult:
    _stage(3, "vault:init: the vault-bootstrap pipeline on the local runner")
    os.environ["KUBECONFIG"] = state.kubeconfig  # steps reach the emulated clusters like kubectl would
    registry = load_registry()
    spec = runner.load(registry.document("vault-bootstrap"), lookup=registry.lookup)
    keeper = (Path(state.directory) / "vault-keeper.json").as_uri()
    parameters = {
        "vault-addresses": ",".join(node.address for node in state.vault),
        "keeper": keeper,
        "catalog": str(loaded.source),
        "seed-placeholders": "true",  # the sandbox has no human to set static keys
    }
    result = runner.run(spec, parameters, run_root=Path(state.directory) / "runs")
    console.print(summary(result))
    if not result.succeeded:
        raise OperationError(f"vault-bootstrap failed: see the step logs in {state.directory}/runs")
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
    repo_url = ensure_bare_repo(sandbox_dir / "gitops.git")
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


def sync_stage(loaded: LoadedCatalog, state: SandboxState, repo_url: str, delivery: Delivery) -> None:
    _stage(6, "Argo CD syncs the commit; ESO pulls from Vault and pushes to the clouds")
    root_app = register_app_of_apps(state, loaded, repo_url)
    names = [root_app, *(application_name(cluster) for cluster in loaded.catalog.clusters)]
    revision = delivery.commit or _deployed_revision(state, names[1])
    synced = wait_for_applications(state, revision, names)
    apps = Table(title="Argo CD Applications (management cluster)")
    for column in ("application", "sync", "health", "revision"):
        apps.add_column(column)
    for app in synced:
        apps.add_row(app.name, app.sync_status, app.health, app.revision[:12])
    console.print(apps)

    clusters = [cluster.name for cluster in loaded.catalog.clusters]
    ready = wait_for(lambda: _when_all(external_secrets(state, clusters), "ready"), timeout=60,
                     what="every ExternalSecret Ready")  # fmt: skip
    secrets_table = Table(title="ExternalSecrets")
    for column in ("cluster", "namespace", "name", "ready", "reason", "data-hash (of the Secret)"):
        secrets_table.add_column(column)
    for es in ready:
        secrets_table.add_row(
            es.cluster, es.namespace, es.name, "yes" if es.ready else "no", es.reason, es.data_hash[:16]
        )
    console.print(secrets_table)

    pushed = wait_for(lambda: _when_all(pushed_values(state, loaded), "digest"), timeout=60,
                      what="every pushed value present in its cloud")  # fmt: skip
    pushes_table = Table(title="Pushed to the clouds (emulated)")
    for column in ("cloud", "provider", "remote key", "value digest"):
        pushes_table.add_column(column)
    for value in pushed:
        pushes_table.add_row(value.cloud, value.provider, value.remote_key, (value.digest or "-")[:23])
    console.print(pushes_table)


def _when_all(items: list[T], attribute: str) -> list[T] | None:
    """``items`` once every one has a truthy ``attribute`` (for ``wait_for``), else None."""
    return items if items and all(getattr(item, attribute) for item in items) else None


def _deployed_revision(state: SandboxState, application: str) -> str:
    """Nothing was committed this run: the revision the Applications already follow."""
    for app in applications(state):
        if app.name == application and app.revision:
            return app.revision
    raise OperationError(f"Application {application} has no revision yet")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vaultflow.sandbox.demo", description=__doc__)
    parser.add_argument("--catalog", type=Path, default=Path("examples/catalog.yaml"))
    parser.add_argument("--dir", type=Path, default=Path(".sandbox"), help="sandbox state directory")
    args = parser.parse_args(argv)
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
        sync_stage(loaded, state, repo_url, delivery)
    except VaultflowError as error:
        console.print(f"[red]error:[/red] {error}")
        return error.exit_code
    console.rule("[green]demo finished")
    console.print(
        f"The sandbox keeps running in {args.dir}: explore it with "
        f'`eval "$(vaultflow sandbox env --dir {args.dir})"`; stop it with `task sandbox:down`.'
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
