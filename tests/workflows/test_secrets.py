"""No workflow parameter, output or log line carries a secret value.

The ``secret-handling`` pipeline generates a secret, stores it (0600) and
passes only a reference (path, version, hash prefix) to the next step, which
verifies it. Everything Argo would store or show (parameters, every node's
inputs and outputs, the status document, every step log) and everything the
CLI printed is scanned for the value. The same scan run on a deliberately
leaky pipeline must find it: the scan itself is proven to work.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from vaultflow.cli import _VaultflowGroup
from vaultflow.cli.run import run


def _cli(monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    monkeypatch.setenv("VAULTFLOW_PIPELINE_MODULES", "tests.workflows.sample_pipelines")
    app = typer.Typer(cls=_VaultflowGroup)
    app.command("run")(run)
    app.command("unused")(lambda: None)  # keep typer in group mode
    return app


def _places_argo_would_show(run_dir: Path) -> Iterator[tuple[str, str]]:
    """(where, text) for every parameter, input, output and log line of a run."""
    document = json.loads((run_dir / "status.json").read_text())
    for name, value in document["parameters"].items():
        yield f"parameter {name}", value
    for node in document["status"]["nodes"].values():
        for parameter in node.get("inputs", {}).get("parameters", []):
            yield f"{node['displayName']} input {parameter['name']}", parameter["value"]
        outputs = node.get("outputs", {})
        if "result" in outputs:
            yield f"{node['displayName']} result", outputs["result"]
        for parameter in outputs.get("parameters", []):
            yield f"{node['displayName']} output {parameter['name']}", parameter["value"]
        yield f"{node['displayName']} message", node.get("message", "")
    for path in sorted(run_dir.rglob("*")):
        if path.is_file():
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
                yield f"{path.relative_to(run_dir)}:{number}", line


def _leaks(secret: str, run_dir: Path, printed: str) -> list[str]:
    places = [*_places_argo_would_show(run_dir), ("cli output", printed)]
    return [where for where, text in places if secret in text]


def _run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str) -> tuple[int, str, Path, str]:
    store = tmp_path / "store"
    store.mkdir()
    result = CliRunner().invoke(
        _cli(monkeypatch), ["run", name, "-p", f"store={store}", "--run-dir", str(tmp_path / "runs")]
    )
    (run_dir,) = (tmp_path / "runs").iterdir()
    (secret_file,) = store.iterdir()
    return result.exit_code, result.output, run_dir, secret_file.read_text()


def test_a_pipeline_handling_a_secret_passes_only_references(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    exit_code, printed, run_dir, secret = _run(monkeypatch, tmp_path, "secret-handling")
    assert exit_code == 0, printed
    assert len(secret) >= 40
    places = list(_places_argo_would_show(run_dir))
    assert any(where == "verify result" and '"verified": true' in text for where, text in places)
    assert any("stored a new secret at" in text for _, text in places), "the step logs are part of the scan"
    assert _leaks(secret, run_dir, printed) == []
    assert (tmp_path / "store" / "db-password").stat().st_mode & 0o777 == 0o600


def test_the_scan_finds_a_leak_when_a_step_leaks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    exit_code, printed, run_dir, secret = _run(monkeypatch, tmp_path, "secret-leaking")
    assert exit_code == 0
    leaks = _leaks(secret, run_dir, printed)
    assert "leak result" in leaks
    assert any(where.startswith("leak.log") for where in leaks)
