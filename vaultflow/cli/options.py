"""Options shared by several commands."""

from __future__ import annotations

import enum
import os
from pathlib import Path

import typer


class OutputFormat(enum.StrEnum):
    """How a command prints its result: for people, or for machines."""

    text = "text"
    json = "json"


OUTPUT_OPTION = typer.Option(OutputFormat.text, "--output", "-o", help="text for people, json for machines.")


CATALOG_OPTION = typer.Option(
    None,
    "--catalog",
    "-c",
    help="Catalog file (default: $VAULTFLOW_CATALOG or ./catalog.yaml).",
    show_default=False,
)


def default_catalog() -> Path:
    """``$VAULTFLOW_CATALOG``, else ``catalog.yaml`` in the current directory."""
    return Path(os.environ.get("VAULTFLOW_CATALOG", "catalog.yaml"))


VAULT_ADDRESSES_OPTION = typer.Option(
    None,
    "--vault-addresses",
    help="Vault addresses, comma-separated (default: $VAULT_ADDRESSES, else the catalog's address).",
    show_default=False,
)
CA_CERT_OPTION = typer.Option(
    None, "--ca-cert", help="CA bundle to verify Vault (default: $VAULT_CACERT).", show_default=False
)


def vault_connection(addresses: str | None, ca_cert: str | None) -> tuple[str, str]:
    """The Vault addresses and CA bundle given, else ``$VAULT_ADDRESSES`` and ``$VAULT_CACERT``
    (an empty address: the steps use the catalog's ``vault.address``)."""
    return (
        addresses or os.environ.get("VAULT_ADDRESSES", ""),
        ca_cert if ca_cert is not None else os.environ.get("VAULT_CACERT", ""),
    )
