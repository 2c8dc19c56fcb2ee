"""``vaultflow rotate`` on the sandbox: the rotate-secrets pipeline proves every cluster and cloud.

The example catalog is rendered, committed and synced by Argo CD (nothing is
applied by hand); then the real CLI runs the pipeline on the local runner, as
the rotation service account (Kubernetes auth, never root), against the real
OpenBao, the ESO emulator, moto and the GCP/Azure emulators. Every assertion
compares what the clusters and clouds hold with what Vault holds, read here
with a root token of the test's own; no expected value is written down.

The module has its own sandbox: rotations change values that other modules
read.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from tests.sandbox_e2e.conftest import CatalogSandbox, catalog_sandbox_in
from tests.steps.test_rotation_restart import workload
from vaultflow.gitops.git_delivery import deliver
from vaultflow.gitops.render import render_catalog
from vaultflow.sandbox import lifecycle
from vaultflow.sandbox.admin import AdminClient
from vaultflow.sandbox.catalog_wiring import register_app_of_apps
from vaultflow.sandbox.faults import Fault
from vaultflow.sandbox.observe import external_secrets, wait_for, wait_for_applications
from vaultflow.steps.rotation import tasks

KV = "secret"


@pytest.fixture(scope="module")
def synced(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CatalogSandbox]:
    """The example catalog delivered through Git and synced, every ExternalSecret Ready, and the
    Deployment that prod/database's rotation restarts running."""
    with catalog_sandbox_in(repo_root, tmp_path_factory.mktemp("rotation") / "sbx") as sandbox:
        tree = render_catalog(sandbox.loaded, repo_url=sandbox.repo_url)
        gitops = sandbox.loaded.catalog.gitops
        delivery = deliver(tree, repo_url=sandbox.repo_url, path=gitops.path, branch=gitops.revision)
        assert delivery.commit is not None
        app_of_apps = register_app_of_apps(sandbox.state, sandbox.loaded, sandbox.repo_url)
        names = [app_of_apps, "eso-resources-prod-eu", "eso-resources-prod-us"]
        wait_for_applications(sandbox.state, delivery.commit, names, timeout=90)
        wait_for(
            lambda: all(s.ready for s in external_secrets(sandbox.state, ["prod-eu", "prod-us"])) or None,
            what="every ExternalSecret Ready",
        )
        with sandbox.api("prod-eu") as api:
            apps = client.AppsV1Api(api)
            for name in ("api", "worker"):  # api is restarted by prod/database's rotation; worker is not
                apps.create_namespaced_deployment("production", workload(name))
        yield sandbox


def _environment(sandbox: CatalogSandbox) -> dict[str, str]:
    return {**os.environ, **lifecycle.environment(sandbox.state), "COLUMNS": "200"}


def _rotate(
    sandbox: CatalogSandbox, tmp_path: Path, *args: str, catalog: Path | None = None
) -> tuple[int, str, str]:
    """The real CLI, in a subprocess with the sandbox's environment; (exit code, stdout, stderr)."""
    command = [
        sys.executable,
        "-m",
        "vaultflow",
        "rotate",
        "--catalog",
        str(catalog or sandbox.loaded.source),
        "--run-dir",
        str(tmp_path / "runs"),
        "--quiet",
        *args,
    ]
    done = subprocess.run(
        command, env=_environment(sandbox), capture_output=True, text=True, timeout=600, check=False
    )
    return done.returncode, done.stdout, done.stderr


def _vault_data(sandbox: CatalogSandbox, path: str, version: int | None = None) -> dict[str, str]:
    response = sandbox.vault.secrets.kv.v2.read_secret_version(
        path, version=version, mount_point=KV, raise_on_deleted_version=True
    )
    return dict(response["data"]["data"])


def _version(sandbox: CatalogSandbox, path: str) -> int:
    return int(
        sandbox.vault.secrets.kv.v2.read_secret_metadata(path, mount_point=KV)["data"]["current_version"]
    )


