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
4. render the catalog and commit the tree to the sandbox's GitOps repository.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from gitops.catalog import LoadedCatalog, load_catalog
from gitops.git_delivery import Delivery, deliver
from gitops.render import render_catalog
from sandbox import lifecycle
from sandbox.platform import install_platform_accounts
from sandbox.state import SandboxState
from vaultflow.cli.sandbox import print_status
from vaultflow.errors import OperationError, VaultflowError
from workflows import runner
from workflows.registry import load_registry
from workflows.runner.display import summary

console = Console()


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
    result = lifecycle.up(sandbox_dir, cluster_names=names)
    install_platform_accounts(result.state, loaded.catalog)
    console.print("sandbox started" if result.started else "sandbox already running: unchanged")
    print_status(lifecycle.status(sandbox_dir))
    return result.state


def bootstrap_stage(loaded: LoadedCatalog, state: SandboxState) -> None:
    _stage(3, "vault:init: the vault-bootstrap pipeline on the local runner")
    os.environ["KUBECONFIG"] = state.kubeconfig  # steps reach the emulated clusters like kubectl would
    registry = load_registry()
    spec = runner.load(registry.document("vault-bootstrap"), lookup=registry.lookup)
    keeper = (Path(state.directory) / "vault-keeper.json").as_uri()
    parameters = {
        "vault-addresses": ",".join(node.address for node in state.vault),
        "keeper": keeper,
        "catalog": str(loaded.source),
    }
    result = runner.run(spec, parameters, run_root=Path(state.directory) / "runs")
    console.print(summary(result))
    if not result.succeeded:
        raise OperationError(f"vault-bootstrap failed: see the step logs in {state.directory}/runs")
    console.print(f"unseal shares are in {keeper} (mode 0600); the root token was revoked")


def render_and_commit_stage(loaded: LoadedCatalog, sandbox_dir: Path) -> tuple[str, Delivery]:
    _stage(4, "Render ESO resources and commit them to the GitOps repository")
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.demo", description=__doc__)
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
        bootstrap_stage(loaded, state)
        render_and_commit_stage(loaded, args.dir)
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
