"""The Argo CD emulator: commits in a bare repository become objects in the destination cluster.

Each test pushes real commits to a real bare repository and watches the
Application's status (validated by the upstream CRD) and the destination
cluster, as a pipeline waiting for "Synced at this commit" would.
"""

from __future__ import annotations

from typing import Any

from tests.sandbox_argocd.conftest import ArgoSandbox, GitRemote, eventually
from vaultflow.sandbox.kube.store import Event, ObjectStore

WAVE = "argocd.argoproj.io/sync-wave"


def configmap(name: str, namespace: str, wave: int = 0, **data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "annotations": {WAVE: str(wave)}},
        "data": data or {"key": "value"},
    }


def deployment(name: str, namespace: str, wave: int) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "annotations": {WAVE: str(wave)}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            },
        },
    }


def secret_store(name: str, namespace: str, wave: int) -> dict[str, Any]:
    return {
        "apiVersion": "external-secrets.io/v1",
        "kind": "SecretStore",
        "metadata": {"name": name, "namespace": namespace, "annotations": {WAVE: str(wave)}},
        "spec": {"provider": {"fake": {"data": [{"key": "k", "value": "v"}]}}},
    }


def synced_at(argo: ArgoSandbox, app: str, revision: str) -> dict[str, Any] | None:
    status = argo.app(app).get("status") or {}
    operation = status.get("operationState") or {}
    if (
        status.get("sync", {}).get("status") == "Synced"
        and status["sync"].get("revision") == revision
        and operation.get("phase") == "Succeeded"
        and operation.get("syncResult", {}).get("revision") == revision
    ):
        return status
    return None


def test_a_commit_becomes_objects_synced_at_that_revision(
    argo: ArgoSandbox, remote: GitRemote, namespace: str
) -> None:
    revision = remote.commit(
        {
            "apps/one/config.yaml": configmap("settings", namespace, mode="blue"),
            "apps/one/nested/ignored.yaml": configmap(
                "nested", namespace
            ),  # directory sources do not recurse
        }
    )
    argo.create_app("plain", remote.url, "apps/one")

    status = eventually(lambda: synced_at(argo, "plain", revision), what="Synced at the first commit")
    assert status["sourceType"] == "Directory"
    assert status["health"]["status"] == "Healthy"
    operation = status["operationState"]
    assert operation["startedAt"] <= operation["finishedAt"]
    assert operation["operation"]["initiatedBy"] == {"automated": True}
    assert [r["message"] for r in operation["syncResult"]["resources"]] == ["configmap/settings created"]
    assert status["history"][-1]["revision"] == revision
    live = argo.live("v1", "ConfigMap", namespace, "settings")
    assert live is not None and live["data"] == {"mode": "blue"}
    assert live["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"] == (
        f"plain:/ConfigMap:{namespace}/settings"
    )
    assert argo.live("v1", "ConfigMap", namespace, "nested") is None

    second = remote.commit({"apps/one/config.yaml": configmap("settings", namespace, mode="green")})
    status = eventually(lambda: synced_at(argo, "plain", second), what="Synced at the second commit")
    assert [r["message"] for r in status["operationState"]["syncResult"]["resources"]] == [
        "configmap/settings configured"
    ]
    live = argo.live("v1", "ConfigMap", namespace, "settings")
    assert live is not None and live["data"] == {"mode": "green"}
    assert [h["revision"] for h in status["history"]][-2:] == [revision, second]


