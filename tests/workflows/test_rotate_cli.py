"""``vaultflow rotate``: what the catalog alone refuses exits 2 before any server is asked.

Each call points at a Vault address where nothing listens: a refusal that needed Vault
would show up as a connection error instead of the refusal.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from vaultflow.cli import app

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml"
NOWHERE = "http://127.0.0.1:9"  # discard port: nothing answers


def _rotate(monkeypatch: pytest.MonkeyPatch, catalog: Path, *args: str) -> tuple[int, str]:
    monkeypatch.setenv("COLUMNS", "200")
    result = CliRunner().invoke(
        app, ["rotate", "--catalog", str(catalog), "--vault-addresses", NOWHERE, "--quiet", *args]
    )
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "name the secrets to rotate (their catalog paths), or ask for --all-due"),
        (("prod/unknown",), "prod/unknown: not in the catalog"),
        (("argocd/admin",), "argocd/admin: has no rotation in the catalog"),
        (("prod/database,prod/app-credentials",), "give each catalog path as its own argument"),
    ],
)
def test_bad_input_exits_2_with_one_message_and_no_traceback(
    monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], message: str
) -> None:
    code, output = _rotate(monkeypatch, EXAMPLE, *args)
    assert code == 2, output
    assert message in output and "Traceback" not in output


def test_a_catalog_consumer_that_never_refreshes_is_refused_with_the_catalog(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    document = yaml.safe_load(EXAMPLE.read_text())
    [database] = [s for s in document["secrets"] if s["path"] == "prod/database"]
    database["consumers"][1]["refreshPolicy"] = "CreatedOnce"
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(yaml.safe_dump(document))
    code, output = _rotate(monkeypatch, catalog, "prod/database")
    assert code == 2, output
    # The catalog itself is invalid: a rotated secret's consumer that ESO never refreshes.
    assert "catalog.yaml:" in output and "refreshPolicy CreatedOnce never refreshes" in output
