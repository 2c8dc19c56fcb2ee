"""``vaultflow sandbox``: the local platform (real OpenBao and moto, emulated Kubernetes clusters).

It is a local sandbox for demos and end-to-end tests, not a real platform;
every command says so. The commands import the ``sandbox`` package inside
their bodies: product code never depends on it.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from vaultflow.base.errors import InputError
from vaultflow.cli.options import CATALOG_OPTION, OUTPUT_OPTION, OutputFormat, default_catalog

if TYPE_CHECKING:
    from vaultflow.sandbox.lifecycle import UpResult

app = typer.Typer(
    help="Run the local sandbox: real OpenBao and moto, emulated Kubernetes clusters (not a real platform).",
    no_args_is_help=True,
)

DIR_OPTION = typer.Option(Path(".sandbox"), "--dir", help="Sandbox directory (state, logs, kubeconfig).")
SANDBOX_NOTE = "local sandbox: emulated clusters on 127.0.0.1, not a real platform"


@app.command("up")
def up(
    context: typer.Context,
    *,
    directory: Path = DIR_OPTION,
    clusters: int = typer.Option(
        2, "--clusters", help="Number of workload clusters (plus a management cluster)."
    ),
    cluster_names: str = typer.Option(
        "", "--cluster-names", help="Comma-separated workload cluster names (default workload-1..N)."
    ),
    vault_replicas: int = typer.Option(
        1, "--vault-replicas", help="OpenBao raft nodes (3 for an HA cluster)."
    ),
    vault_port: int = typer.Option(
        0, "--vault-port", help="API port of the first OpenBao node (default: a free port)."
    ),
    crds: Path = typer.Option(
        None, "--crds", help="Directory of upstream CRDs (default: $VAULTFLOW_SCHEMAS or ../shared/schemas)."
    ),
    builtin_crds: bool = typer.Option(
        False, "--builtin-crds", help="Register the minimal built-in CRDs instead."
    ),
    catalog: Path = typer.Option(
        None,
        "--catalog",
        help="Name the clusters and Key Vaults after this catalog's, create what its platform provides "
        "(namespaces, ESO/workflow/reviewer service accounts, placeholder cloud credentials, the Vault CA) "
        "and route its addresses to the sandbox.",
    ),
    azure_vaults: str = typer.Option(
        "", "--azure-vaults", help="Comma-separated Key Vault names to emulate (default: sandbox)."
    ),
    eso_concurrent: int = typer.Option(
        1, "--eso-concurrent", help="Workers per ESO controller (ESO's --concurrent; default 1, as ESO)."
    ),
    eso_vault_token_cache: bool = typer.Option(
        False, "--eso-vault-token-cache", help="Emulate ESO's --enable-vault-token-cache."
    ),
    argocd_reconciliation_timeout: str = typer.Option(
        "120s",
        "--argocd-reconciliation-timeout",
        help="How often Argo CD reads Git on its own (argocd-cm timeout.reconciliation, a Go duration; "
        "0s: never). A pipeline that does not annotate argocd.argoproj.io/refresh waits this long.",
    ),
    argocd_reconciliation_jitter: str = typer.Option(
        "60s",
        "--argocd-reconciliation-jitter",
        help="Up to this much later per Application (argocd-cm timeout.reconciliation.jitter).",
    ),
    seal: str = typer.Option(
        "shamir",
        "--seal",
        help="How OpenBao is sealed: shamir (bootstrap unseals with shares) or transit (a second OpenBao, "
        "the unsealer, auto-unseals every node).",
    ),
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Start the sandbox in the background, or bring a stopped one back with its state (the same Vault).

    Without options on a directory that holds a sandbox, its own options are used. On a running
    sandbox with the same options it changes nothing, but restarts an OpenBao node that died.
    """
    from vaultflow.sandbox import lifecycle

    if not _options_given(context) and lifecycle.kept_spec(directory) is not None:
        _print_up(lifecycle.resume(directory), directory, output, [])
        return
    names = tuple(name.strip() for name in cluster_names.split(",") if name.strip()) or None
    vaults = tuple(name.strip() for name in azure_vaults.split(",") if name.strip()) or None
    reconciliation = _seconds("--argocd-reconciliation-timeout", argocd_reconciliation_timeout)
    jitter = _seconds("--argocd-reconciliation-jitter", argocd_reconciliation_jitter)
    loaded = None
    postgres = None
    if catalog is not None:
        from vaultflow.gitops.catalog import load_catalog
        from vaultflow.sandbox.catalog_wiring import azure_vault_names
        from vaultflow.sandbox.postgres import postgres_spec

        loaded = load_catalog(catalog)
        names = names or tuple(cluster.name for cluster in loaded.catalog.clusters)
        vaults = vaults or azure_vault_names(loaded.catalog) or None
        postgres = postgres_spec(loaded.catalog)  # a postgres credential: the sandbox runs the database
    result = lifecycle.up(
        directory,
        clusters=clusters,
        cluster_names=names,
        vault_replicas=vault_replicas,
        vault_port=vault_port,
        crds=crds,
        builtin_crds=builtin_crds,
        azure_vaults=vaults,
        eso_concurrent=eso_concurrent,
        eso_vault_token_cache=eso_vault_token_cache,
        argocd_reconciliation_timeout=reconciliation,
        argocd_reconciliation_jitter=jitter,
        seal=seal,
        postgres=postgres,
    )
    wired: list[str] = []
    if loaded is not None:
        from vaultflow.sandbox.catalog_wiring import wire_catalog
        from vaultflow.sandbox.platform import install_platform_accounts

        install_platform_accounts(result.state, loaded.catalog)
        from vaultflow.sandbox.accounts import onboard_clusters

        # `vaultflow cluster onboard` for every catalog cluster: the pipelines run as their own accounts
        onboard_clusters(result.state, loaded)
        wired.append("every catalog cluster onboarded (the pipelines' accounts, RBAC and kubeconfigs)")
        # the catalog's repoUrl routed to the sandbox's GitOps remote: Argo CD, GitHub and `git` all reach it
        wired += wire_catalog(result.state, loaded, repo_url=result.state.gitops_repo or None)
        from vaultflow.sandbox.exporter import enable_exporter

        # vaultflow's exporter as the observer (it logs in to Vault once the bootstrap configured it)
        wired.append(f"vaultflow exporter on {enable_exporter(result.state, loaded)} (as the observer)")
    _print_up(result, directory, output, wired)


