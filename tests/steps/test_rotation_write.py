"""The rotation's Vault write: check-and-set, one version per run, static keys kept, no value out.

Every test runs against a real OpenBao with a token that holds only the
rotation policy rendered from the test's catalog, as the rotation workflow's
identity would.
"""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import UnsealedVault
from vaultflow.base.errors import OperationError
from vaultflow.gitops.catalog import parse_catalog
from vaultflow.gitops.catalog.model import Secret
from vaultflow.gitops.policies import rotation_policies
from vaultflow.steps.rotation.write import (
    RUN,
    STATE,
    WRITING_PREFIX,
    VaultWrite,
    patch_custom_metadata,
    read_metadata,
    read_version,
    write_rollback,
    write_rotation,
    writing_key,
)
from vaultflow.steps.vault.api import VaultApi

CATALOG = """\
apiVersion: vaultflow.io/v1alpha1
kind: SecretsCatalog
vault: {{address: https://vault.example.com:8200}}
gitops: {{repoUrl: https://git.example.com/gitops.git}}
clusters: [{{name: one, kubeContext: one, argocd: {{server: https://kubernetes.default.svc}}}}]
secrets:
  - path: {prefix}/db
    keys:
      - {{name: username, generator: {{type: static}}}}
      - {{name: password, generator: {{type: password, length: 32}}}}
    rotation: {{schedule: "@daily"}}
    consumers: [{{cluster: one, namespace: apps, secretName: db}}]
  - path: {prefix}/other
    keys: [{{name: token, generator: {{type: random, bytes: 16}}}}]
    consumers: [{{cluster: one, namespace: apps, secretName: other}}]
"""


@pytest.fixture
def rotated(unsealed_vault: UnsealedVault) -> tuple[VaultApi, Secret, dict[str, str]]:
    """A seeded secret in its own path, and a Vault client with only the rendered rotation policy."""
    prefix = f"rotation-test-{uuid.uuid4().hex[:8]}"
    catalog = parse_catalog(CATALOG.format(prefix=prefix), Path("catalog.yaml")).catalog
    root = unsealed_vault.client()
    policy = f"{prefix}-rotation"
    hcl = "\n".join(policy.hcl for policy in rotation_policies(catalog))  # the role's: base and shards
    root.sys.create_or_update_policy(name=policy, policy=hcl)
    initial = {"username": "app", "password": f"initial-{uuid.uuid4().hex}"}
    root.secrets.kv.v2.create_or_update_secret(f"{prefix}/db", secret=initial, mount_point="secret")
    root.secrets.kv.v2.update_metadata(
        f"{prefix}/db", custom_metadata={"owner": "team-a"}, mount_point="secret"
    )
    token = root.auth.token.create(policies=[policy], no_default_policy=True, ttl="10m")["auth"][
        "client_token"
    ]
    return VaultApi(unsealed_vault.address, token=token), catalog.secrets[0], initial


def test_a_rotation_writes_one_new_version_and_keeps_static_keys(
    rotated: tuple[VaultApi, Secret, dict[str, str]],
) -> None:
    vault, secret, initial = rotated
    at = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    written = write_rotation(vault, "secret", secret, "run-1", now=at)
    assert (written.previous_version, written.new_version, written.written_now) == (1, 2, True)
    assert written.rotated_at == "2026-12-01T03:00:00Z"
    data = read_version(vault, "secret", secret.path, 2)
    assert data["username"] == initial["username"]  # static: kept
    assert data["password"] != initial["password"] and len(data["password"]) == 32
    metadata = read_metadata(vault, "secret", secret.path)
    assert metadata is not None and metadata.current_version == 2
    assert metadata.custom["owner"] == "team-a"  # a merge patch: other custom metadata stays
    assert metadata.custom[RUN] == "run-1" and metadata.custom[STATE] == "written"
    assert initial["password"] not in repr(written) and data["password"] not in repr(written)
    assert data["password"] not in str(metadata.custom)


def test_a_retried_run_writes_nothing_more(rotated: tuple[VaultApi, Secret, dict[str, str]]) -> None:
    vault, secret, _ = rotated
    first = write_rotation(vault, "secret", secret, "run-1")
    again = write_rotation(vault, "secret", secret, "run-1")
    assert again == first.model_copy(update={"written_now": False})
    metadata = read_metadata(vault, "secret", secret.path)
    assert metadata is not None and metadata.current_version == 2
    # Another run is another rotation.
    assert write_rotation(vault, "secret", secret, "run-2").new_version == 3


def test_a_run_that_died_after_writing_adopts_its_write(
    rotated: tuple[VaultApi, Secret, dict[str, str]],
) -> None:
    """The pod was killed between the data write and the final metadata: the retry must not write again."""
    vault, secret, _ = rotated
    patch_custom_metadata(vault, "secret", secret.path, {writing_key("run-1"): "1"})
    vault.client.secrets.kv.v2.create_or_update_secret(
        secret.path, secret={"username": "app", "password": "x" * 32}, cas=1, mount_point="secret"
    )
    retried = write_rotation(vault, "secret", secret, "run-1")
    assert (retried.previous_version, retried.new_version, retried.written_now) == (1, 2, False)
    metadata = read_metadata(vault, "secret", secret.path)
    assert metadata is not None and metadata.current_version == 2 and metadata.custom[STATE] == "written"


