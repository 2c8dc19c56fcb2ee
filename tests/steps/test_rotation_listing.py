"""What a verification round asks a cluster for: only the objects it waits for, and never less than it needs.

The rounds run against the Kubernetes emulator holding what ESO would have
written (ExternalSecrets with their status, Secrets with ESO's labels and
data-hash), through the real client, which records each request. A round
lists each consuming namespace's ExternalSecrets narrowed by the
``vaultflow.io/secret`` label, and its Secrets, narrowed by ESO's
``created-by`` label, only once an ExternalSecret there has refreshed; when a
label does not say what it should (changed by hand, or an ESO that does not
set it) the namespace is listed whole and every target is still verified.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from kubernetes import client

from vaultflow.gitops import render
from vaultflow.sandbox.crd_sources import CrdSource, load_crds
from vaultflow.sandbox.eso import gohash
from vaultflow.sandbox.kube import KubeCluster
from vaultflow.steps.rotation.discover import SECRET_LABEL, ConsumingExternalSecret, discover_consumers
from vaultflow.steps.rotation.verify import (
    DATA_HASH,
    OWNER_LABEL,
    KubeTarget,
    eso_data_hash,
    eso_owner_label,
    verify_kubernetes_targets,
)

ESO = "external-secrets.io"
NAMESPACE = "apps"
OTHERS = 30  # ExternalSecrets of the namespace that the round does not wait for
WRITTEN = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
NEW = {"password": b"new-value"}


class Recording(client.ApiClient):  # type: ignore[misc]
    """The real client as the admin, writing down each request: (method, path, labelSelector)."""

    def __init__(self, cluster: KubeCluster) -> None:
        configuration = client.Configuration()
        configuration.host = cluster.url
        configuration.api_key = {"authorization": f"Bearer {cluster.admin_token}"}
        super().__init__(configuration)
        self.sent: list[tuple[str, str, str | None]] = []  # (LIST or WATCH or the method, path, selector)

    def call_api(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        split = urlsplit(url)
        query = parse_qs(split.query)
        watching = query.get("watch", [""])[0].lower() == "true"
        selector = query.get("labelSelector", [None])[0]
        verb = ("WATCH" if watching else "LIST") if method == "GET" else method
        self.sent.append((verb, split.path, selector))
        return super().call_api(method, url, *args, **kwargs)

    def lists(self, plural: str, verb: str = "LIST") -> list[tuple[str, str | None]]:
        """The LISTs (or WATCHes) of ``plural``, in order: (``"namespace"`` or ``"cluster"``, selector)."""
        return [
            ("namespace" if path.endswith(f"/namespaces/{NAMESPACE}/{plural}") else "cluster", selector)
            for sent, path, selector in self.sent
            if sent == verb and path.endswith(f"/{plural}")
        ]


@contextlib.contextmanager
def served_with_eso_crds(schemas_dir: Path, name: str, **options: Any) -> Iterator[KubeCluster]:
    """A kube emulator with ESO's CRDs and the namespace ``NAMESPACE``, stopped afterwards."""
    served = KubeCluster(name, **options).start()
    try:
        served.register_crds(load_crds(CrdSource(schemas_dir, upstream=True)))
        with Recording(served) as api:
            client.CoreV1Api(api).create_namespace({"metadata": {"name": NAMESPACE}})
        yield served
    finally:
        served.stop()


@pytest.fixture
def cluster(schemas_dir: Path) -> Iterator[KubeCluster]:
    with served_with_eso_crds(schemas_dir, "listing") as served:
        with Recording(served) as api:
            for index in range(OTHERS):
                synced(api, f"other-{index}", {"password": b"not this rotation"})
        yield served


