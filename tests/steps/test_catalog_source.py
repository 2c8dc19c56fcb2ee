"""Steps read the catalog from a file or, in a cluster, from a ConfigMap (through the real client)."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from vaultflow.base.errors import InputError, OperationError
from vaultflow.gitops.catalog import CatalogError
from vaultflow.sandbox.kube.cluster import KubeCluster
from vaultflow.sandbox.kubeconfig import ClusterAccess, write_kubeconfig
from vaultflow.steps.catalog_source import load_catalog_source
from vaultflow.workflows.render import CatalogFile, catalog_config_map

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml"


@pytest.fixture(scope="module")
def cluster_kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    cluster = KubeCluster("catalog-source").start()
    path = write_kubeconfig(
        tmp_path_factory.mktemp("kube") / "config",
        [ClusterAccess("catalog-source", cluster.url, cluster.admin_token)],
    )
    with config.new_client_from_config(config_file=str(path)) as api:
        core = client.CoreV1Api(api)
        core.create_namespace({"metadata": {"name": "argo"}})
        core.create_namespaced_config_map(
            "argo", {"metadata": {"name": "vaultflow-catalog"}, "data": {"catalog.yaml": EXAMPLE.read_text()}}
        )
        # What `workflows render` writes for a catalog too big as text: binaryData, gzip-compressed.
        big = catalog_config_map(CatalogFile("big.yaml", _large_catalog(10_000)))
        core.create_namespaced_config_map(
            "argo", {"metadata": {"name": "big"}, "binaryData": big["binaryData"]}
        )
        core.create_namespaced_config_map(
            "argo", {"metadata": {"name": "not-gzip"}, "binaryData": {"catalog.yaml.gz": "bm90IGd6aXA="}}
        )
        broken = EXAMPLE.read_text().replace("namespace: production", "namespace: Production", 1)
        core.create_namespaced_config_map(
            "argo", {"metadata": {"name": "broken"}, "data": {"catalog.yaml": broken}}
        )
    yield path
    cluster.stop()


def _large_catalog(secrets: int) -> str:
    from tests.workflows.test_catalog_config_map import large_catalog

    return large_catalog(secrets)


@pytest.fixture
def kubeconfig(cluster_kubeconfig: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(cluster_kubeconfig))


def test_a_file_and_its_configmap_copy_load_the_same_catalog(kubeconfig: None) -> None:
    from_file = load_catalog_source(str(EXAMPLE)).catalog
    from_cluster = load_catalog_source("configmap://argo/vaultflow-catalog?context=catalog-source").catalog
    assert from_cluster == from_file


def test_a_compressed_catalog_is_read_transparently(kubeconfig: None) -> None:
    loaded = load_catalog_source("configmap://argo/big?context=catalog-source")
    assert len(loaded.catalog.secrets) == 10_000
    assert str(loaded.source).endswith("configmap:argo/big/catalog.yaml")
    with pytest.raises(
        OperationError, match=r"^catalog ConfigMap argo/not-gzip binaryData catalog\.yaml\.gz: not gzip"
    ):
        load_catalog_source("configmap://argo/not-gzip?context=catalog-source")


def test_errors_name_the_configmap_and_the_line(kubeconfig: None) -> None:
    with pytest.raises(CatalogError) as caught:
        load_catalog_source("configmap://argo/broken/catalog.yaml?context=catalog-source")
    (problem,) = caught.value.issues
    line = next(
        n for n, text in enumerate(EXAMPLE.read_text().splitlines(), 1) if "namespace: production" in text
    )
    assert problem.render(caught.value.source).startswith(f"configmap:argo/broken/catalog.yaml:{line}:")
    assert "'Production' is not a valid DNS-1123 label" in problem.message
    with pytest.raises(OperationError, match=r"no key 'other\.yaml'"):
        load_catalog_source("configmap://argo/vaultflow-catalog/other.yaml?context=catalog-source")
    with pytest.raises(OperationError, match=r"argo/missing: cannot read it \(404"):
        load_catalog_source("configmap://argo/missing?context=catalog-source")
    with pytest.raises(InputError, match="configmap://<namespace>/<name>"):
        load_catalog_source("configmap://only-a-namespace")


@pytest.fixture
def dead_cluster_kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kubeconfig whose only context points at a port nothing listens on."""
    from vaultflow.sandbox.openbao import free_port

    path = write_kubeconfig(
        tmp_path / "config", [ClusterAccess("gone", f"http://127.0.0.1:{free_port()}", "token")]
    )
    monkeypatch.setenv("KUBECONFIG", str(path))
    return "gone"


def test_an_unreachable_api_server_is_one_clear_error(dead_cluster_kubeconfig: str) -> None:
    with pytest.raises(OperationError) as caught:
        load_catalog_source(f"configmap://argo/vaultflow-catalog?context={dead_cluster_kubeconfig}")
    assert str(caught.value) == (
        "catalog ConfigMap argo/vaultflow-catalog: cannot read it: "
        "the Kubernetes API server is unreachable (connection refused)"
    )
