"""Setup shared by the benchmarks that run on a real OpenBao and the ESO emulator.

Not a benchmark itself (``python -m bench`` runs only ``bench_*`` modules).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

FORCE_SYNC = "force-sync"  # the annotation a rotation sets (steps/rotation/force_sync.py)


def initialise_vault(address: str, timeout: float = 60.0, ca_file: str | None = None) -> Any:
    """The uninitialised OpenBao at ``address`` initialised (one share), unsealed and active.

    Returns an ``hvac.Client`` holding the root token: setup only, never the identity measured.
    ``ca_file``: the CA an https ``address`` is verified with.
    """
    import hvac

    root = hvac.Client(url=address, verify=ca_file or True)
    keys = root.sys.initialize(secret_shares=1, secret_threshold=1)
    root.sys.submit_unseal_key(keys["keys"][0])
    root.token = keys["root_token"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        health = root.sys.read_health_status(method="GET")
        if isinstance(health, dict) and not health.get("sealed") and not health.get("standby"):
            return root
        time.sleep(0.1)
    raise RuntimeError(f"OpenBao at {address} did not become active within {timeout:g}s")


def refreshed_for(obj: Mapping[str, Any], stamp: str) -> bool:
    """Whether ESO's status records the reconcile that the ``force-sync=<stamp>`` annotation asked for.

    ESO (and its emulator) writes ``status.syncedResourceVersion``, the hash of the
    metadata it reconciled, after the Secret (ExternalSecret) or the provider
    (PushSecret) was written; it matches only once the annotated metadata was synced.
    """
    from vaultflow.sandbox.eso.gohash import resource_version

    metadata = obj.get("metadata") or {}
    if (metadata.get("annotations") or {}).get(FORCE_SYNC) != stamp:
        return False
    return bool((obj.get("status") or {}).get("syncedResourceVersion") == resource_version(metadata))


def configure_from_catalog(state: Any, loaded: Any) -> Any:
    """The sandbox's OpenBao initialised, then configured from ``loaded`` as the bootstrap pipeline does
    (``desired_config``/``apply_config``: KV v2, one Kubernetes auth mount per cluster, the catalog's
    policies and roles), after the platform's service accounts are created in every cluster.

    Returns the root ``hvac.Client``: setup only, never the identity measured.
    """
    from vaultflow.sandbox.platform import cluster_reviews, install_platform_accounts
    from vaultflow.steps.vault.api import VaultApi
    from vaultflow.steps.vault.configure import apply_config, desired_config

    install_platform_accounts(state, loaded.catalog)
    root = initialise_vault(state.vault_addr, ca_file=state.ca_file)  # the sandbox CA signed OpenBao's
    apply_config(
        VaultApi(state.vault_addr, token=root.token, ca_cert=state.ca_file),
        desired_config(loaded, cluster_reviews(state, loaded.catalog)),
    )
    return root
