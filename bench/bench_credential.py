"""One database credential rotated end to end on the sandbox, step by step (issue 16).

Setup (not timed): a sandbox (``lifecycle.up``) with two workload clusters and the sandbox's real
PostgreSQL (TLS with the sandbox CA); OpenBao configured from a one-secret catalog by the bootstrap's
own ``desired_config``/``apply_config``; ``bench/db`` (alternating users, consumed in both clusters,
pushed to AWS) and its admin login ``bench/db-admin`` seeded, PostgreSQL holding the same logins;
the rendered ESO objects created through the API and synced once.

Measured, ``ROUNDS`` times, in this process with ``vaultflow sandbox env``'s environment: the
*rotate* step (``tasks.rotate``: the rotation role's login, discover, then stage / set / test /
finish, then force-sync and verify both Kubernetes Secrets and the AWS copy). Reported: its median,
and each step's share of it from the report (``steps``: stage, set, test, finish; *propagation*:
the slowest target's write-to-verified seconds, counted from the finish's write); the rest is the
login, discovery and the step's own overhead.

Baseline, measured in the same run: the bare minimum of what *set* and *test* do, done directly
with psycopg: one admin session that computes the SCRAM verifier and runs ``ALTER ROLE ...
PASSWORD``, then one login with the new password and ``SELECT 1``; best of ``ROUNDS``.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.bench_rotation import CLUSTERS, KV, _apply, _configure, _environment, _Platform
from bench.common import Measurement, stopwatch

ROUNDS = 5
PATH, ADMIN_PATH = "bench/db", "bench/db-admin"
HOST = "postgres.bench.internal"


def catalog_text() -> str:
    consumers = "".join(
        f"      - {{cluster: {cluster}, namespace: team-0, secretName: db}}\n" for cluster in CLUSTERS
    )
    return f"""\
