"""What the emulated clouds keep while the sandbox is down: a real cloud does not forget its secrets
when a platform restarts, so neither may its emulator.

``save_clouds`` writes every secret of moto's Secrets Manager (read through boto3:
names, descriptions, tags, every staged version with its id, stages and value),
of the GCP Secret Manager emulator and of each Azure Key Vault (their stores'
snapshots) to one JSON file, mode 0600: it holds secret values, like the
clusters' files beside it. ``restore_clouds`` puts them back after a restart,
before ESO starts reconciling, so a PushSecret that ESO does not push again
until its ``refreshInterval`` finds its value where it left it.

Not kept: moto's KMS keys and Secrets Manager's creation dates (the API cannot
set them), secrets scheduled for deletion.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vaultflow.sandbox.emulators import ServiceEmulators

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]
FORMAT = "vaultflow-sandbox-clouds/v1"


def _secretsmanager(endpoint: str, region: str) -> Any:
    import boto3

    return boto3.client(
        "secretsmanager",
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id="sandbox",
        aws_secret_access_key="sandbox",  # noqa: S106 (moto accepts any credentials)
    )


def _aws_regions() -> list[str]:
    import boto3

    return sorted(boto3.session.Session().get_available_regions("secretsmanager"))


def _aws_versions(client: Any, arn: str) -> list[JsonObject]:
    """Every staged version of one secret, oldest first, with its value."""
    listed = client.list_secret_version_ids(SecretId=arn, IncludeDeprecated=False)["Versions"]
    versions = []
    for version in sorted(listed, key=lambda v: v.get("CreatedDate", 0)):
        if not version.get("VersionStages"):
            continue
        value = client.get_secret_value(SecretId=arn, VersionId=version["VersionId"])
        entry: JsonObject = {"id": version["VersionId"], "stages": version["VersionStages"]}
        if "SecretBinary" in value:
            entry["binary"] = base64.b64encode(value["SecretBinary"]).decode()
        else:
            entry["string"] = value["SecretString"]
        versions.append(entry)
    return versions


def aws_snapshot(endpoint: str) -> dict[str, list[JsonObject]]:
    """Every Secrets Manager secret moto holds, per region."""
    regions: dict[str, list[JsonObject]] = {}
    for region in _aws_regions():
        client = _secretsmanager(endpoint, region)
        secrets = []
        for page in client.get_paginator("list_secrets").paginate():
            for listed in page["SecretList"]:
                if listed.get("DeletedDate"):
                    continue
                secrets.append(
                    {
                        "name": listed["Name"],
                        "description": listed.get("Description", ""),
                        "tags": listed.get("Tags", []),
                        "versions": _aws_versions(client, listed["ARN"]),
                    }
                )
        if secrets:
            regions[region] = secrets
    return regions


def _value(version: JsonObject) -> JsonObject:
    if "binary" in version:
        return {"SecretBinary": base64.b64decode(version["binary"])}
    return {"SecretString": version["string"]}


def restore_aws(endpoint: str, regions: dict[str, list[JsonObject]]) -> None:
    """Create the saved secrets again: the same names, version ids, stages and values."""
    for region, secrets in regions.items():
        client = _secretsmanager(endpoint, region)
        for secret in secrets:
            versions = secret["versions"]
            if not versions:
                continue
            first, *later = versions
            extra = {"Description": secret["description"]} if secret["description"] else {}
            if secret["tags"]:
                extra["Tags"] = secret["tags"]
            client.create_secret(
                Name=secret["name"], ClientRequestToken=first["id"], **_value(first), **extra
            )
            for version in later:
                client.put_secret_value(
                    SecretId=secret["name"],
                    ClientRequestToken=version["id"],
                    VersionStages=version["stages"],
                    **_value(version),
                )


def save_clouds(
    services: ServiceEmulators, aws_endpoint: str, azure_vaults: Sequence[str], path: Path
) -> None:
    """Write what every emulated cloud holds to ``path`` (atomically, mode 0600); the emulators' servers
    may be stopped already (their stores are read), moto must still answer."""
    document = {
        "format": FORMAT,
        "aws": aws_snapshot(aws_endpoint),
        "gcp": services.gcp.store.snapshot(),
        "azure": {name: services.azure.vault(name).store.snapshot() for name in azure_vaults},
    }
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(document, handle, separators=(",", ":"))
    temporary.replace(path)


def restore_clouds(
    services: ServiceEmulators, aws_endpoint: str, azure_vaults: Sequence[str], path: Path
) -> None:
    """Put back what ``save_clouds`` wrote; a Key Vault the sandbox no longer has is left out."""
    if not path.is_file():
        return
    document = json.loads(path.read_text())
    if document.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} file")
    restore_aws(aws_endpoint, document["aws"])
    services.gcp.store.restore(document["gcp"])
    for name, saved in document["azure"].items():
        if name in azure_vaults:
            services.azure.vault(name).store.restore(saved)
        else:
            log.warning("Key Vault %s is not in the sandbox any more; its secrets are not restored", name)
