"""Azure Key Vault emulator: the secrets REST API that ``azure-keyvault-secrets`` calls, over HTTPS.

    emulator = AzureKeyVaultEmulator(CertificateAuthority())
    vault = emulator.add_vault("sandbox")
    client = SecretClient(
        vault.url,
        StaticTokenCredential(),
        connection_verify=ca_file,          # the sandbox CA, never trusted globally
        verify_challenge_resource=False,    # 127.0.0.1 is not *.vault.azure.net
    )

``StaticTokenCredential`` lives in ``vaultflow.sandbox.azure.credential`` (it imports azure-core).
"""

from vaultflow.sandbox.azure.api import SANDBOX_TENANT, AzureKeyVaultEmulator, KeyVaultServer, VaultEndpoint
from vaultflow.sandbox.azure.vault import AzureError, KeyVaultStore

__all__ = [
    "SANDBOX_TENANT",
    "AzureError",
    "AzureKeyVaultEmulator",
    "KeyVaultServer",
    "KeyVaultStore",
    "VaultEndpoint",
]
