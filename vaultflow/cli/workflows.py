"""``vaultflow workflows ...``: list, render and submit the Argo WorkflowTemplates.

``render`` writes what Argo CD deploys (``argocd-apps/workflows/templates``: the
templates, and with ``--catalog`` its CronWorkflows and the catalog's ConfigMap);
``submit`` starts a Workflow from a template on an Argo Server, the way
``argo submit --from workflowtemplate/NAME`` does, and with ``--wait`` follows
it and exits with its result: 0 Succeeded, 1 Failed or Error, 2 bad input.
"""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(
    help="Render and submit the Argo WorkflowTemplates of vaultflow's pipelines.",
    no_args_is_help=True,
)


@app.command("list")
def list_templates() -> None:
    """List the registered WorkflowTemplates and CronWorkflows."""
    from vaultflow.workflows.registry import load_registry

    for pipeline in load_registry():
        typer.echo(f"{pipeline.name}\t{pipeline.description}")
        for schedule in pipeline.schedules:
            typer.echo(f"{pipeline.cron_name(schedule)}\tCronWorkflow {schedule.cron!r} of {pipeline.name}")


@app.command("render")
def render(
    out: Path = typer.Option(
        ...,
        "--out",
        help="Directory to write workflowtemplates/, cronworkflows/ and configmaps/ into.",
    ),
    image: str = typer.Option(
        None,
        "--image",
        help="Steps image for every template (default: $VAULTFLOW_IMAGE or the versioned image).",
    ),
    catalog: Path = typer.Option(
        None,
        "--catalog",
        "-c",
        help=(
            "Catalog whose rotation schedules become CronWorkflows and whose text becomes the "
            "ConfigMap argo/vaultflow-catalog the pipelines read (without it: neither)."
        ),
        show_default=False,
    ),
) -> None:
    """Write the WorkflowTemplates, CronWorkflows and catalog ConfigMap as YAML (same input, same bytes)."""
    from vaultflow.gitops.catalog import load_catalog
    from vaultflow.workflows.registry import load_registry
    from vaultflow.workflows.render import CATALOG_SOURCE, CatalogFile
    from vaultflow.workflows.render import render as render_documents

    registry = load_registry()
    catalog_file = None
    if catalog is not None:
        loaded = load_catalog(catalog)
        registry = registry.with_catalog(loaded.catalog)
        catalog_file = CatalogFile(_shown(catalog), catalog.read_text(encoding="utf-8"))
        if loaded.catalog.vault.tls.ca_file is not None:
            # Resolved beside the catalog file: a pipeline reading the ConfigMap has no file beside it.
            typer.secho(
                f"warning: {catalog}: vault.tls.caFile cannot be resolved by pipelines reading the "
                f"catalog from {CATALOG_SOURCE}; give vault.tls.caProvider instead",
                err=True,
                fg=typer.colors.YELLOW,
            )
    paths = render_documents(registry, out, image, catalog_file)
    typer.echo(f"wrote {len(paths)} document(s) to {out}")


def _shown(path: Path) -> str:
    """The catalog's path for the ConfigMap's annotation: relative to here when it is below here."""
    if path.is_absolute():
        try:
            return path.relative_to(Path.cwd()).as_posix()
        except ValueError:
            return path.as_posix()
    return path.as_posix()


@app.command("submit")
def submit(
    name: str = typer.Argument(..., help="WorkflowTemplate (or CronWorkflow) to submit."),
    *,
    parameter: list[str] = typer.Option(
        [], "--parameter", "-p", help="Workflow parameter as key=value (repeatable).", metavar="KEY=VALUE"
    ),
    wait: bool = typer.Option(False, "--wait", "-w", help="Follow the workflow and exit with its result."),
    argo_server: str = typer.Option(None, "--argo-server", help="host:port or URL (default: $ARGO_SERVER)."),
    namespace: str = typer.Option(
        None, "--namespace", "-n", help="Namespace (default: $ARGO_NAMESPACE or argo)."
    ),
    insecure_skip_verify: bool = typer.Option(
        False,
        "--insecure-skip-verify",
        help="Do not verify the server's TLS certificate (test servers only).",
    ),
    upload_template: bool = typer.Option(
        False,
        "--upload-template",
        help="Create or update the template from this checkout first (development only).",
    ),
    poll_seconds: float = typer.Option(2.0, "--poll-seconds", help="Status poll interval with --wait."),
    timeout_seconds: float = typer.Option(None, "--timeout", help="Give up waiting after this many seconds."),
) -> None:
    """Create a Workflow from a template on the Argo Server (token from $ARGO_TOKEN)."""
    from vaultflow.workflows import runner
    from vaultflow.workflows import submit as argo
    from vaultflow.workflows.parameters import parse_assignments
    from vaultflow.workflows.registry import load_registry

    parameters = parse_assignments(parameter)
    conn = argo.connection(argo_server, namespace, insecure_skip_verify=insecure_skip_verify)
    registry = load_registry()
    kind = "WorkflowTemplate"  # a template that only the server knows is submitted as such
    if registry.has(name):
        document = registry.document(name)
        kind = str(document["kind"])
        spec = runner.load(document, lookup=registry.lookup)
        runner.workflow_parameters(
            spec, parameters
        )  # unknown or missing parameters: refused before submitting
        if upload_template:
            argo.upload_template(conn, registry.document(registry.pipeline_for(name).name))
    elif upload_template:
        registry.get(name)  # raises: nothing to upload for a name this checkout does not know
    workflow_name = argo.submit(conn, kind, name, parameters)
    typer.echo(f"submitted {workflow_name} (namespace {conn.namespace})")
    if not wait:
        return
    outcome = argo.wait(conn, workflow_name, poll_seconds=poll_seconds, timeout_seconds=timeout_seconds)
    suffix = f": {outcome.message}" if outcome.message else ""
    typer.echo(f"{workflow_name} {outcome.phase}{suffix}")
    raise typer.Exit(0 if outcome.phase == "Succeeded" else 1)
