"""``task demo``, then ``task sandbox:down``, then ``task demo`` again: the first run delivers the catalog
as a pull request on the sandbox's GitHub, with the preflight in its body, merged through the API, and
Argo CD syncs the merge commit; an apply with nothing to change makes no commit, nor does the second
run, which carries on with the same Vault (sealed, unsealed by the bootstrap pipeline with the keeper).
Both runs rotate every rotated secret (stage 7) and roll one back under a cloud fault (stage 8), and
neither run prints a secret value (seeded, rotated, or rolled back) or an unkeyed digest of one."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from github import Auth, Github
from kubernetes import client, config

from vaultflow.gitops.catalog import load_catalog
from vaultflow.sandbox import demo, lifecycle
from vaultflow.sandbox.admin import AdminClient
from vaultflow.sandbox.catalog_wiring import APP_OF_APPS
from vaultflow.sandbox.layout import SandboxPaths
from vaultflow.sandbox.observe import applications
from vaultflow.sandbox.state import SandboxState
from vaultflow.steps.rotation import tasks
from vaultflow.steps.rotation.write import read_metadata, read_version

DIGESTS = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512", "sha3_224", "sha3_256", "sha3_512")
ROTATED = ("prod/database", "prod/app-credentials", "prod/lambda/db-password", "prod/cloudrun/signing-key")
REPOSITORY = "example-org/platform-gitops"  # examples/catalog.yaml gitops.repoUrl, on the sandbox's GitHub
APPS = (APP_OF_APPS, "eso-resources-prod-eu", "eso-resources-prod-us")


def git(repository: Path, *arguments: str) -> str:
    done = subprocess.run(
        ["git", "--git-dir", str(repository), *arguments], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def pull_requests(state: SandboxState) -> list[Any]:
    """Every pull request of the GitOps repository, as the sandbox's GitHub serves them to PyGithub."""
    github = Github(
        base_url=state.github_api_url,
        auth=Auth.Token(Path(state.github_token_file).read_text().strip()),
        verify=state.ca_file,
        seconds_between_requests=None,
        seconds_between_writes=None,
    )
    try:
        return list(github.get_repo(REPOSITORY).get_pulls(state="all"))
    finally:
        github.close()


def assert_delivered_by_pull_request(output: str, state: SandboxState) -> str:
    """Stages 5 and 6 of a first run: one pull request, its body with the preflight, merged through the
    API; the merge commit is main's head and what every Application synced; the second apply made no
    commit. Returns the merge commit."""
    words = " ".join(output.split())
    repo = SandboxPaths(Path(state.directory)).gitops_repo
    [pull] = pull_requests(state)
    assert (pull.head.ref, pull.base.ref, pull.state, pull.merged) == (
        "vaultflow/eso-resources",
        "main",
        "closed",
        True,
    )
    assert "### Preflight" in pull.body and "no finding" in pull.body
    merge = str(pull.merge_commit_sha)
    assert git(repo, "rev-parse", "main") == merge  # the second apply added nothing after the merge
    assert git(repo, "rev-list", "--parents", "-n", "1", merge).split()[1:] == [
        git(repo, "rev-parse", "main~1"),  # the README, the base of the pull request
        str(pull.head.sha),
    ]
    assert git(repo, "rev-list", "--count", "--branches") == "3"  # the README, the proposal, the merge
    assert f"pull request #{pull.number} opened from vaultflow/eso-resources" in words
    assert f"merged through the API into main at {merge[:12]}" in words
    assert "preflight: no finding, 7 Vault references checked" in words
    assert "vaultflow preflight: 7 Vault references checked, no finding." in words  # the body, shown
    seen = {app.name: app for app in applications(state)}
    assert all(seen[name].synced_at(merge) and seen[name].health == "Healthy" for name in APPS), seen
    assert "nothing to change: main already holds what the catalog renders (no pull request)" in words
    second_apply = "second apply: nothing to change, no commit and no pull request; main still at"
    assert f"{second_apply} {merge[:12]}" in words
    return merge


