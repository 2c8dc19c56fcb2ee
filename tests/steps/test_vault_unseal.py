"""unseal on real three-node OpenBao clusters: every replica it can reach, and a clear word on the rest."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import hvac
import pytest

from vaultflow.base.errors import OperationError
from vaultflow.base.retry import poll_until
from vaultflow.sandbox.openbao import OpenBaoServer
from vaultflow.steps.keeper import open_keeper
from vaultflow.steps.vault.init import init_vault
from vaultflow.steps.vault.status import vault_status
from vaultflow.steps.vault.unseal import unseal_vault

StartServer = Callable[..., OpenBaoServer]


@pytest.fixture(autouse=True)
def no_connect_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULTFLOW_VAULT_CONNECT_RETRIES", "0")  # a stopped node is refused at once


def sealed(address: str) -> bool:
    return vault_status(address).replicas[0].sealed


def test_a_stopped_follower_is_named_and_the_others_are_unsealed(
    fresh_openbao: StartServer, tmp_path: Path
) -> None:
    nodes = [fresh_openbao(f"node-{i}") for i in range(3)]
    addresses = ",".join(node.address for node in nodes)
    keeper = (tmp_path / "unseal.json").as_uri()
    init_vault(addresses, keeper, shares=3, threshold=2)
    nodes[1].stop()

    with pytest.raises(OperationError) as caught:
        unseal_vault(addresses, keeper)
    assert str(caught.value) == (
        f"1 of 3 Vault replicas are not unsealed (unsealed: {nodes[0].address}, {nodes[2].address}): "
        f"Vault at {nodes[1].address} is unreachable (connection refused): could not read the seal status"
    )
    assert not sealed(nodes[0].address) and not sealed(nodes[2].address)  # the later follower too

    nodes[1].start()
    again = unseal_vault(addresses, keeper)
    assert [(r.was_sealed, r.joined, r.sealed) for r in again.replicas] == [
        (False, False, False),
        (True, True, False),
        (False, False, False),
    ]


def test_a_follower_the_raft_leader_refuses_is_retried_then_named(
    fresh_openbao: StartServer, tmp_path: Path
) -> None:
    """raft-autopilot refuses a node whose cluster address another voter has ("Preventing server
    addition ..."): the same refusal a port handed out twice gives in the sandbox."""
    leader = fresh_openbao("node-a")
    twin = OpenBaoServer(tmp_path / "node-b", node_id="node-b", cluster_port=leader.cluster_port)
    twin.start()
    try:
        addresses = f"{leader.address},{twin.address}"
        keeper = (tmp_path / "unseal.json").as_uri()
        init_vault(addresses, keeper, shares=1, threshold=1)
        with pytest.raises(OperationError) as caught:
            unseal_vault(addresses, keeper, join_timeout=3)
        message = str(caught.value)
        assert message.startswith(
            f"1 of 2 Vault replicas are not unsealed (unsealed: {leader.address}): timed out after 3s "
            f"waiting for the raft leader to let Vault at {twin.address} join (last seen: Vault at "
            f"{twin.address}: the raft leader refused to add it (another member has the same cluster "
            "address, or removing one would cost quorum): could not accept an unseal share: "
        )
        assert "Preventing server addition" in message and "\n" not in message
        assert not sealed(leader.address) and sealed(twin.address)
    finally:
        twin.stop()


def test_after_every_replica_restarted_the_members_unseal_and_elect_a_leader(
    fresh_openbao: StartServer, tmp_path: Path
) -> None:
    """Three voters restarted together: no node can become active alone (no quorum), so the step
    must unseal them all before it waits for an active node."""
    nodes = [fresh_openbao(f"node-{i}") for i in range(3)]
    addresses = ",".join(node.address for node in nodes)
    keeper = (tmp_path / "unseal.json").as_uri()
    init_vault(addresses, keeper, shares=1, threshold=1)
    material = open_keeper(keeper).load()
    assert material is not None
    root = hvac.Client(url=nodes[0].address, token=material.root_token)
    unseal_vault(nodes[0].address, keeper)
    root.write("sys/storage/raft/autopilot/configuration", server_stabilization_time="1s")
    unseal_vault(addresses, keeper)

    def voters() -> list[bool]:
        return [s["voter"] for s in root.sys.read_raft_config()["data"]["config"]["servers"]]

    poll_until(voters, lambda v: v == [True] * 3, what="autopilot to promote both followers", timeout=60)

    for node in nodes:
        node.stop()
    for node in nodes:
        node.start()
    result = unseal_vault(addresses, keeper)
    assert [(r.was_sealed, r.sealed) for r in result.replicas] == [(True, False)] * 3
    assert vault_status(addresses).sealed_replicas == []


def test_a_replica_that_dropped_the_shares_it_took_is_given_them_again(
    fresh_openbao: StartServer, tmp_path: Path
) -> None:
    """After the threshold was submitted, the replica shows no share in and stays sealed (it restarted,
    or its retry_join had no challenge yet when the shares came): the wait gives it the threshold again
    after ``RESUBMIT_AFTER`` seconds instead of waiting for an unseal that cannot come."""
    from vaultflow.steps.vault.api import VaultApi
    from vaultflow.steps.vault.unseal import _await_unsealed, _submit_threshold

    nodes = [fresh_openbao(f"node-{i}") for i in range(2)]
    addresses = ",".join(node.address for node in nodes)
    keeper = (tmp_path / "unseal.json").as_uri()
    init_vault(addresses, keeper, shares=3, threshold=2)
    unseal_vault(addresses, keeper)
    material = open_keeper(keeper).load()
    assert material is not None
    nodes[1].stop()
    nodes[1].start()  # sealed again, with no share in: what it was given is gone
    follower = VaultApi(nodes[1].address)

    with pytest.raises(OperationError) as waited:  # waiting alone (the step before this change)
        _await_unsealed(follower, 2.0)
    assert "sealed, 0 of 2 shares in" in str(waited.value)

    submitted = [0]
    status = _await_unsealed(
        follower, 60.0, resubmit=lambda: _submit_threshold(follower, material, "the keeper", submitted)
    )
    assert not status.sealed
    assert submitted == [2]  # the threshold, once: given again after RESUBMIT_AFTER, then it unsealed
    assert not sealed(nodes[1].address)
