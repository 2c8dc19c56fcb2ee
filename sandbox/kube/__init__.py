"""A Kubernetes API server emulator that the real ``kubernetes`` client talks to unmodified.

``KubeCluster`` is imported on first use: light helpers of this package (name
validation, for one) must not pull in the server, its crypto and its schemas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vaultflow.sandbox.kube.cluster import KubeCluster

__all__ = ["KubeCluster"]


def __getattr__(name: str) -> object:
    if name == "KubeCluster":
        from vaultflow.sandbox.kube.cluster import KubeCluster

        return KubeCluster
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
