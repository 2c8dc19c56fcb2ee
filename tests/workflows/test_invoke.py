"""In-process step calls convert inputs and outputs exactly like Hera's runner in a pod.

Each case runs the real ``python -m hera.workflows.runner`` in a subprocess,
the way Argo runs it, and the local runner's in-process call on the same
inputs, and compares stdout (Argo's ``outputs.result``) and output parameters.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from vaultflow.workflows.runner import capture
from vaultflow.workflows.runner.invoke import StepDefinitionError, load_step

MODULE = "tests.workflows.conformance_steps"
REPO_ROOT = Path(__file__).resolve().parents[2]

CASES = [
    (
        "typed",
        {
            "count": "21",
            "ratio": "0.5",
            "flag": "false",
            "name": "vault",
            "tags": '["a","b"]',
            "ref": '{"path": "secret/x", "version": 3}',
            "note": "null",
        },
    ),
    ("annotated", {"the-x": "21"}),
    ("two_outputs", {"a": "hello"}),
    ("output_model", {"sha": "abc123"}),
    ("falsy", {"n": "5"}),
    ("with_input_model", {"mount": "secret", "retries": "5"}),
    ("writes_output", {"value": "abc"}),
    ("prints_and_returns", {"message": "p"}),
    ("loose", {"b": "1", "a": "2"}),
]


Observed = tuple[str, dict[str, str], int]


def _hera_runner(function: str, inputs: dict[str, str], outputs_dir: Path) -> Observed:
    outputs_dir.mkdir(parents=True)
    args_file = outputs_dir / "args.json"
    args_file.write_text(json.dumps([{"name": k, "value": v} for k, v in inputs.items()]))
    env = {**os.environ, "hera__outputs_directory": str(outputs_dir)}
    completed = subprocess.run(
        [sys.executable, "-m", "hera.workflows.runner", "-e", f"{MODULE}:{function}", str(args_file)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
        check=False,
        timeout=120,
    )
    parameters_dir = outputs_dir / "parameters"
    files = {p.name: p.read_text() for p in parameters_dir.iterdir()} if parameters_dir.is_dir() else {}
    return completed.stdout, files, completed.returncode


@pytest.fixture(scope="module")
def pod_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Observed]:
    """Every case through the real runner, in parallel subprocesses (each pays Hera's import time)."""
    root = tmp_path_factory.mktemp("pods")
    with ThreadPoolExecutor(max_workers=len(CASES)) as pool:
        futures = {name: pool.submit(_hera_runner, name, inputs, root / name) for name, inputs in CASES}
        futures["invalid"] = pool.submit(_hera_runner, "falsy", {"n": "five"}, root / "invalid")
        return {name: future.result() for name, future in futures.items()}


def _in_process(function: str, inputs: dict[str, str], outputs_dir: Path, log: Path) -> Observed:
    step = load_step(f"{MODULE}:{function}")
    sink = capture.StepSink(log)
    with capture.routing(), capture.step_output(sink):
        outcome = step.call(inputs, outputs_dir)
    sink.close()
    return sink.stdout(), outcome.parameters, outcome.exit_code


@pytest.mark.parametrize(("function", "inputs"), CASES, ids=[case[0] for case in CASES])
def test_in_process_call_matches_the_hera_runner(
    function: str, inputs: dict[str, str], tmp_path: Path, pod_results: dict[str, Observed]
) -> None:
    expected = pod_results[function]
    assert expected[2] == 0, f"the real runner failed: {expected}"
    actual = _in_process(function, inputs, tmp_path / "local", tmp_path / "local.log")
    assert actual == expected


def test_invalid_input_fails_like_the_runner(tmp_path: Path, pod_results: dict[str, Observed]) -> None:
    assert pod_results["invalid"][2] != 0
    step = load_step(f"{MODULE}:falsy")
    with pytest.raises(Exception, match="valid integer"):
        step.call({"n": "five"}, tmp_path / "local")


def test_string_annotations_are_refused(tmp_path: Path) -> None:
    module = tmp_path / "postponed_steps.py"
    module.write_text("from __future__ import annotations\n\ndef f(x: int) -> int:\n    return x\n")
    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(StepDefinitionError, match="from __future__ import annotations"):
            load_step("postponed_steps:f")
    finally:
        sys.path.remove(str(tmp_path))


def test_unimportable_entrypoints_are_refused() -> None:
    with pytest.raises(StepDefinitionError, match="cannot import module"):
        load_step("no_such_module_here:f")
    with pytest.raises(StepDefinitionError, match="not of the form"):
        load_step("no-colon")
