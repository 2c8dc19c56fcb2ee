"""SDK clients for the clouds' secret managers: the real clouds, or the sandbox's emulators.

In a cluster (and anywhere the variables below are absent) each function builds
the SDK's default client: boto3's default chain, Google's default credentials,
``DefaultAzureCredential``; the SDKs find endpoints and credentials as in a pod
(workload identity, ``AWS_*``, ``GOOGLE_APPLICATION_CREDENTIALS``, ...).

``vaultflow sandbox env`` exports where its emulators are; steps read only these
variables, never the sandbox itself (steps do not import ``vaultflow.sandbox``):

* ``AWS_ENDPOINT_URL``: boto3 honours it natively, nothing to do here;
* ``VAULTFLOW_GCP_ENDPOINT``: Secret Manager's REST API there, anonymously;
* ``VAULTFLOW_AZURE_VAULTS`` (``name=url,...``): Key Vault ``name``
  (``https://<name>.vault.azure.net``) is served at ``url``, reached with a static
  bearer token and the TLS CA in ``VAULTFLOW_SANDBOX_CA``, passed explicitly.

A variable that is present counts, even empty: once a process is pointed at the
sandbox a name the sandbox lacks is an error, never a silent call to a real cloud.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from vaultflow.base.errors import InputError

GCP_ENDPOINT = "VAULTFLOW_GCP_ENDPOINT"
AZURE_VAULTS = "VAULTFLOW_AZURE_VAULTS"
SANDBOX_CA = "VAULTFLOW_SANDBOX_CA"
KEY_VAULT_SUFFIX = ".vault.azure.net"


def aws_secrets_manager(region: str | None) -> Any:
    """A boto3 Secrets Manager client (``region`` None or empty: the default chain's region)."""
    import boto3

    return boto3.client("secretsmanager", region_name=region or None)


def gcp_secret_manager(*, environ: Mapping[str, str] | None = None) -> Any:
    """A Secret Manager client: Google's default, or the emulator at ``VAULTFLOW_GCP_ENDPOINT``.

    ``environ`` stands in for ``os.environ`` (the sandbox passes its own state's endpoints).
    """
    from google.cloud import secretmanager

    endpoint = (os.environ if environ is None else environ).get(GCP_ENDPOINT)
    if endpoint is None:
        return secretmanager.SecretManagerServiceClient()
    if not endpoint:
        raise InputError(f"{GCP_ENDPOINT} is set but empty: unset it to reach Google Cloud")
    from google.auth.credentials import AnonymousCredentials

    return secretmanager.SecretManagerServiceClient(
        transport="rest",  # the emulator serves the REST API only
        client_options={"api_endpoint": endpoint},
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
    )


def azure_secret_client(vault_url: str, *, environ: Mapping[str, str] | None = None) -> Any:
    """A Key Vault ``SecretClient`` for ``vault_url``: ``DefaultAzureCredential``, or, with
    ``VAULTFLOW_AZURE_VAULTS`` set, the emulated vault of that name (``InputError`` if there is none).

    ``environ`` stands in for ``os.environ``.
    """
    from azure.keyvault.secrets import SecretClient

    variables = os.environ if environ is None else environ
    vaults = variables.get(AZURE_VAULTS)
    if vaults is None:
        from azure.identity import DefaultAzureCredential

        return SecretClient(vault_url=vault_url, credential=DefaultAzureCredential())
    from vaultflow.steps.azure_credential import StaticTokenCredential

    verify: dict[str, str] = {}
    if variables.get(SANDBOX_CA):
        verify["connection_verify"] = variables[SANDBOX_CA]  # never trusted globally, only here
    return SecretClient(
        vault_url=emulated_vault_url(vault_url, vaults),
        credential=StaticTokenCredential(),  # the emulator has no identity platform
        verify_challenge_resource=False,  # the emulator's 127.0.0.1 is not *.vault.azure.net
        **verify,
    )


def emulated_vault_url(vault_url: str, vaults: str) -> str:
    """The emulator URL serving ``vault_url`` among ``vaults`` (``name=url,...``); a URL that is one
    of them already is kept."""
    served: dict[str, str] = {}
    for entry in (part.strip() for part in vaults.split(",")):
        if not entry:
            continue
        name, sep, url = entry.partition("=")
        if not sep or not name.strip() or not url.strip():
            raise InputError(f"{AZURE_VAULTS}: {entry!r} is not name=url")
        served[name.strip().lower()] = url.strip()
    host = urlsplit(vault_url).hostname or ""
    if host.endswith(KEY_VAULT_SUFFIX) and host.removesuffix(KEY_VAULT_SUFFIX) in served:
        return served[host.removesuffix(KEY_VAULT_SUFFIX)]
    if vault_url.rstrip("/") in {url.rstrip("/") for url in served.values()}:
        return vault_url
    have = ", ".join(sorted(served)) or "none"
    raise InputError(
        f"Key Vault {vault_url} is not one of the sandbox's vaults in {AZURE_VAULTS} (it has: {have}); "
        f"unset {AZURE_VAULTS} to reach Azure"
    )
