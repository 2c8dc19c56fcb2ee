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
from vaultflow.gitops.delivery_rbac import DELIVERY_ACCOUNT
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
        "vault-ca-secret": "vaultflow-vault-ca",
        "git-credentials-secret": "vaultflow-delivery-git",
        "kubeconfig-secret": "vaultflow-kubeconfig-vaultflow-delivery",
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
    """In the workflows cluster, by hand: its input, outputs and Argo CD. What it asks of every catalog
    cluster is rendered from the catalog (tests/gitops/test_delivery_rbac.py)."""
    assert PIPELINE.service_account == DELIVERY_ACCOUNT.name
    assert _grants()["vaultflow-delivery"] - EXECUTOR == {
        ("argo", "", "configmaps", "get", "vaultflow-catalog"),
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


def test_every_step_gets_the_git_credential_secret_as_a_read_only_file_never_a_parameter() -> None:
    from vaultflow.workflows.registry import load_registry

    document = load_registry().document("apply-eso-resources")
    spec = document["spec"]
    assert spec["volumes"] == [
        {
            "name": "git-credentials",
            "secret": {
                "secretName": "{{workflow.parameters.git-credentials-secret}}",
                "defaultMode": 0o440,
                "optional": True,
            },
        },
        {  # Vault's CA (tests/workflows/test_vault_ca_mount.py)
            "name": "vault-ca",
            "secret": {
                "secretName": "{{workflow.parameters.vault-ca-secret}}",
                "defaultMode": 0o440,
                "optional": True,
            },
        },
        {  # the other clusters' kubeconfig (tests/workflows/test_kubeconfig_mount.py)
            "name": "kubeconfig",
            "secret": {
                "secretName": "{{workflow.parameters.kubeconfig-secret}}",
                "defaultMode": 0o440,
                "optional": True,
            },
        },
    ]
    scripts = [t["script"] for t in spec["templates"] if "script" in t]
    assert len(scripts) == len(PIPELINE.steps)
    for script in scripts:
        assert script["volumeMounts"] == [
            {"name": "git-credentials", "mountPath": str(tasks.GIT_CREDENTIALS_DIR), "readOnly": True},
            {"name": "vault-ca", "mountPath": "/etc/vaultflow/vault-ca", "readOnly": True},
            {"name": "kubeconfig", "mountPath": "/etc/vaultflow/kubeconfig", "readOnly": True},
        ]
        # no credential in the environment: only the kubeconfig's path (a file of its mount)
        assert [e for e in script.get("env", []) if not e["name"].startswith("hera__")] == [
            {"name": "KUBECONFIG", "value": "/etc/vaultflow/kubeconfig/config"}
        ]
    # The pods read the file through the fsGroup (0440: owner root, group the steps' user).
    assert spec["securityContext"]["fsGroup"] == spec["securityContext"]["runAsUser"]


def test_the_mounted_token_is_what_git_and_github_use_and_nothing_without_it(tmp_path: Path) -> None:
    """``tasks.credentials``: git's credential helper answers with the file's token (asked through git
    itself), the GitHub client reads the file; without the mount the environment is left as it is."""
    mounted = tmp_path / "git"
    environ = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "GIT_CONFIG_COUNT": "1"}
    environ |= {"GIT_CONFIG_KEY_0": "url.file:///x.insteadOf", "GIT_CONFIG_VALUE_0": "https://h/x"}
    assert tasks.credentials(environ, mounted) == (environ, {})
    mounted.mkdir()
    (mounted / "token").write_text("test-token-4d1\n")
    github, git_env = tasks.credentials(environ, mounted)
    assert github == {**environ, "VAULTFLOW_GITHUB_TOKEN_FILE": str(mounted / "token")}
    assert git_env["GIT_CONFIG_COUNT"] == "2" and git_env["GIT_CONFIG_KEY_1"] == "credential.helper"
    assert "test-token-4d1" not in str(git_env)  # a path in the helper, never the token
    filled = subprocess.run(
        ["git", "credential", "fill"],
        input="protocol=https\nhost=github.com\npath=example-org/platform-gitops.git\n\n",
        env={**environ, **git_env},
        capture_output=True,
        text=True,
        check=True,
    )
    assert "username=x-access-token\npassword=test-token-4d1\n" in filled.stdout
    # An explicit $VAULTFLOW_GITHUB_TOKEN_FILE still wins for the API.
    own = {**environ, "VAULTFLOW_GITHUB_TOKEN_FILE": "/elsewhere"}
    assert tasks.credentials(own, mounted)[0]["VAULTFLOW_GITHUB_TOKEN_FILE"] == "/elsewhere"


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
    # as the delivery's own account in every cluster, and nothing runs when `sandbox env` fails
    assert (
        f'SANDBOX_ENV="$({python} -m vaultflow sandbox env --dir {directory} --as apply-eso-resources '
        f'--catalog mine.yaml)" && eval "$SANDBOX_ENV" && ' in said
    )
    assert (
        f"&& {python} -m vaultflow run apply-eso-resources -p catalog=mine.yaml -p mode=push "
        f'-p vault-addresses="$VAULT_ADDRESSES" -p ca-cert="$VAULT_CACERT" --run-dir {directory}/runs' in said
    )
    cluster = _dry("it:external-secrets:apply-resources", "TARGET=cluster", "MODE=pr")
    assert f"{python} -m vaultflow workflows submit apply-eso-resources -p mode=pr" in cluster
    assert "--wait" in cluster


