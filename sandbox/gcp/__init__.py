"""GCP Secret Manager emulator: the REST v1 API of ``google-cloud-secret-manager`` (``transport="rest"``).

emulator = GcpSecretManagerEmulator().start()
client = SecretManagerServiceClient(
    transport="rest",
    client_options={"api_endpoint": emulator.url},
    credentials=AnonymousCredentials(),
)
"""

from vaultflow.sandbox.gcp.api import GcpSecretManagerEmulator
from vaultflow.sandbox.gcp.secrets import GcpError, SecretManagerStore, project_number

__all__ = ["GcpError", "GcpSecretManagerEmulator", "SecretManagerStore", "project_number"]
