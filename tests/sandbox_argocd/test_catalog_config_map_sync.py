"""A merged catalog change reaches the pipelines' ConfigMap through Argo CD.

The workflows tree (``argocd-apps/workflows``: its Application, RBAC and the
templates ``vaultflow workflows render --catalog`` writes, the catalog's
ConfigMap among them) is committed to a bare repository; the Application of
``argocd-apps/workflows/application.yaml``, pointed at that repository, syncs
it. A catalog change, rendered and committed the same way, must then be the
text the cluster serves at ``configmap://argo/vaultflow-catalog``: what the
next rotation run reads.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from tests.sandbox_argocd.conftest import ArgoSandbox, GitRemote, eventually
from vaultflow.cli import app as cli
from vaultflow.sandbox.kubeconfig import ClusterAccess, write_kubeconfig
from vaultflow.steps.catalog_source import load_catalog_source
from vaultflow.workflows.pipelines.rotate_secrets import schedule_name
from vaultflow.workflows.render import CATALOG_SOURCE

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = "argocd-apps/workflows"
CATALOG = "platform/catalog.yaml"
OLD_SCHEDULE, NEW_SCHEDULE = "0 4 1 * *", "30 4 1 * *"
APP = "vaultflow-workflows"


def _render(work: Path) -> None:
    """What a platform engineer (or `gitops apply`) runs in the checkout before committing."""
    result = CliRunner().invoke(
        cli, ["workflows", "render", "--catalog", CATALOG, "--out", f"{WORKFLOWS}/templates"]
    )
    assert result.exit_code == 0, result.output
    assert (work / WORKFLOWS / "templates" / "configmaps" / "vaultflow-catalog.yaml").is_file()


def _application(repo_url: str) -> dict[str, Any]:
    """The committed Application, reading the test's repository instead of the organisation's."""
    application = yaml.safe_load((REPO_ROOT / WORKFLOWS / "application.yaml").read_text())
    application = copy.deepcopy(application)
    application["spec"]["source"]["repoURL"] = repo_url
    return dict(application)


def _synced_at(argo: ArgoSandbox, revision: str) -> bool:
    status = argo.app(APP).get("status") or {}
    operation = status.get("operationState") or {}
    return (
        status.get("sync", {}).get("status") == "Synced"
        and status["sync"].get("revision") == revision
        and operation.get("phase") == "Succeeded"
        and operation.get("syncResult", {}).get("revision") == revision
    )


def _live(argo: ArgoSandbox, api_version: str, kind: str, name: str) -> dict[str, Any] | None:
    rtype = argo.mgmt.type_of(api_version, kind)  # the Application's destination: the in-cluster one
    if not argo.mgmt.store.exists(rtype, "argo", name):
        return None
    return dict(argo.mgmt.store.get(rtype, "argo", name).copy())


def test_a_merged_catalog_change_reaches_the_config_map_the_pipelines_read(
    argo: ArgoSandbox,
    remote: GitRemote,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    namespaces = argo.mgmt.type_of("v1", "Namespace")
    for namespace in ("argo", "vault-system", "external-secrets-system"):  # the project's destinations
        if not argo.mgmt.store.exists(namespaces, "", namespace):
            argo.mgmt.store.create(namespaces, "", {"metadata": {"name": namespace}})
    work = remote.work
    shutil.copytree(REPO_ROOT / WORKFLOWS, work / WORKFLOWS, ignore=shutil.ignore_patterns("templates"))
    (work / "platform").mkdir()
    first = (REPO_ROOT / "examples" / "catalog.yaml").read_text()
    assert first.count(f'schedule: "{OLD_SCHEDULE}"') == 1
    (work / CATALOG).write_text(first)
    monkeypatch.chdir(work)
    _render(work)
    revision = remote.commit({})

    apps = argo.mgmt.type_of("argoproj.io/v1alpha1", "Application")
    argo.mgmt.store.create(apps, "argocd", _application(remote.url))
    try:
        eventually(
            lambda: _synced_at(argo, revision), what="the workflows Application Synced at the first commit"
        )
        live = _live(argo, "v1", "ConfigMap", "vaultflow-catalog")
        assert live is not None and live["data"] == {"catalog.yaml": first}
        assert live["metadata"]["annotations"]["vaultflow.io/catalog-file"] == CATALOG
        assert _live(argo, "argoproj.io/v1alpha1", "WorkflowTemplate", "rotate-secrets") is not None

        # The pull request: one schedule moves. Rendered, committed, merged.
        second = first.replace(f'schedule: "{OLD_SCHEDULE}"', f'schedule: "{NEW_SCHEDULE}"')
        (work / CATALOG).write_text(second)
        _render(work)
        merged = remote.commit({})
        eventually(lambda: _synced_at(argo, merged), what="the workflows Application Synced at the merge")

        live = _live(argo, "v1", "ConfigMap", "vaultflow-catalog")
        assert live is not None and live["data"] == {"catalog.yaml": second}
        # Its CronWorkflow moved with it: the old one pruned, the new one there.
        old_cron, new_cron = (
            f"rotate-secrets-{schedule_name(cron)}" for cron in (OLD_SCHEDULE, NEW_SCHEDULE)
        )
        assert _live(argo, "argoproj.io/v1alpha1", "CronWorkflow", old_cron) is None
        assert _live(argo, "argoproj.io/v1alpha1", "CronWorkflow", new_cron) is not None

        # And a pipeline step, reading its default catalog source through the Kubernetes API, gets it.
        kubeconfig = write_kubeconfig(
            tmp_path / "kubeconfig", [ClusterAccess("workflows-mgmt", argo.mgmt.url, argo.mgmt.admin_token)]
        )
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        loaded = load_catalog_source(f"{CATALOG_SOURCE}?context=workflows-mgmt").catalog
        schedules = {s.rotation.schedule for s in loaded.secrets if s.rotation is not None}
        assert NEW_SCHEDULE in schedules and OLD_SCHEDULE not in schedules
    finally:
        argo.mgmt.store.delete(apps, "argocd", APP)  # its finalizer takes what it synced with it
        eventually(lambda: not argo.mgmt.store.exists(apps, "argocd", APP), what="the Application to go")
    assert _live(argo, "v1", "ConfigMap", "vaultflow-catalog") is None
