"""init and unseal against real OpenBao: never twice, never lose keys, never leak them."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path

import hvac
import pytest

from tests.conftest import mount_kv
from vaultflow.base.errors import InputError, OperationError
from vaultflow.sandbox.openbao import OpenBaoServer
from vaultflow.steps.keeper import Reservation, UnsealMaterial, open_keeper
from vaultflow.steps.vault.api import VaultApi
from vaultflow.steps.vault.init import init_vault
from vaultflow.steps.vault.status import vault_status
from vaultflow.steps.vault.unseal import unseal_vault

StartServer = Callable[..., OpenBaoServer]


def keeper_uri(tmp_path: Path) -> str:
    return (tmp_path / "unseal.json").as_uri()


def material(tmp_path: Path) -> UnsealMaterial:
    loaded = open_keeper(keeper_uri(tmp_path)).load()
    assert loaded is not None
    return loaded


def wait_active(address: str, token: str) -> hvac.Client:
    VaultApi(address).wait_until_active()
    return hvac.Client(url=address, token=token)


def test_init_puts_everything_in_the_keeper_and_nothing_in_the_result(
    fresh_openbao: StartServer, tmp_path: Path
) -> None:
    server = fresh_openbao()
    result = init_vault(server.address, keeper_uri(tmp_path), shares=5, threshold=3)
    assert result.initialized_now and (result.shares, result.threshold) == (5, 3)
    kept = material(tmp_path)
    assert len(kept.shares) == 5 and kept.threshold == 3 and kept.root_token
    assert stat.S_IMODE((tmp_path / "unseal.json").stat().st_mode) == 0o600
    shown = result.model_dump_json() + repr(kept) + str(kept)
    for value in [*kept.shares, kept.root_token]:
        assert value not in shown
    again = init_vault(server.address, keeper_uri(tmp_path))
    assert not again.initialized_now
    assert material(tmp_path) == kept  # untouched


def test_initialised_vault_with_empty_keeper_stops_and_changes_nothing(
    fresh_openbao: StartServer, tmp_path: Path
) -> None:
    server = fresh_openbao()
    hvac.Client(url=server.address).sys.initialize(secret_shares=1, secret_threshold=1)
    other = tmp_path / "other"
    other.mkdir()
    with pytest.raises(OperationError, match=r"already initialised but file keeper .* is empty"):
        init_vault(server.address, keeper_uri(other))
    assert not (other / "unseal.json").exists()


def test_a_keeper_of_another_vault_is_never_overwritten(fresh_openbao: StartServer, tmp_path: Path) -> None:
    first, second = fresh_openbao("first"), fresh_openbao("second")
    init_vault(first.address, keeper_uri(tmp_path), shares=1, threshold=1)
    before = (tmp_path / "unseal.json").read_bytes()
    with pytest.raises(OperationError, match="belongs to another Vault"):
        init_vault(second.address, keeper_uri(tmp_path), shares=1, threshold=1)
    assert (tmp_path / "unseal.json").read_bytes() == before
    assert not vault_status(second.address).initialized


def test_unwritable_keeper_is_refused_before_initialising(fresh_openbao: StartServer, tmp_path: Path) -> None:
    server = fresh_openbao()
    with pytest.raises(OperationError, match=r"cannot create it \(No such file or directory\)"):
        init_vault(server.address, (tmp_path / "missing-dir" / "k.json").as_uri())
    assert not vault_status(server.address).initialized


def test_a_dangling_symlink_at_the_keeper_stops_the_run_before_init(
    fresh_openbao: StartServer, tmp_path: Path
) -> None:
    """It reads as empty and its directory is writable, but create-only cannot write through it: the
    reservation finds out while Vault holds nothing (it used to be found after init, shares lost)."""
    server = fresh_openbao()
    (tmp_path / "unseal.json").symlink_to(tmp_path / "elsewhere" / "unseal.json")
    with pytest.raises(OperationError, match=r"is a symlink to .*, which does not exist"):
        init_vault(server.address, keeper_uri(tmp_path))
    assert not vault_status(server.address).initialized


def test_a_directory_at_the_keeper_path_stops_the_run_before_init(
    fresh_openbao: StartServer, tmp_path: Path
) -> None:
    server = fresh_openbao()
    (tmp_path / "unseal.json").mkdir()
    with pytest.raises(OperationError, match="the path is a directory"):
        init_vault(server.address, keeper_uri(tmp_path))
    assert not vault_status(server.address).initialized


def test_a_reservation_left_by_a_run_that_stopped_before_init_is_taken_over(
    fresh_openbao: StartServer, tmp_path: Path
) -> None:
    server = fresh_openbao()
    stale = Reservation.new()
    path = tmp_path / "unseal.json"
    path.write_text(stale.to_json())
    path.chmod(0o600)
    assert init_vault(server.address, keeper_uri(tmp_path), shares=1, threshold=1).initialized_now
    assert material(tmp_path).root_token


def test_a_fallback_holding_material_while_vault_is_uninitialised_stops_before_init(
    fresh_openbao: StartServer, tmp_path: Path
) -> None:
    first, second = fresh_openbao("first"), fresh_openbao("second")
    fallback = (tmp_path / "fallback.json").as_uri()
    init_vault(first.address, fallback, shares=1, threshold=1)
    with pytest.raises(OperationError, match=r"fallback\.json already holds unseal material"):
        init_vault(second.address, keeper_uri(tmp_path), fallback_keeper=fallback)
    assert not vault_status(second.address).initialized
    assert not (tmp_path / "unseal.json").exists()


def test_bad_parameters_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="threshold 4"):
        init_vault("http://127.0.0.1:1", keeper_uri(tmp_path), shares=3, threshold=4)
    with pytest.raises(InputError, match="not understood"):
        init_vault("http://127.0.0.1:1", "s3://bucket/key")
    with pytest.raises(InputError, match="fallback keeper must be another place"):
        init_vault("http://127.0.0.1:1", keeper_uri(tmp_path), fallback_keeper=keeper_uri(tmp_path))


def test_unreachable_vault_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vaultflow.sandbox.openbao import free_port

    monkeypatch.setenv("VAULTFLOW_VAULT_CONNECT_RETRIES", "1")  # the default waits ~30 s for a starting pod

    address = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(OperationError, match=f"Vault at {address} is unreachable"):
        init_vault(address, keeper_uri(tmp_path))
    assert not (tmp_path / "unseal.json").exists()


def test_sealed_with_empty_keeper_is_one_clear_error(fresh_openbao: StartServer, tmp_path: Path) -> None:
    server = fresh_openbao()
    hvac.Client(url=server.address).sys.initialize(secret_shares=1, secret_threshold=1)
    with pytest.raises(OperationError, match="is empty: cannot unseal"):
        unseal_vault(server.address, keeper_uri(tmp_path))
    assert vault_status(server.address).replicas[0].sealed


def test_restarted_vault_is_unsealed_again_without_reinitialising(
    fresh_openbao: StartServer, tmp_path: Path
) -> None:
    server = fresh_openbao()
    init_vault(server.address, keeper_uri(tmp_path), shares=3, threshold=2)
    first = unseal_vault(server.address, keeper_uri(tmp_path))
    assert first.unsealed_now == 1
    token = material(tmp_path).root_token
    assert token is not None
    client = wait_active(server.address, token)
    mount_kv(client, "secret")
    client.secrets.kv.v2.create_or_update_secret("before/restart", secret={"v": "kept"}, mount_point="secret")
    kept_before = material(tmp_path)

    server.stop()
    server.start()
    assert vault_status(server.address).sealed_replicas == [server.address]
    assert not init_vault(server.address, keeper_uri(tmp_path)).initialized_now
    assert unseal_vault(server.address, keeper_uri(tmp_path)).unsealed_now == 1
    client = wait_active(server.address, token)
    read = client.secrets.kv.v2.read_secret_version(
        "before/restart", mount_point="secret", raise_on_deleted_version=True
    )
    assert read["data"]["data"] == {"v": "kept"}
    assert material(tmp_path) == kept_before
    assert unseal_vault(server.address, keeper_uri(tmp_path)).unsealed_now == 0  # nothing to do


def test_three_node_raft_cluster_ends_unsealed_and_joined(fresh_openbao: StartServer, tmp_path: Path) -> None:
    nodes = [fresh_openbao(f"node-{i}") for i in range(3)]
    addresses = ",".join(node.address for node in nodes)
    init_vault(addresses, keeper_uri(tmp_path), shares=5, threshold=3)
    result = unseal_vault(addresses, keeper_uri(tmp_path))
    assert [r.sealed for r in result.replicas] == [False, False, False]
    assert [r.joined for r in result.replicas] == [False, True, True]
    status = vault_status(addresses)
    assert status.product == "openbao" and status.sealed_replicas == []
    token = material(tmp_path).root_token
    assert token is not None
    peers = wait_active(nodes[0].address, token).sys.read_raft_config()["data"]["config"]["servers"]
    assert sorted(p["node_id"] for p in peers) == ["node-0", "node-1", "node-2"]
    report = json.dumps([result.model_dump(), status.model_dump()])
    for value in [*material(tmp_path).shares, token]:
        assert value not in report


def test_pgp_encrypted_shares_are_kept_encrypted_and_decrypt_to_working_shares(
    fresh_openbao: StartServer, tmp_path: Path
) -> None:
    """With one PGP key per share, the keeper only ever holds ciphertext; each operator's gpg opens theirs."""
    import base64
    import os
    import subprocess

    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    for operator in ("alice", "bob"):
        subprocess.run(
            ["gpg", "--batch", "--passphrase", "", "--quick-gen-key", f"{operator} <{operator}@example.com>",
             "rsa2048", "encr", "never"],
            env=env, check=True, capture_output=True,
        )  # fmt: skip
    keys = [
        base64.b64encode(
            subprocess.run(
                ["gpg", "--export", f"{o}@example.com"], env=env, check=True, capture_output=True
            ).stdout
        ).decode()
        for o in ("alice", "bob")
    ]
    server = fresh_openbao()
    result = init_vault(server.address, keeper_uri(tmp_path), shares=2, threshold=2, pgp_keys=",".join(keys))
    assert result.initialized_now
    kept = material(tmp_path)
    assert kept.pgp_encrypted and len(kept.shares) == 2
    with pytest.raises(OperationError, match="PGP-encrypted"):
        unseal_vault(server.address, keeper_uri(tmp_path))
    client = hvac.Client(url=server.address)
    for share in kept.shares:
        plain = subprocess.run(
            ["gpg", "-dq"], input=base64.b64decode(share), env=env, check=True, capture_output=True
        ).stdout.decode()
        assert plain not in (tmp_path / "unseal.json").read_text()  # only ciphertext was stored
        status = client.sys.submit_unseal_key(plain)
    assert status["sealed"] is False
