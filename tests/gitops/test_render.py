"""Rendering: golden output, determinism, upstream CRD validity, and nothing written on failure."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from typer.testing import CliRunner

from vaultflow.cli import app
from vaultflow.gitops.catalog import load_catalog
from vaultflow.gitops.crd_schemas import CrdRegistry
from vaultflow.gitops.render import MARKER_FILE, is_custom_resource, render_catalog, validate_tree
from vaultflow.gitops.tree_writer import read_tree, write_tree

GOLDEN = Path(__file__).parent / "golden" / "example"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml"
KUBERNETES_VERSION = "1.33.0"


def test_example_matches_golden_files() -> None:
    """The rendered tree of the example catalog, byte for byte. Regenerate with UPDATE_GOLDEN=1."""
    rendered = render_catalog(load_catalog(EXAMPLE)).by_path()
    if os.environ.get("UPDATE_GOLDEN") == "1":
        shutil.rmtree(GOLDEN, ignore_errors=True)
        for path, content in rendered.items():
            (GOLDEN / path).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / path).write_text(content)
    assert rendered == read_tree(GOLDEN)


def test_every_rendered_object_validates_against_upstream_crds(upstream_crds: CrdRegistry) -> None:
    """Custom resources against the upstream CRDs; Kubernetes' own kinds against its OpenAPI schemas."""
    tree = render_catalog(load_catalog(EXAMPLE))
    served = {
        ("external-secrets.io/v1", "ExternalSecret"),
        ("external-secrets.io/v1", "SecretStore"),
        ("external-secrets.io/v1", "ClusterSecretStore"),
        ("external-secrets.io/v1alpha1", "PushSecret"),
        ("argoproj.io/v1alpha1", "Application"),
    }
    built_in = {
        ("v1", "Namespace"),
        ("v1", "ServiceAccount"),
        ("rbac.authorization.k8s.io/v1", "ClusterRole"),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
        ("rbac.authorization.k8s.io/v1", "Role"),
        ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    }
    seen = set()
    for path, manifest in tree.manifests():
        if manifest["kind"] == "Kustomization":
            continue
        seen.add((manifest["apiVersion"], manifest["kind"]))
        if is_custom_resource(manifest):
            assert upstream_crds.validate(manifest) == [], path
        else:
            kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    assert seen == served | built_in
    validate_tree(tree, upstream_crds)  # what `render --schemas` runs: the built-in kinds pass it


def test_rerender_is_byte_identical(tmp_path: Path) -> None:
    loaded = load_catalog(EXAMPLE)
    first = write_tree(render_catalog(loaded), tmp_path / "out")
    before = read_tree(tmp_path / "out")
    second = write_tree(render_catalog(load_catalog(EXAMPLE)), tmp_path / "out")
    assert first.total_changes == len(before) and second.total_changes == 0
    assert read_tree(tmp_path / "out") == before


def test_kustomizations_list_exactly_the_files_beside_them(tmp_path: Path) -> None:
    write_tree(render_catalog(load_catalog(EXAMPLE)), tmp_path)
    for kustomization in tmp_path.rglob("kustomization.yaml"):
        listed = set(yaml.safe_load(kustomization.read_text())["resources"])
        present = {
            p.relative_to(kustomization.parent).as_posix()
            for p in kustomization.parent.rglob("*.yaml")
            if p.name != "kustomization.yaml"
        }
        assert listed == present, kustomization


def test_sync_waves_put_stores_before_pulls_before_pushes() -> None:
    waves = {"ClusterSecretStore": set(), "SecretStore": set(), "ExternalSecret": set(), "PushSecret": set()}
    for _, manifest in render_catalog(load_catalog(EXAMPLE)).manifests():
        if manifest["kind"] in waves:
            waves[manifest["kind"]].add(
                int(manifest["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"])
            )
    assert max(waves["ClusterSecretStore"] | waves["SecretStore"]) < min(waves["ExternalSecret"])
    assert max(waves["ExternalSecret"]) < min(waves["PushSecret"])


def test_application_points_at_each_cluster_directory() -> None:
    tree = render_catalog(load_catalog(EXAMPLE), repo_url="file:///tmp/gitops.git").by_path()
    app_doc = yaml.safe_load(tree["argocd/eso-resources-prod-eu.yaml"])
    assert app_doc["spec"]["source"] == {
        "repoURL": "file:///tmp/gitops.git",
        "targetRevision": "main",
        "path": "eso-resources/clusters/prod-eu",
    }
    assert app_doc["spec"]["destination"] == {
        "server": "https://kubernetes.default.svc",
        "namespace": "external-secrets-system",
    }
    assert "clusters/prod-eu/kustomization.yaml" in tree


