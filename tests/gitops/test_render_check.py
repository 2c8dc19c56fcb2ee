"""``vaultflow render --check``: is the committed tree what the catalog renders? Nothing is ever written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vaultflow.cli import app
from vaultflow.gitops.catalog import load_catalog
from vaultflow.gitops.render import MARKER_FILE, render_catalog
from vaultflow.gitops.tree_writer import TreeChanges, write_tree

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml"
STRIPE = "clusters/prod-us/payments/external-secret-shared-stripe.yaml"

Snapshot = dict[str, tuple[bytes, int] | None]


def snapshot(root: Path) -> Snapshot:
    """Every file (content, mtime) and directory below ``root``: any write, even a staging dir, shows."""
    found: Snapshot = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        found[relative] = (path.read_bytes(), path.stat().st_mtime_ns) if path.is_file() else None
    return found


def check(catalog: Path, out: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, ["render", "--catalog", str(catalog), "--out", str(out), "--check", *extra]
    )
    return result.exit_code, result.output


def without_stripe(tmp_path: Path) -> Path:
    """The example catalog without its last secret (one consumer fewer: one ExternalSecret fewer)."""
    text = EXAMPLE.read_text()
    source = tmp_path / "smaller.yaml"
    source.write_text(text[: text.index("  # An upstream API key")])
    return source


@pytest.fixture
def committed(tmp_path: Path) -> Path:
    """The example's tree as `vaultflow render` wrote it, the way a repository holds it."""
    out = tmp_path / "repo" / "gitops"
    write_tree(render_catalog(load_catalog(EXAMPLE)), out)
    return out