# The options that make a sandbox what it is (what `up` compares with the running or kept one).
_SPEC_OPTIONS = (
    "clusters",
    "cluster_names",
    "vault_replicas",
    "vault_port",
    "crds",
    "builtin_crds",
    "catalog",
    "azure_vaults",
    "eso_concurrent",
    "eso_vault_token_cache",
    "argocd_reconciliation_timeout",
    "argocd_reconciliation_jitter",
    "seal",
)


def _seconds(option: str, text: str) -> float:
    """A Go duration given on the command line, in seconds (a bad one: one clear line, exit 2)."""
    from vaultflow.base.durations import parse_go_duration

    try:
        return float(parse_go_duration(text))
    except ValueError as error:
        raise InputError(f"{option}: {error}") from None


def _options_given(context: typer.Context) -> bool:
    """Whether the command line set any of ``_SPEC_OPTIONS`` (a default is not a choice)."""
    sources = [context.get_parameter_source(name) for name in _SPEC_OPTIONS]
    return any(source is not None and source.name != "DEFAULT" for source in sources)


def _print_up(result: UpResult, directory: Path, output: OutputFormat, wired: list[str]) -> None:
    from vaultflow.sandbox import lifecycle

    if output is OutputFormat.json:
        summary = {"started": result.started, "resumed": result.resumed, "repaired": list(result.repaired)}
        typer.echo(json.dumps({**summary, **result.state.model_dump(mode="json")}, indent=2))
        return
    if result.started:
        verb = "started again on its kept state" if result.resumed else "started"
    else:
        verb = "already running" if result.repaired else "already running (nothing changed)"
    typer.echo(f"sandbox {verb} in {result.state.directory} ({SANDBOX_NOTE})")
    for line in result.repaired:
        typer.echo(f"  {line}")
    if result.resumed:
        typer.echo(
            "  OpenBao is back on its raft data; `task vault:init` (or the demo) unseals a sealed Vault"
        )
    for line in wired:
        typer.echo(f"  sandbox wiring: {line}")
    from vaultflow.sandbox.status_view import print_status

    print_status(lifecycle.status(directory))
    typer.echo(
        f'\nPoint your shell at it:  eval "$(vaultflow sandbox env --dir {shlex.quote(str(directory))})"'
    )


