"""``vaultflow exporter``: serve the catalog's metrics (rotation delay, stale consumers, ESO's role).

Every scrape reads Vault's metadata (never a value) and one LIST of
ExternalSecrets per catalog cluster (docs/observability.md lists the metrics).
Vault is read as the catalog's observer (Kubernetes auth, policy
``vaultflow-observer``: metadata, never data), logging in again at half the
token's TTL; or with ``$VAULT_TOKEN`` when set.
"""

from __future__ import annotations

import os
import signal
import threading
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
    from prometheus_client import CollectorRegistry, generate_latest, start_http_server

    from vaultflow.base.errors import InputError, VaultflowError
    from vaultflow.gitops.catalog import load_catalog
    from vaultflow.gitops.catalog.types import duration_seconds
    from vaultflow.steps.kube.clusters import cluster_clients
    from vaultflow.steps.observe.exporter import CatalogCollector
    from vaultflow.steps.observe.login import observer_login
    from vaultflow.steps.vault.api import VaultApi

    loaded = load_catalog(catalog or default_catalog())
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise InputError(f"--listen {listen!r}: give HOST:PORT, for example 127.0.0.1:9469")
    addresses, ca = vault_connection(vault_addresses, ca_cert)

    def login() -> VaultApi:
        return observer_login(loaded, addresses, ca)

    try:
        vault: VaultApi | None = login()
    except VaultflowError as error:
        if once:
            raise
        # Sealed, or the bootstrap has not configured the observer yet: every scrape tries again.
        typer.echo(f"cannot log in to Vault yet ({error}): each scrape tries again", err=True)
        vault = None
    registry = CollectorRegistry()
    CatalogCollector(
        loaded.catalog,
        vault,
        cluster_clients(loaded),
        registry,
        login=None if os.environ.get("VAULT_TOKEN") and vault is not None else login,
        relogin_after=duration_seconds(loaded.catalog.vault.kubernetes_auth.token_ttl) / 2,
    )
    if once:
        typer.echo(generate_latest(registry).decode(), nl=False)
        return
    server, thread = start_http_server(int(port), addr=host, registry=registry)
    typer.echo(f"serving http://{listen}/metrics for {len(loaded.catalog.secrets)} secret(s)", err=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        thread.join(timeout=5)
