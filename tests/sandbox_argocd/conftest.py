"""Fixtures of the Argo CD emulator tests: a management and a destination cluster, real Git repositories.

The clusters carry the upstream CRDs, so every status the emulator writes is
validated against Argo CD's own Application schema. Each test gets its own
bare repository (with a clone to commit from) and its own namespace.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from vaultflow.sandbox.argocd import ArgoCdController
from vaultflow.sandbox.crd_sources import CrdSource, load_crds
from vaultflow.sandbox.kube import KubeCluster
from vaultflow.sandbox.routes import Routes

# The emulator's own tests read Git every 0.1 s, without jitter (Argo CD's timeout.reconciliation and
# its jitter): what they test is not how long Argo CD waits. The sandbox's default is Argo CD's, 120 s
# plus up to 60 s (test_reconciliation.py).
FAST = 0.1


@dataclass
class ArgoSandbox:
    mgmt: KubeCluster
    dest: KubeCluster
    routes: Routes
    controller: ArgoCdController

    def app(self, name: str) -> dict[str, Any]:
        return self.mgmt.store.get(
            self.mgmt.type_of("argoproj.io/v1alpha1", "Application"), "argocd", name
        ).copy()

    def create_app(self, name: str, repo_url: str, path: str, **spec: Any) -> None:
        body: dict[str, Any] = {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": name, "namespace": "argocd"},
            "spec": {
                "project": "default",
                "source": {"repoURL": repo_url, "targetRevision": "main", "path": path},
                "destination": {"name": "dest", "namespace": "default"},
                "syncPolicy": {"automated": {"prune": True}},
                **spec,
            },
        }
        self.mgmt.store.create(self.mgmt.type_of("argoproj.io/v1alpha1", "Application"), "argocd", body)

    def live(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        rtype = self.dest.type_of(api_version, kind)
        if not self.dest.store.exists(rtype, namespace, name):
            return None
        return self.dest.store.get(rtype, namespace, name).copy()


def eventually(condition: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    """Poll until ``condition()`` is truthy (controllers are asynchronous); fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture(scope="session")
def crd_documents(schemas_dir: Path) -> list[dict[str, Any]]:
    return load_crds(CrdSource(schemas_dir, upstream=True))


@pytest.fixture(scope="session")
def argo(crd_documents: list[dict[str, Any]]) -> Iterator[ArgoSandbox]:
    mgmt = KubeCluster("mgmt").start()
    dest = KubeCluster("dest").start()
    for cluster in (mgmt, dest):
        cluster.register_crds(crd_documents)
    mgmt.store.create(mgmt.type_of("v1", "Namespace"), "", {"metadata": {"name": "argocd"}})
    routes = Routes.for_sandbox({mgmt.url: "mgmt", dest.url: "dest"}, "mgmt")
    controller = ArgoCdController(
        mgmt, {"mgmt": mgmt, "dest": dest}, routes, reconciliation_timeout=FAST, reconciliation_jitter=0
    ).start()
    yield ArgoSandbox(mgmt, dest, routes, controller)
    controller.stop()
    mgmt.stop()
    dest.stop()


@pytest.fixture
def namespace(argo: ArgoSandbox) -> str:
    name = f"t-{uuid.uuid4().hex[:8]}"
    argo.dest.store.create(argo.dest.type_of("v1", "Namespace"), "", {"metadata": {"name": name}})
    return name


class GitRemote:
    """A bare repository (what Argo CD reads) and a clone to commit into."""

    def __init__(self, root: Path) -> None:
        self.bare = root / "remote.git"
        self.work = root / "work"
        self._git(root, "init", "--bare", "--initial-branch=main", str(self.bare))
        self._git(root, "clone", "--quiet", str(self.bare), str(self.work))
        self._git(self.work, "checkout", "--quiet", "-B", "main")

    @property
    def url(self) -> str:
        return self.bare.resolve().as_uri()

    @staticmethod
    def _git(where: Path, *args: str) -> str:
        completed = subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@localhost", *args],
            cwd=where,
            check=True,
            capture_output=True,
            text=True,
        )
        return completed.stdout.strip()

    def commit(self, files: dict[str, Any], *, remove: tuple[str, ...] = ()) -> str:
        """Write files (dicts become YAML documents, lists several), delete ``remove``, commit, push."""
        for name, content in files.items():
            path = self.work / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, str):
                path.write_text(content)
            elif isinstance(content, list):
                path.write_text(yaml.safe_dump_all(content))
            else:
                path.write_text(yaml.safe_dump(content))
        for name in remove:
            (self.work / name).unlink()
        self._git(self.work, "add", "--all")
        self._git(self.work, "commit", "--quiet", "-m", f"change {uuid.uuid4().hex[:6]}")
        self._git(self.work, "push", "--quiet", "origin", "HEAD:main")
        return self._git(self.work, "rev-parse", "HEAD")


@pytest.fixture
def remote(tmp_path: Path) -> GitRemote:
    return GitRemote(tmp_path)
