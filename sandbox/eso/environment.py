"""What the ESO emulator reaches outside its cluster, shared by every cluster's controller.

* ``routes``: sandbox-only mappings of in-cluster Vault addresses to the
  sandbox's OpenBao (``vaultflow.sandbox.routes``);
* ``faults``: the injected faults per provider (``vaultflow.sandbox.faults``);
* ``clouds``: where the cloud APIs are: moto for every AWS region, the GCP
  emulator for every project, the Key Vault emulator's vaults by name, and the
  sandbox CA that the vaults' certificates chain to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from vaultflow.sandbox.eso.providers.base import ProviderError
from vaultflow.sandbox.faults import FaultInjector
from vaultflow.sandbox.routes import Routes

AZURE_VAULT_SUFFIX = ".vault.azure.net"


@dataclass
class CloudEndpoints:
    aws: str = ""
    gcp: str = ""
    azure_vaults: Callable[[], dict[str, str]] = dict  # vault name -> https URL on loopback
    ca_file: str = ""

    def azure_vault_url(self, vault_url: str) -> str:
        """The emulator URL serving a store's ``vaultUrl`` (``https://<name>.vault.azure.net``)."""
        vaults = self.azure_vaults()
        host = urlsplit(vault_url).hostname or ""
        if vault_url.rstrip("/") in vaults.values():
            return vault_url.rstrip("/")
        name = host.removesuffix(AZURE_VAULT_SUFFIX) if host.endswith(AZURE_VAULT_SUFFIX) else ""
        if name and name in vaults:
            return vaults[name]
        hosted = ", ".join(sorted(vaults)) or "none"
        raise ProviderError(
            f"dial tcp: lookup {host or vault_url}: no such host (the sandbox hosts the Key Vaults: "
            f"{hosted}; start it with `vaultflow sandbox up --azure-vaults {name or '<name>'}`)"
        )

    def require(self, provider: str, endpoint: str) -> str:
        if not endpoint:
            raise ProviderError(f"the sandbox runs no {provider} emulator for this controller")
        return endpoint


@dataclass
class EsoEnvironment:
    routes: Routes
    faults: FaultInjector = field(default_factory=FaultInjector)
    clouds: CloudEndpoints = field(default_factory=CloudEndpoints)
