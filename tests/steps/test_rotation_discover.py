"""Discovery finds every consumer of a rotated path, rendered or written by hand, in one LIST per kind.

The clusters are the sandbox's emulated API servers with the upstream ESO
CRDs; the rendered tree of the example catalog is applied to them as Argo CD
would, and the hand-written objects are what a team might add beside it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from kubernetes import client, config

from vaultflow.gitops.catalog import LoadedCatalog, load_catalog
from vaultflow.gitops.render import render_catalog
from vaultflow.sandbox.crd_sources import CrdSource, load_crds
from vaultflow.sandbox.kube import KubeCluster
from vaultflow.sandbox.kubeconfig import ClusterAccess, write_kubeconfig
from vaultflow.steps.rotation.discover import discover_consumers, eso_build_path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml"
DB = "prod/database"


class CountingClient(client.ApiClient):  # type: ignore[misc]
    """The real client, counting the requests it sends (method and path)."""

    def __init__(self, configuration: Any) -> None:
        super().__init__(configuration)
        self.sent: list[tuple[str, str]] = []

    def call_api(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        self.sent.append((method, urlsplit(url).path))
        return super().call_api(method, url, *args, **kwargs)


@pytest.fixture(scope="module")
def example() -> LoadedCatalog:
    return load_catalog(EXAMPLE)


@pytest.fixture(scope="module")
def clusters(
    schemas_dir: Path, tmp_path_factory: pytest.TempPathFactory, example: LoadedCatalog
) -> Iterator[dict[str, CountingClient]]:
    crds = load_crds(CrdSource(schemas_dir, upstream=True))
    served = {name: KubeCluster(name).start() for name in ("prod-eu", "prod-us")}
    for cluster in served.values():
        cluster.register_crds(crds)
    kubeconfig = write_kubeconfig(
        tmp_path_factory.mktemp("kube") / "kubeconfig",
        [ClusterAccess(c.name, c.url, c.admin_token) for c in served.values()],
    )
    clients: dict[str, CountingClient] = {}
    for name in served:
        configuration = client.Configuration()
        config.load_kube_config(config_file=str(kubeconfig), context=name, client_configuration=configuration)
        clients[name] = CountingClient(configuration)
    for path, manifest in render_catalog(example).manifests():
        cluster = path.split("/")[1] if path.startswith("clusters/") else None
        # the ESO objects (the rotation's RBAC beside them is tests/gitops/test_rotation_rbac.py's)
        if cluster in clients and manifest["apiVersion"].startswith("external-secrets.io/"):
            apply(clients[cluster], manifest)
    yield clients
    for cluster in served.values():
        cluster.stop()


def apply(api: client.ApiClient, manifest: dict[str, Any]) -> None:
    group, version = manifest["apiVersion"].split("/")
    plural = manifest["kind"].lower() + ("es" if manifest["kind"].endswith("s") else "s")
    namespace = manifest["metadata"].get("namespace")
    custom = client.CustomObjectsApi(api)
    core = client.CoreV1Api(api)
    if namespace and namespace not in {n.metadata.name for n in core.list_namespace().items}:
        core.create_namespace({"metadata": {"name": namespace}})
    if namespace:
        custom.create_namespaced_custom_object(group, version, namespace, plural, manifest)
    else:
        custom.create_cluster_custom_object(group, version, plural, manifest)


def by_hand(kind: str, namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    version = "v1alpha1" if kind == "PushSecret" else "v1"
    return {
        "apiVersion": f"external-secrets.io/{version}",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


@pytest.mark.parametrize(
    ("key", "mount", "version", "path"),
    [
        ("prod/db", "secret", "v2", "secret/data/prod/db"),
        ("secret/prod/db", "secret", "v2", "secret/data/prod/db"),
        ("secret/data/prod/db", "secret", "v2", "secret/data/prod/db"),
        ("prod/db", "team/kv", "v2", "team/kv/data/prod/db"),
        ("prod/db", "kv1", "v1", "kv1/prod/db"),
        ("secret/prod/db", None, "v2", "secret/data/prod/db"),
        ("secret/data/prod/db", None, "v2", "secret/data/prod/db"),
    ],
)
def test_eso_path_rules(key: str, mount: str | None, version: str, path: str) -> None:
    assert eso_build_path(key, mount, version) == path


def test_rendered_consumers_are_found_in_every_cluster(
    clusters: dict[str, CountingClient], example: LoadedCatalog
) -> None:
    found = discover_consumers(example.catalog, example.plan, [DB], clusters)[DB]
    rendered = {
        (es.cluster, es.namespace, es.name) for es in example.plan.external_secrets if es.secret.path == DB
    }
    assert {(c.cluster, c.namespace, c.name) for c in found.external_secrets} == rendered
    assert all(c.source == "catalog" and c.extract and not c.templated for c in found.external_secrets)
    pushes = {(p.cluster, p.namespace, p.name) for p in example.plan.push_secrets if p.secret.path == DB}
    assert {(p.cluster, p.namespace, p.name) for p in found.push_secrets} == pushes
    assert pushes and all(p.stores and p.stores[0].provider == "aws" for p in found.push_secrets)
    assert found.refusals == []


def test_hand_written_consumers_are_found_and_refused_when_eso_would_never_refresh(
    clusters: dict[str, CountingClient], example: LoadedCatalog
) -> None:
    api = clusters["prod-us"]
    client.CoreV1Api(api).create_namespace({"metadata": {"name": "team-b"}})
    store = {"name": example.catalog.vault.store_name, "kind": "ClusterSecretStore"}
    apply(
        api,
        by_hand(
            "ExternalSecret",
            "team-b",
            "db-by-hand",
            {
                "secretStoreRef": store,
                "target": {"name": "db-copy"},
                "data": [
                    {"secretKey": "pw", "remoteRef": {"key": f"secret/data/{DB}", "property": "password"}}
                ],
            },
        ),
    )
    apply(
        api,
        by_hand(
            "ExternalSecret",
            "team-b",
            "db-once",
            {
                "secretStoreRef": store,
                "refreshPolicy": "CreatedOnce",
                "dataFrom": [{"extract": {"key": f"secret/{DB}"}}],
            },
        ),
    )
    apply(
        api,
        by_hand(
            "ExternalSecret",
            "team-b",
            "elsewhere",
            {
                "secretStoreRef": store,
                "dataFrom": [{"extract": {"key": "prod/other"}}],
            },
        ),
    )
    aws_store = next(
        m
        for _, m in render_catalog(example).manifests()
        if m["kind"] == "SecretStore" and "aws" in m["spec"]["provider"]
    )
    aws_store = copy.deepcopy(aws_store)
    aws_store["metadata"]["namespace"] = "team-b"
    apply(api, aws_store)
    apply(
        api,
        by_hand(
            "PushSecret",
            "team-b",
            "copy-to-aws",
            {
                "secretStoreRefs": [{"name": aws_store["metadata"]["name"], "kind": "SecretStore"}],
                "selector": {"secret": {"name": "db-copy"}},
                "data": [{"match": {"secretKey": "pw", "remoteRef": {"remoteKey": "team-b/db"}}}],
            },
        ),
    )
    found = discover_consumers(example.catalog, example.plan, [DB], clusters)[DB]
    hand = {c.name: c for c in found.external_secrets if c.source == "discovered"}
    assert set(hand) == {"db-by-hand", "db-once"}
    assert hand["db-by-hand"].secret_name == "db-copy" and [k.property for k in hand["db-by-hand"].keys] == [
        "password"
    ]
    assert hand["db-once"].secret_name == "db-once"  # ESO's default target name
    [refusal] = found.refusals
    assert "team-b/db-once in cluster prod-us" in refusal and "CreatedOnce" in refusal
    [pushed] = [p for p in found.push_secrets if p.source == "discovered"]
    assert (pushed.name, pushed.source_secret, pushed.keys[0].remote_key) == (
        "copy-to-aws",
        "db-copy",
        "team-b/db",
    )
    assert pushed.stores[0].provider == "aws"


def test_one_list_per_kind_per_cluster_whatever_the_number_of_paths(
    clusters: dict[str, CountingClient], example: LoadedCatalog
) -> None:
    paths = [s.path for s in example.catalog.secrets]
    for api in clusters.values():
        api.sent.clear()
    discover_consumers(example.catalog, example.plan, paths, clusters)
    for api in clusters.values():
        assert sorted(api.sent) == sorted(
            ("GET", f"/apis/external-secrets.io/{version}/{plural}")
            for version, plural in [
                ("v1", "externalsecrets"),
                ("v1alpha1", "pushsecrets"),
                ("v1", "secretstores"),
                ("v1", "clustersecretstores"),
            ]
        )