def secret_values(state: SandboxState) -> set[bytes]:
    """Every value ESO wrote into a Secret of the catalog's clusters (the catalog's secrets, as in Vault)."""
    values: set[bytes] = set()
    for cluster in state.workload_clusters:
        with config.new_client_from_config(config_file=state.kubeconfig, context=cluster.name) as api:
            for secret in client.CoreV1Api(api).list_secret_for_all_namespaces().items:
                if (secret.metadata.labels or {}).get("reconcile.external-secrets.io/managed") != "true":
                    continue
                values |= {base64.b64decode(value) for value in (secret.data or {}).values()}
    return {value for value in values if len(value) >= 6}


def vault_history(
    state: SandboxState, catalog: Path, paths: tuple[str, ...]
) -> dict[str, list[dict[str, Any]]]:
    """Every version of each of ``paths`` in Vault (index 0: version 1), read as the rotation service
    account: the identity ``vaultflow rotate`` logs in as (the demo revoked root)."""
    loaded = load_catalog(catalog)
    kv, environment = loaded.catalog.vault.kv_mount, lifecycle.environment(state)
    history: dict[str, list[dict[str, Any]]] = {}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in environment.items():
            patch.setenv(key, value)
        vault = tasks.rotation_vault(loaded, environment["VAULT_ADDRESSES"], environment["VAULT_CACERT"])
        try:
            for path in paths:
                metadata = read_metadata(vault, kv, path)
                assert metadata is not None, path
                versions = range(1, metadata.current_version + 1)
                history[path] = [read_version(vault, kv, path, version) for version in versions]
        finally:
            vault.revoke_self()
    return history


def unkeyed_digests(value: bytes) -> list[str]:
    """What a careless display would print: the first 12 hex digits of common digests of the value."""
    return [hashlib.new(name, value).hexdigest()[:12] for name in DIGESTS]


def run_demo(catalog: Path, directory: Path, capsys: pytest.CaptureFixture[str]) -> str:
    code = demo.main(["--catalog", str(catalog), "--dir", str(directory)])
    output = capsys.readouterr().out
    assert code == 0, output
    return output


def assert_rotation_stages(output: str, *, first: bool) -> None:
    """What stages 7 and 8 say, in the words of the CLI's report table and of the demo."""
    words = " ".join(output.split())  # rich wraps lines where the terminal ends
    created = "created, as its team's deployment would have" if first else "already deployed: unchanged"
    assert (
        f'Deployment production/api in prod-eu: {created}; deployment "api" successfully rolled out' in words
    )
    assert "$ python -m vaultflow rotate --catalog " in words and " --all-due --dry-run" in words
    assert "it acts as service account argo/vaultflow-rotation, under the RBAC the render delivered" in words
    assert f"not due: {', '.join(ROTATED)}" in words and "nothing is due" in words
    assert f"demo-rotation-report.json {' '.join(ROTATED)}" in words  # every rotated secret, by name
    rotated = words[words.index("7. Rotate the secrets") : words.index("8. A cloud fault")]
    assert rotated.count(": Rotated v") == 4 and "✖" not in rotated and "TimedOut" not in rotated
    assert (
        "prod/database: Rotated" in rotated
        and "then Deployment production/api in prod-eu Restarted" in rotated
    )
    assert "3/3 targets Verified holding the new version" in rotated
    # set and tested in PostgreSQL first (alternating users): both the new and the previous login work
    assert "prod-eu/production/db-secret holds now: accepted (SELECT 1)" in rotated
    assert "prod-eu/production/db-secret held before: accepted (SELECT 1) until the next rotation" in rotated
    fault = words[words.index("8. A cloud fault") :]
    assert "aws goes down for ESO" in fault and "verifyTimeout (30s)" in fault
    assert "RolledBack" in fault and "TimedOut" in fault  # the CLI's report table
    assert (
        "✖ AwsSecretsManager /prod/lambda/db-password in aws:eu-west-1 "
        "(pushed from prod-eu/external-secrets-system): TimedOut: PushSecret "
        "external-secrets-system/prod-lambda-db-password-to-aws-prod: not verified within 30s"
    ) in fault
    assert "↺ prod/lambda/db-password: RolledBack: the previous value written back as v" in fault
    assert "fault lifted: aws answers ESO again" in fault
    assert "every Application Synced and Healthy again" in fault and "demo finished" in fault


