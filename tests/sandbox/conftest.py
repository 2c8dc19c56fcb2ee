"""Fixtures of the sandbox tests: an emulated cluster with the upstream CRDs, real clients.

The contract tests talk to a ``KubeCluster`` served in this process through
the real ``kubernetes`` client configured from a kubeconfig, exactly as a
workflow step would reach a sandbox cluster.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from vaultflow.sandbox import lifecycle
from vaultflow.sandbox.crd_sources import CrdSource, load_crds
from vaultflow.sandbox.kube import KubeCluster
from vaultflow.sandbox.kubeconfig import ClusterAccess, write_kubeconfig
from vaultflow.sandbox.state import SandboxState


@pytest.fixture(scope="session")
def upstream_crd_documents(schemas_dir: Path) -> list[dict[str, Any]]:
    return load_crds(CrdSource(schemas_dir, upstream=True))


@pytest.fixture(scope="session")
def cluster(upstream_crd_documents: list[dict[str, Any]]) -> Iterator[KubeCluster]:
    emulated = KubeCluster("contract").start()
    emulated.register_crds(upstream_crd_documents)
    yield emulated
    emulated.stop()


@pytest.fixture(scope="session")
def kubeconfig(cluster: KubeCluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("kube") / "kubeconfig"
    return write_kubeconfig(path, [ClusterAccess(cluster.name, cluster.url, cluster.admin_token)])


@pytest.fixture(scope="session")
def api_client(kubeconfig: Path) -> Iterator[client.ApiClient]:
    api = config.new_client_from_config(config_file=str(kubeconfig), context="contract")
    yield api
    api.close()


@pytest.fixture(scope="session")
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture(scope="session")
def apps(api_client: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api_client)


@pytest.fixture(scope="session")
def custom(api_client: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client)


@pytest.fixture
def namespace(core: client.CoreV1Api) -> Iterator[str]:
    """A fresh namespace per test, deleted (with its content) afterwards."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)


@pytest.fixture(scope="session")
def sandbox_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxState]:
    """A whole sandbox (supervisor, real OpenBao, moto, two workload clusters and mgmt) for this session."""
    directory = tmp_path_factory.mktemp("sandbox") / "sbx"
    state = lifecycle.up(directory, clusters=2, builtin_crds=True).state
    yield state
    lifecycle.down(directory)