def test_waves_apply_in_order_and_wait_for_health(
    argo: ArgoSandbox, remote: GitRemote, namespace: str
) -> None:
    created: list[str] = []

    def record(_: ObjectStore, event: Event) -> None:
        if event.type == "ADDED" and event.namespace == namespace:
            created.append(event.entry.obj["metadata"]["name"])

    argo.dest.store.add_hook(record)
    revision = remote.commit(
        {
            "waves/kustomization.yaml": {"resources": ["late.yaml", "stores", "first.yaml"]},
            "waves/late.yaml": configmap("late", namespace, wave=2),
            "waves/first.yaml": [
                deployment("api", namespace, wave=-1),
                configmap("early", namespace, wave=-1),
            ],
            "waves/stores/kustomization.yaml": {"resources": ["store.yaml"]},
            "waves/stores/store.yaml": secret_store("backend", namespace, wave=1),
        }
    )
    argo.create_app("waves", remote.url, "waves")

    def waiting() -> bool:
        operation = (argo.app("waves").get("status") or {}).get("operationState") or {}
        return operation.get("phase") == "Running" and "SecretStore/backend" in operation.get("message", "")

    eventually(waiting, what="the sync to wait for the SecretStore's health")
    assert argo.live("v1", "ConfigMap", namespace, "late") is None  # wave 2 waits for wave 1 to be healthy
    assert argo.app("waves")["status"]["health"]["status"] == "Missing"  # the worst: wave 2 is not there yet

    store_type = argo.dest.type_of("external-secrets.io/v1", "SecretStore")
    store = argo.dest.store.get(store_type, namespace, "backend").copy()
    store["status"] = {
        "conditions": [{"type": "Ready", "status": "True", "reason": "Valid", "message": "ok"}]
    }
    argo.dest.store.update(store_type, namespace, "backend", store, subresource="status")

    status = eventually(
        lambda: synced_at(argo, "waves", revision), what="Synced after the store became Ready"
    )
    assert status["sourceType"] == "Kustomize"
    # the Deployment and ConfigMap of wave -1 first (kind order: ConfigMap before Deployment), then 1, then 2
    assert created == ["early", "api", "backend", "late"]
    assert {r["name"]: r["syncWave"] for r in status["resources"]} == {
        "early": -1,
        "api": -1,
        "backend": 1,
        "late": 2,
    }


def test_a_removed_file_is_pruned(argo: ArgoSandbox, remote: GitRemote, namespace: str) -> None:
    remote.commit(
        {"p/a.yaml": configmap("keep", namespace), "p/b.yaml": configmap("drop", namespace)},
    )
    argo.create_app("pruning", remote.url, "p")
    eventually(lambda: argo.live("v1", "ConfigMap", namespace, "drop"), what="both objects applied")
    unrelated = configmap("not-ours", namespace)  # applied by someone else: never pruned
    argo.dest.store.create(argo.dest.type_of("v1", "ConfigMap"), namespace, unrelated)

    revision = remote.commit({}, remove=("p/b.yaml",))
    status = eventually(lambda: synced_at(argo, "pruning", revision), what="Synced after the removal")
    assert argo.live("v1", "ConfigMap", namespace, "drop") is None
    assert argo.live("v1", "ConfigMap", namespace, "keep") is not None
    assert argo.live("v1", "ConfigMap", namespace, "not-ours") is not None
    pruned = [r for r in status["operationState"]["syncResult"]["resources"] if r["status"] == "Pruned"]
    assert [(r["name"], r["message"]) for r in pruned] == [("drop", "pruned")]
    assert [r["name"] for r in status["resources"]] == ["keep"]


def test_without_prune_a_removed_file_stays_and_is_out_of_sync(
    argo: ArgoSandbox, remote: GitRemote, namespace: str
) -> None:
    remote.commit({"np/a.yaml": configmap("a", namespace), "np/b.yaml": configmap("b", namespace)})
    argo.create_app("no-prune", remote.url, "np", syncPolicy={"automated": {"prune": False}})
    eventually(lambda: argo.live("v1", "ConfigMap", namespace, "b"), what="both objects applied")

    revision = remote.commit({}, remove=("np/b.yaml",))

    def out_of_sync() -> dict[str, Any] | None:
        status = argo.app("no-prune").get("status") or {}
        sync = status.get("sync") or {}
        return status if sync.get("revision") == revision and sync.get("status") == "OutOfSync" else None

    status = eventually(out_of_sync, what="OutOfSync with a resource to prune")
    assert argo.live("v1", "ConfigMap", namespace, "b") is not None
    assert [r["name"] for r in status["resources"] if r.get("requiresPruning")] == ["b"]


def test_a_failed_apply_fails_the_sync_and_the_next_commit_recovers(
    argo: ArgoSandbox, remote: GitRemote, namespace: str
) -> None:
    broken = remote.commit({"f/cm.yaml": configmap("cm", "no-such-namespace")})
    # no retries: without syncPolicy.retry Argo CD retries an automated sync 5 times
    argo.create_app(
        "failing", remote.url, "f", syncPolicy={"automated": {"prune": True}, "retry": {"limit": 0}}
    )

    def failed() -> dict[str, Any] | None:
        operation = (argo.app("failing").get("status") or {}).get("operationState") or {}
        return operation if operation.get("phase") == "Failed" else None

    operation = eventually(failed, what="the sync to fail")
    assert operation["message"] == "one or more objects failed to apply"
    assert operation["syncResult"]["revision"] == broken
    [result] = operation["syncResult"]["resources"]
    assert result["status"] == "SyncFailed"
    assert 'namespaces "no-such-namespace" not found' in result["message"]
    assert argo.app("failing")["status"]["sync"]["status"] == "OutOfSync"

    fixed = remote.commit({"f/cm.yaml": configmap("cm", namespace)})
    eventually(lambda: synced_at(argo, "failing", fixed), what="the next commit to sync")