def test_an_identical_tree_is_up_to_date(committed: Path, tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    code, output = check(EXAMPLE, committed)
    assert code == 0, output
    assert output.strip() == f"{committed} is up to date with {EXAMPLE}"
    assert snapshot(tmp_path) == before


def test_every_difference_is_named_with_its_objects_and_nothing_is_written(
    committed: Path, tmp_path: Path
) -> None:
    edited = committed / "clusters/prod-eu/argocd/external-secret-argocd-admin-password.yaml"
    edited.write_text(edited.read_text().replace("refreshInterval:", "refreshInterval: planted-7f3a #", 1))
    missing = committed / "vault/policies/eso-prod-eu.hcl"
    missing.unlink()
    smaller = without_stripe(tmp_path)  # the committed tree still has the ExternalSecret it no longer renders
    before = snapshot(tmp_path)

    code, output = check(smaller, committed)

    assert code == 1, output
    lines = output.splitlines()
    assert lines[0] == (
        f"{committed} is not what {smaller} renders; rendering would add 1, change 4 and remove 1 file(s):"
    )
    assert "  added    vault/policies/eso-prod-eu.hcl  (VaultPolicy eso-prod-eu)" in lines
    assert (
        "  changed  clusters/prod-eu/argocd/external-secret-argocd-admin-password.yaml"
        "  (ExternalSecret argocd/argocd-admin-password)"
    ) in lines
    assert "  changed  clusters/prod-us/kustomization.yaml  (Kustomization)" in lines
    # the delivery reads one target Secret fewer there (gitops/delivery_rbac.py)
    assert (
        "  changed  clusters/prod-us/payments/role-vaultflow-delivery-consumers.yaml"
        "  (Role payments/vaultflow-delivery-consumers)"
    ) in lines
    assert "  changed  vault/policies/eso-prod-us.hcl  (VaultPolicy eso-prod-us)" in lines  # no more stripe
    assert f"  removed  {STRIPE}  (ExternalSecret payments/shared-stripe)" in lines
    assert lines[-1] == f"to update it: vaultflow render --catalog {smaller} --out {committed}"
    assert "planted-7f3a" not in output  # what changed is named, never the value it changed to
    assert snapshot(tmp_path) == before

    # The check is write_tree's own comparison: rendering now changes exactly what it reported.
    changes = write_tree(render_catalog(load_catalog(smaller)), committed)
    assert changes == TreeChanges(
        added=["vault/policies/eso-prod-eu.hcl"],
        changed=[
            "clusters/prod-eu/argocd/external-secret-argocd-admin-password.yaml",
            "clusters/prod-us/kustomization.yaml",
            "clusters/prod-us/payments/role-vaultflow-delivery-consumers.yaml",
            "vault/policies/eso-prod-us.hcl",
        ],
        removed=[STRIPE],
        unchanged=changes.unchanged,
    )
    assert check(smaller, committed)[0] == 0


def test_a_stray_file_in_the_rendered_tree_is_reported_as_removed(committed: Path) -> None:
    """The directory is vaultflow's (it holds the marker): rendering replaces all of it, stray files too."""
    (committed / "clusters" / "notes.txt").write_text("left here by hand\n")
    code, output = check(EXAMPLE, committed)
    assert code == 1, output
    assert "  removed  clusters/notes.txt" in output.splitlines()
    changes = write_tree(render_catalog(load_catalog(EXAMPLE)), committed)
    assert changes.removed == ["clusters/notes.txt"] and not (committed / "clusters" / "notes.txt").exists()


def test_a_directory_vaultflow_did_not_render_is_refused_not_listed_as_removals(tmp_path: Path) -> None:
    """write_tree would refuse to replace it, so nothing in it would be removed: exit 2, no file named."""
    foreign = tmp_path / "precious"
    (foreign / "apps").mkdir(parents=True)
    (foreign / "apps" / "deployment.yaml").write_text("kind: Deployment\nmetadata: {name: web}\n")
    before = snapshot(tmp_path)
    code, output = check(EXAMPLE, foreign)
    assert code == 2, output
    assert f"no {MARKER_FILE}" in output
    assert "removed" not in output and "deployment.yaml" not in output
    assert snapshot(tmp_path) == before


def test_a_tree_not_committed_yet_is_all_added_and_is_not_created(tmp_path: Path) -> None:
    code, output = check(EXAMPLE, tmp_path / "absent")
    assert code == 1, output
    assert f"  added    {MARKER_FILE}" in output.splitlines()
    assert (
        "  added    clusters/prod-eu/cluster-secret-store.yaml  (ClusterSecretStore vault-backend)" in output
    )
    assert not (tmp_path / "absent").exists()
    assert [p.name for p in tmp_path.iterdir()] == []


def test_json_lists_each_file_with_its_objects(committed: Path, tmp_path: Path) -> None:
    code, output = check(without_stripe(tmp_path), committed, "--output", "json")
    assert code == 1, output
    document = json.loads(output)
    assert document["out"] == str(committed) and document["upToDate"] is False
    assert document["added"] == []
    assert document["removed"] == [
        {
            "path": STRIPE,
            "objects": [{"kind": "ExternalSecret", "namespace": "payments", "name": "shared-stripe"}],
        }
    ]
    assert document["changed"] == [
        {
            "path": "clusters/prod-us/kustomization.yaml",
            "objects": [{"kind": "Kustomization", "namespace": None, "name": ""}],
        },
        {
            "path": "clusters/prod-us/payments/role-vaultflow-delivery-consumers.yaml",
            "objects": [{"kind": "Role", "namespace": "payments", "name": "vaultflow-delivery-consumers"}],
        },
        {
            "path": "vault/policies/eso-prod-us.hcl",
            "objects": [{"kind": "VaultPolicy", "namespace": None, "name": "eso-prod-us"}],
        },
    ]
    code, output = check(EXAMPLE, committed, "--output", "json")
    assert code == 0 and json.loads(output) == {
        "out": str(committed),
        "upToDate": True,
        "added": [],
        "changed": [],
        "removed": [],
    }


@pytest.mark.parametrize("broken", ["catalog", "out-is-a-file"])
def test_bad_input_exits_two_and_writes_nothing(committed: Path, tmp_path: Path, broken: str) -> None:
    catalog, out = EXAMPLE, committed
    if broken == "catalog":
        catalog = tmp_path / "bad.yaml"
        catalog.write_text(EXAMPLE.read_text().replace("namespace: production", "namespace: Production", 1))
    else:
        out = tmp_path / "file.yaml"
        out.write_text("kind: ConfigMap\n")
    before = snapshot(tmp_path)
    code, output = check(catalog, out)
    assert code == 2, output
    assert "Traceback" not in output and "rendering would" not in output
    assert snapshot(tmp_path) == before
