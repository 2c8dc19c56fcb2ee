"""Put the catalog's secrets into Vault where they do not exist yet: generated keys generated,
static keys from whoever owns them. Never overwrites: every write is check-and-set version 0.
"""

from collections.abc import Callable

from pydantic import BaseModel

from gitops.catalog.model import Catalog
from steps.secrets.generators import generate
from steps.vault.api import VaultApi, vault_errors
from vaultflow.errors import OperationError

StaticValue = Callable[[str, str], str | None]  # (path, key) -> value, or None if unknown


class SeededSecret(BaseModel):
    path: str
    created: bool
    version: int
    keys: list[str]


def seed_missing_secrets(vault: VaultApi, catalog: Catalog, static_value: StaticValue) -> list[SeededSecret]:
    """Create every catalog secret that is absent; report each (path, version, keys: never values)."""
    import hvac.exceptions

    kv = catalog.vault.kv_mount
    results = []
    missing_static: list[str] = []
    for secret in catalog.secrets:
        with vault_errors(vault.address, f"read the metadata of {kv}/{secret.path}"):
            try:
                metadata = vault.client.secrets.kv.v2.read_secret_metadata(secret.path, mount_point=kv)
            except hvac.exceptions.InvalidPath:
                metadata = None
        if metadata is not None:
            version = int(metadata["data"]["current_version"])
            results.append(
                SeededSecret(path=secret.path, created=False, version=version, keys=secret.key_names())
            )
            continue
        values: dict[str, str] = {}
        for field in secret.keys:
            value = generate(field)
            if value is None:
                value = static_value(secret.path, field.name)
            if value is None:
                missing_static.append(f"{secret.path}:{field.name}")
                continue
            values[field.name] = value
        if len(values) < len(secret.keys):
            continue
        with vault_errors(vault.address, f"create {kv}/{secret.path}"):
            response = vault.client.secrets.kv.v2.create_or_update_secret(
                secret.path, secret=values, cas=0, mount_point=kv
            )
        results.append(
            SeededSecret(
                path=secret.path, created=True, version=int(response["data"]["version"]), keys=sorted(values)
            )
        )
    if missing_static:
        raise OperationError(
            "static keys have no value (a human sets them: bao kv patch ...): " + ", ".join(missing_static)
        )
    return results