def test_destination_by_server_url_and_in_cluster_route(
    argo: ArgoSandbox, remote: GitRemote, namespace: str
) -> None:
    revision = remote.commit({"d/cm.yaml": configmap("routed", namespace)})
    argo.create_app("by-url", remote.url, "d", destination={"server": argo.dest.url, "namespace": namespace})
    eventually(lambda: synced_at(argo, "by-url", revision), what="sync to the server URL")

    argo.routes.set("clusters", "https://kubernetes.default.svc", "dest")
    try:
        other = remote.commit({"e/cm.yaml": configmap("in-cluster", namespace)})
        argo.create_app(
            "in-cluster",
            remote.url,
            "e",
            destination={"server": "https://kubernetes.default.svc", "namespace": namespace},
        )
        eventually(lambda: synced_at(argo, "in-cluster", other), what="sync through the in-cluster route")
    finally:
        argo.routes.set("clusters", "https://kubernetes.default.svc", "mgmt")
    assert argo.live("v1", "ConfigMap", namespace, "in-cluster") is not None


def test_an_unreadable_source_is_a_comparison_error(argo: ArgoSandbox, remote: GitRemote) -> None:
    remote.commit({"exists/cm.yaml": configmap("x", "default")})
    argo.create_app("missing-path", remote.url, "does/not/exist")

    def error() -> str:
        status = argo.app("missing-path").get("status") or {}
        conditions = status.get("conditions") or []
        if status.get("sync", {}).get("status") == "Unknown" and conditions:
            return str(conditions[0]["message"])
        return ""

    message = eventually(error, what="a ComparisonError")
    assert "app path does not exist: does/not/exist" in message


def test_a_manual_sync_operation_and_the_refresh_annotation(
    argo: ArgoSandbox, remote: GitRemote, namespace: str
) -> None:
    revision = remote.commit({"m/cm.yaml": configmap("manual", namespace)})
    argo.create_app(
        "manual", remote.url, "m", syncPolicy={}, destination={"name": "dest", "namespace": namespace}
    )

    def compared() -> bool:
        status = argo.app("manual").get("status") or {}
        return status.get("sync", {}).get("status") == "OutOfSync"

    eventually(compared, what="OutOfSync without automated sync")
    assert argo.live("v1", "ConfigMap", namespace, "manual") is None  # nothing applies it on its own

    apps = argo.mgmt.type_of("argoproj.io/v1alpha1", "Application")

    def request(document: dict[str, Any]) -> dict[str, Any]:
        document["operation"] = {"sync": {"revision": revision}, "initiatedBy": {"username": "test"}}
        document["metadata"].setdefault("annotations", {})["argocd.argoproj.io/refresh"] = "normal"
        return document

    argo.mgmt.store.patch(apps, "argocd", "manual", request)
    status = eventually(lambda: synced_at(argo, "manual", revision), what="the manual sync")
    assert status["operationState"]["operation"]["initiatedBy"] == {"username": "admin"}
    app = argo.app("manual")
    assert "operation" not in app
    assert "argocd.argoproj.io/refresh" not in (app["metadata"].get("annotations") or {})


def test_deleting_an_app_with_the_resources_finalizer_deletes_its_resources(
    argo: ArgoSandbox, remote: GitRemote, namespace: str
) -> None:
    revision = remote.commit({"g/cm.yaml": configmap("owned", namespace)})
    argo.create_app("finalized", remote.url, "g")
    eventually(lambda: synced_at(argo, "finalized", revision), what="the first sync")
    apps = argo.mgmt.type_of("argoproj.io/v1alpha1", "Application")

    def add_finalizer(document: dict[str, Any]) -> dict[str, Any]:
        document["metadata"]["finalizers"] = ["resources-finalizer.argocd.argoproj.io"]
        return document

    argo.mgmt.store.patch(apps, "argocd", "finalized", add_finalizer)
    argo.mgmt.store.delete(apps, "argocd", "finalized")
    eventually(lambda: not argo.mgmt.store.exists(apps, "argocd", "finalized"), what="the app to go")
    assert argo.live("v1", "ConfigMap", namespace, "owned") is None