def assert_monitoring_stage(output: str) -> None:
    """Stage 9: every target up, stage 8's rollback firing RotationFailed, the exporter and a clean
    audit as the read-only observer."""
    words = " ".join(output.split())
    monitoring = words[words.index("9. Monitoring") :]
    scraped = monitoring[: monitoring.index("alert RotationFailed")]  # the targets table
    assert "health" in scraped and " down " not in scraped
    cells = " ".join(scraped.replace("│", " ").split())  # the table's rows, without its borders
    for job in ("vault", "external-secrets", "pushgateway", "vaultflow-exporter"):
        assert f"{job} 127.0.0.1:" in cells
    assert "alert RotationFailed (warning): firing" in monitoring
    assert 'vaultflow_exporter_source_up{source="vault"} 1.0' in monitoring
    assert "$ python -m vaultflow audit --catalog" in monitoring and "audit: no drift" in monitoring
    # The last step: a fault leaves shared/stripe's consumer stale; an alert fires, the audit names it.
    fault = monitoring[monitoring.index("A fault:") :]
    assert "alert ExternalSecretSyncFailures (critical) in prod-us: firing" in fault
    assert 'vaultflow_consumer_stale_seconds{externalsecret="shared-stripe"}' in fault
    audited = fault[: fault.index("the audit names the consumer")]
    assert "payments/shared-stripe" in audited and "not-ready" in audited
    assert "left behind (prod-us payments/shared-stripe): exit 1" in fault
    assert "refreshed: the audit is clean again" in fault


def assert_reports(directory: Path, history: dict[str, list[dict[str, Any]]]) -> None:
    """The reports of the last run, and what Vault holds after them."""
    runs = SandboxPaths(directory).runs
    rotation = json.loads((runs / "demo-rotation-report.json").read_text())
    assert [s["path"] for s in rotation["secrets"]] == list(ROTATED)
    for secret in rotation["secrets"]:
        assert secret["outcome"] == "Rotated" and secret["targets"], secret["path"]
        assert all(t["phase"] == "Verified" and t["seconds"] >= 0 for t in secret["targets"]), secret["path"]
    [database] = [s for s in rotation["secrets"] if s["path"] == "prod/database"]
    assert [
        (r["cluster"], r["namespace"], r["kind"], r["name"], r["phase"]) for r in database["restarts"]
    ] == [("prod-eu", "production", "Deployment", "api", "Restarted")]
    [rolled] = json.loads((runs / "demo-rollback-report.json").read_text())["secrets"]
    assert (rolled["path"], rolled["outcome"]) == ("prod/lambda/db-password", "RolledBack")
    [aws] = [t for t in rolled["targets"] if t["kind"] == "AwsSecretsManager"]
    assert (aws["name"], aws["phase"]) == ("/prod/lambda/db-password", "TimedOut")
    assert rolled["rollbackTargets"] and all(t["phase"] == "Verified" for t in rolled["rollbackTargets"])
    # Vault: the rotated value was written, then the previous one again, and that is current.
    versions = history["prod/lambda/db-password"]
    previous, new, rollback = rolled["previousVersion"], rolled["newVersion"], rolled["rollbackVersion"]
    assert (new, rollback, len(versions)) == (previous + 1, previous + 2, previous + 2)
    assert versions[rollback - 1] == versions[previous - 1] != versions[new - 1]


def assert_rotation_kubeconfig(directory: Path, state: SandboxState) -> None:
    """The rotation ran as its own service account in each cluster: a 0600 kubeconfig whose users are
    that account's tokens (never the admin's), one context per cluster, as the admin's are named."""
    path = SandboxPaths(directory).account_kubeconfigs / "vaultflow-rotation.yaml"
    assert path.stat().st_mode & 0o777 == 0o600
    kubeconfig = yaml.safe_load(path.read_text())
    assert sorted(c["name"] for c in kubeconfig["contexts"]) == ["prod-eu", "prod-us"]
    admin_tokens = {u["user"]["token"] for u in yaml.safe_load(Path(state.kubeconfig).read_text())["users"]}
    for user in kubeconfig["users"]:
        token = user["user"]["token"]
        assert token not in admin_tokens
        claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
        assert claims["sub"] == "system:serviceaccount:argo:vaultflow-rotation"


