"""The example catalog, end to end on the sandbox: render, commit, Argo CD syncs, ESO pulls and pushes.

Nothing here is applied by hand: the rendered tree is committed to a bare
repository, one app-of-apps Application points Argo CD at its ``argocd/``
folder, and everything else (the per-cluster Applications, the stores in wave
0, the ExternalSecrets in wave 1, the PushSecrets in wave 2) is Argo CD's and
ESO's doing. Vault's policies are the ones rendered from the catalog.
"""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

from kubernetes import client

from tests.sandbox_e2e.conftest import SEEDS, CatalogSandbox
from vaultflow.gitops.git_delivery import deliver
from vaultflow.gitops.render import render_catalog
from vaultflow.sandbox import lifecycle
from vaultflow.sandbox.catalog_wiring import register_app_of_apps
from vaultflow.sandbox.eso.gohash import data_hash
from vaultflow.sandbox.observe import (
    Fingerprints,
    applications,
    external_secrets,
    pushed_values,
    wait_for,
    wait_for_applications,
)


def _secret_data(sandbox: CatalogSandbox, cluster: str, namespace: str, name: str) -> dict[str, bytes]:
    with sandbox.api(cluster) as api:
        secret = client.CoreV1Api(api).read_namespaced_secret(name, namespace)
    return {key: base64.b64decode(value) for key, value in (secret.data or {}).items()}


def _force_sync(sandbox: CatalogSandbox, cluster: str, namespace: str, kind: str, name: str) -> None:
    version, plural = ("v1", "externalsecrets") if kind == "ExternalSecret" else ("v1alpha1", "pushsecrets")
    with sandbox.api(cluster) as api:
        client.CustomObjectsApi(api).patch_namespaced_custom_object(
            "external-secrets.io",
            version,
            namespace,
            plural,
            name,
            {"metadata": {"annotations": {"force-sync": uuid.uuid4().hex}}},
        )


def test_render_commit_sync_pull_and_push(catalog_sandbox: CatalogSandbox) -> None:
    sandbox, catalog = catalog_sandbox, catalog_sandbox.loaded.catalog
    # The Secret that argocd-admin-password merges into exists (the sandbox made it, as Argo CD's chart
    # would); give it a key of the chart's own, which the merge must keep.
    with sandbox.api("prod-eu") as api:
        client.CoreV1Api(api).patch_namespaced_secret(
            "argocd-secret", "argocd", {"stringData": {"server.secretkey": "helm"}}
        )

    tree = render_catalog(sandbox.loaded, repo_url=sandbox.repo_url)
    delivery = deliver(
        tree, repo_url=sandbox.repo_url, path=catalog.gitops.path, branch=catalog.gitops.revision
    )
    assert delivery.commit is not None
    app_of_apps = register_app_of_apps(sandbox.state, sandbox.loaded, sandbox.repo_url)
    names = [app_of_apps, "eso-resources-prod-eu", "eso-resources-prod-us"]
    wait_for_applications(sandbox.state, delivery.commit, names, timeout=90)

    # every ExternalSecret Ready, and each Secret holds exactly what Vault holds
    states = external_secrets(sandbox.state, ["prod-eu", "prod-us"])
    assert len(states) == 7
    assert all(s.ready for s in states), [(s.cluster, s.name, s.reason) for s in states if not s.ready]

    # Once everything has synced nothing waits to be worked on: each refresh is scheduled, not queued.
    def eso_rows() -> list[str] | None:
        rows = [
            c.state
            for c in lifecycle.status(Path(sandbox.state.directory)).components
            if c.component == "eso (emulator)"
        ]
        return rows if rows and all(" 0 queued" in row and "scheduled" in row for row in rows) else None

    assert wait_for(eso_rows, what="ESO's queues to drain")
    db = _secret_data(sandbox, "prod-eu", "production", "db-secret")
    assert db == {k: v.encode() for k, v in SEEDS["prod/database"].items()}
    assert {s.name: s.data_hash for s in states if s.cluster == "prod-eu"}["prod-database"] == data_hash(db)
    assert _secret_data(sandbox, "prod-us", "payments", "stripe") == {"STRIPE_API_KEY": b"sk_test_1"}
    merged = _secret_data(sandbox, "prod-eu", "argocd", "argocd-secret")
    assert merged == {"server.secretkey": b"helm", "admin.password": b"argo-pass-1"}

    # every push landed, in the cloud the catalog names, as ESO writes it (compared by fingerprints
    # under one key of this test's: the observer never hands out a value or an unkeyed digest)
    fingerprint = Fingerprints()
    pushed = {
        (p.cloud, p.remote_key): p.fingerprint
        for p in pushed_values(sandbox.state, sandbox.loaded, fingerprint)
    }
    assert pushed == {
        ("aws-prod", "/prod/rds/db-credentials"): fingerprint.of(
            b'{"password":"db-pass-1","username":"api-user-7f3"}'
        ),
        ("azure-prod", "app-password"): fingerprint.of(b"app-pass-1"),
        ("aws-prod", "/prod/lambda/db-password"): fingerprint.of(b"lambda-pass-1"),
        ("gcp-prod", "cloudrun-signing-key"): fingerprint.of(b"c2lnbmluZy1rZXk="),
    }

    # a rotation as the pipeline does it: write Vault, force-sync the pull, then the push
    kv = sandbox.vault.secrets.kv.v2
    seen = kv.read_secret_metadata("prod/app-credentials", mount_point="secret")["data"]["current_version"]
    kv.create_or_update_secret(  # check-and-set on the version read: configure requires it
        "prod/app-credentials",
        secret={"username": "app-user-9c1", "password": "app-pass-2"},
        cas=seen,
        mount_point="secret",
    )
    _force_sync(sandbox, "prod-eu", "production", "ExternalSecret", "prod-app-credentials")
    wait_for(
        lambda: _secret_data(sandbox, "prod-eu", "production", "app-secret").get("password") == b"app-pass-2",
        what="the pulled rotation",
    )
    _force_sync(sandbox, "prod-eu", "production", "PushSecret", "prod-app-credentials-to-azure-prod")

    def azure_rotated() -> bool:
        current = {
            (p.cloud, p.remote_key): p.fingerprint
            for p in pushed_values(sandbox.state, sandbox.loaded, fingerprint)
        }
        return current[("azure-prod", "app-password")] == fingerprint.of(b"app-pass-2")

    wait_for(azure_rotated, what="the pushed rotation")
    # annotations added at run time do not make Argo CD think the app drifted
    assert all(a.synced_at(delivery.commit) for a in applications(sandbox.state))
    _assert_no_value_leaked(
        sandbox, [*(v for values in SEEDS.values() for v in values.values()), "app-pass-2"]
    )


def _assert_no_value_leaked(sandbox: CatalogSandbox, values: list[str]) -> None:
    """Secret values live in Vault, Secrets and clouds only: never in the sandbox's logs or in Events."""
    logs = "".join(path.read_text(errors="replace") for path in Path(sandbox.state.directory).rglob("*.log"))
    texts = [logs]
    for cluster in ("prod-eu", "prod-us", "mgmt"):
        with sandbox.api(cluster) as api:
            texts += [
                f"{e.reason} {e.message}" for e in client.CoreV1Api(api).list_event_for_all_namespaces().items
            ]
    leaked = [value for value in values if any(value in text for text in texts)]
    assert not leaked, f"{len(leaked)} secret values appear in logs or events"
