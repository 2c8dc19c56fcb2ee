"""A kubeconfig with one context per emulated cluster.

Any Kubernetes client (``kubernetes.config.load_kube_config``, ``kubectl``)
reaches the sandbox's clusters through it: context name = cluster name, the
cluster's admin bearer token as the user, the cluster's CA as
``certificate-authority-data`` for an HTTPS server (nothing turns verification off).
It holds credentials, so it is written with mode 0600.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class ClusterAccess:
    """How to reach one cluster."""

    name: str
    server: str
    token: str
    namespace: str = "default"
    ca_file: str | None = None  # the cluster's CA file (``certificate-authority``)
    ca_pem: str | None = None  # the cluster's CA itself (``certificate-authority-data``, as kubeadm writes)
    user: str | None = None  # the kubeconfig's user entry; None: ``<name>-admin`` (the admin's token)

    @property
    def user_name(self) -> str:
        return self.user or f"{self.name}-admin"


def _cluster_entry(access: ClusterAccess) -> dict[str, Any]:
    entry: dict[str, Any] = {"server": access.server}
    if access.ca_pem:
        entry["certificate-authority-data"] = base64.b64encode(access.ca_pem.encode()).decode()
    elif access.ca_file:
        entry["certificate-authority"] = access.ca_file
    return entry


def render_kubeconfig(clusters: Sequence[ClusterAccess], current: str | None = None) -> str:
    if not clusters:
        raise ValueError("a kubeconfig needs at least one cluster")
    config: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": c.name, "cluster": _cluster_entry(c)} for c in clusters],
        "users": [{"name": c.user_name, "user": {"token": c.token}} for c in clusters],
        "contexts": [
            {
                "name": c.name,
                "context": {"cluster": c.name, "user": c.user_name, "namespace": c.namespace},
            }
            for c in clusters
        ],
        "current-context": current or clusters[0].name,
    }
    return yaml.safe_dump(config, sort_keys=False)


def write_kubeconfig(path: Path, clusters: Sequence[ClusterAccess], current: str | None = None) -> Path:
    """Write atomically with mode 0600 (it carries bearer tokens)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(render_kubeconfig(clusters, current))
    temporary.replace(path)
    return path