def synced(
    api: client.ApiClient,
    name: str,
    data: dict[str, bytes],
    *,
    label: bool = True,
    owner_label: bool = True,
    refreshed: datetime | None = None,
) -> None:
    """An ExternalSecret as render writes it, its status and its Secret as ESO leaves them after a sync."""
    custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
    labels = {SECRET_LABEL: f"team-{name}"} if label else {}
    custom.create_namespaced_custom_object(
        ESO,
        "v1",
        NAMESPACE,
        "externalsecrets",
        {
            "apiVersion": f"{ESO}/v1",
            "kind": "ExternalSecret",
            "metadata": {"name": name, "labels": labels},
            "spec": {
                "secretStoreRef": {"kind": "ClusterSecretStore", "name": "vault"},
                "target": {"name": name},
                "dataFrom": [{"extract": {"key": f"team/{name}"}}],
            },
        },
    )
    at = (refreshed or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    custom.patch_namespaced_custom_object_status(
        ESO,
        "v1",
        NAMESPACE,
        "externalsecrets",
        name,
        {
            "status": {
                "refreshTime": at,
                "conditions": [{"type": "Ready", "status": "True", "reason": "SecretSynced"}],
            }
        },
    )
    secret_labels = {"reconcile.external-secrets.io/managed": "true"}
    if owner_label:  # written by the emulator's own implementation of ESO's hash
        secret_labels[OWNER_LABEL] = gohash.owner_label(NAMESPACE, name)
    core.create_namespaced_secret(
        NAMESPACE,
        {
            "metadata": {
                "name": name,
                "labels": secret_labels,
                "annotations": {DATA_HASH: gohash.data_hash(data)},
            },
            "data": {key: base64.b64encode(value).decode() for key, value in data.items()},
        },
    )


def target(name: str, *, label: str | None = "", policy: str = "Owner") -> KubeTarget:
    consumer = ConsumingExternalSecret(
        cluster="one",
        namespace=NAMESPACE,
        name=name,
        secret_name=name,
        source="catalog",
        creation_policy=policy,
        immutable=False,
        templated=False,
        extract=True,
        keys=[],
        converted=False,
        reads_other_paths=False,
        secret_label=f"team-{name}" if label == "" else label,
    )
    return KubeTarget(consumer, dict(NEW), None, WRITTEN)


def test_the_labels_are_the_ones_render_and_eso_write() -> None:
    assert SECRET_LABEL == render.SECRET_LABEL
    # Two implementations of ESO's ObjectHash written apart: the product's and the emulator's.
    assert eso_owner_label(NAMESPACE, "db") == gohash.owner_label(NAMESPACE, "db")


def test_discovery_records_the_rendered_label_of_each_external_secret(cluster: KubeCluster) -> None:
    from vaultflow.gitops.catalog import parse_catalog

    catalog = parse_catalog(
        """\
apiVersion: vaultflow.io/v1alpha1
kind: SecretsCatalog
vault: {address: "https://vault.example.com:8200", storeName: vault}
gitops: {repoUrl: https://git.example.com/gitops.git}
clusters: [{name: one, kubeContext: one, argocd: {server: https://kubernetes.default.svc}}]
secrets:
  - path: team/db
    keys: [{name: password, generator: {type: password}}]
    rotation: {schedule: "@daily"}
""",
        Path("catalog.yaml"),
    )
    with Recording(cluster) as api:
        client.CustomObjectsApi(api).create_cluster_custom_object(
            ESO,
            "v1",
            "clustersecretstores",
            {
                "apiVersion": f"{ESO}/v1",
                "kind": "ClusterSecretStore",
                "metadata": {"name": "vault"},
                "spec": {
                    "provider": {
                        "vault": {
                            "server": "https://vault.example.com:8200",
                            "path": "secret",
                            "version": "v2",
                        }
                    }
                },
            },
        )
        synced(api, "db", NEW)
        synced(api, "by-hand", NEW, label=False)
        client.CustomObjectsApi(api).patch_namespaced_custom_object(
            ESO,
            "v1",
            NAMESPACE,
            "externalsecrets",
            "by-hand",
            {"spec": {"dataFrom": [{"extract": {"key": "team/db"}}]}},
        )
        found = discover_consumers(catalog.catalog, catalog.plan, ["team/db"], {"one": api})["team/db"]
    assert {(c.name, c.secret_label) for c in found.external_secrets} == {
        ("db", "team-db"),
        ("by-hand", None),
    }


def test_a_round_asks_only_for_the_objects_it_waits_for(cluster: KubeCluster) -> None:
    with Recording(cluster) as api:
        for name in ("a", "b", "c"):
            synced(api, name, NEW)
        api.sent.clear()
        results = verify_kubernetes_targets({"one": api}, [target("a"), target("b"), target("c")], timeout=10)
        assert [r.phase for r in results] == ["Verified"] * 3
        # One LIST of ExternalSecrets across namespaces, one of Secrets in the namespace, both by label.
        assert api.lists("externalsecrets") == [("cluster", f"{SECRET_LABEL} in (team-a,team-b,team-c)")]
        # ... then one WATCH from it, by the same label (kept open until the verification ends).
        assert api.lists("externalsecrets", "WATCH") == api.lists("externalsecrets")
        owners = ",".join(sorted(gohash.owner_label(NAMESPACE, n) for n in "abc"))
        assert api.lists("secrets") == [("namespace", f"{OWNER_LABEL} in ({owners})")]
        # What the selectors name is what the emulator returns: the three targets, not the 30 others.
        listed = client.CoreV1Api(api).list_namespaced_secret(
            NAMESPACE, label_selector=api.lists("secrets")[0][1]
        )
        assert sorted(s.metadata.name for s in listed.items) == ["a", "b", "c"]


def test_secrets_are_not_listed_before_an_external_secret_refreshed_after_the_write(
    cluster: KubeCluster,
) -> None:
    with Recording(cluster) as api:
        synced(api, "stale", {"password": b"old"}, refreshed=WRITTEN - timedelta(minutes=1))
        api.sent.clear()
        [result] = verify_kubernetes_targets({"one": api}, [target("stale")], timeout=1)
        assert result.phase == "TimedOut" and "has not refreshed since the write" in result.message
        assert api.lists("externalsecrets") and api.lists("secrets") == []


def test_a_label_changed_by_hand_or_never_set_hides_no_target(cluster: KubeCluster) -> None:
    """An ExternalSecret lost its label after discovery; a Secret ESO did not label: both verified."""
    with Recording(cluster) as api:
        synced(api, "relabelled", NEW, label=False)
        synced(api, "unlabelled-secret", NEW, owner_label=False)
        api.sent.clear()
        targets = [target("relabelled"), target("unlabelled-secret")]
        results = verify_kubernetes_targets({"one": api}, targets, timeout=10)
        assert [r.phase for r in results] == ["Verified", "Verified"]
        # Narrowed first, then the whole namespace (once each kind), and whole from then on.
        assert api.lists("externalsecrets")[:2] == [
            ("cluster", f"{SECRET_LABEL} in (team-relabelled,team-unlabelled-secret)"),
            ("namespace", None),
        ]
        assert api.lists("secrets")[-1] == ("namespace", None)


def test_without_a_label_to_narrow_by_the_namespace_is_listed_whole(cluster: KubeCluster) -> None:
    """A consumer written by hand (no vaultflow label) and a Merge target (ESO sets no created-by)."""
    with Recording(cluster) as api:
        synced(api, "by-hand", NEW)
        synced(api, "merged", NEW, owner_label=False)
        api.sent.clear()
        results = verify_kubernetes_targets(
            {"one": api}, [target("by-hand", label=None), target("merged", policy="Merge")], timeout=10
        )
        assert [r.phase for r in results] == ["Verified", "Verified"]
        assert api.lists("externalsecrets") == [("namespace", None)]
        assert api.lists("secrets") == [("namespace", None)]


def test_an_old_value_is_not_verified_whatever_the_listing(cluster: KubeCluster) -> None:
    with Recording(cluster) as api:
        synced(api, "old", {"password": b"old-value"})
        [result] = verify_kubernetes_targets({"one": api}, [target("old")], timeout=1)
    assert result.phase == "TimedOut" and "still holds another value" in result.message
    assert eso_data_hash(NEW) != gohash.data_hash({"password": b"old-value"})
