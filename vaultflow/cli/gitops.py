"""``vaultflow gitops ...``: deliver the catalog through Git (``apply``), and what a pull request's CI
runs before a catalog change merges (``preflight``)."""

from __future__ import annotations

import enum
import os
import re
from pathlib import Path
from typing import Any

import typer

from vaultflow.cli.options import (
    CA_CERT_OPTION,
    CATALOG_OPTION,
    VAULT_ADDRESSES_OPTION,
    default_catalog,
    vault_connection,
)

app = typer.Typer(
    help="Deliver the catalog through Git and wait for Argo CD and ESO; check a change before it merges.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


class PreflightFormat(enum.StrEnum):
    table = "table"
    markdown = "markdown"
    json = "json"


@app.command("preflight")
def preflight(
    catalog: Path = CATALOG_OPTION,
    *,
    output: PreflightFormat = typer.Option(
        PreflightFormat.table, "--output", "-o", help="table, markdown (a PR comment) or json."
    ),
    vault_addresses: str = VAULT_ADDRESSES_OPTION,
    ca_cert: str = CA_CERT_OPTION,
) -> None:
    """Read every Vault reference as each cluster's ESO would, and flag what would break after merge.

    Exit 0 clean, 1 findings, 2 bad input.
    """
    from vaultflow.gitops.catalog import load_catalog
    from vaultflow.steps.delivery.preflight import eso_access
    from vaultflow.steps.delivery.preflight import preflight as run_preflight

    loaded = load_catalog(catalog or default_catalog())
    addresses, ca = vault_connection(vault_addresses, ca_cert)
    access = eso_access(loaded, addresses, ca)
    try:
        report = run_preflight(loaded, access)
    finally:
        for cluster in access.values():
            cluster.api_client.close()
    if output is PreflightFormat.json:
        typer.echo(report.to_json(), nl=False)
    elif output is PreflightFormat.markdown:
        typer.echo(report.to_markdown(), nl=False)
    else:
        _print_table(report)
    raise typer.Exit(1 if report.findings else 0)


def _print_table(report: object) -> None:
    from rich.console import Console
    from rich.table import Table

    from vaultflow.steps.delivery.preflight import PreflightReport

    assert isinstance(report, PreflightReport)
    console = Console()
    if not report.findings:
        console.print(f"preflight: {report.references} Vault references checked, no finding")
        return
    table = Table(title=f"preflight: {len(report.findings)} finding(s)")
    for column in ("check", "cluster", "what", "finding", "catalog"):
        table.add_column(column, overflow="fold")
    for finding in report.findings:
        table.add_row(
            finding.check, finding.cluster or "-", finding.subject, finding.message, finding.location or "-"
        )
    console.print(table)


class ApplyMode(enum.StrEnum):
    push = "push"
    pr = "pr"


class ApplyFormat(enum.StrEnum):
    table = "table"
    json = "json"


_PATH = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")


@app.command("apply")
def apply(
    catalog: Path = CATALOG_OPTION,
    *,
    repo: str = typer.Option(
        None, "--repo", help="GitOps repository (default: the catalog's gitops.repoUrl).", show_default=False
    ),
    branch: str = typer.Option(
        None, "--branch", help="Branch Argo CD follows (default: gitops.revision).", show_default=False
    ),
    path: str = typer.Option(
        None, "--path", help="Directory of the rendered tree (default: gitops.path).", show_default=False
    ),
    mode: ApplyMode = typer.Option(
        ApplyMode.push, "--mode", help="push: commit on the branch; pr: a branch and a pull request (GitHub)."
    ),
    wait: bool = typer.Option(
        None,
        "--wait/--no-wait",
        help="Wait for Argo CD at the commit, then ESO Ready (default: wait in push mode and with --merge; "
        "in pr mode --wait waits for the pull request to be merged first).",
        show_default=False,
    ),
    merge: bool = typer.Option(
        False, "--merge", help="pr mode: merge the pull request through the API at once."
    ),
    timeout: str = typer.Option("10m", "--timeout", help="How long to wait in all (a Go duration)."),
    output: ApplyFormat = typer.Option(ApplyFormat.table, "--output", "-o", help="table or json."),
    argocd_context: str = typer.Option(
        None,
        "--argocd-context",
        help="kubeconfig context of Argo CD's cluster (default: $VAULTFLOW_ARGOCD_CONTEXT, else the catalog "
        "cluster Argo CD calls in-cluster, else the current context).",
        show_default=False,
    ),
    vault_addresses: str = typer.Option(
        None,
        "--vault-addresses",
        help="pr mode, for the preflight in the pull request (default: $VAULT_ADDRESSES; without one the "
        "pull request says preflight did not run).",
        show_default=False,
    ),
    ca_cert: str = CA_CERT_OPTION,
) -> None:
    """Render the catalog and deliver it through Git: a commit on the branch, or a pull request.

    Commits only when something changed. With --wait: Argo CD is asked to refresh, each Application of a
    changed path must report the commit as synced and compared after the sync, Synced and Healthy, then
    every rendered ExternalSecret and PushSecret Ready. Exit 0 done, 1 not converged (or refused),
    2 bad input.
    """
    from vaultflow.base.durations import parse_go_duration
    from vaultflow.base.errors import InputError
    from vaultflow.gitops.catalog import load_catalog
    from vaultflow.steps.delivery.apply import ApplyOptions, apply_catalog

    try:
        seconds = parse_go_duration(timeout)
    except ValueError as error:
        raise InputError(f"--timeout: {error}") from None
    if seconds <= 0:
        raise InputError(f"--timeout must be positive (got {timeout})")
    if merge and mode is not ApplyMode.pr:
        raise InputError("--merge merges the pull request: it needs --mode pr")
    loaded = load_catalog(catalog or default_catalog())
    gitops = loaded.catalog.gitops
    target = (path or gitops.path).strip("/")
    if not _PATH.fullmatch(target) or ".." in target.split("/"):
        raise InputError(f"--path {path!r}: a relative directory of the repository, such as eso-resources")
    addresses, ca = vault_connection(vault_addresses, ca_cert)
    options = ApplyOptions(
        repo_url=repo or gitops.repo_url,
        branch=branch or gitops.revision,
        path=target,
        mode=mode.value,
        wait=wait if wait is not None else (mode is ApplyMode.push or merge),
        merge=merge,
        timeout=seconds,
        argocd_context=argocd_context,
        vault_addresses=addresses,
        ca_cert=ca,
    )
    as_json = output is ApplyFormat.json
    report = apply_catalog(
        loaded, options, environ=os.environ, say=lambda line: typer.echo(line, err=as_json)
    )
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        _print_apply(report)
    if not report.converged:
        assert report.wait is not None
        typer.secho(
            f"error: not converged at {report.wait.commit[:12]} after {report.wait.seconds:g}s: "
            + "; ".join(report.wait.pending),
            err=True,
            fg=typer.colors.RED,
        )
        raise typer.Exit(1)


def _print_apply(report: object) -> None:
    from rich.console import Console
    from rich.markup import escape

    from vaultflow.steps.delivery.apply import ApplyReport

    assert isinstance(report, ApplyReport)
    console = Console(highlight=False, soft_wrap=True)
    if report.preflight:
        console.print(f"preflight: {escape(report.preflight)}")
    if report.pull_request is not None:
        pull = report.pull_request
        state = f"merged at {(pull.merge_commit or '')[:12]}" if pull.merged else "open"
        console.print(f"pull request #{pull.number} ({pull.action}, {state}): {pull.url}")
    if report.wait is not None:
        _print_wait(console, report.wait)


def _print_wait(console: Any, wait: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    if wait.applications:
        apps = Table(title=f"Argo CD Applications at {wait.commit[:12]}")
        for column in ("application", "sync", "health", "revision", "done", "seen"):
            apps.add_column(column, overflow="fold")
        for app in wait.applications:
            apps.add_row(
                f"{app.namespace}/{app.name}",
                app.sync or "-",
                app.health or "-",
                app.revision[:12] or "-",
                "yes" if app.converged else "no",
                escape(app.message),
            )
        console.print(apps)
    if wait.objects:
        objects_table = Table(title="ExternalSecrets and PushSecrets")
        for column in ("kind", "cluster", "namespace/name", "done", "seen"):
            objects_table.add_column(column, overflow="fold")
        for obj in wait.objects:
            objects_table.add_row(
                obj.kind,
                obj.cluster,
                f"{obj.namespace}/{obj.name}",
                "yes" if obj.converged else "no",
                escape(obj.message),
            )
        console.print(objects_table)
    if wait.converged:
        console.print(
            f"converged in {wait.seconds:g}s: {len(wait.applications)} Application(s) synced at "
            f"{wait.commit[:12]}, {len(wait.objects)} ExternalSecret(s)/PushSecret(s) Ready"
        )
