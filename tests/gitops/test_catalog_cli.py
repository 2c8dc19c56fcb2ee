"""``vaultflow catalog validate|schema`` through the real command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import yaml
from typer.testing import CliRunner

from vaultflow.cli import app

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml"


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The installed console script, as a user runs it (own process, real exit code)."""
    return subprocess.run(
        [sys.executable, "-m", "vaultflow", *args], capture_output=True, text=True, cwd=cwd, check=False
    )


def test_valid_catalog_exits_zero_with_a_summary() -> None:
    result = run_cli("catalog", "validate", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert "valid: 7 secrets (4 rotated), 6 consumers in 2 clusters, 4 pushes to 3 clouds" in result.stdout


def test_invalid_catalog_exits_two_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "catalog.yaml"
    bad.write_text(EXAMPLE.read_text().replace("secretName: db-secret}", "secretName: DB}", 1))
    result = run_cli("catalog", "validate", str(bad))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr + result.stdout
    line = next(n for n, text in enumerate(bad.read_text().splitlines(), 1) if "secretName: DB}" in text)
    assert f"{bad}:{line}:" in result.stderr
    assert "secrets[0].consumers[0].secretName" in result.stderr


def test_json_output_lists_problems_for_machines(tmp_path: Path) -> None:
    bad = tmp_path / "catalog.yaml"
    bad.write_text(EXAMPLE.read_text().replace("region: eu-west-1", "region: europe"))
    result = CliRunner().invoke(app, ["catalog", "validate", str(bad), "--output", "json"])
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    assert report["valid"] is False
    (problem,) = report["problems"]
    assert problem["field"] == "clouds[0].region"
    assert problem["line"] == next(n for n, t in enumerate(bad.read_text().splitlines(), 1) if "europe" in t)


def test_default_catalog_comes_from_the_environment(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["catalog", "validate"], env={"VAULTFLOW_CATALOG": str(EXAMPLE)})
    assert result.exit_code == 0, result.output
    missing = CliRunner().invoke(
        app, ["catalog", "validate"], env={"VAULTFLOW_CATALOG": str(tmp_path / "x.yaml")}
    )
    assert missing.exit_code == 2


def test_schema_is_valid_json_schema_that_accepts_the_example_and_rejects_typos() -> None:
    result = CliRunner().invoke(app, ["catalog", "schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    example = yaml.safe_load(EXAMPLE.read_text())
    assert list(validator.iter_errors(example)) == []
    example["vault"]["kvMoutn"] = "secret"
    assert any("kvMoutn" in error.message for error in validator.iter_errors(example))


def test_help_on_every_command() -> None:
    for args in (["--help"], ["catalog", "--help"], ["catalog", "validate", "--help"], ["render", "--help"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0 and "Usage" in result.output, args


def test_usage_error_exits_two() -> None:
    result = run_cli("render", "--catalog", str(EXAMPLE))  # --out missing
    assert result.returncode == 2
    assert "Missing option '--out'" in result.stderr
