"""``task demo`` under an injected fault: the wait names what is stuck, and once the fault is lifted a
re-run recovers by itself (ESO validates its stores again, Argo CD syncs the revision whose automated
sync failed), with no manual step in between and no value or unkeyed digest printed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from tests.sandbox_e2e.test_demo import secret_values, unkeyed_digests
from vaultflow.gitops.catalog import load_catalog
from vaultflow.sandbox import demo, lifecycle
from vaultflow.sandbox.admin import AdminClient
from vaultflow.sandbox.catalog_wiring import azure_vault_names
from vaultflow.sandbox.faults import Fault
from vaultflow.sandbox.observe import applications, ready_condition
from vaultflow.sandbox.postgres import postgres_spec
from vaultflow.sandbox.state import SandboxState

FAILING_TIMEOUT = "45"  # the faulty state is reached within seconds and holds while the fault does


@pytest.fixture
def sandbox(repo_root: Path, tmp_path: Path) -> Iterator[tuple[Path, SandboxState]]:
    """The demo's sandbox, started before the demo so that a fault is in force from its first sync."""
    loaded = load_catalog(repo_root / "examples" / "catalog.yaml")
    directory = tmp_path / "demo"
    names = [cluster.name for cluster in loaded.catalog.clusters]
    try:
        state = lifecycle.up(  # as the demo starts it: the demo refuses a sandbox of other options
            directory,
            cluster_names=names,
            azure_vaults=azure_vault_names(loaded.catalog),
            postgres=postgres_spec(loaded.catalog),
        ).state
        yield directory, state
    finally:
        lifecycle.down(directory, purge=True)


def run_demo(
    repo_root: Path, directory: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, str]:
    catalog = repo_root / "examples" / "catalog.yaml"
    code = demo.main(["--catalog", str(catalog), "--dir", str(directory), *extra])
    return code, " ".join(capsys.readouterr().out.split())  # rich wraps lines where the terminal ends


def eso_object(state: SandboxState, cluster: str, plural: str, namespace: str, name: str) -> dict[str, Any]:
    with config.new_client_from_config(config_file=state.kubeconfig, context=cluster) as api:
        custom = client.CustomObjectsApi(api)
        if plural == "clustersecretstores":
            found = custom.get_cluster_custom_object("external-secrets.io", "v1", plural, name)
        else:
            version = "v1alpha1" if plural == "pushsecrets" else "v1"
            found = custom.get_namespaced_custom_object(
                "external-secrets.io", version, namespace, plural, name
            )
    return dict(found)


def seen(output: str, app: str) -> str:
    """What the timed-out wait last saw of ``app`` (the error lists the Applications with " | ")."""
    error = output[output.index("error: timed out") :].removesuffix(")")  # the end of "(last seen: ...)"
    part = next(part for part in error.split(" | ") if part.startswith(app) or f"seen: {app} " in part)
    return part[part.index(app) :]


def assert_nothing_leaked(state: SandboxState, outputs: list[str]) -> None:
    values = secret_values(state)
    assert values, "the demo synced secrets into the clusters"
    for output in outputs:
        for value in values:
            assert value.decode(errors="replace") not in output
            assert not [d for d in unkeyed_digests(value) if d in output]


def test_a_failed_push_is_named_by_the_wait_and_a_rerun_recovers_once_the_cloud_is_back(
    repo_root: Path, sandbox: tuple[Path, SandboxState], capsys: pytest.CaptureFixture[str]
) -> None:
    directory, state = sandbox
    admin = AdminClient.for_state(state)
    admin.set_fault("aws", Fault(down=True))

    code, failed = run_demo(repo_root, directory, capsys, "--timeout", FAILING_TIMEOUT)
    assert code == 1, failed
    # Synced, yet Degraded: the wait says which Application, its state and the PushSecret behind it,
    # with the message ESO gave the PushSecret's Ready condition.
    pushed = eso_object(state, "prod-eu", "pushsecrets", "production", "prod-database-to-aws-prod")
    message = " ".join(str((ready_condition(pushed) or {}).get("message", "")).split())
    assert "sandbox: aws is down, injected" in message
    assert "error: timed out after 45s waiting for Applications" in failed
    app = seen(failed, "eso-resources-prod-eu")
    assert app.startswith("eso-resources-prod-eu Synced at ") and ", Degraded (" in app, app
    assert f"external-secrets.io/PushSecret production/prod-database-to-aws-prod ({message})" in app
    assert app.endswith("last sync Succeeded: successfully synced (all tasks run)"), app

    admin.clear_faults("aws")
    code, recovered = run_demo(repo_root, directory, capsys)
    assert code == 0, recovered
    assert "demo finished" in recovered
    assert all(app.health == "Healthy" for app in applications(state))
    assert_nothing_leaked(state, [failed, recovered])


def test_a_failed_sync_is_named_by_the_wait_and_a_rerun_syncs_it_again_once_vault_is_back(
    repo_root: Path, sandbox: tuple[Path, SandboxState], capsys: pytest.CaptureFixture[str]
) -> None:
    directory, state = sandbox
    admin = AdminClient.for_state(state)
    admin.set_fault("vault", Fault(down=True))

    code, failed = run_demo(repo_root, directory, capsys, "--timeout", FAILING_TIMEOUT)
    assert code == 1, failed
    # ESO cannot log into Vault: the ClusterSecretStore of wave 0 is invalid, Argo CD's sync fails
    # on it and waits to retry, the ExternalSecrets of wave 1 are never applied.
    store = eso_object(state, "prod-eu", "clustersecretstores", "", "vault-backend")
    assert (ready_condition(store) or {}).get("reason") == "InvalidProviderConfig"
    app = seen(failed, "eso-resources-prod-eu")
    assert app.startswith("eso-resources-prod-eu OutOfSync at "), app
    assert "Degraded (external-secrets.io/ClusterSecretStore vault-backend (unable to create client))" in app
    assert "last sync Running: one or more synchronization tasks completed unsuccessfully." in app
    assert "Retrying attempt #" in app

    admin.clear_faults("vault")
    code, recovered = run_demo(repo_root, directory, capsys)
    assert code == 0, recovered
    assert "demo finished" in recovered
    revision = next(app.revision for app in applications(state) if app.name == "eso-resources-prod-eu")
    assert all(app.synced_at(revision) and app.health == "Healthy" for app in applications(state))
    assert_nothing_leaked(state, [failed, recovered])
