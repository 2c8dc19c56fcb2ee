"""When a pushed cloud secret's current value was written, from the cloud's own metadata (never a value).

The audit compares it with Vault's last write of the path the PushSecret copies: a cloud copy older
than that write, long after the ExternalSecret and the PushSecret should both have refreshed, is
stale. One metadata call per remote secret:

* AWS Secrets Manager: ``DescribeSecret``'s ``LastChangedDate``. It also moves on a tag or
  description change, so a copy edited that way after the write reads fresh: the check can miss
  one, never name a fresh one. (``ListSecretVersionIds``' ``CreatedDate`` would be exact, but moto,
  the sandbox's AWS, answers it with the time of the call.)
* GCP Secret Manager: ``GetSecretVersion`` of ``latest`` (metadata; ``AccessSecretVersion`` would
  return the payload), its ``createTime``;
* Azure Key Vault: ``GetSecretVersions`` (properties only; ``GetSecret`` returns the value), the
  newest enabled version's ``created``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from vaultflow.base.errors import OperationError
from vaultflow.steps.rotation.clouds import CloudReaders
from vaultflow.steps.rotation.discover import CloudStore


def current_version_time(readers: CloudReaders, store: CloudStore, remote_key: str) -> datetime | None:
    """When the current version of ``remote_key`` in ``store``'s cloud was written (None: no such secret)."""
    client = readers._client(store)  # the rotation's clients: one per cloud location, built on first use
    where = f"{store.provider} secret {remote_key!r} ({store.location})"
    try:
        if store.provider == "aws":
            return _aws(client, remote_key)
        if store.provider == "gcp":
            return _gcp(client, store.location, remote_key)
        return _azure(client, remote_key)
    except Exception as error:  # each SDK has its own error tree; the message is what matters here
        raise OperationError(f"{where}: cannot read its metadata ({type(error).__name__}: {error})") from None


def _utc(moment: Any) -> datetime:
    value = moment if isinstance(moment, datetime) else datetime.fromisoformat(str(moment))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _aws(client: Any, name: str) -> datetime | None:
    from botocore.exceptions import ClientError

    try:
        described = client.describe_secret(SecretId=name)
    except ClientError as error:
        if error.response["Error"]["Code"] == "ResourceNotFoundException":
            return None
        raise
    changed = described.get("LastChangedDate")
    return _utc(changed) if changed is not None else None


def _gcp(client: Any, project: str, name: str) -> datetime | None:
    from google.api_core import exceptions

    try:
        version = client.get_secret_version(name=f"projects/{project}/secrets/{name}/versions/latest")
    except exceptions.NotFound:
        return None
    return _utc(version.create_time)


def _azure(client: Any, name: str) -> datetime | None:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        created = [
            version.created_on
            for version in client.list_properties_of_secret_versions(name)
            if version.enabled is not False and version.created_on is not None
        ]
    except ResourceNotFoundError:
        return None
    return _utc(max(created)) if created else None
