"""``vaultflow run`` and ``vaultflow workflows render``: exit codes, output, nothing run on bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from vaultflow.cli import _VaultflowGroup
from vaultflow.cli import workflows as workflows_cli
from vaultflow.cli.run import run

SAMPLES = "tests.workflows.sample_pipelines"


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    """The two commands as the lead registers them on the root app (same error handling)."""
    monkeypatch.setenv("VAULTFLOW_PIPELINE_MODULES", SAMPLES)
    app = typer.Typer(cls=_VaultflowGroup, pretty_exceptions_enable=False)
    app.command("run")(run)
    app.add_typer(workflows_cli.app, name="workflows")
    return app


def test_run_exits_zero_when_the_workflow_succeeds(cli: typer.Typer, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["run", "sample-ok", "-p", "message=hi", "--run-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "Succeeded" in result.output and "hi" in result.output
    (run_dir,) = tmp_path.iterdir()
    assert (run_dir / "echo.log").read_text().strip() == "hi"


def test_run_exits_one_when_the_workflow_fails(
    cli: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A narrow terminal and a long run directory: the paths a user copies must still be whole lines.
    monkeypatch.setenv("COLUMNS", "40")
    runs = tmp_path / ("r" * 150)
    result = CliRunner().invoke(cli, ["run", "sample-fail", "--run-dir", str(runs)])
    assert result.exit_code == 1, result.output
    assert "Failed" in result.output and "Omitted" in result.output
    (run_dir,) = runs.iterdir()
    lines = result.output.splitlines()
    assert any(line.strip().endswith(str(run_dir / "fail.log")) for line in lines), result.output
    assert any(line.strip().endswith(str(run_dir)) for line in lines), result.output


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["run", "no-such-template"], "unknown workflow template or cron workflow 'no-such-template'"),
        (["run", "sample-ok", "-p", "nope=1"], "unknown parameter(s) nope"),
        (["run", "sample-ok", "-p", "message"], "must be given as key=value"),
        (["run", "sample-ok", "-p", "message=a", "-p", "message=b"], "given twice"),
        (["run", "secret-handling"], "parameter 'store' is required (-p store=...)"),
    ],
)
def test_run_exits_two_on_bad_input_and_runs_nothing(
    cli: typer.Typer, tmp_path: Path, arguments: list[str], message: str
) -> None:
    result = CliRunner().invoke(cli, [*arguments, "--run-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()


def test_run_refuses_a_wrong_pipeline_declaration_before_anything_runs(
    cli: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAULTFLOW_PIPELINE_MODULES", f"{SAMPLES},tests.workflows.broken_pipelines")
    result = CliRunner().invoke(cli, ["run", "sample-ok", "--run-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2, result.output
    assert "pipeline 'broken', step 'read'" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()


def test_render_writes_every_template_and_is_deterministic(cli: typer.Typer, tmp_path: Path) -> None:
    first = CliRunner().invoke(cli, ["workflows", "render", "--out", str(tmp_path / "a")])
    second = CliRunner().invoke(cli, ["workflows", "render", "--out", str(tmp_path / "b")])
    assert first.exit_code == second.exit_code == 0, first.output
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.yaml"))
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.yaml"))
    assert files_a == files_b and Path("workflowtemplates/sample-ok.yaml") in files_a
    for relative in files_a:
        assert (tmp_path / "a" / relative).read_bytes() == (tmp_path / "b" / relative).read_bytes()


def test_list_names_every_template(cli: typer.Typer) -> None:
    result = CliRunner().invoke(cli, ["workflows", "list"])
    assert result.exit_code == 0
    assert {"vaultflow-selftest", "sample-ok", "secret-handling"} <= {
        line.split("\t")[0] for line in result.output.splitlines()
    }
