"""Put the catalog's secrets into Vault where they do not exist yet: generated keys generated,
static keys from whoever owns them. Never overwrites: every write is check-and-set version 0,
so a secret created meanwhile by someone else is kept, and a re-run creates nothing.
"""

import sys
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
    created_meanwhile: bool = False  # someone else created it between our read and our write: theirs is kept


class SeedResult(BaseModel):
    """What the seed step did; paths and key names only."""

    secrets: list[SeededSecret]
    needs_human: list[str]  # "path:key" of static keys without a value: set them with `bao kv put`


def _current_version(vault: VaultApi, kv: str, path: str) -> int | None:
    """The secret's current version, or None when it does not exist."""
    import hvac.exceptions

    with vault_errors(vault.address, f"read the metadata of {kv}/{path}"):
        try:
            metadata = vault.client.secrets.kv.v2.read_secret_metadata(path, mount_point=kv)
        except hvac.exceptions.InvalidPath:
            return None
    return int(metadata["data"]["current_version"])


def _create(vault: VaultApi, kv: str, path: str, values: dict[str, str]) -> int | None:
    """Write version 1 with check-and-set 0; None when the secret exists by then (a concurrent creator)."""
    import hvac.exceptions

    with vault_errors(vault.address, f"create {kv}/{path}"):
        try:
            response = vault.client.secrets.kv.v2.create_or_update_secret(
                path, secret=values, cas=0, mount_point=kv
            )
        except hvac.exceptions.InvalidRequest as error:
            if not any("check-and-set" in str(e) for e in error.errors or []):
                raise
            return None
    return int(response["data"]["version"])


def seed_missing_secrets(vault: VaultApi, catalog: Catalog, static_value: StaticValue) -> SeedResult:
    """Create every catalog secret that is absent, when every key has a value.

    Generated keys are generated; static keys ask ``static_value``. A secret
    with a static key nobody can fill is left for a human (and listed): a
    half-written secret would sync a Kubernetes Secret with a key missing. A
    secret someone else creates while this runs keeps their value (the write is
    check-and-set 0), and the result says so.
    """
    kv = catalog.vault.kv_mount
    results = []
    needs_human: list[str] = []
    for secret in catalog.secrets:
        existing = _current_version(vault, kv, secret.path)
        if existing is not None:
            results.append(
                SeededSecret(path=secret.path, created=False, version=existing, keys=secret.key_names())
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
        created = _create(vault, kv, secret.path, values)
        if created is None:
            theirs = _current_version(vault, kv, secret.path) or 0
            print(
                f"{kv}/{secret.path} was created by someone else while seed ran: their version {theirs} "
                "is kept, nothing was written",
                file=sys.stderr,
            )
            results.append(
                SeededSecret(
                    path=secret.path,
                    created=False,
                    version=theirs,
                    keys=secret.key_names(),
                    created_meanwhile=True,
                )
            )
            continue
        results.append(SeededSecret(path=secret.path, created=True, version=created, keys=secret.key_names()))
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
