"""``vaultflow cluster onboard``: the pipelines' identities in a catalog cluster, and their kubeconfigs.

Run once per cluster by an admin (as ``argocd cluster add`` is), with a kubeconfig holding admin
contexts of that cluster and of the workflows cluster (``steps/kube/onboard.py``, docs/operations.md).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer

from vaultflow.cli.options import CATALOG_OPTION, OUTPUT_OPTION, OutputFormat, default_catalog

app = typer.Typer(
    help="Onboard a catalog cluster: the pipelines' service accounts, RBAC and kubeconfigs.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("onboard")
def onboard(
    catalog: Path = CATALOG_OPTION,
    *,
    cluster: str = typer.Option(..., "--cluster", help="The catalog cluster to onboard."),
    context: str | None = typer.Option(
        None,
        "--context",
        help="Admin context of that cluster in $KUBECONFIG (default: the catalog's kubeContext).",
        show_default=False,
    ),
    workflows_context: str | None = typer.Option(
        None,
        "--workflows-context",
        help="Admin context of the workflows cluster (default: its kubeContext, else the current one).",
        show_default=False,
    ),
    server: str | None = typer.Option(
        None,
        "--server",
        help="The API server URL as the workflows cluster's pods reach it (default: the context's).",
        show_default=False,
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Read only: show what would be created or changed."
    ),
    output: OutputFormat = OUTPUT_OPTION,
) -> None:
    """Apply the accounts and RBAC that the bootstrap, delivery, rotation and observer need in CLUSTER,
    get each account a long-lived token (a service-account-token Secret) and write, in the workflows
    cluster, one kubeconfig Secret per account holding CLUSTER's context. Idempotent; never prints a
    token. Exit 0 done, 1 refused by a cluster, 2 bad input."""
    from vaultflow.base.errors import InputError
    from vaultflow.gitops.catalog import load_catalog
    from vaultflow.steps.kube import api_client
    from vaultflow.steps.kube.onboard import onboard_cluster
    from vaultflow.steps.kube.review import kubeconfig_ca_pem

    loaded = load_catalog(catalog or default_catalog())
    names = [c.name for c in loaded.catalog.clusters]
    if cluster not in names:
        raise InputError(f"cluster {cluster!r} is not in the catalog (its clusters: {', '.join(names)})")
    target = loaded.catalog.cluster(cluster)
    workflows = loaded.catalog.workflows_cluster()
    target_context = context or target.kube_context
    cluster_client = api_client(target_context)
    workflows_client = (
        cluster_client
        if workflows.name == target.name
        else api_client(workflows_context or workflows.kube_context)
    )
    report = onboard_cluster(
        loaded,
        target,
        cluster_client=cluster_client,
        workflows_client=workflows_client,
        server=server or str(cluster_client.configuration.host),
        ca_pem=kubeconfig_ca_pem(target_context) if target_context else None,
        dry_run=dry_run,
    )
    if output is OutputFormat.json:
        typer.echo(json.dumps({**asdict(report), "changed": report.changed}, indent=2))
        return
    for action in report.actions:
        typer.echo(action.line())
    if dry_run:
        typer.echo(
            f"dry run: nothing written ({'changes shown above' if report.changed else 'nothing to change'})"
        )
    else:
        typer.echo(
            f"cluster {report.cluster} onboarded ({'changed' if report.changed else 'nothing to change'})"
        )
