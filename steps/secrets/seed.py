"""Put the catalog's secrets into Vault where they do not exist yet: generated keys generated,
static keys from whoever owns them. Never overwrites: every write is check-and-set version 0,
so a secret created meanwhile by someone else is kept, and a re-run creates nothing.
"""

from collections.abc import Callable

from pydantic import BaseModel

from vaultflow.gitops.catalog.model import Catalog
from vaultflow.steps.catalog_source import load_catalog_source
from vaultflow.steps.secrets.generators import generate
from vaultflow.steps.vault.api import VaultApi, vault_errors
from vaultflow.steps.vault.root_token import root_client

StaticValue = Callable[[str, str], str | None]  # (path, key) -> value, or None if unknown


class SeededSecret(BaseModel):
    path: str
    created: bool
    version: int
    keys: list[str]


class SeedResult(BaseModel):
    """What the seed step did; paths and key names only."""

    secrets: list[SeededSecret]
    needs_human: list[str]  # "path:key" of static keys without a value: set them with `bao kv put`


def seed_missing_secrets(vault: VaultApi, catalog: Catalog, static_value: StaticValue) -> SeedResult:
    """Create every catalog secret that is absent, when every key has a value.

    Generated keys are generated; static keys ask ``static_value``. A secret
    with a static key nobody can fill is left for a human (and listed): a
    half-written secret would sync a Kubernetes Secret with a key missing.
    """
    import hvac.exceptions

    kv = catalog.vault.kv_mount
    results = []
    needs_human: list[str] = []
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
                needs_human.append(f"{secret.path}:{field.name}")
            else:
                values[field.name] = value
        if len(values) < len(secret.keys):
            continue
        with vault_errors(vault.address, f"create {kv}/{secret.path}"):
            response = vault.client.secrets.kv.v2.create_or_update_secret(
                secret.path, secret=values, cas=0, mount_point=kv
            )
        version = int(response["data"]["version"])
        results.append(SeededSecret(path=secret.path, created=True, version=version, keys=secret.key_names()))
    return SeedResult(secrets=results, needs_human=needs_human)


SANDBOX_PLACEHOLDER = "sandbox-placeholder-{key}"


def seed_secrets(
    addresses: str, keeper: str, catalog: str, *, placeholders: bool = False, ca_cert: str = ""
) -> SeedResult:
    """The pipeline's *seed* step: create the catalog's missing secrets with the keeper's root token.

    ``placeholders`` (the sandbox only) fills static keys with a visible
    ``sandbox-placeholder-<key>``, which is not a secret; on a real platform
    static keys are left to their owners and reported.
    """
    loaded = load_catalog_source(catalog)

    def static(path: str, key: str) -> str | None:
        return SANDBOX_PLACEHOLDER.format(key=key) if placeholders else None

    return seed_missing_secrets(root_client(addresses, keeper, ca_cert), loaded.catalog, static)