@app.command("status")
def status(*, directory: Path = DIR_OPTION, output: OutputFormat = OUTPUT_OPTION) -> None:
    """Show every component with its endpoint and whether it answers (exit 1 when one does not)."""
    from vaultflow.sandbox import lifecycle

    current = lifecycle.status(directory)
    if output is OutputFormat.json:
        payload = {
            "sandbox": SANDBOX_NOTE,
            "healthy": current.healthy,
            "directory": current.state.directory,
            "crds": current.state.crd_source,
            "components": [vars(component) for component in current.components],
        }
        typer.echo(json.dumps(payload, indent=2))
    else:
        typer.echo(f"sandbox in {current.state.directory} ({SANDBOX_NOTE}); CRDs: {current.state.crd_source}")
        from vaultflow.sandbox.status_view import print_status

        print_status(current)
    if not current.healthy:
        raise typer.Exit(1)


@app.command("env")
def env(
    directory: Path = DIR_OPTION,
    account: str = typer.Option(
        None,
        "--as",
        help="Reach the clusters as this pipeline's service account, not as admin: a pipeline "
        "(vault-bootstrap, apply-eso-resources, rotate-secrets) or its account (argo/vaultflow-bootstrap). "
        "KUBECONFIG then names the kubeconfig its pod would hold (written fresh, mode 0600).",
        show_default=False,
    ),
    catalog: Path = CATALOG_OPTION,
) -> None:
    """Print shell exports (Vault, kubeconfig, clouds, sandbox CA): eval "$(vaultflow sandbox env)"."""
    from vaultflow.sandbox import lifecycle

    identity = None
    if account is not None:
        from vaultflow.gitops.catalog import load_catalog
        from vaultflow.sandbox.accounts import find_account

        loaded = load_catalog(catalog or default_catalog())
        identity = find_account(loaded.catalog, account)  # bad input first: no sandbox needed for it
    state = lifecycle.load_state(directory)
    environment = lifecycle.environment(state)
    if identity is not None:
        from vaultflow.sandbox.accounts import kubeconfig_as

        environment["KUBECONFIG"] = str(kubeconfig_as(state, loaded, identity))
    typer.echo(f"# vaultflow {SANDBOX_NOTE} ({state.directory})")
    if identity is not None:
        typer.echo(f"# every cluster as service account {identity.namespace}/{identity.name}, not as admin")
    for name, value in environment.items():
        typer.echo(f"export {name}={shlex.quote(value)}")
    if identity is not None:
        typer.echo("unset ARGO_TOKEN  # a pipeline's pod holds no Argo Server token")
    elif state.argo_token_file:
        # The token itself is never printed: the shell reads it from its 0600 file.
        typer.echo(f'export ARGO_TOKEN="$(cat {shlex.quote(state.argo_token_file)})"')


@app.command("fault")
def fault(
    provider: str = typer.Argument(..., help="vault, aws, gcp or azure (what ESO calls)."),
    *,
    latency: float = typer.Option(0.0, "--latency", help="Seconds added to every call."),
    error_rate: float = typer.Option(0.0, "--error-rate", help="Fraction of calls that fail (0-1)."),
    down: bool = typer.Option(False, "--down", help="Every call fails as if the host were unreachable."),
    clear: bool = typer.Option(False, "--clear", help="Lift the provider's fault."),
    directory: Path = DIR_OPTION,
) -> None:
    """Inject a fault on the link from the ESO emulator to a provider (reliability tests), or lift it."""
    from vaultflow.sandbox import lifecycle
    from vaultflow.sandbox.admin import AdminClient
    from vaultflow.sandbox.faults import Fault

    client = AdminClient.for_state(lifecycle.load_state(directory))
    if clear:
        client.clear_faults(provider)
        typer.echo(f"{provider}: no fault ({SANDBOX_NOTE})")
        return
    try:
        injected = Fault(latency=latency, error_rate=error_rate, down=down)
    except ValueError as error:
        raise InputError(f"fault {provider}: {error}") from None
    if not injected.active:
        raise InputError(f"fault {provider}: give --latency, --error-rate or --down (or --clear)")
    client.set_fault(provider, injected)
    typer.echo(f"{provider}: {injected.to_json()} injected ({SANDBOX_NOTE})")


