"""A kubeconfig with one context per emulated cluster.

Any Kubernetes client (``kubernetes.config.load_kube_config``, ``kubectl``)
reaches the sandbox's clusters through it: context name = cluster name, the
cluster's admin bearer token as the user. It holds credentials, so it is
written with mode 0600.
"""

from __future__ import annotations

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
    ca_file: str | None = None  # the cluster's CA, as a real kubeconfig carries it


def render_kubeconfig(clusters: Sequence[ClusterAccess], current: str | None = None) -> str:
    if not clusters:
        raise ValueError("a kubeconfig needs at least one cluster")
    config: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [
            {
                "name": c.name,
                "cluster": {
                    "server": c.server,
                    **({"certificate-authority": c.ca_file} if c.ca_file else {}),
                },
            }
            for c in clusters
        ],
        "users": [{"name": f"{c.name}-admin", "user": {"token": c.token}} for c in clusters],
        "contexts": [
            {
                "name": c.name,
                "context": {"cluster": c.name, "user": f"{c.name}-admin", "namespace": c.namespace},
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