def _secret(sandbox: CatalogSandbox, cluster: str, namespace: str, name: str) -> dict[str, str]:
    with sandbox.api(cluster) as api:
        secret = client.CoreV1Api(api).read_namespaced_secret(name, namespace)
    return {key: base64.b64decode(value).decode() for key, value in (secret.data or {}).items()}


def _aws(sandbox: CatalogSandbox, name: str) -> str:
    import boto3

    secrets = boto3.client(
        "secretsmanager",
        region_name="eu-west-1",
        endpoint_url=sandbox.state.aws_endpoint,
        verify=sandbox.state.ca_file,  # moto serves HTTPS from the sandbox CA
        aws_access_key_id="sandbox",
        aws_secret_access_key="sandbox",  # moto accepts any credentials
    )
    found = secrets.get_secret_value(SecretId=name)  # ESO's AWS provider writes SecretBinary
    return bytes(found["SecretBinary"]).decode() if "SecretBinary" in found else str(found["SecretString"])


def _texts_written(sandbox: CatalogSandbox, *roots: Path) -> str:
    """Every log, run file and report under ``roots`` and the sandbox, every Event, the Git history."""
    files = [p for root in (*roots, Path(sandbox.state.directory)) for p in root.rglob("*") if p.is_file()]
    texts = [p.read_text(errors="replace") for p in files if p.suffix in {".log", ".json", ".md", ".txt", ""}]
    for cluster in ("prod-eu", "prod-us"):
        with sandbox.api(cluster) as api:
            texts += [
                f"{e.reason} {e.message}" for e in client.CoreV1Api(api).list_event_for_all_namespaces().items
            ]
    texts.append(
        subprocess.run(
            ["git", "--git-dir", str(sandbox.bare_repo), "log", "-p", "--all"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    return "\n".join(texts)


def _assert_never_written(
    sandbox: CatalogSandbox, values: list[str], *outputs: str, roots: tuple[Path, ...]
) -> None:
    texts = "\n".join([*outputs, _texts_written(sandbox, *roots)])
    leaked = [value for value in values if value in texts]
    assert not leaked, f"{len(leaked)} secret values appear in outputs, logs, reports, events or Git"


def test_a_rotation_reaches_every_cluster_and_cloud_restarts_its_workload_and_a_retry_changes_nothing(
    synced: CatalogSandbox, tmp_path: Path
) -> None:
    sandbox, path = synced, "prod/database"
    before = _version(sandbox, path)
    old = _vault_data(sandbox, path)
    report_file = tmp_path / "report.json"
    code, stdout, stderr = _rotate(sandbox, tmp_path, path, "--output", "json", "--report", str(report_file))
    assert code == 0, stderr
    report = json.loads(stdout)
    assert json.loads(report_file.read_text()) == report
    [entry] = report["secrets"]
    assert (entry["path"], entry["outcome"]) == (path, "Rotated")
    assert (entry["previousVersion"], entry["newVersion"]) == (before, before + 1)
    new = _vault_data(sandbox, path)
    # alternating users (the catalog's credential): the other user of the pair, set and tested in PostgreSQL
    assert new["password"] != old["password"] and new["username"] == old["username"] + "_clone"
    assert [(s["name"], s["phase"]) for s in entry["steps"]] == [
        ("stage", "Done"),
        ("set", "Done"),
        ("test", "Done"),
        ("finish", "Done"),
    ]
    targets = {(t["kind"], t["cluster"], t["namespace"], t["name"]): t for t in entry["targets"]}
    assert set(targets) == {
        ("KubernetesSecret", "prod-eu", "production", "db-secret"),
        ("KubernetesSecret", "prod-us", "production", "db-secret"),
        ("AwsSecretsManager", "prod-eu", "production", "/prod/rds/db-credentials"),
    }
    assert all(
        t["phase"] == "Verified" and t["seconds"] >= 0 and t["source"] == "catalog" for t in targets.values()
    )
    # What the report says is what the clusters and the cloud hold.
    for cluster in ("prod-eu", "prod-us"):
        assert _secret(sandbox, cluster, "production", "db-secret") == new
    assert json.loads(_aws(sandbox, "/prod/rds/db-credentials")) == new
    # The rotation restarts exactly the workload the catalog names, and waited for its rollout.
    assert [(r["kind"], r["name"], r["phase"]) for r in entry["restarts"]] == [
        ("Deployment", "api", "Restarted")
    ]
    with sandbox.api("prod-eu") as api:
        apps = client.AppsV1Api(api)
        api_template = apps.read_namespaced_deployment("api", "production").spec.template.metadata.annotations
        worker_template = apps.read_namespaced_deployment(
            "worker", "production"
        ).spec.template.metadata.annotations
    assert "kubectl.kubernetes.io/restartedAt" in (api_template or {})
    assert "kubectl.kubernetes.io/restartedAt" not in (worker_template or {})

    # The same run retried (a pod lost after it wrote): nothing is written or restarted twice.
    loaded = sandbox.loaded
    env = lifecycle.environment(sandbox.state)
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        again = tasks.rotate(
            str(loaded.source),
            env["VAULT_ADDRESSES"],
            report["runId"],
            path,
            str(before),
            ca_cert=env["VAULT_CACERT"],
        )
    assert again["secrets"][0]["outcome"] == "Rotated"
    assert _version(sandbox, path) == before + 1
    with sandbox.api("prod-eu") as api:
        still = (
            client.AppsV1Api(api)
            .read_namespaced_deployment("api", "production")
            .spec.template.metadata.annotations
        )
    assert still == api_template

    _assert_never_written(
        sandbox, [old["password"], new["password"]], stdout, stderr, json.dumps(again), roots=(tmp_path,)
    )


def test_a_consumer_written_by_hand_is_discovered_and_verified(
    synced: CatalogSandbox, tmp_path: Path
) -> None:
    # A team's own ExternalSecret beside the catalog's, in a namespace that consumes the secret (there
    # the cluster's ESO role may read it, and the rotation may list Secrets), with its own names.
    sandbox, path = synced, "prod/app-credentials"
    namespace = "production"
    with sandbox.api("prod-eu") as api:
        client.CustomObjectsApi(api).create_namespaced_custom_object(
            "external-secrets.io",
            "v1",
            namespace,
            "externalsecrets",
            {
                "apiVersion": "external-secrets.io/v1",
                "kind": "ExternalSecret",
                "metadata": {"name": "by-hand"},
                "spec": {
                    "refreshInterval": "1h",  # force-sync, not this, makes it converge in seconds
                    "secretStoreRef": {"kind": "ClusterSecretStore", "name": "vault-backend"},
                    "target": {"name": "hand-copy"},
                    "data": [
                        {
                            "secretKey": "pw",
                            "remoteRef": {"key": f"secret/data/{path}", "property": "password"},
                        }
                    ],
                },
            },
        )
    wait_for(
        lambda: (
            any(s.ready for s in external_secrets(sandbox.state, ["prod-eu"]) if s.name == "by-hand") or None
        ),
        what="the hand-written ExternalSecret Ready",
    )
    code, stdout, stderr = _rotate(sandbox, tmp_path, path, "--output", "json")
    assert code == 0, stderr
    [entry] = json.loads(stdout)["secrets"]
    by_name = {(t["cluster"], t["name"]): t for t in entry["targets"]}
    hand = by_name[("prod-eu", "hand-copy")]
    assert (hand["source"], hand["phase"], hand["namespace"]) == ("discovered", "Verified", namespace)
    assert hand["seconds"] < 60  # refreshInterval is 1h: only force-sync gets it there
    assert _secret(sandbox, "prod-eu", namespace, "hand-copy") == {
        "pw": _vault_data(sandbox, path)["password"]
    }
    assert by_name[("prod-eu", "app-password")]["kind"] == "AzureKeyVault"
    assert by_name[("prod-eu", "app-password")]["phase"] == "Verified"


def test_a_consumer_that_never_refreshes_is_refused_before_anything_is_written(
    synced: CatalogSandbox, tmp_path: Path
) -> None:
    sandbox, path = synced, "prod/lambda/db-password"
    before = _version(sandbox, path)
    body = {
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": "created-once"},
        "spec": {
            "refreshPolicy": "CreatedOnce",
            "secretStoreRef": {"kind": "ClusterSecretStore", "name": "vault-backend"},
            "target": {"name": "once"},
            "dataFrom": [{"extract": {"key": path}}],
        },
    }
    with sandbox.api("prod-eu") as api:
        custom = client.CustomObjectsApi(api)
        custom.create_namespaced_custom_object(
            "external-secrets.io", "v1", "default", "externalsecrets", body
        )
        try:
            code, _, stderr = _rotate(sandbox, tmp_path, path)
        finally:
            custom.delete_namespaced_custom_object(
                "external-secrets.io", "v1", "default", "externalsecrets", "created-once"
            )
    assert code == 2, stderr
    assert "default/created-once" in stderr and "CreatedOnce" in stderr and "nothing was rotated" in stderr
    assert "Traceback" not in stderr
    assert _version(sandbox, path) == before


def test_a_cloud_that_never_gets_the_value_times_out_named_and_the_rotation_rolls_back(
    synced: CatalogSandbox, tmp_path: Path
) -> None:
    sandbox, path = synced, "prod/lambda/db-password"  # onFailure: rollback, pushed to AWS
    text = yaml.safe_load(Path(sandbox.loaded.source).read_text())
    for secret in text["secrets"]:
        if secret["path"] == path:
            secret["rotation"]["verifyTimeout"] = "15s"
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(yaml.safe_dump(text))
    before = _version(sandbox, path)
    old = _vault_data(sandbox, path)
    admin = AdminClient.for_state(sandbox.state)
    admin.set_fault("aws", Fault(down=True))  # ESO cannot push: AWS keeps the old value
    try:
        code, stdout, stderr = _rotate(sandbox, tmp_path, path, "--output", "json", catalog=catalog)
    finally:
        admin.clear_faults("aws")
    assert code == 1, stderr
    [entry] = json.loads(stdout)["secrets"]
    assert entry["outcome"] == "RolledBack", json.dumps(entry)
    assert entry["rollbackVersion"] == before + 2
    [aws] = [t for t in entry["targets"] if t["kind"] == "AwsSecretsManager"]
    assert aws["phase"] == "TimedOut" and aws["name"] == "/prod/lambda/db-password"
    assert "current version holds another value" in aws["message"]
    assert all(t["phase"] == "Verified" for t in entry["rollbackTargets"])
    # The previous value is back in Vault (as a new version), in the Secret and in the cloud.
    assert _version(sandbox, path) == before + 2
    assert _vault_data(sandbox, path) == old
    assert (
        _secret(sandbox, "prod-eu", "external-secrets-system", "prod-lambda-db-password-push-source") == old
    )
    assert _aws(sandbox, "/prod/lambda/db-password") == old["password"]
    assert "did not rotate: prod/lambda/db-password (RolledBack)" in stderr
    rotated = _vault_data(sandbox, path, before + 1)["password"]
    _assert_never_written(sandbox, [old["password"], rotated], stdout, stderr, roots=(tmp_path,))


def test_two_rotations_planned_at_once_write_exactly_one_version(
    synced: CatalogSandbox, tmp_path: Path
) -> None:
    """The second run planned before the first wrote: it fails naming the conflict; one new version."""
    sandbox, path = synced, "prod/app-credentials"
    env = lifecycle.environment(sandbox.state)
    source = str(sandbox.loaded.source)
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        [late] = tasks.plan(
            source, env["VAULT_ADDRESSES"], "rotate-secrets-late", paths=path, ca_cert=env["VAULT_CACERT"]
        )
    before = _version(sandbox, path)
    code, _, stderr = _rotate(sandbox, tmp_path, path)
    assert code == 0, stderr
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        result = tasks.rotate(
            source,
            env["VAULT_ADDRESSES"],
            "rotate-secrets-late",
            late["paths"],
            late["versions"],
            ca_cert=env["VAULT_CACERT"],
        )
        [entry] = result["secrets"]
        assert entry["outcome"] == "Failed"
        assert f"expected version {before}, found {before + 1} (another writer)" in entry["message"]
        assert (entry["previousVersion"], entry["newVersion"]) == (before, None)
        with pytest.raises(Exception, match="did not rotate: prod/app-credentials"):
            tasks.report("rotate-secrets-late", json.dumps([result]))
    assert _version(sandbox, path) == before + 1


def test_a_scheduled_run_with_nothing_due_rotates_nothing_and_succeeds(
    synced: CatalogSandbox, tmp_path: Path
) -> None:
    """A CronWorkflow tick with nothing due: the empty batch runs, the report is empty, the run Succeeds."""
    sandbox = synced
    before = {path: _version(sandbox, path) for path in ("prod/database", "prod/lambda/db-password")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "vaultflow",
            "run",
            "rotate-secrets",
            "-p",
            f"catalog={sandbox.loaded.source}",
            "-p",
            f"vault-addresses={lifecycle.environment(sandbox.state)['VAULT_ADDRESSES']}",
            "-p",
            f"ca-cert={sandbox.state.ca_file}",
            "-p",
            "all-due=true",
            "-p",
            "schedule=0 0 1 1 *",  # no secret of the catalog has this schedule: nothing is ever due
            "--run-dir",
            str(tmp_path / "runs"),
            "--quiet",
        ],
        env=_environment(sandbox),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert {path: _version(sandbox, path) for path in before} == before


def test_a_dry_run_shows_the_plan_and_every_target_and_writes_nothing(
    synced: CatalogSandbox, tmp_path: Path
) -> None:
    sandbox = synced
    before = {path: _version(sandbox, path) for path in ("prod/database", "prod/app-credentials")}
    code, stdout, stderr = _rotate(sandbox, tmp_path, "prod/database", "--dry-run", "--output", "json")
    assert code == 0, stderr
    shown = json.loads(stdout)
    assert [(s["path"], s["why"]) for s in shown["plan"]["secrets"]] == [("prod/database", "requested")]
    consumers = shown["consumers"]["prod/database"]
    assert {(e["cluster"], e["secret_name"]) for e in consumers["external_secrets"]} == {
        ("prod-eu", "db-secret"),
        ("prod-us", "db-secret"),
    }
    assert [p["name"] for p in consumers["push_secrets"]] == ["prod-database-to-aws-prod"]
    code, text, stderr = _rotate(sandbox, tmp_path, "prod/database", "--dry-run")
    assert code == 0, stderr
    assert "nothing is written" in text and "ExternalSecret prod-us/production/prod-database" in text
    assert {path: _version(sandbox, path) for path in before} == before
    assert not (tmp_path / "runs").exists()  # no pipeline ran


def test_a_rotate_step_works_with_a_child_token_of_its_batchs_shards_revoked_when_it_ends(
    synced: CatalogSandbox,
) -> None:
    """As the rotation role (Kubernetes auth): the step's Vault client holds a child token with its
    batch's shard and every other policy of the role (Vault's ``default`` not among them), not the
    role's own token; both end revoked."""
    import hvac.exceptions

    from vaultflow.gitops.policies import rotation_policies
    from vaultflow.gitops.rotation_shards import RotationShards, is_shard_policy

    sandbox = synced
    env = lifecycle.environment(sandbox.state)
    catalog = sandbox.loaded.catalog
    path = "prod/database"
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        with tasks.connected(
            sandbox.loaded, env["VAULT_ADDRESSES"], "rotate-secrets-child", env["VAULT_CACERT"], batch=[path]
        ) as rotator:
            child = rotator.vault
            own = child.client.auth.token.lookup_self()["data"]
    others = [p.name for p in rotation_policies(catalog) if not is_shard_policy(p.name)]
    # No ``default``: the role drops it and so does the child (each request would cost Vault twice the CPU).
    assert sorted(own["policies"]) == sorted([*others, RotationShards(catalog).policy_of(path)])
    assert own["path"] == "auth/token/create" and own["renewable"] is False  # not the login's token
    with pytest.raises(hvac.exceptions.Forbidden):  # revoked, with its parent
        child.client.auth.token.lookup_self()
