"""Argo CD emulator: syncs Applications of the management cluster from bare Git repositories into clusters.

    controller = ArgoCdController(mgmt, {"workload-1": cluster, ...}, routes).start()

``ArgoCdController`` is imported on first use (it pulls in the Kubernetes emulator).
How often it reads Git on its own is Argo CD's (``vaultflow.sandbox.argocd.reconciliation``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vaultflow.sandbox.argocd.controller import ArgoCdController

__all__ = ["ArgoCdController"]


def __getattr__(name: str) -> object:
    if name == "ArgoCdController":
        from vaultflow.sandbox.argocd.controller import ArgoCdController

        return ArgoCdController
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
