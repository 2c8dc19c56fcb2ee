"""A cluster saved and loaded again is the same cluster: objects, UIDs, keys, tokens, served kinds, port."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch

from vaultflow.sandbox.kube import KubeCluster
from vaultflow.sandbox.kube.persistence import load_cluster, save_cluster, saved_port
from vaultflow.sandbox.kubeconfig import ClusterAccess, write_kubeconfig


def api_of(cluster: KubeCluster, tmp_path: Path) -> client.ApiClient:
    from kubernetes import config

    kubeconfig = write_kubeconfig(
        tmp_path / f"kubeconfig-{cluster.port}",
        [ClusterAccess(cluster.name, cluster.url, cluster.admin_token)],
    )
    return config.new_client_from_config(config_file=str(kubeconfig), context=cluster.name)


def test_a_saved_cluster_comes_back_with_its_objects_keys_and_tokens(
    tmp_path: Path, upstream_crd_documents: list[dict[str, Any]]
) -> None:
    original = KubeCluster("restarts").start()
    original.register_crds(upstream_crd_documents)
    with api_of(original, tmp_path) as api:
        core = client.CoreV1Api(api)
        core.create_namespace({"metadata": {"name": "eso"}})
        account = core.create_namespaced_service_account("eso", {"metadata": {"name": "reviewer"}})
        token = core.create_namespaced_service_account_token(
            "reviewer", "eso", {"spec": {"audiences": ["vault"]}}
        ).status.token
        core.create_namespaced_secret(
            "eso",
            {
                "metadata": {
                    "name": "legacy",
                    "annotations": {"kubernetes.io/service-account.name": "reviewer"},
                },
                "type": "kubernetes.io/service-account-token",
            },
        )
        legacy = core.read_namespaced_secret("legacy", "eso")
        store = client.CustomObjectsApi(api).create_namespaced_custom_object(
            "external-secrets.io",
            "v1",
            "eso",
            "secretstores",
            {
                "apiVersion": "external-secrets.io/v1",
                "kind": "SecretStore",
                "metadata": {"name": "vault"},
                "spec": {"provider": {"vault": {"server": "http://127.0.0.1:8200", "path": "secret"}}},
            },
        )
    snapshot = tmp_path / "state.json"
    save_cluster(original, snapshot)
    port, before = original.port, original.store.resource_version
    original.stop()
    assert stat.S_IMODE(snapshot.stat().st_mode) == 0o600  # Secrets, the admin token and two private keys
    assert saved_port(snapshot) == port

    restored = load_cluster(snapshot).start()
    try:
        assert restored.url == f"http://127.0.0.1:{port}"
        assert restored.ca_pem == original.ca_pem and restored.admin_token == original.admin_token
        with api_of(restored, tmp_path) as api:
            core = client.CoreV1Api(api)
            assert (
                core.read_namespaced_service_account("reviewer", "eso").metadata.uid == account.metadata.uid
            )
            again = core.read_namespaced_secret("legacy", "eso")
            assert (
                again.data == legacy.data
                and again.metadata.resource_version == legacy.metadata.resource_version
            )
            review = client.AuthenticationV1Api(api).create_token_review(
                {"spec": {"token": token, "audiences": ["vault"]}}
            )
            assert review.status.authenticated is True  # signed before the restart, valid after
            kept = client.CustomObjectsApi(api).get_namespaced_custom_object(
                "external-secrets.io", "v1", "eso", "secretstores", "vault"
            )
            assert kept["metadata"]["uid"] == store["metadata"]["uid"]  # the CRD serves its kind again
            created = core.create_namespaced_config_map("eso", {"metadata": {"name": "after"}})
            assert int(created.metadata.resource_version) > before  # resourceVersions keep counting up
            with pytest.raises(client.ApiException) as gone:  # the ERROR event of a 200 watch
                list(
                    watch.Watch().stream(
                        core.list_namespaced_config_map,
                        "eso",
                        resource_version=str(before - 1),
                        timeout_seconds=1,
                    )
                )
            assert gone.value.status == 410  # a watch from before the restart relists
    finally:
        restored.stop()


def test_a_file_that_is_not_a_cluster_snapshot_is_one_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "state.json"
    broken.write_text("{}")
    with pytest.raises(ValueError, match=r"state.json: not a vaultflow-sandbox-cluster/v1 file"):
        load_cluster(broken)
    broken.write_text("{")
    with pytest.raises(ValueError, match=r"unreadable cluster state \(JSONDecodeError\)"):
        load_cluster(broken)