def test_a_run_that_died_before_writing_writes_on_retry(
    rotated: tuple[VaultApi, Secret, dict[str, str]],
) -> None:
    vault, secret, _ = rotated
    patch_custom_metadata(vault, "secret", secret.path, {writing_key("run-1"): "1"})
    retried = write_rotation(vault, "secret", secret, "run-1")
    assert (retried.previous_version, retried.new_version, retried.written_now) == (1, 2, True)


def test_two_rotations_at_once_make_exactly_one_version(
    rotated: tuple[VaultApi, Secret, dict[str, str]],
) -> None:
    vault, secret, _ = rotated
    start = threading.Barrier(2)
    outcomes: dict[str, VaultWrite | OperationError] = {}

    def rotate(run_id: str) -> None:
        start.wait()
        try:
            outcomes[run_id] = write_rotation(
                VaultApi(vault.address, token=vault.client.token), "secret", secret, run_id
            )
        except OperationError as error:
            outcomes[run_id] = error

    threads = [threading.Thread(target=rotate, args=(run,)) for run in ("run-a", "run-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    metadata = read_metadata(vault, "secret", secret.path)
    assert metadata is not None
    wins = [run for run, outcome in outcomes.items() if isinstance(outcome, VaultWrite)]
    losses = [outcome for outcome in outcomes.values() if isinstance(outcome, OperationError)]
    # Either one lost the check-and-set, or they ran one after the other: never a lost update.
    assert metadata.current_version == 1 + len(wins)
    if losses:
        assert len(wins) == 1 and "expected version 1, found 2" in str(losses[0])
        assert metadata.custom[RUN] == wins[0] and metadata.custom[STATE] == "written"
    assert not [key for key in metadata.custom if key.startswith(WRITING_PREFIX)]


def test_a_writer_that_loses_late_leaves_the_winners_record(
    rotated: tuple[VaultApi, Secret, dict[str, str]],
) -> None:
    """The loser read version 1, then the winner rotated all the way, then the loser marked and wrote.

    The interleaving is forced at the transport: run-b's first metadata PATCH waits
    for run-a's whole rotation. run-b must fail on check-and-set and leave run-a's
    record (run, state, versions) as run-a wrote it, with no writing key behind.
    """
    vault, secret, _ = rotated
    loser = VaultApi(vault.address, token=vault.client.token)
    send = loser.client.adapter.request
    interleaved: list[VaultWrite] = []

    def request(method: str, url: str, *args: object, **kwargs: object) -> object:
        if method.upper() == "PATCH" and not interleaved:
            interleaved.append(write_rotation(vault, "secret", secret, "run-a"))
        return send(method, url, *args, **kwargs)

    loser.client.adapter.request = request  # type: ignore[method-assign]
    with pytest.raises(OperationError, match=r"expected version 1, found 2 \(another writer\)"):
        write_rotation(loser, "secret", secret, "run-b")
    assert interleaved and interleaved[0].new_version == 2
    metadata = read_metadata(vault, "secret", secret.path)
    assert metadata is not None and metadata.current_version == 2
    assert (metadata.custom[RUN], metadata.custom[STATE]) == ("run-a", "written")
    assert metadata.custom["vaultflow.io/rotation-version"] == "2"
    assert not [key for key in metadata.custom if key.startswith(WRITING_PREFIX)]
    # run-a's retry still finds its write; run-b's retry (same plan) refuses, writing nothing.
    assert write_rotation(vault, "secret", secret, "run-a").written_now is False
    with pytest.raises(OperationError, match="expected version 1, found 2"):
        write_rotation(loser, "secret", secret, "run-b", planned_version=1)


def test_a_retry_does_not_adopt_a_version_another_run_wrote(
    rotated: tuple[VaultApi, Secret, dict[str, str]],
) -> None:
    """run-1 marked version 1 and died before its check-and-set; run-2 then rotated to version 2."""
    vault, secret, _ = rotated
    patch_custom_metadata(vault, "secret", secret.path, {writing_key("run-1"): "1"})
    assert write_rotation(vault, "secret", secret, "run-2").new_version == 2
    with pytest.raises(OperationError, match=r"expected version 1, found 2 \(another writer\)"):
        write_rotation(vault, "secret", secret, "run-1")
    metadata = read_metadata(vault, "secret", secret.path)
    assert metadata is not None and metadata.custom[RUN] == "run-2"
    assert writing_key("run-1") not in metadata.custom  # the refused retry cleans its mark up


def test_a_long_run_id_gets_a_key_within_vaults_limit() -> None:
    long = "r" * 200
    assert len(writing_key(long).encode()) <= 128 and writing_key(long) != writing_key(long + "x")
    assert writing_key("rotate-secrets-abcde") == WRITING_PREFIX + "rotate-secrets-abcde"


def test_a_concurrent_writer_fails_the_step_naming_both_versions(
    rotated: tuple[VaultApi, Secret, dict[str, str]], unsealed_vault: UnsealedVault
) -> None:
    vault, secret, _ = rotated
    patch_custom_metadata(vault, "secret", secret.path, {writing_key("run-1"): "1"})
    unsealed_vault.client().secrets.kv.v2.create_or_update_secret(
        secret.path, secret={"username": "app", "password": "by-hand"}, mount_point="secret"
    )
    unsealed_vault.client().secrets.kv.v2.create_or_update_secret(
        secret.path, secret={"username": "app", "password": "by-hand-again"}, mount_point="secret"
    )
    with pytest.raises(OperationError, match=r"expected version 1, found 3 \(another writer\)"):
        write_rotation(vault, "secret", secret, "run-1")


def test_rollback_writes_the_previous_data_as_a_new_version(
    rotated: tuple[VaultApi, Secret, dict[str, str]],
) -> None:
    vault, secret, initial = rotated
    written = write_rotation(vault, "secret", secret, "run-1")
    restored = write_rollback(vault, "secret", written)
    assert restored == 3
    assert read_version(vault, "secret", secret.path, 3) == initial
    # A retried step of the same run neither rolls back twice nor rotates again.
    assert write_rollback(vault, "secret", written) == 3
    again = write_rotation(vault, "secret", secret, "run-1")
    assert (again.new_version, again.rolled_back_version, again.written_now) == (2, 3, False)
    assert read_metadata(vault, "secret", secret.path).current_version == 3  # type: ignore[union-attr]


def test_rollback_never_overwrites_a_later_writer(
    rotated: tuple[VaultApi, Secret, dict[str, str]], unsealed_vault: UnsealedVault
) -> None:
    vault, secret, _ = rotated
    written = write_rotation(vault, "secret", secret, "run-1")
    unsealed_vault.client().secrets.kv.v2.create_or_update_secret(
        secret.path, secret={"username": "app", "password": "set-by-hand"}, mount_point="secret"
    )
    with pytest.raises(OperationError, match="expected version 2, found 3"):
        write_rollback(vault, "secret", written)


def test_the_rotation_identity_cannot_touch_other_secrets(
    rotated: tuple[VaultApi, Secret, dict[str, str]], unsealed_vault: UnsealedVault
) -> None:
    vault, secret, _ = rotated
    other = secret.path.replace("/db", "/other")
    unsealed_vault.client().secrets.kv.v2.create_or_update_secret(
        other, secret={"token": "t"}, mount_point="secret"
    )
    with pytest.raises(OperationError, match="denied permission"):
        read_metadata(vault, "secret", other)
    with pytest.raises(OperationError, match="denied permission"):
        patch_custom_metadata(vault, "secret", other, {RUN: "x"})


def test_a_missing_secret_is_refused(
    rotated: tuple[VaultApi, Secret, dict[str, str]], unsealed_vault: UnsealedVault
) -> None:
    vault, secret, _ = rotated
    unsealed_vault.client().secrets.kv.v2.delete_metadata_and_all_versions(secret.path, mount_point="secret")
    with pytest.raises(OperationError, match="does not exist in Vault"):
        write_rotation(vault, "secret", secret, "run-1")


def _requests_of(vault: VaultApi, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every request the client sends from now on: (method, path without the query)."""
    sent: list[tuple[str, str]] = []
    adapter = vault.client.adapter
    request = adapter.request

    def recording(method: str, url: str, *args: object, **kwargs: object) -> object:
        sent.append((method.upper(), url.split("?", maxsplit=1)[0]))
        return request(method, url, *args, **kwargs)

    monkeypatch.setattr(adapter, "request", recording)
    return sent


def test_a_secret_whose_keys_are_all_generated_is_written_without_reading_its_data(
    rotated: tuple[VaultApi, Secret, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four requests (metadata, mark, check-and-set, record): nothing of the old version is needed."""
    vault, secret, initial = rotated
    generated = secret.model_copy(update={"keys": [k for k in secret.keys if k.name == "password"]})
    sent = _requests_of(vault, monkeypatch)
    written = write_rotation(vault, "secret", generated, "run-1")
    data_path, metadata_path = f"/v1/secret/data/{secret.path}", f"/v1/secret/metadata/{secret.path}"
    assert sent == [
        ("GET", metadata_path),
        ("PATCH", metadata_path),
        ("POST", data_path),
        ("PATCH", metadata_path),
    ]
    data = read_version(vault, "secret", secret.path, written.new_version)
    assert list(data) == ["password"] and data["password"] != initial["password"]


def test_a_secret_with_a_static_key_reads_the_version_it_replaces(
    rotated: tuple[VaultApi, Secret, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    vault, secret, _ = rotated
    sent = _requests_of(vault, monkeypatch)
    write_rotation(vault, "secret", secret, "run-1")
    assert ("GET", f"/v1/secret/data/{secret.path}") in sent and len(sent) == 5
