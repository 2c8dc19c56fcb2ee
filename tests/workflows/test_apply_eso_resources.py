"""The ``apply-eso-resources`` pipeline's declaration, its identity's RBAC, and the tasks that run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.workflows.test_rbac import EXECUTOR, _grants
from vaultflow.base.errors import InputError
from vaultflow.gitops.catalog import load_catalog
from vaultflow.steps.delivery import tasks
from vaultflow.workflows.dsl import output
from vaultflow.workflows.pipelines.apply_eso_resources import PIPELINES

REPO_ROOT = Path(__file__).resolve().parents[2]
[PIPELINE] = PIPELINES


def test_steps_run_in_order_preflight_apply_wait_verify() -> None:
    assert [s.name for s in PIPELINE.steps] == ["preflight", "apply", "wait-for-sync", "verify-ready"]
    assert [s.depends_expression() for s in PIPELINE.steps] == [None, "preflight", "apply", "wait-for-sync"]
    assert PIPELINE.step("preflight").function is tasks.preflight
    assert PIPELINE.step("verify-ready").function is tasks.verify_ready


def test_parameters_and_their_defaults() -> None:
    defaults = {p.name: p.default for p in PIPELINE.params}
    assert defaults == {
        "catalog": "configmap://argo/vaultflow-catalog",
        "mode": "push",
        "merge": "false",
        "branch": "",
        "path": "",
        "repo": "",
        "timeout": "10m",
        "vault-addresses": "",
        "fail-on-findings": "true",
        "ca-cert": "",
    }
    assert {p.name: p.enum for p in PIPELINE.params}["mode"] == ["push", "pr"]
    assert PIPELINE.step("preflight").args["fail_on_findings"] == "{{workflow.parameters.fail-on-findings}}"


def test_later_steps_get_references_from_apply_never_values() -> None:
    wait, verify = PIPELINE.step("wait-for-sync"), PIPELINE.step("verify-ready")
    assert wait.args["revision"] == output("apply", "revision")
    assert wait.args["pull_request"] == output("apply", "pull-request")
    assert verify.args["revision"] == output("wait-for-sync", "revision")
    assert verify.args["changed"] == output("apply", "changed")


def test_the_template_runs_as_vaultflow_delivery_with_least_privilege() -> None:
    assert PIPELINE.service_account == "vaultflow-delivery"
    assert _grants()["vaultflow-delivery"] - EXECUTOR == {
        ("argo", "", "configmaps", "get", "vaultflow-catalog"),
        ("external-secrets-system", "", "serviceaccounts/token", "create", "external-secrets"),
        ("argocd", "argoproj.io", "applications", "get", ""),
        ("argocd", "argoproj.io", "applications", "list", ""),
        ("argocd", "argoproj.io", "applications", "patch", ""),
    }
    assert _grants()["vaultflow-delivery"] >= EXECUTOR


def test_options_fall_back_to_the_catalog_and_refuse_bad_input() -> None:
    loaded = load_catalog(REPO_ROOT / "examples" / "catalog.yaml")
    options = tasks.delivery_options(loaded, mode="push", timeout="2m")
    gitops = loaded.catalog.gitops
    assert (options.repo_url, options.branch, options.path) == (gitops.repo_url, gitops.revision, gitops.path)
    assert options.wait is False and options.timeout == 120
    assert options.vault_addresses == loaded.catalog.vault.address
    with pytest.raises(InputError, match="mode must be push or pr"):
        tasks.delivery_options(loaded, mode="merge")
    with pytest.raises(InputError, match="needs mode=pr"):
        tasks.delivery_options(loaded, mode="push", merge=True)
    with pytest.raises(InputError, match="relative directory"):
        tasks.delivery_options(loaded, mode="push", path="../elsewhere")
    with pytest.raises(InputError, match="timeout"):
        tasks.delivery_options(loaded, mode="push", timeout="soon")


def _dry(*arguments: str) -> str:
    task = Path(sys.executable).parent / "task"
    done = subprocess.run(
        [str(task), "--dry", *arguments],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    return done.stderr


def test_task_apply_resources_runs_the_pipeline_in_the_sandbox_env(tmp_path: Path) -> None:
    python = REPO_ROOT / ".venv" / "bin" / "python"
    directory = tmp_path / "sbx"
    said = _dry("it:external-secrets:apply-resources", f"SANDBOX_DIR={directory}", "CATALOG=mine.yaml")
    assert f'eval "$({python} -m vaultflow sandbox env --dir {directory})" && ' in said
    assert (
        f"&& {python} -m vaultflow run apply-eso-resources -p catalog=mine.yaml -p mode=push "
        f'-p vault-addresses="$VAULT_ADDRESSES" --run-dir {directory}/runs' in said
    )
    cluster = _dry("it:external-secrets:apply-resources", "TARGET=cluster", "MODE=pr")
    assert f"{python} -m vaultflow workflows submit apply-eso-resources -p mode=pr" in cluster
    assert "--wait" in cluster


def test_task_external_secrets_deploy(tmp_path: Path) -> None:
    python = REPO_ROOT / ".venv" / "bin" / "python"
    directory = tmp_path / "sbx"
    said = _dry("external-secrets:deploy", f"SANDBOX_DIR={directory}")
    assert f"{python} -m vaultflow sandbox up --dir {directory}" in said
    assert f"&& {python} -m vaultflow sandbox status --dir {directory}" in said
    cluster = _dry("external-secrets:deploy", "TARGET=cluster")
    assert "kubectl apply -n argocd -f argocd-apps/apps/external-secrets.yaml" in cluster
    assert (REPO_ROOT / "argocd-apps" / "apps" / "external-secrets.yaml").is_file()