apiVersion: vaultflow.io/v1alpha1
kind: SecretsCatalog
vault: {{address: "https://vault.vault-system.svc:8200", kvMount: {KV}}}
gitops: {{repoUrl: https://git.example.com/platform-gitops.git}}
clusters:
  - {{name: {CLUSTERS[0]}, kubeContext: {CLUSTERS[0]}, argocd: {{server: https://kubernetes.default.svc}}}}
  - {{name: {CLUSTERS[1]}, kubeContext: {CLUSTERS[1]}, argocd: {{name: {CLUSTERS[1]}}}}}
clouds:
  - {{name: aws, provider: aws, region: eu-west-1, auth: {{secretRef: {{secretName: aws-credentials}}}}}}
secrets:
  - path: {PATH}
    keys:
      - {{name: username, generator: {{type: static}}}}
      - {{name: password, generator: {{type: password, length: 32}}}}
    rotation:
      schedule: "@daily"
      credential:
        type: postgres
        strategy: alternating-users
        host: {HOST}
        database: app
        admin: {{path: {ADMIN_PATH}}}
    consumers:
{consumers}    pushes:
      - {{cloud: aws, remoteKey: {PATH}}}
  - path: {ADMIN_PATH}
    keys:
      - {{name: username, generator: {{type: static}}}}
      - {{name: password, generator: {{type: static}}}}
    consumers: []
"""


@contextlib.contextmanager
def _sandbox(directory: Path) -> Iterator[_Platform]:
    from vaultflow.gitops.catalog import parse_catalog
    from vaultflow.sandbox import lifecycle
    from vaultflow.sandbox.layout import SandboxPaths
    from vaultflow.sandbox.postgres import adopt, postgres_spec
    from vaultflow.steps.credentials import Credential

    catalog_file = directory / "catalog.yaml"
    catalog_file.write_text(catalog_text())
    loaded = parse_catalog(catalog_file.read_text(), catalog_file)
    sandbox_dir = directory / "sandbox"
    state = lifecycle.up(
        sandbox_dir, cluster_names=list(CLUSTERS), postgres=postgres_spec(loaded.catalog)
    ).state
    try:
        platform = _Platform(state, loaded, catalog_file, _configure(state, loaded), 1)
        user = Credential("bench_app", secrets.token_urlsafe(24))
        admin = Credential("bench_admin", secrets.token_urlsafe(24))
        adopt(state, user, admin)
        for path, login in ((PATH, user), (ADMIN_PATH, admin)):
            platform.root.secrets.kv.v2.create_or_update_secret(
                path, secret={"username": login.username, "password": login.password}, cas=0, mount_point=KV
            )
        platform.versions[PATH] = 1
        _apply(platform)
        yield platform
    except BaseException:
        lifecycle.down(sandbox_dir)
        print(f"the sandbox's logs are kept in {SandboxPaths(sandbox_dir).logs}", file=sys.stderr)
        raise
    else:
        lifecycle.down(sandbox_dir, purge=True)
        shutil.rmtree(directory, ignore_errors=True)


def _rotation(platform: _Platform, index: int) -> tuple[float, dict[str, Any]]:
    """One *rotate* step of ``bench/db``; (seconds, its report entry). It must come out Rotated."""
    from vaultflow.sandbox import lifecycle
    from vaultflow.steps.rotation import tasks

    environment = lifecycle.environment(platform.state)
    version = platform.versions[PATH]
    with _environment(environment), stopwatch() as elapsed:
        report = tasks.rotate(
            str(platform.catalog_file),
            environment["VAULT_ADDRESSES"],
            f"bench-credential-{index}",
            PATH,
            str(version),
            ca_cert=environment["VAULT_CACERT"],  # OpenBao's certificate chains to the sandbox CA
        )
    seconds = elapsed()
    [entry] = report["secrets"]
    if entry["outcome"] != "Rotated":
        raise RuntimeError(f"{PATH} did not rotate: {entry['outcome']}: {entry['message']}")
    platform.versions[PATH] = int(entry["newVersion"])
    return seconds, entry


def _bare_alter_role_and_login(platform: _Platform) -> float:
    """An admin session that sets a password (the SCRAM verifier computed here) and one login with it."""
    from psycopg import sql

    from vaultflow.sandbox.credential_demo import endpoint
    from vaultflow.steps.credentials import Credential
    from vaultflow.steps.credentials.postgres import connect, scram_verifier

    spec = platform.loaded.catalog.secrets[0].rotation.credential
    where = endpoint(platform.state, spec)
    admin_data = platform.root.secrets.kv.v2.read_secret_version(ADMIN_PATH, mount_point=KV)["data"]["data"]
    admin = Credential(admin_data["username"], admin_data["password"])
    current = platform.root.secrets.kv.v2.read_secret_version(PATH, mount_point=KV)["data"]["data"]
    # the user not in use, as a rotation would set it: what consumers hold now is never touched
    other = current["username"].removesuffix("_clone") if current["username"].endswith("_clone") else ""
    target = Credential(other or current["username"] + "_clone", secrets.token_urlsafe(24))
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.perf_counter()
        with connect(where, admin) as session:
            statement = sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(target.username), sql.Literal(scram_verifier(session, target))
            )
            session.execute(statement)
        with connect(where, target) as session:
            session.execute("SELECT 1").fetchone()
        best = min(best, time.perf_counter() - started)
    return best


def run() -> list[Measurement]:
    directory = Path(tempfile.mkdtemp(prefix="vaultflow-bench-credential-"))
    with _sandbox(directory) as platform:
        runs = [_rotation(platform, index) for index in range(ROUNDS)]
        baseline = _bare_alter_role_and_login(platform)
    totals = [seconds for seconds, _ in runs]
    median = statistics.median(totals)
    by_step: dict[str, list[float]] = {}
    for _, entry in runs:
        for step in entry["steps"]:
            by_step.setdefault(step["name"], []).append(step["seconds"])
        slowest = max(t["seconds"] for t in entry["targets"])
        by_step.setdefault("propagation", []).append(slowest)
    shares = {name: statistics.median(values) for name, values in by_step.items()}
    rest = median - sum(shares.values())
    note = ", ".join(f"{name} {100 * value / median:.0f}%" for name, value in shares.items())
    measurements = [
        Measurement(
            f"credential rotation end to end (alternating users, 2 clusters + AWS, median of {ROUNDS})",
            median,
            baseline_name="bare ALTER ROLE + one test login",
            baseline_seconds=baseline,
            note=f"{note}, login/discovery/overhead {100 * rest / median:.0f}%",
        )
    ]
    measurements += [
        Measurement(f"  {name}", value, note=f"{100 * value / median:.0f}% of the rotation")
        for name, value in shares.items()
    ]
    return measurements
