"""Sandbox-only address mappings: what the rendered manifests name versus what runs on this machine.

Manifests rendered for a real platform name in-cluster addresses the sandbox
cannot serve: a Vault at ``https://vault.vault-system.svc:8200``, a GitOps
repository on GitHub, Argo CD's ``https://kubernetes.default.svc``. Instead of
guessing, the sandbox holds explicit routes, set by whoever starts it (the
demo maps the catalog's addresses) and shown by ``vaultflow sandbox status``:

* ``vault``: a Vault address as a SecretStore names it -> the sandbox OpenBao;
* ``git``: a repository URL as an Application names it -> a ``file://`` bare repo;
* ``clusters``: an Argo CD destination (server URL or cluster name) -> a sandbox cluster.

An address that is already the sandbox's own (a loopback OpenBao, a
``file://`` repository, a sandbox cluster's URL or name) needs no route. An
unmapped address fails the way an unresolvable host would, with a message
that names the missing route. Cloud endpoints are not routed: every GCP
project, AWS region and ``*.vault.azure.net`` vault is served by the sandbox's
cloud emulators (see docs/sandbox.md).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

IN_CLUSTER_SERVER = "https://kubernetes.default.svc"
IN_CLUSTER_NAME = "in-cluster"
ROUTE_KINDS = ("vault", "git", "clusters")


class RouteMissing(Exception):
    """An address the sandbox cannot reach because no route maps it."""


def _normal(address: str) -> str:
    return address.strip().rstrip("/")


def _is_loopback_http(address: str) -> bool:
    parts = urlsplit(address)
    return parts.scheme in ("http", "https") and parts.hostname in ("127.0.0.1", "localhost", "::1")


@dataclass
class Routes:
    """The three route tables plus the sandbox's own clusters (url -> name). Thread-safe."""

    vault: dict[str, str] = field(default_factory=dict)
    git: dict[str, str] = field(default_factory=dict)
    clusters: dict[str, str] = field(default_factory=dict)
    cluster_urls: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def for_sandbox(cls, cluster_urls: dict[str, str], management_cluster: str) -> Routes:
        """Argo CD's in-cluster destination is the management cluster, where Argo CD runs."""
        return cls(
            clusters={IN_CLUSTER_SERVER: management_cluster, IN_CLUSTER_NAME: management_cluster},
            cluster_urls={_normal(url): name for url, name in cluster_urls.items()},
        )

    def _table(self, kind: str) -> dict[str, str]:
        if kind not in ROUTE_KINDS:
            raise ValueError(f"unknown route kind {kind!r} (one of {', '.join(ROUTE_KINDS)})")
        table: dict[str, str] = getattr(self, kind)
        return table

    def set(self, kind: str, source: str, target: str) -> None:
        source, target = _normal(source), _normal(target)
        if not source or not target:
            raise ValueError("a route needs a source and a target")
        if kind == "clusters" and target not in self.cluster_urls.values():
            known = ", ".join(sorted(self.cluster_urls.values()))
            raise ValueError(f"route target {target!r} is not a sandbox cluster (clusters: {known})")
        if kind == "git" and not target.startswith("file://"):
            raise ValueError(f"git route target {target!r} must be a file:// URL of a bare repository")
        with self._lock:
            self._table(kind)[source] = target

    def remove(self, kind: str, source: str) -> None:
        with self._lock:
            self._table(kind).pop(_normal(source), None)

    # ------------------------------------------------------------ resolving

    def resolve_vault(self, address: str) -> str:
        key = _normal(address)
        with self._lock:
            target = self.vault.get(key)
        if target is not None:
            return target
        if _is_loopback_http(key):
            return key
        raise RouteMissing(
            f"Vault server {address} is not reachable from the sandbox: no route maps it to the sandbox's "
            f"OpenBao (add one: vaultflow sandbox route vault {address})"
        )

    def resolve_git(self, url: str) -> str:
        key = _normal(url)
        with self._lock:
            target = self.git.get(key)
        if target is not None:
            return target
        if key.startswith("file://"):
            return key
        raise RouteMissing(
            f"repository {url} is not reachable from the sandbox: use a file:// bare repository or add a "
            f"route (vaultflow sandbox route git {url} file:///path/to/repo.git)"
        )

    def resolve_cluster(self, *, server: str = "", name: str = "") -> str:
        """The sandbox cluster an Argo CD destination names (the server wins when both are given)."""
        with self._lock:
            if server:
                key = _normal(server)
                target = self.clusters.get(key) or self.cluster_urls.get(key)
            else:
                target = self.clusters.get(name) or (name if name in self.cluster_urls.values() else None)
        if target is not None:
            return target
        shown = f"server {server}" if server else f"name {name!r}"
        raise RouteMissing(
            f"there is no cluster with {shown} in the sandbox (clusters: "
            f"{', '.join(sorted(self.cluster_urls.values()))}; add a route: vaultflow sandbox route clusters "
            f"{server or name} <cluster>)"
        )

    # ------------------------------------------------------------ (de)serialising

    def to_json(self) -> dict[str, Any]:
        with self._lock:
            return {"vault": dict(self.vault), "git": dict(self.git), "clusters": dict(self.clusters)}
