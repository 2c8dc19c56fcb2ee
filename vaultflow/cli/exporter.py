"""``vaultflow exporter``: serve the catalog's metrics (rotation delay, stale consumers, ESO's role).

Every scrape reads Vault's metadata (never a value) and one LIST of
ExternalSecrets per catalog cluster (docs/observability.md lists the metrics).
Vault is read as the catalog's observer (Kubernetes auth, policy
``vaultflow-observer``: metadata, never data), logging in again at half the
token's TTL; or with ``$VAULT_TOKEN`` when set.
"""

from __future__ import annotations

from pathlib import Path

import typer

from vaultflow.cli.options import (
    CA_CERT_OPTION,
    CATALOG_OPTION,
    VAULT_ADDRESSES_OPTION,
    default_catalog,
    vault_connection,
)


def exporter(
    catalog: Path = CATALOG_OPTION,
    listen: str = typer.Option("127.0.0.1:9469", "--listen", help="HOST:PORT to serve /metrics on."),
    once: bool = typer.Option(False, "--once", help="Print one scrape (Prometheus text format) and exit."),
    vault_addresses: str = VAULT_ADDRESSES_OPTION,
    ca_cert: str = CA_CERT_OPTION,
) -> None:
    """Serve /metrics: per secret its rotation delay, per consumer its staleness, per cluster ESO's role."""
    from prometheus_client import generate_latest

    from vaultflow.base.errors import InputError
    from vaultflow.gitops.catalog import load_catalog
    from vaultflow.steps.observe.exporter import catalog_registry, serve_until_stopped

    loaded = load_catalog(catalog or default_catalog())
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise InputError(f"--listen {listen!r}: give HOST:PORT, for example 127.0.0.1:9469")
    addresses, ca = vault_connection(vault_addresses, ca_cert)
    registry = catalog_registry(
        loaded, addresses, ca, required=once, say=lambda line: typer.echo(line, err=True)
    )
    if once:
        typer.echo(generate_latest(registry).decode(), nl=False)
        return
    typer.echo(f"serving http://{listen}/metrics for {len(loaded.catalog.secrets)} secret(s)", err=True)
    serve_until_stopped(registry, host, int(port))
