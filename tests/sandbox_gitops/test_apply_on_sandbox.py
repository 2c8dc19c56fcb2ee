"""``vaultflow gitops apply`` on the sandbox: push and pull-request delivery, waited until it is there.

One sandbox for the module (``catalog_sandbox_in``: Vault configured and seeded
from the example catalog); the catalog's ``repoUrl`` is routed to the sandbox's
GitOps repository, as ``vaultflow sandbox up --catalog`` routes it, and the one
Application a platform team creates by hand (the app-of-apps over
``eso-resources/argocd``) is registered. Everything else is the real CLI, run
with ``vaultflow sandbox env``'s variables and nothing else: plain ``git`` on the
catalog's ``repoUrl`` (Git's ``insteadOf``), PyGithub on the GitHub emulator,
the Kubernetes client on the Argo CD cluster and the workload clusters.

The tests run in order: each builds on the repository the previous ones left.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from github import Auth, Github
from kubernetes import client

from tests.sandbox_e2e.conftest import SEEDS, CatalogSandbox, catalog_sandbox_in
from vaultflow.sandbox import lifecycle
from vaultflow.sandbox.admin import AdminClient
from vaultflow.sandbox.catalog_wiring import APP_OF_APPS, register_app_of_apps
from vaultflow.sandbox.observe import applications, external_secrets

REPO_URL = "https://github.com/example-org/platform-gitops.git"  # examples/catalog.yaml gitops.repoUrl
FULL_NAME = "example-org/platform-gitops"
PR_BRANCH = "vaultflow/eso-resources"
APPS = {APP_OF_APPS, "eso-resources-prod-eu", "eso-resources-prod-us"}


@pytest.fixture(scope="module")
def sandbox(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CatalogSandbox]:
    with catalog_sandbox_in(repo_root, tmp_path_factory.mktemp("gitops-apply") / "sbx") as made:
        AdminClient.for_state(made.state).set_route("git", REPO_URL, made.state.gitops_repo)
        register_app_of_apps(made.state, made.loaded, REPO_URL)
        yield made


def _bare(sandbox: CatalogSandbox) -> Path:
    return Path(sandbox.state.directory) / "gitops.git"


def _git(repository: Path, *arguments: str) -> str:
    done = subprocess.run(
        ["git", "--git-dir", str(repository), *arguments], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _environment(sandbox: CatalogSandbox, **extra: str) -> dict[str, str]:
    environment = {**os.environ, **lifecycle.environment(sandbox.state), "COLUMNS": "200", **extra}
    environment.pop("GITHUB_TOKEN", None)  # the sandbox's token is read from its file
    return environment


def _command(catalog: Path, *arguments: str) -> list[str]:
    return [sys.executable, "-m", "vaultflow", "gitops", "apply", "--catalog", str(catalog), *arguments]


def _apply(sandbox: CatalogSandbox, catalog: Path, *arguments: str, **extra: str) -> tuple[int, str, str]:
    done = subprocess.run(
        _command(catalog, *arguments),
        env=_environment(sandbox, **extra),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    _no_secret_in(done.stdout + done.stderr)
    return done.returncode, done.stdout, done.stderr


def _no_secret_in(text: str) -> None:
    leaked = [value for values in SEEDS.values() for value in values.values() if value in text]
    assert not leaked


def _edited(sandbox: CatalogSandbox, directory: Path, edit: Any) -> Path:
    document = yaml.safe_load(Path(sandbox.loaded.source).read_text())
    edit(document)
    catalog = directory / "catalog.yaml"
    catalog.write_text(yaml.safe_dump(document, sort_keys=False))
    return catalog


def _consumers(document: dict[str, Any], path: str) -> list[dict[str, Any]]:
    [secret] = [s for s in document["secrets"] if s["path"] == path]
    consumers: list[dict[str, Any]] = secret["consumers"]
    return consumers


def _with_copy(secret_name: str, **fields: str) -> Any:
    """An edit that adds one consumer of prod/app-credentials in prod-eu: the ExternalSecret app-copy."""

    def edit(document: dict[str, Any]) -> None:
        _consumers(document, "prod/app-credentials").append(
            {
                "cluster": "prod-eu",
                "namespace": "production",
                "name": "app-copy",
                "secretName": secret_name,
                **fields,
            }
        )

    return edit


def _github(sandbox: CatalogSandbox) -> Github:
    state = sandbox.state
    return Github(
        base_url=state.github_api_url,
        auth=Auth.Token(Path(state.github_token_file).read_text().strip()),
        verify=state.ca_file,
        seconds_between_requests=None,
        seconds_between_writes=None,
    )


def _assert_synced_at(
    sandbox: CatalogSandbox, report: dict[str, Any], revision: str, names: set[str]
) -> None:
    """The report and Argo CD itself agree: every named Application Synced at ``revision``."""
    wait = report["wait"]
    assert wait["converged"] and wait["commit"] == revision and not wait["pending"]
    seen = {app["name"]: app for app in wait["applications"]}
    assert names <= set(seen)
    assert all(app["converged"] and app["revision"] == revision for app in seen.values())
    live = {app.name: app for app in applications(sandbox.state)}
    for name in names:
        assert live[name].synced_at(revision) and live[name].health == "Healthy", live[name].describe()


def test_push_apply_waits_until_argo_cd_synced_the_commit_and_eso_is_ready(sandbox: CatalogSandbox) -> None:
    code, stdout, stderr = _apply(sandbox, Path(sandbox.loaded.source), "--output", "json", "--timeout", "3m")
    assert code == 0, stdout + stderr
    report = json.loads(stdout)
    commit = report["commit"]
    assert commit == _git(_bare(sandbox), "rev-parse", "main") == report["revision"]
    _assert_synced_at(sandbox, report, commit, APPS)
    # ESO: every rendered ExternalSecret and PushSecret, each Ready and refreshed after its sync
    objects = report["wait"]["objects"]
    assert {o["kind"] for o in objects} == {"ExternalSecret", "PushSecret"}
    assert all(o["converged"] for o in objects)
    assert sum(o["kind"] == "ExternalSecret" for o in objects) == 7
    assert all(es.ready for es in external_secrets(sandbox.state, ["prod-eu", "prod-us"]))
    assert "Argo CD asked to refresh" in stderr
    # the commit message names kinds and names of what was added, never a value
    message = _git(_bare(sandbox), "log", "-1", "--format=%B", commit)
    assert message.startswith("vaultflow: render secrets catalog (")
    assert (
        "A eso-resources/clusters/prod-eu/production/external-secret-prod-database.yaml: "
        "ExternalSecret production/prod-database" in message
    )
    _no_secret_in(message)


def test_a_second_apply_with_nothing_to_change_makes_no_commit_and_says_so(sandbox: CatalogSandbox) -> None:
    before = _git(_bare(sandbox), "rev-parse", "main")
    code, stdout, stderr = _apply(sandbox, Path(sandbox.loaded.source), "--timeout", "2m")
    assert code == 0, stdout + stderr
    assert "nothing to change: main already holds what the catalog renders (no commit)" in stdout
    assert _git(_bare(sandbox), "rev-parse", "main") == before
    assert "converged in" in stdout  # still checked: every Application of the path at main's head


def test_pr_mode_opens_a_pull_request_with_the_preflight_then_updates_the_same_one(
    sandbox: CatalogSandbox, tmp_path: Path
) -> None:
    # A Secret another controller owns: a consumer writing into it is a preflight finding.
    with sandbox.api("prod-eu") as api:
        client.CoreV1Api(api).create_namespaced_secret(
            "production",
            {
                "metadata": {
                    "name": "taken",
                    "ownerReferences": [
                        {
                            "apiVersion": "apps/v1",
                            "kind": "Deployment",
                            "name": "legacy",
                            "uid": "00000000-0000-4000-8000-000000000001",
                            "controller": True,
                        }
                    ],
                },
                "stringData": {"k": "v"},
            },
        )
    main = _git(_bare(sandbox), "rev-parse", "main")
    catalog = _edited(sandbox, tmp_path, _with_copy("taken"))
    code, stdout, stderr = _apply(sandbox, catalog, "--mode", "pr", "--output", "json")
    assert code == 0, stdout + stderr
    first = json.loads(stdout)
    pull = first["pull_request"]
    assert pull["action"] == "opened" and pull["branch"] == PR_BRANCH and not pull["merged"]
    assert first["wait"] is None and first["preflight"].startswith("1 finding(s)")
    assert _git(_bare(sandbox), "rev-parse", "main") == main  # nothing reaches main before a merge
    head = _git(_bare(sandbox), "rev-parse", PR_BRANCH)
    assert first["commit"] == head and _git(_bare(sandbox), "rev-parse", f"{head}^") == main
    with _github(sandbox) as github:
        repo = github.get_repo(FULL_NAME)
        opened = repo.get_pull(pull["number"])
        assert "| ownership | prod-eu | ExternalSecret production/app-copy |" in opened.body
        assert "ExternalSecret production/app-copy" in opened.body.split("### Preflight")[0]
        assert [(s.context, s.state) for s in repo.get_commit(head).get_statuses()] == [
            ("vaultflow/preflight", "failure")
        ]

    fixed = _edited(sandbox, tmp_path, _with_copy("app-copy"))
    code, stdout, stderr = _apply(sandbox, fixed, "--mode", "pr", "--output", "json")
    assert code == 0, stdout + stderr
    second = json.loads(stdout)
    assert second["pull_request"]["action"] == "updated"
    assert second["pull_request"]["number"] == pull["number"]
    new_head = _git(_bare(sandbox), "rev-parse", PR_BRANCH)
    assert second["commit"] == new_head != head and _git(_bare(sandbox), "rev-parse", f"{new_head}^") == main
    with _github(sandbox) as github:
        repo = github.get_repo(FULL_NAME)
        open_pulls = list(repo.get_pulls(state="open", head=f"example-org:{PR_BRANCH}"))
        assert [p.number for p in open_pulls] == [pull["number"]]  # one open pull request per branch
        assert "no finding" in open_pulls[0].body and "| ownership |" not in open_pulls[0].body
        assert open_pulls[0].head.sha == new_head
        assert [s.state for s in repo.get_commit(new_head).get_statuses()] == ["success"]
        _no_secret_in(open_pulls[0].body)


def test_pr_mode_wait_sees_the_merge_then_argo_cd_at_the_merge_commit(
    sandbox: CatalogSandbox, tmp_path: Path
) -> None:
    fixed = _edited(sandbox, tmp_path, _with_copy("app-copy"))
    process = subprocess.Popen(
        _command(fixed, "--mode", "pr", "--wait", "--output", "json", "--timeout", "3m"),
        env=_environment(sandbox),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    progress: list[str] = []
    waiting = threading.Event()

    def read_progress() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            progress.append(line)
            if "to be merged" in line:
                waiting.set()

    reader = threading.Thread(target=read_progress, daemon=True)
    reader.start()
    try:
        assert waiting.wait(120), "".join(progress)
        with _github(sandbox) as github:
            [pull] = github.get_repo(FULL_NAME).get_pulls(state="open", head=f"example-org:{PR_BRANCH}")
            merged = pull.merge()  # a reviewer merges it on GitHub
        stdout, _ = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    reader.join(10)
    assert process.returncode == 0, stdout + "".join(progress)
    _no_secret_in(stdout + "".join(progress))
    report = json.loads(stdout)
    assert report["commit"] is None  # the branch already held this render: nothing new was pushed
    assert report["pull_request"]["merged"] and report["pull_request"]["merge_commit"] == merged.sha
    assert report["revision"] == merged.sha == _git(_bare(sandbox), "rev-parse", "main")
    _assert_synced_at(sandbox, report, merged.sha, {"eso-resources-prod-eu"})
    [copy] = [o for o in report["wait"]["objects"] if o["name"] == "app-copy"]
    assert copy["converged"] and copy["cluster"] == "prod-eu"


def test_pr_mode_merge_merges_through_the_api_and_waits_at_the_merge_commit(
    sandbox: CatalogSandbox, tmp_path: Path
) -> None:
    changed = _edited(sandbox, tmp_path, _with_copy("app-copy", refreshInterval="20m"))
    # no Vault address: the pull request says preflight did not run, and the apply goes on
    code, stdout, stderr = _apply(
        sandbox, changed, "--mode", "pr", "--merge", "--output", "json", "--timeout", "3m", VAULT_ADDRESSES=""
    )
    assert code == 0, stdout + stderr
    report = json.loads(stdout)
    pull = report["pull_request"]
    assert pull["action"] == "opened" and pull["merged"] and pull["pushed"]  # the last one was merged
    assert (
        report["preflight"] == "did not run: no Vault address (set VAULT_ADDRESSES or pass --vault-addresses)"
    )
    with _github(sandbox) as github:
        body = github.get_repo(FULL_NAME).get_pull(pull["number"]).body
    assert "### Preflight\n\n_Preflight did not run: no Vault address" in body
    merge = _git(_bare(sandbox), "rev-parse", "main")
    assert pull["merge_commit"] == report["revision"] == merge
    assert _git(_bare(sandbox), "rev-parse", f"{merge}^2") == report["commit"]  # a merge commit of the head
    _assert_synced_at(sandbox, report, merge, {"eso-resources-prod-eu"})
    [copy] = [o for o in report["wait"]["objects"] if o["name"] == "app-copy"]
    assert copy["converged"]
    with sandbox.api("prod-eu") as api:
        es = client.CustomObjectsApi(api).get_namespaced_custom_object(
            "external-secrets.io", "v1", "production", "externalsecrets", "app-copy"
        )
    assert es["spec"]["refreshInterval"] == "20m"  # the merged change is what ESO runs


def test_two_concurrent_applies_both_land(sandbox: CatalogSandbox) -> None:
    bare = _bare(sandbox)
    # A pre-receive hook holds each push until a second one has arrived: the two pushes race for
    # certain, one loses (the ref moved under it), rebuilds on the winner's commit and pushes again.
    arrivals = bare / "arrivals"
    arrivals.mkdir()
    hook = bare / "hooks" / "pre-receive"
    hook.write_text(
        "#!/bin/sh\n"
        f"touch {arrivals}/$$\n"
        "n=0\n"
        f'while [ "$(ls {arrivals} | wc -l)" -lt 2 ] && [ $n -lt 300 ]; do sleep 0.1; n=$((n+1)); done\n'
        "cat >/dev/null\n"
        "exit 0\n"
    )
    hook.chmod(0o755)
    catalog = Path(sandbox.loaded.source)
    try:
        processes = [
            subprocess.Popen(
                _command(catalog, "--path", team, "--no-wait", "--output", "json"),
                env=_environment(sandbox),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for team in ("team-a", "team-b")
        ]
        results = [process.communicate(timeout=300) for process in processes]
    finally:
        hook.unlink()
    for process, (stdout, stderr) in zip(processes, results, strict=True):
        assert process.returncode == 0, stdout + stderr
    reports = [json.loads(stdout) for stdout, _ in results]
    assert sorted(r["attempts"] for r in reports) == [1, 2]  # the race happened and was won by retrying
    files = set(_git(bare, "ls-tree", "-r", "--name-only", "main").split())
    for report in reports:
        _git(bare, "merge-base", "--is-ancestor", report["commit"], "main")  # no commit lost
        assert f"{report['path']}/.vaultflow-rendered" in files
    assert "eso-resources/.vaultflow-rendered" in files
    parents = _git(bare, "rev-list", "--parents", "-n", "2", "main").splitlines()
    assert all(len(line.split()) == 2 for line in parents)  # rebased: a linear history, no merge commit


def test_the_apply_eso_resources_pipeline_delivers_and_waits_like_the_cli(
    sandbox: CatalogSandbox, tmp_path: Path
) -> None:
    """``vaultflow run apply-eso-resources`` (what ``task it:external-secrets:apply-resources`` runs):
    preflight, a commit on main, Argo CD at that commit, the new ExternalSecret Ready."""
    catalog = _edited(sandbox, tmp_path, _with_copy("app-copy-pipeline"))
    environment = _environment(sandbox)
    before = subprocess.run(  # main does not exist yet when this test runs alone
        ["git", "--git-dir", str(_bare(sandbox)), "rev-parse", "-q", "--verify", "main"],
        capture_output=True, text=True, check=False,
    ).stdout.strip()  # fmt: skip
    done = subprocess.run(
        [
            sys.executable, "-m", "vaultflow", "run", "apply-eso-resources",
            "-p", f"catalog={catalog}", "-p", "mode=push", "-p", "timeout=3m",
            "-p", f"vault-addresses={environment['VAULT_ADDRESSES']}",
            "-p", f"ca-cert={environment['VAULT_CACERT']}",
            "--run-dir", str(tmp_path / "runs"),
        ],
        env=environment, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    _no_secret_in(done.stdout + done.stderr)
    assert done.returncode == 0, done.stdout + done.stderr
    commit = _git(_bare(sandbox), "rev-parse", "main")
    assert commit != before
    assert "app-copy" in _git(_bare(sandbox), "show", "--stat", "--format=%B", commit)
    live = {app.name: app for app in applications(sandbox.state)}
    # The Application of the changed path (prod-eu's): the pipeline waits for no other when main
    # existed before (the app-of-apps reads argocd/, unchanged, and syncs on its own poll).
    awaited = APPS if not before else {"eso-resources-prod-eu"}
    for name in awaited:
        assert live[name].synced_at(commit) and live[name].health == "Healthy", live[name].describe()
    copies = [es for es in external_secrets(sandbox.state, ["prod-eu"]) if es.name == "app-copy"]
    assert copies and all(es.ready for es in copies)


def test_a_github_token_the_api_refuses_fails_in_one_line_before_anything_is_pushed(
    sandbox: CatalogSandbox, tmp_path: Path
) -> None:
    wrong = tmp_path / "token"
    wrong.write_text("ghp_not-the-sandbox-token\n")
    wrong.chmod(0o600)
    refs = _git(_bare(sandbox), "for-each-ref")
    catalog = _edited(sandbox, tmp_path, _with_copy("app-copy", refreshInterval="30m"))
    code, stdout, stderr = _apply(sandbox, catalog, "--mode", "pr", VAULTFLOW_GITHUB_TOKEN_FILE=str(wrong))
    assert code == 1
    assert stderr.count("\n") == 1 and "Traceback" not in stderr
    assert stderr.startswith("error: GitHub refused the token (401 Bad credentials)")
    assert "not-the-sandbox-token" not in stdout + stderr
    assert _git(_bare(sandbox), "for-each-ref") == refs  # nothing half-written: no branch, no commit


def test_a_git_remote_that_refuses_the_push_fails_in_one_line(
    sandbox: CatalogSandbox, tmp_path: Path
) -> None:
    read_only = tmp_path / "read-only.git"
    subprocess.run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(read_only)], check=True)
    hook = read_only / "hooks" / "pre-receive"
    hook.write_text(
        "#!/bin/sh\necho 'Permission to example-org/platform-gitops.git denied to vaultflow.' >&2\nexit 1\n"
    )
    hook.chmod(0o755)
    catalog = Path(sandbox.loaded.source)
    code, _, stderr = _apply(sandbox, catalog, "--repo", read_only.as_uri(), "--no-wait")
    assert code == 1
    assert stderr.count("\n") == 1 and "Traceback" not in stderr
    assert stderr.startswith(
        "error: push to main failed: Permission to example-org/platform-gitops.git denied"
    )
    assert _git(read_only, "for-each-ref") == ""  # nothing half-written

    missing = (tmp_path / "no-such-repo.git").as_uri()
    code, _, stderr = _apply(sandbox, catalog, "--repo", missing, "--no-wait")
    assert code == 1
    assert stderr.count("\n") == 1 and "Traceback" not in stderr
    assert stderr.startswith(f"error: cannot clone {missing}: ")


def test_an_application_pointed_at_a_path_that_does_not_exist_is_named_with_its_condition(
    sandbox: CatalogSandbox,
) -> None:
    application = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "eso-resources-typo", "namespace": "argocd"},
        "spec": {
            "project": "default",
            "source": {
                "repoURL": REPO_URL,
                "targetRevision": "main",
                "path": "eso-resources/clusters/prod-eu-typo",
            },
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "default"},
            "syncPolicy": {"automated": {"prune": True}},
        },
    }
    arguments = ("argoproj.io", "v1alpha1", "argocd", "applications")
    with sandbox.api(sandbox.state.management_cluster.name) as api:
        custom = client.CustomObjectsApi(api)
        custom.create_namespaced_custom_object(*arguments, application)
        try:
            started = time.monotonic()
            code, stdout, stderr = _apply(sandbox, Path(sandbox.loaded.source), "--timeout", "8s")
        finally:
            custom.delete_namespaced_custom_object(*arguments, "eso-resources-typo")
    assert code == 1, stdout + stderr
    assert time.monotonic() - started < 60
    [line] = [line for line in stderr.splitlines() if line.startswith("error: not converged")]
    assert "Application argocd/eso-resources-typo: " in line
    assert "ComparisonError: Failed to load target state: app path does not exist: " in line
    assert "eso-resources/clusters/prod-eu-typo" in line
    assert "eso-resources-prod-eu:" not in line  # the healthy ones are not named


def test_the_whole_git_history_holds_no_secret_value(sandbox: CatalogSandbox) -> None:
    history = _git(_bare(sandbox), "log", "-p", "--all")
    assert "kind: ExternalSecret" in history  # the history is there, and it is the rendered tree
    _no_secret_in(history)