def test_task_vault_init_runs_the_bootstrap_as_its_account_or_submits_it(tmp_path: Path) -> None:
    python = REPO_ROOT / ".venv" / "bin" / "python"
    directory = tmp_path / "sbx"
    said = _dry("vault:init", f"SANDBOX_DIR={directory}", "CATALOG=mine.yaml")
    assert (
        f'SANDBOX_ENV="$({python} -m vaultflow sandbox env --dir {directory} --as vault-bootstrap '
        f'--catalog mine.yaml)" && eval "$SANDBOX_ENV" && {python} -m vaultflow run vault-bootstrap ' in said
    )
    assert f"-p catalog=mine.yaml --run-dir {directory}/runs" in said
    cluster = _dry("vault:init", "TARGET=cluster", "VAULT_ADDRESSES=https://vault-0:8200")
    submitted = (
        f'{python} -m vaultflow workflows submit vault-bootstrap -p vault-addresses="https://vault-0:8200"'
    )
    assert submitted in cluster
    assert "sandbox env" not in cluster


def test_a_failing_sandbox_env_stops_the_task(tmp_path: Path) -> None:
    """``eval "$(cmd)"`` succeeds when cmd fails (eval of nothing), so the pipeline would run as admin
    or against nothing; the tasks capture the exports first, and the command's exit status stops them."""
    task = Path(sys.executable).parent / "task"
    for name in ("vault:init", "it:external-secrets:apply-resources", "rotate"):
        done = subprocess.run(
            [str(task), name, f"SANDBOX_DIR={tmp_path / 'none'}", "--", "prod/database"],
            check=False,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, "NO_COLOR": "1"},
        )
        assert done.returncode != 0
        errors = [line for line in done.stderr.splitlines() if not line.startswith("task: ")]
        assert errors == [
            f"error: no sandbox is running in {tmp_path / 'none'}; start one with "
            f"`vaultflow sandbox up --dir {tmp_path / 'none'}`"
        ], done.stderr
        assert not (tmp_path / "none" / "runs").exists()


def test_task_external_secrets_deploy(tmp_path: Path) -> None:
    python = REPO_ROOT / ".venv" / "bin" / "python"
    directory = tmp_path / "sbx"
    said = _dry("external-secrets:deploy", f"SANDBOX_DIR={directory}")
    assert f"{python} -m vaultflow sandbox up --dir {directory}" in said
    assert f"&& {python} -m vaultflow sandbox status --dir {directory}" in said
    cluster = _dry("external-secrets:deploy", "TARGET=cluster")
    assert "kubectl apply -n argocd -f argocd-apps/apps/external-secrets.yaml" in cluster
    assert (REPO_ROOT / "argocd-apps" / "apps" / "external-secrets.yaml").is_file()


def test_task_cluster_onboard_runs_in_the_sandbox_env_or_with_the_users_kubeconfig(tmp_path: Path) -> None:
    python = REPO_ROOT / ".venv" / "bin" / "python"
    directory = tmp_path / "sbx"
    said = _dry(
        "cluster:onboard", f"SANDBOX_DIR={directory}", "CATALOG=mine.yaml", "--", "--cluster", "prod-eu"
    )
    assert f'eval "$({python} -m vaultflow sandbox env --dir {directory})" && ' in said
    assert f"&& {python} -m vaultflow cluster onboard --catalog mine.yaml --cluster prod-eu" in said
    cluster = _dry("cluster:onboard", "TARGET=cluster", "--", "--cluster", "prod-eu", "--dry-run")
    assert f"{python} -m vaultflow cluster onboard --catalog " in cluster
    assert "--cluster prod-eu --dry-run" in cluster and "sandbox env" not in cluster