def test_names_from_long_paths_are_valid_and_stable(tmp_path: Path) -> None:
    long_path = "team-" + "x" * 40 + "/service-" + "y" * 40 + "/database"
    text = EXAMPLE.read_text().replace("path: shared/stripe", f"path: {long_path}")
    source = tmp_path / "c.yaml"
    source.write_text(text)
    names = [
        m["metadata"]["name"]
        for _, m in render_catalog(load_catalog(source)).manifests()
        if m["kind"] == "ExternalSecret"
        and m["metadata"]["annotations"]["vaultflow.io/vault-path"] == long_path
    ]
    assert len(names) == 1 and len(names[0]) <= 63
    again = [
        m["metadata"]["name"]
        for _, m in render_catalog(load_catalog(source)).manifests()
        if m["kind"] == "ExternalSecret"
        and m["metadata"]["annotations"]["vaultflow.io/vault-path"] == long_path
    ]
    assert names == again


def test_cli_render_invalid_catalog_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.read_text().replace("namespace: production", "namespace: Production", 1))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["render", "--catalog", str(bad), "--out", str(out)])
    assert result.exit_code != 0
    assert not out.exists()


def test_cli_render_with_schemas_validates_before_writing(tmp_path: Path, schemas_dir: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["render", "-c", str(EXAMPLE), "--out", str(out), "--schemas", str(schemas_dir), "-o", "json"]
    )
    assert result.exit_code == 0, result.output
    assert (out / MARKER_FILE).is_file()
    assert '"ExternalSecret": 7' in result.output


def test_cli_render_refuses_to_replace_a_foreign_directory(tmp_path: Path) -> None:
    out = tmp_path / "precious"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    result = CliRunner().invoke(app, ["render", "-c", str(EXAMPLE), "--out", str(out)])
    assert result.exit_code == 2
    assert (out / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_a_removed_consumer_disappears_from_the_tree(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_tree(render_catalog(load_catalog(EXAMPLE)), out)
    text = EXAMPLE.read_text()
    start = text.index("  # An upstream API key")
    source = tmp_path / "c.yaml"
    source.write_text(text[:start])
    changes = write_tree(render_catalog(load_catalog(source)), out)
    assert changes.removed == ["clusters/prod-us/payments/external-secret-shared-stripe.yaml"]
    assert "clusters/prod-us/kustomization.yaml" in changes.changed


@pytest.mark.parametrize("broken", ["metadata", "spec"])
def test_validate_tree_reports_crd_violations(broken: str, upstream_crds: CrdRegistry) -> None:
    from vaultflow.base.errors import OperationError
    from vaultflow.gitops.render import RenderedFile

    tree = render_catalog(load_catalog(EXAMPLE))
    path, manifest = next((p, m) for p, m in tree.manifests() if m["kind"] == "ExternalSecret")
    bad = {**manifest, "spec": {**manifest["spec"], "target": {"name": "x", "creationPolicy": "Sometimes"}}}
    if broken == "metadata":
        bad = {**manifest, "apiVersion": "external-secrets.io/v1beta1"}
    tree.files.append(RenderedFile(path + ".bad", "", bad))
    with pytest.raises(OperationError, match="nothing was written"):
        validate_tree(tree, upstream_crds)


def test_refresh_policy_is_rendered_and_valid(tmp_path: Path, upstream_crds: CrdRegistry) -> None:
    text = EXAMPLE.read_text().replace(
        "refreshInterval: 15m", "refreshInterval: 15m\n        refreshPolicy: OnChange"
    )
    assert "refreshPolicy: OnChange" in text
    source = tmp_path / "c.yaml"
    source.write_text(text)
    policies = {
        m["metadata"]["name"]: m["spec"].get("refreshPolicy")
        for _, m in render_catalog(load_catalog(source)).manifests()
        if m["kind"] == "ExternalSecret"
    }
    assert set(policies.values()) == {"OnChange", None}  # unset stays unset: ESO's default
    for _, manifest in render_catalog(load_catalog(source)).manifests():
        if manifest["kind"] == "ExternalSecret":
            assert upstream_crds.validate(manifest) == []
