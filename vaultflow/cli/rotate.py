"""``vaultflow rotate``: rotate secrets now with the ``rotate-secrets`` pipeline on the local runner.

The pipeline is the one Argo runs (plan, rotate in batches, report), run in
this process with Argo's semantics; it logs into Vault as the catalog's
rotation service account through Kubernetes auth, never as root. Before the
pipeline starts, the plan is made once here, so that bad input (an unknown
path, a consumer that could never pick up a new value, a secret missing from
Vault) exits 2 with nothing written, and ``--dry-run`` shows the plan and
every target it would verify.

Exit codes: 0 every target verified; 1 a secret did not rotate (after its
rollback where the catalog asks for one); 2 bad input, nothing written.
"""

from __future__ import annotations

import enum
import json
import secrets
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


class ReportFormat(enum.StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"


_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # Argo's generateName suffix alphabet


def rotate(
    paths: list[str] = typer.Argument(
        None, help="Catalog paths to rotate now (whether due or not).", show_default=False, metavar="PATH"
    ),
    *,
    all_due: bool = typer.Option(
        False, "--all-due", help="Rotate every secret whose schedule says it is due."
    ),
    catalog: Path = CATALOG_OPTION,
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and its targets; write nothing."),
    output: ReportFormat = typer.Option(
        ReportFormat.table, "--output", "-o", help="table, json or markdown."
    ),
    report: Path = typer.Option(
        None,
        "--report",
        help="Also write the report to FILE (JSON; Markdown when FILE ends in .md).",
        show_default=False,
    ),
    vault_addresses: str = VAULT_ADDRESSES_OPTION,
    ca_cert: str = CA_CERT_OPTION,
    run_dir: Path = typer.Option(Path("runs"), "--run-dir", help="Where the run writes its step logs."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No live progress tree."),
) -> None:
    """Rotate secrets in Vault and prove every cluster and cloud holds the new value."""
    from rich.console import Console

    from vaultflow.base.errors import InputError
    from vaultflow.gitops.catalog import load_catalog
    from vaultflow.steps.rotation.plan import refusals
    from vaultflow.steps.rotation.tasks import connected, make_plan

    loaded = load_catalog(catalog or default_catalog())
    addresses, ca = vault_connection(vault_addresses, ca_cert)
    paths = list(dict.fromkeys(paths or []))
    if any("," in path or not path.strip() for path in paths):
        raise InputError("paths: give each catalog path as its own argument (no commas, none empty)")
    if not paths and not all_due:
        raise InputError("name the secrets to rotate (their catalog paths), or ask for --all-due")
    problems = refusals(loaded.catalog, paths)  # what the catalog alone refuses: no Vault needed
    if problems:
        raise InputError("nothing was rotated:\n" + "\n".join(problems))
    run_id = "rotate-secrets-" + "".join(secrets.choice(_NAME_ALPHABET) for _ in range(5))
    with connected(loaded, addresses, run_id, ca) as rotator:
        plan = make_plan(rotator, paths=paths, all_due=all_due)
        consumers = rotator.discover([s.path for s in plan.secrets]) if dry_run and plan.secrets else {}
    out = Console(stderr=output is not ReportFormat.table)  # machine output alone on stdout
    if dry_run:
        _print_dry_run(
            plan.model_dump(mode="json"), {p: c.model_dump(mode="json") for p, c in consumers.items()}, output
        )
        return
    if not plan.secrets:
        out.print(f"nothing to rotate: no secret is due ({', '.join(plan.not_due) or 'none rotates'})")
        if output is ReportFormat.json:
            typer.echo(json.dumps({"runId": run_id, "secrets": []}, indent=2))
        return
    result, full = _run_pipeline(
        catalog=loaded.source,
        addresses=addresses,
        ca=ca,
        run_id=run_id,
        paths=[s.path for s in plan.secrets],
        run_dir=run_dir,
        console=out,
        quiet=quiet,
    )
    if full is None:
        raise _failed(f"the rotation did not finish: {result}")
    _print_report(full, output)
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(full.to_markdown() if report.suffix == ".md" else full.to_json(), encoding="utf-8")
    raise typer.Exit(1 if full.failed() else 0)


def _run_pipeline(
    *,
    catalog: Path,
    addresses: str,
    ca: str,
    run_id: str,
    paths: list[str],
    run_dir: Path,
    console: Any,
    quiet: bool,
) -> tuple[str, Any]:
    """Run ``rotate-secrets`` for exactly ``paths``; its outcome in words and the report (None if none)."""
    from vaultflow.steps.rotation.report import RotationReport
    from vaultflow.workflows import runner
    from vaultflow.workflows.registry import load_registry
    from vaultflow.workflows.runner.display import LiveTree, print_summary

    registry = load_registry()
    spec = runner.load(registry.document("rotate-secrets"), lookup=registry.lookup)
    report_file = (run_dir / run_id / "report.json").absolute()
    parameters = {
        "catalog": str(catalog),
        "vault-addresses": addresses,
        "ca-cert": ca,
        "paths": ",".join(paths),
        "report-file": str(report_file),
    }
    observer = LiveTree(console) if console.is_terminal and not quiet else None
    result = runner.run(spec, parameters, run_root=run_dir, observer=observer, name=run_id)
    print_summary(console, result)
    if not report_file.is_file():
        return f"{result.phase.value}: {result.message}", None
    return result.phase.value, RotationReport.model_validate_json(report_file.read_text(encoding="utf-8"))


def _print_report(full: Any, output: ReportFormat) -> None:
    if output is ReportFormat.json:
        typer.echo(full.to_json(), nl=False)
    elif output is ReportFormat.markdown:
        typer.echo(full.to_markdown())
    else:
        from rich.console import Console

        Console().print(full.to_table())


def _print_dry_run(plan: dict[str, Any], consumers: dict[str, Any], output: ReportFormat) -> None:
    """The plan and, per secret, every target the rotation would force-sync and verify."""
    if output is ReportFormat.json:
        typer.echo(json.dumps({"plan": plan, "consumers": consumers}, indent=2))
        return
    lines = [f"dry run {plan['run_id']}: nothing is written"]
    for planned in plan["secrets"]:
        found = consumers.get(planned["path"], {})
        lines.append(f"- {planned['path']} (version {planned['version']}, {planned['why']})")
        for es in found.get("external_secrets", []):
            lines.append(
                f"    ExternalSecret {es['cluster']}/{es['namespace']}/{es['name']} "
                f"-> Secret {es['secret_name']} ({es['source']})"
            )
        for ps in found.get("push_secrets", []):
            keys = ", ".join(k["remote_key"] for k in ps["keys"])
            lines.append(
                f"    PushSecret {ps['cluster']}/{ps['namespace']}/{ps['name']} -> {keys} ({ps['source']})"
            )
    if plan["not_due"]:
        lines.append(f"not due: {', '.join(plan['not_due'])}")
    typer.echo("\n".join(lines))


def _failed(message: str) -> Exception:
    from vaultflow.base.errors import OperationError

    return OperationError(message)
