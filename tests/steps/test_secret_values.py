"""Generated values honour their generator; seeding creates what is missing and never overwrites."""

import base64
import string
import uuid
from pathlib import Path

import hvac.exceptions
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import UnsealedVault, mount_kv
from vaultflow.base.retry import poll_until
from vaultflow.gitops.catalog import load_catalog
from vaultflow.gitops.catalog.model import PasswordGenerator, RandomGenerator, SecretField
from vaultflow.steps.secrets.generators import generate, password, random_bytes
from vaultflow.steps.secrets.seed import seed_missing_secrets
from vaultflow.steps.vault.api import VaultApi

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml"


@given(
    length=st.integers(8, 128),
    lowercase=st.booleans(),
    uppercase=st.booleans(),
    digits=st.booleans(),
    symbols=st.booleans(),
)
def test_password_has_its_length_and_every_enabled_class(
    length: int, lowercase: bool, uppercase: bool, digits: bool, symbols: bool
) -> None:
    if not (lowercase or uppercase or digits or symbols):
        return
    spec = PasswordGenerator.model_validate(
        {"type": "password", "length": length, "lowercase": lowercase, "uppercase": uppercase,
         "digits": digits, "symbols": symbols}
    )  # fmt: skip
    value = password(spec)
    assert len(value) == length
    classes = {
        string.ascii_lowercase: lowercase,
        string.ascii_uppercase: uppercase,
        string.digits: digits,
        spec.symbol_set: symbols,
    }
    for chars, enabled in classes.items():
        assert any(c in chars for c in value) == enabled


@pytest.mark.parametrize(("encoding", "decode"), [("hex", bytes.fromhex), ("base64", base64.b64decode),
                                                  ("base64url", base64.urlsafe_b64decode)])  # fmt: skip
def test_random_bytes_decode_to_the_asked_length(encoding: str, decode: object) -> None:
    spec = RandomGenerator.model_validate({"type": "random", "bytes": 48, "encoding": encoding})
    assert len(decode(random_bytes(spec))) == 48  # type: ignore[operator]
    assert random_bytes(spec) != random_bytes(spec)


def test_uuid_and_static() -> None:
    made = generate(SecretField.model_validate({"name": "id", "generator": {"type": "uuid"}}))
    assert made is not None and uuid.UUID(made).version == 4
    assert generate(SecretField.model_validate({"name": "u", "generator": {"type": "static"}})) is None


def test_seeding_creates_missing_secrets_once_and_never_overwrites(unsealed_vault: UnsealedVault) -> None:
    # A KV mount of its own: the session's OpenBao is shared with other tests.
    mount = f"seed-{uuid.uuid4().hex[:8]}"
    mount_kv(unsealed_vault.client(), mount)
    example = load_catalog(EXAMPLE).catalog
    catalog = example.model_copy(update={"vault": example.vault.model_copy(update={"kv_mount": mount})})
    vault = VaultApi(unsealed_vault.address, token=unsealed_vault.root_token)
    kv = unsealed_vault.client().secrets.kv.v2
    kv.create_or_update_secret("shared/stripe", secret={"api-key": "set-by-a-human"}, mount_point=mount)

    unknown = seed_missing_secrets(vault, catalog, lambda path, key: None)
    assert unknown.needs_human == [
        "prod/database:username",
        "prod/database-admin:username",
        "prod/database-admin:password",
        "prod/app-credentials:username",
    ]
    created_first = {s.path for s in unknown.secrets if s.created}
    assert "prod/database" not in created_first  # never half a secret
    assert "argocd/admin" in created_first  # generated keys only: created at once
    assert "shared/stripe" not in created_first  # it existed

    first = seed_missing_secrets(vault, catalog, lambda path, key: f"sandbox-{key}")
    assert first.needs_human == []
    created = {s.path for s in first.secrets if s.created}
    assert "shared/stripe" not in created and "prod/database" in created
    database = kv.read_secret_version("prod/database", mount_point=mount, raise_on_deleted_version=True)
    assert database["data"]["data"]["username"] == "sandbox-username"
    assert len(database["data"]["data"]["password"]) == 32
    again = seed_missing_secrets(vault, catalog, lambda path, key: "other")
    assert not any(s.created for s in again.secrets)
    assert (
        kv.read_secret_version("prod/database", mount_point=mount, raise_on_deleted_version=True)["data"][
            "data"
        ]
        == database["data"]["data"]
    )
    stripe = kv.read_secret_version("shared/stripe", mount_point=mount, raise_on_deleted_version=True)
    assert stripe["data"]["data"] == {"api-key": "set-by-a-human"}


def test_a_secret_created_by_someone_else_during_seeding_keeps_their_value(
    unsealed_vault: UnsealedVault,
) -> None:
    """Between seed's read (absent) and its check-and-set-0 write, another writer creates the secret:
    theirs is kept, and the step says so instead of failing."""
    mount = f"seed-{uuid.uuid4().hex[:8]}"
    unsealed_vault.client().sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
    example = load_catalog(EXAMPLE).catalog
    catalog = example.model_copy(update={"vault": example.vault.model_copy(update={"kv_mount": mount})})
    kv = unsealed_vault.client().secrets.kv.v2
    poll_until(  # a new KV v2 mount upgrades its storage for a moment before it serves requests
        lambda: kv.read_configuration(mount_point=mount),
        lambda _: True,
        what=f"the new mount {mount}/",
        timeout=30,
        transient=(hvac.exceptions.VaultError,),
    )
    theirs = {"username": "theirs", "password": "theirs"}

    def static(path: str, key: str) -> str:
        if path == "prod/database":  # asked after seed found it absent: the other writer is faster
            kv.create_or_update_secret(path, secret=theirs, cas=0, mount_point=mount)
        return f"sandbox-{key}"

    vault = VaultApi(unsealed_vault.address, token=unsealed_vault.root_token)
    result = seed_missing_secrets(vault, catalog, static)
    (database,) = [s for s in result.secrets if s.path == "prod/database"]
    assert (database.created, database.created_meanwhile, database.version) == (False, True, 1)
    read = kv.read_secret_version("prod/database", mount_point=mount, raise_on_deleted_version=True)
    assert read["data"]["data"] == theirs
    assert [s.path for s in result.secrets if s.created_meanwhile] == ["prod/database"]
    assert all(s.created for s in result.secrets if s.path != "prod/database")