def test_demo_then_down_then_demo_again_and_no_value_or_digest_is_shown(
    repo_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog = repo_root / "examples" / "catalog.yaml"
    directory = tmp_path / "demo"
    try:
        first = run_demo(catalog, directory, capsys)
        merge = assert_delivered_by_pull_request(first, lifecycle.load_state(directory))
        assert_rotation_stages(first, first=True)
        assert_monitoring_stage(first)
        lifecycle.down(directory)
        second = run_demo(catalog, directory, capsys)
        words = " ".join(second.split())  # rich wraps lines where the terminal ends
        assert "sandbox started again on its kept state: the same Vault, initialised and sealed" in words
        nothing = "nothing to deliver: main already holds what the catalog renders: no pull request,"
        assert f"{nothing} no commit" in words
        assert "demo finished" in words
        rerun = lifecycle.load_state(directory)
        assert len(pull_requests(rerun)) == 1  # no second pull request
        assert git(SandboxPaths(directory).gitops_repo, "rev-parse", "main") == merge
        assert all(app.synced_at(merge) for app in applications(rerun) if app.name in APPS)
        assert f"task sandbox:down SANDBOX_DIR={directory}" in words
        assert_rotation_stages(second, first=False)
        assert_monitoring_stage(second)

        state = lifecycle.load_state(directory)
        assert not [fault for fault in AdminClient.for_state(state).faults().values() if fault.active]
        with config.new_client_from_config(config_file=state.kubeconfig, context="prod-eu") as api:
            template = client.AppsV1Api(api).read_namespaced_deployment("api", "production").spec.template
        assert "kubectl.kubernetes.io/restartedAt" in (template.metadata.annotations or {})
        assert_rotation_kubeconfig(directory, state)
        history = vault_history(state, catalog, ROTATED)
        assert all(len(versions) >= 3 for versions in history.values())  # seeded, then rotated twice
        assert_reports(directory, history)

        written = {
            str(v).encode() for versions in history.values() for data in versions for v in data.values()
        }
        values = secret_values(state) | {value for value in written if len(value) >= 6}
        assert values, "the demo synced secrets into the clusters"
        for output in (first, second):
            for value in values:
                assert value.decode(errors="replace") not in output
                assert not [d for d in unkeyed_digests(value) if d in output]
    finally:
        lifecycle.down(directory, purge=True)
    assert not directory.exists()


def test_task_rotate_runs_what_the_demo_shows(repo_root: Path, tmp_path: Path) -> None:
    """``task rotate`` is the demo's ``vaultflow rotate`` (without --quiet: a terminal gets the live
    tree), in the sandbox's environment, with the arguments after ``--`` at the end."""
    task = Path(sys.executable).parent / "task"
    directory = tmp_path / "sbx"
    done = subprocess.run(
        [
            str(task),
            "--dry",
            "rotate",
            f"SANDBOX_DIR={directory}",
            "CATALOG=mine.yaml",
            "--",
            "prod/database",
        ],
        cwd=repo_root,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    python = repo_root / ".venv" / "bin" / "python"
    expected = demo.rotate_arguments(Path("mine.yaml"), directory, "prod/database")
    expected.remove("--quiet")
    assert (
        f'task: [rotate] SANDBOX_ENV="$({python} -m vaultflow sandbox env --dir {directory} '
        f'--as rotate-secrets --catalog mine.yaml)" && eval "$SANDBOX_ENV" && ' in done.stderr
    )
    assert f"&& {python} -m vaultflow {' '.join(expected)}\n" in done.stderr


def test_the_closing_hint_names_the_sandbox_directory() -> None:
    assert "`task sandbox:down`" in demo.closing_hint(Path(".sandbox"))
    elsewhere = demo.closing_hint(Path("/tmp/my sandbox"))
    assert "`task sandbox:down SANDBOX_DIR='/tmp/my sandbox'`" in elsewhere
    assert "vaultflow sandbox env --dir '/tmp/my sandbox'" in elsewhere


def test_fingerprints_are_keyed_per_run() -> None:
    value = b"a secret value"
    one, other = demo.Fingerprints(), demo.Fingerprints()
    assert one.of(value) == one.of(value) != other.of(value)
    assert one.of(value).removeprefix("hmac:") not in hashlib.sha256(value).hexdigest()
