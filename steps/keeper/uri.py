"""Turn a keeper URI into a keeper."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlparse

from vaultflow.base.errors import InputError
from vaultflow.steps.keeper.base import Keeper

SCHEMES = ("file", "kubernetes", "aws-sm", "gcp-sm", "azure-kv")


def open_keeper(uri: str) -> Keeper:
    """The keeper a URI names (see ``vaultflow.steps.keeper`` for the forms)."""
    parsed = urlparse(uri)
    query = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
    parts = [p for p in parsed.path.split("/") if p]
    if parsed.scheme == "file":
        if not parsed.path or parsed.netloc:
            raise InputError(f"keeper {uri!r}: write file URIs as file:///absolute/path")
        from vaultflow.steps.keeper.file import FileKeeper

        return FileKeeper(Path(parsed.path))
    if parsed.scheme == "kubernetes" and parsed.netloc and len(parts) == 1:
        from vaultflow.steps.keeper.kubernetes import KubernetesSecretKeeper

        return KubernetesSecretKeeper(parsed.netloc, parts[0], context=query.get("context"))
    if parsed.scheme == "aws-sm" and parsed.netloc:
        from vaultflow.steps.keeper.aws import AwsSecretsManagerKeeper

        return AwsSecretsManagerKeeper("/".join([parsed.netloc, *parts]), region=query.get("region"))
    if parsed.scheme == "gcp-sm" and parsed.netloc and len(parts) == 1:
        from vaultflow.steps.keeper.gcp import GcpSecretManagerKeeper

        return GcpSecretManagerKeeper(parsed.netloc, parts[0])
    if parsed.scheme == "azure-kv" and parsed.netloc and len(parts) == 1:
        from vaultflow.steps.keeper.azure import AzureKeyVaultKeeper

        return AzureKeyVaultKeeper(f"https://{parsed.netloc}", parts[0])
    raise InputError(
        f"keeper {uri!r} is not understood: use file:///path, kubernetes://<namespace>/<secret>, "
        "aws-sm://<name>, gcp-sm://<project>/<secret> or azure-kv://<vault-host>/<secret>"
    )
