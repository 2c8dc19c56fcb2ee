"""Recovery shares (auto-unseal) are kept like unseal shares; Shamir material is written as before."""

from __future__ import annotations

import json
from pathlib import Path

from vaultflow.steps.keeper import UnsealMaterial, open_keeper


def test_shamir_material_is_written_exactly_as_before_recovery_existed() -> None:
    material = UnsealMaterial(shares=["a", "b"], threshold=2, root_token="t")
    assert set(json.loads(material.to_json())) == {"shares", "threshold", "pgp_encrypted", "root_token"}


def test_recovery_shares_round_trip_through_a_keeper_and_never_show(tmp_path: Path) -> None:
    keeper = open_keeper((tmp_path / "keeper.json").as_uri())
    keeper.reserve()
    keeper.fill(UnsealMaterial(shares=["share-one", "share-two", "share-3"], threshold=2, recovery=True))
    keeper.set_root_token("root-value")
    kept = keeper.load()
    assert kept is not None and kept.recovery and kept.threshold == 2 and kept.root_token == "root-value"
    assert repr(kept) == "UnsealMaterial(3 recovery shares, threshold 2, root token present)"
    assert "share-one" not in str(kept) and "root-value" not in repr(kept)
    assert (tmp_path / "keeper.json").stat().st_mode & 0o777 == 0o600
