"""The rotate-secrets steps' own logic: how each cluster is reached, paths and batches, the report step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vaultflow.base.errors import InputError, OperationError
from vaultflow.gitops.catalog import load_catalog
from vaultflow.steps.kube import clusters
from vaultflow.steps.rotation import tasks

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml"


def _entry(path: str, outcome: str) -> dict[str, object]:
    return {"path": path, "previousVersion": 1, "newVersion": 2, "outcome": outcome, "targets": []}


def test_in_a_pod_the_workflows_cluster_is_reached_in_cluster_and_the_others_by_context(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = load_catalog(EXAMPLE)
    eu, us = loaded.catalog.cluster("prod-eu"), loaded.catalog.cluster("prod-us")
    assert loaded.catalog.workflows_cluster().name == "prod-eu"
    monkeypatch.setattr(clusters, "PROJECTED_TOKEN", tmp_path / "absent")
    assert (clusters.kube_context(loaded, eu), clusters.kube_context(loaded, us)) == ("prod-eu", "prod-us")
    token = tmp_path / "token"
    token.write_text("jwt")
    monkeypatch.setattr(clusters, "PROJECTED_TOKEN", token)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    assert (clusters.kube_context(loaded, eu), clusters.kube_context(loaded, us)) == (None, "prod-us")
    # the onboarded kubeconfig the templates mount names the other clusters only: still in-cluster
    kubeconfig = tmp_path / "kubeconfig"
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'absent'}:{kubeconfig}")
    kubeconfig.write_text("contexts:\n- name: prod-us\n  context: {cluster: prod-us, user: prod-us}\n")
    assert (clusters.kube_context(loaded, eu), clusters.kube_context(loaded, us)) == (None, "prod-us")
    # a pod given a kubeconfig that names its own cluster's context too uses it
    kubeconfig.write_text("contexts:\n- name: prod-us\n- name: prod-eu\n")
    assert clusters.kube_context(loaded, eu) == "prod-eu"


def test_paths_are_split_on_commas_and_spaces_once_each() -> None:
    assert tasks.split_paths("a/b, c/d  a/b,,e") == ["a/b", "c/d", "e"]


def test_the_report_step_writes_the_whole_report_and_fails_naming_what_did_not_rotate(tmp_path: Path) -> None:
    batches = json.dumps(
        [
            {"secrets": [_entry("a", "Rotated")]},
            {"secrets": [_entry("b", "RolledBack"), _entry("c", "Failed")]},
        ]
    )
    target = tmp_path / "out" / "report.json"
    with pytest.raises(
        OperationError, match=r"2 of 3 secrets did not rotate: b \(RolledBack\), c \(Failed\)"
    ):
        tasks.report("run-1", batches, report_file=str(target))
    written = json.loads(target.read_text())
    assert written["runId"] == "run-1" and [s["path"] for s in written["secrets"]] == ["a", "b", "c"]
    assert not list(target.parent.glob("*.tmp"))


def test_a_run_with_nothing_due_reports_nothing_and_succeeds() -> None:
    # Argo leaves the reference unresolved when the fanned-out step had no item.
    assert tasks.report("run-1", "{{tasks.rotate.outputs.result}}") == {
        "runId": "run-1",
        "Rotated": 0,
        "RolledBack": 0,
        "Failed": 0,
        "report": "",
    }
    assert tasks.report("run-1", json.dumps([{"secrets": [_entry("a", "Rotated")]}]))["Rotated"] == 1


def test_batches_that_are_not_the_rotate_steps_output_are_bad_input() -> None:
    with pytest.raises(InputError, match="not the JSON list"):
        tasks.report("run-1", "[not json")


def test_the_empty_batch_of_a_run_with_nothing_due_rotates_nothing() -> None:
    assert tasks.rotate(str(EXAMPLE), "http://127.0.0.1:1", "run-1", "", "") == {"secrets": []}


def test_rotate_wants_one_planned_version_per_path() -> None:
    with pytest.raises(InputError, match="one version per path"):
        tasks.rotate(str(EXAMPLE), "http://127.0.0.1:1", "run-1", "a,b", "3")
