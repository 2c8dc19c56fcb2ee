"""Every vaultflow template compiles, validates against Argo's CRDs, and renders byte-identically."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.workflows import dsl_steps
from tests.workflows.conftest import pipeline
from vaultflow.base import steps_image
from vaultflow.gitops.catalog import load_catalog
from vaultflow.gitops.crd_schemas import CrdRegistry
from vaultflow.workflows import runner
from vaultflow.workflows.dsl import Param, Schedule, Step
from vaultflow.workflows.registry import Registry, load_registry
from vaultflow.workflows.render import HEADER, CatalogFile, render

REPO_ROOT = Path(__file__).resolve().parents[2]
COMMITTED = REPO_ROOT / "argocd-apps" / "workflows" / "templates"


@pytest.fixture
def default_image(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv(steps_image.IMAGE_ENV, raising=False)
    return steps_image.DEFAULT_IMAGE


def _scheduled() -> Registry:
    scheduled = pipeline(
        "scheduled",
        [Step("a", dsl_steps.needs, args={"path": "{{workflow.parameters.path}}"})],
        params=[Param("path", default="secret/x")],
        schedules=[Schedule("nightly", "0 3 * * *", {"path": "secret/y"})],
    )
    example = load_catalog(REPO_ROOT / "examples" / "catalog.yaml").catalog
    return Registry([*load_registry().with_catalog(example), scheduled])


def test_every_registered_template_validates_against_the_argo_crds(
    upstream_crds: CrdRegistry, default_image: str
) -> None:
    registry = _scheduled()
    documents = registry.documents()
    assert {d["kind"] for d in documents} == {"WorkflowTemplate", "CronWorkflow"}
    assert "vaultflow-selftest" in registry.names()
    for document in documents:
        assert upstream_crds.validate(document) == [], document["metadata"]["name"]
        spec = runner.load(document, lookup=registry.lookup)  # and the local runner accepts it unchanged
        assert spec.templates


def test_the_validator_catches_a_broken_template(upstream_crds: CrdRegistry, default_image: str) -> None:
    document = load_registry().document("vaultflow-selftest")
    document["spec"]["templates"][0]["dag"]["tasks"][0]["dependz"] = "x"
    assert upstream_crds.validate(document)


def test_rendering_twice_is_byte_identical(tmp_path: Path, default_image: str) -> None:
    first = render(_scheduled(), tmp_path / "a")
    second = render(_scheduled(), tmp_path / "b")
    assert [p.relative_to(tmp_path / "a") for p in first] == [p.relative_to(tmp_path / "b") for p in second]
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes()
    again = render(_scheduled(), tmp_path / "a")
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in first]


def test_every_template_runs_the_configured_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(steps_image.IMAGE_ENV, "registry.example.com/steps:dev")
    (path,) = [p for p in render(load_registry(), tmp_path) if p.stem == "vaultflow-selftest"]
    document = yaml.safe_load(path.read_text())
    images = {t["script"]["image"] for t in document["spec"]["templates"] if "script" in t}
    assert images == {"registry.example.com/steps:dev"}


def test_default_image_is_tagged_with_the_package_version(default_image: str) -> None:
    from vaultflow import __version__

    assert steps_image.image() == f"{steps_image.IMAGE_REPOSITORY}:{__version__}"


def test_stale_generated_files_are_removed_and_others_kept(tmp_path: Path, default_image: str) -> None:
    folder = tmp_path / "workflowtemplates"
    folder.mkdir()
    (folder / "renamed-away.yaml").write_text(HEADER + "kind: WorkflowTemplate\n")
    (folder / "hand-written.yaml").write_text("kind: WorkflowTemplate\n")
    render(load_registry(), tmp_path)
    assert not (folder / "renamed-away.yaml").exists()
    assert (folder / "hand-written.yaml").exists()


def test_a_parameter_without_default_has_no_value_in_the_template(default_image: str) -> None:
    """Argo starts a run with a template's ``value``: a required parameter must not have one."""
    template = load_registry().document("vault-bootstrap")
    parameters = {p["name"]: p for p in template["spec"]["arguments"]["parameters"]}
    assert "value" not in parameters["vault-addresses"]
    assert parameters["keeper"]["value"] == "kubernetes://argo/vaultflow-vault-keeper"
    assert parameters["pgp-keys"]["value"] == ""  # an empty default is a default


def test_templates_committed_for_argo_cd_are_up_to_date(tmp_path: Path, default_image: str) -> None:
    """argocd-apps/workflows/templates is what Argo CD deploys: it must match the code and the catalog."""
    example = load_catalog(REPO_ROOT / "examples" / "catalog.yaml").catalog
    catalog = CatalogFile("examples/catalog.yaml", (REPO_ROOT / "examples" / "catalog.yaml").read_text())
    render(load_registry().with_catalog(example), tmp_path, catalog=catalog)
    rendered = {p.relative_to(tmp_path): p.read_text() for p in tmp_path.rglob("*.yaml")}
    committed = {p.relative_to(COMMITTED): p.read_text() for p in COMMITTED.rglob("*.yaml")}
    assert committed == rendered, (
        "run: vaultflow workflows render --catalog examples/catalog.yaml "
        "--out argocd-apps/workflows/templates"
    )