@app.command("route")
def route(
    kind: str = typer.Argument(..., help="vault, git or clusters."),
    source: str = typer.Argument(..., help="The address as manifests name it."),
    target: str = typer.Argument(
        "", help="Where it leads in the sandbox (default for vault: the sandbox's OpenBao)."
    ),
    *,
    remove: bool = typer.Option(False, "--remove", help="Remove the route."),
    directory: Path = DIR_OPTION,
) -> None:
    """Map an address the manifests name to what runs in the sandbox (sandbox-only; shown by status)."""
    from vaultflow.sandbox import lifecycle
    from vaultflow.sandbox.admin import AdminClient

    state = lifecycle.load_state(directory)
    client = AdminClient.for_state(state)
    if remove:
        client.remove_route(kind, source)
        typer.echo(f"route {kind} {source} removed")
        return
    destination = target or (state.vault_addr if kind == "vault" else "")
    if not destination:
        raise InputError(f"route {kind} {source}: give the target")
    client.set_route(kind, source, destination)
    typer.echo(f"route {kind} {source} -> {destination} ({SANDBOX_NOTE})")


restart_app = typer.Typer(
    help="Restart a component of the running sandbox on its data.", no_args_is_help=True
)
app.add_typer(restart_app, name="restart")


@restart_app.command("vault")
def restart_vault(
    *,
    node: str = typer.Option(None, "--node", help="The OpenBao node to restart (default: every node)."),
    directory: Path = DIR_OPTION,
) -> None:
    """Restart OpenBao on its raft data and ports; it comes back sealed, as a restarted Vault pod does."""
    from vaultflow.sandbox import lifecycle

    result = lifecycle.restart_vault(directory, node=node)
    auto = result.state.unsealer is not None
    nodes = [*result.state.vault, *([result.state.unsealer] if result.state.unsealer is not None else [])]
    for node_id in result.restarted:
        address = next(n.address for n in nodes if n.node_id == node_id)
        after = "unsealed (by the transit seal)" if auto else "sealed"
        if result.state.unsealer is not None and node_id == result.state.unsealer.node_id:
            after = "the transit unsealer, unsealed again by the sandbox"
        typer.echo(f"OpenBao {node_id} restarted on its data at {address}: {after} ({SANDBOX_NOTE})")
    if not auto:
        typer.echo(
            "unseal it with the keeper's shares: `task vault:init` runs the bootstrap pipeline, which does"
        )


@app.command("down")
def down(
    directory: Path = DIR_OPTION,
    purge: bool = typer.Option(
        False, "--purge", help="Also remove all of its state: raft data, clusters, keeper, runs, GitOps repo."
    ),
) -> None:
    """Stop what `up` started in the directory and keep its state for the next `up` (--purge removes it)."""
    from vaultflow.sandbox import lifecycle

    result = lifecycle.down(directory, purge=purge)
    if not result.found:
        typer.echo(f"no sandbox in {directory}; nothing to stop")
        return
    stopped = ", ".join(result.stopped) if result.stopped else "nothing was running"
    if result.purged:
        typer.echo(f"sandbox in {directory} is down ({stopped}) and its state is removed")
        return
    typer.echo(
        f"sandbox in {directory} is down ({stopped}); its state is kept (OpenBao's raft data, the clusters, "
        f"the keeper, runs, GitOps repository): `vaultflow sandbox up --dir {shlex.quote(str(directory))}` "
        "brings it back, `down --purge` removes it"
    )
