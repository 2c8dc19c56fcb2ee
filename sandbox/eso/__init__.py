"""External Secrets Operator emulator: ExternalSecrets and PushSecrets reconciled as ESO does.

    controller = EsoController(cluster, EsoEnvironment(routes, faults, clouds)).start()

``EsoController`` is imported on first use (it pulls in the providers' SDKs lazily,
but the Kubernetes emulator at once); the hashing helpers in ``vaultflow.sandbox.eso.gohash``
are light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vaultflow.sandbox.eso.controller import EsoController

__all__ = ["EsoController"]


def __getattr__(name: str) -> object:
    if name == "EsoController":
        from vaultflow.sandbox.eso.controller import EsoController

        return EsoController
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
