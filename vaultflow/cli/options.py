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


def default_catalog() -> Path:
    """``$VAULTFLOW_CATALOG``, else ``catalog.yaml`` in the current directory."""
    return Path(os.environ.get("VAULTFLOW_CATALOG", "catalog.yaml"))
