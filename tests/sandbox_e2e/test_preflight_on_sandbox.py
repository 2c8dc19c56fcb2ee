"""``vaultflow gitops preflight`` on the sandbox: each Vault reference read as that cluster's ESO.

The real CLI runs with the sandbox's environment against the real OpenBao
(configured from the catalog by the bootstrap's own code) and the emulated
clusters; every broken reference is made by editing a copy of the example
catalog, as a pull request would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.sandbox_e2e.conftest import SEEDS, CatalogSandbox, catalog_sandbox_in
from vaultflow.gitops.render import render_catalog
from vaultflow.sandbox import lifecycle


@pytest.fixture(scope="module")
def sandbox(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CatalogSandbox]:
    """A configured sandbox; only the ClusterSecretStores are in the clusters (discovery resolves a
    hand-written ExternalSecret through its store), nothing else is delivered."""
    with catalog_sandbox_in(repo_root, tmp_path_factory.mktemp("preflight") / "sbx") as made:
        for path, manifest in render_catalog(made.loaded).manifests():
            if manifest["kind"] == "ClusterSecretStore":
                with made.api(path.split("/")[1]) as api:
                    client.CustomObjectsApi(api).create_cluster_custom_object(
                        "external-secrets.io", "v1", "clustersecretstores", manifest
                    )
        yield made


def _preflight(sandbox: CatalogSandbox, catalog: Path, *args: str) -> tuple[int, str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "vaultflow", "gitops", "preflight", "--catalog", str(catalog), *args],
        env={**os.environ, **lifecycle.environment(sandbox.state), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def _edited(sandbox: CatalogSandbox, tmp_path: Path, edit: Any) -> Path:
    document = yaml.safe_load(Path(sandbox.loaded.source).read_text())
    edit(document)
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(yaml.safe_dump(document, sort_keys=False))
    return catalog


def _secret(document: dict[str, Any], path: str) -> dict[str, Any]:
    [found] = [s for s in document["secrets"] if s["path"] == path]
    return found


def _line_of(catalog: Path, text: str) -> int:
    return next(n for n, line in enumerate(catalog.read_text().splitlines(), 1) if text in line)


def test_the_example_catalog_on_its_configured_vault_is_clean(sandbox: CatalogSandbox) -> None:
    code, stdout, stderr = _preflight(sandbox, Path(sandbox.loaded.source), "--output", "json")
    assert code == 0, stdout + stderr
    report = json.loads(stdout)
    assert report["findings"] == []
    # one read per distinct path per cluster: prod-eu reads 4 paths, prod-us 3 (its own ExternalSecrets')
    assert report["references"] == 7


def test_a_typo_in_a_property_and_in_a_path_are_named_with_their_catalog_line(
    sandbox: CatalogSandbox, tmp_path: Path
) -> None:
    def edit(document: dict[str, Any]) -> None:
        stripe = _secret(document, "shared/stripe")  # the catalog agrees with itself, not with Vault
        stripe["keys"][0]["name"] = "api-kye"
        stripe["consumers"][0]["keys"][0]["property"] = "api-kye"
        _secret(document, "prod/cloudrun/signing-key")["path"] = "prod/cloudrun/signing-kye"

    catalog = _edited(sandbox, tmp_path, edit)
    code, stdout, stderr = _preflight(sandbox, catalog, "--output", "markdown")
    assert code == 1, stdout + stderr
    rows = [line for line in stdout.splitlines() if line.startswith("| vault-")]
    [property_row] = [r for r in rows if "api-kye" in r]
    assert "secret/shared/stripe has no property 'api-kye' (it has api-key)" in property_row
    assert (
        f"{catalog}:{_line_of(catalog, 'path: shared/stripe')}" in property_row
        or str(catalog) in property_row
    )
    [path_row] = [r for r in rows if "signing-kye" in r]
    assert "may not read secret/prod/cloudrun/signing-kye" in path_row and "prod-us" in path_row
    assert f"`{catalog}:" in path_row
    # The live ESO policy of prod-us is not the one this catalog renders (it names another path).
    assert "| policy | prod-us | policy eso-prod-us |" in stdout
    leaked = [v for values in SEEDS.values() for v in values.values() if v in stdout + stderr]
    assert not leaked


def test_a_target_secret_another_controller_owns_is_flagged(sandbox: CatalogSandbox, tmp_path: Path) -> None:
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

    def edit(document: dict[str, Any]) -> None:
        _secret(document, "prod/app-credentials")["consumers"].append(
            {"cluster": "prod-eu", "namespace": "production", "name": "also-taken", "secretName": "taken"}
        )

    catalog = _edited(sandbox, tmp_path, edit)
    code, stdout, stderr = _preflight(sandbox, catalog, "--output", "json")
    assert code == 1, stdout + stderr
    [finding] = [f for f in json.loads(stdout)["findings"] if f["check"] == "ownership"]
    assert finding["subject"] == "ExternalSecret production/also-taken" and finding["cluster"] == "prod-eu"
    assert "already controlled by Deployment legacy" in finding["message"]
    assert finding["location"].startswith(f"{catalog}:")


def test_a_hand_written_consumer_that_never_refreshes_and_a_drifted_policy_are_flagged(
    sandbox: CatalogSandbox,
) -> None:
    live = sandbox.vault.sys.read_acl_policy("eso-prod-us")["data"]["policy"]
    sandbox.vault.sys.create_or_update_acl_policy(
        "eso-prod-us", live + '\npath "secret/data/*" {\n  capabilities = ["read"]\n}\n'
    )
    body = {
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": "once"},
        "spec": {
            "refreshPolicy": "CreatedOnce",
            "secretStoreRef": {"kind": "ClusterSecretStore", "name": "vault-backend"},
            "target": {"name": "once"},
            "dataFrom": [{"extract": {"key": "prod/database"}}],
        },
    }
    with sandbox.api("prod-eu") as api:
        custom = client.CustomObjectsApi(api)
        custom.create_namespaced_custom_object(
            "external-secrets.io", "v1", "default", "externalsecrets", body
        )
        try:
            code, stdout, stderr = _preflight(sandbox, Path(sandbox.loaded.source), "--output", "json")
        finally:
            custom.delete_namespaced_custom_object(
                "external-secrets.io", "v1", "default", "externalsecrets", "once"
            )
            sandbox.vault.sys.create_or_update_acl_policy("eso-prod-us", live)
    assert code == 1, stdout + stderr
    findings = {f["check"]: f for f in json.loads(stdout)["findings"]}
    assert set(findings) == {"refresh", "policy"}
    assert (
        "default/once" in findings["refresh"]["message"] and "CreatedOnce" in findings["refresh"]["message"]
    )
    assert (
        findings["policy"]["cluster"] == "prod-us"
        and "differs from the rendered one" in findings["policy"]["message"]
    )
