"""The catalog's ConfigMap: what `workflows render --catalog` writes for the pipelines to read."""

from __future__ import annotations

import base64
import gzip
import hashlib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from typer.testing import CliRunner

from tests.argocd_apps.argocd_policy import ProjectPolicy
from tests.argocd_apps.manifests import directory_source_files
from vaultflow.base.errors import InputError
from vaultflow.cli import app
from vaultflow.gitops.catalog import load_catalog, parse_catalog
from vaultflow.steps.catalog_source import DEFAULT_KEY
from vaultflow.workflows.registry import load_registry
from vaultflow.workflows.render import (
    CATALOG_FILE_ANNOTATION,
    CATALOG_SOURCE,
    CONFIG_MAP_LIMIT,
    GENERATED,
    CatalogFile,
    catalog_config_map,
    catalog_yaml,
    render,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = REPO_ROOT / "examples" / "catalog.yaml"
WORKFLOWS = REPO_ROOT / "argocd-apps" / "workflows"
COMMITTED = WORKFLOWS / "templates" / "configmaps" / "vaultflow-catalog.yaml"
KUBERNETES_VERSION = "1.33.0"
IN_CLUSTER = "https://kubernetes.default.svc"


def _load(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict)
    return document


def test_the_committed_config_map_is_the_example_catalog_where_the_templates_read_it() -> None:
    config_map = _load(COMMITTED)
    kubernetes_validate.validate(config_map, KUBERNETES_VERSION, strict=True)
    assert config_map["data"] == {DEFAULT_KEY: EXAMPLE.read_text()}  # the file's exact text
    metadata = config_map["metadata"]
    assert metadata["annotations"][CATALOG_FILE_ANNOTATION] == "examples/catalog.yaml"
    assert metadata["labels"]["app.kubernetes.io/managed-by"] == "vaultflow"
    assert COMMITTED.read_text().startswith(f"{GENERATED} Source: examples/catalog.yaml.\n")
    # Where every template that reads the catalog looks by default.
    assert f"configmap://{metadata['namespace']}/{metadata['name']}" == CATALOG_SOURCE
    for name in ("rotate-secrets", "vault-bootstrap"):
        parameters = load_registry().document(name)["spec"]["arguments"]["parameters"]
        assert {p["name"]: p.get("value") for p in parameters}["catalog"] == CATALOG_SOURCE, name
    # And what a pipeline parses from it is the catalog itself.
    loaded = parse_catalog(
        config_map["data"][DEFAULT_KEY], Path("configmap:argo/vaultflow-catalog/catalog.yaml")
    )
    assert loaded.catalog == load_catalog(EXAMPLE).catalog


def test_the_workflows_application_delivers_it_through_its_project() -> None:
    application, project_doc = _load(WORKFLOWS / "application.yaml"), _load(WORKFLOWS / "project.yaml")
    source = application["spec"]["source"]
    files = directory_source_files(REPO_ROOT / source["path"], source["directory"])
    assert COMMITTED in files
    project = ProjectPolicy.from_manifest(project_doc)
    assert project.object_violations(_load(COMMITTED), namespaced=True, server=IN_CLUSTER) == []
    assert project.permits_kind("", "ConfigMap", namespaced=True)
    assert not project.permits_kind("", "Secret", namespaced=True)


@pytest.mark.parametrize(
    "text",
    [
        "kind: SecretsCatalog\n",
        "no final newline",
        "trailing blanks   \nnext\n",
        "  leading indentation\n\tand a tab\n",
        "windows\r\nline\r\nendings\r\n",
        "two final newlines\n\n",
        "unicode: é ✓ 鍵\n",
        "",
    ],
)
def test_any_text_reads_back_exactly(text: str) -> None:
    written = catalog_yaml(CatalogFile("c.yaml", text))
    assert yaml.safe_load(written)["data"][DEFAULT_KEY] == text


def test_the_example_reads_as_a_literal_block() -> None:
    """Reviewers read the ConfigMap in pull requests: the catalog's lines, not one escaped string."""
    text = COMMITTED.read_text()
    assert f"  {DEFAULT_KEY}: |\n" in text
    assert "    kind: SecretsCatalog\n" in text


def large_catalog(secrets: int) -> str:
    """A valid catalog of ``secrets`` secrets, one consumer each: about 270 bytes of text per secret."""
    lines = [
        "apiVersion: vaultflow.io/v1alpha1",
        "kind: SecretsCatalog",
        "vault: {address: https://vault.example.com:8200}",
        "gitops: {repoUrl: https://git.example.com/gitops.git}",
        "clusters:",
        "  - {name: c0, kubeContext: c0, argocd: {name: c0}}",
        "secrets:",
    ]
    for n in range(secrets):
        lines += [
            f"  - path: team-{n % 50}/app-{n}",
            "    keys: [{name: password, generator: {type: password}}, {name: u, generator: {type: static}}]",
            f"    consumers: [{{cluster: c0, namespace: team-{n % 50}, secretName: app-{n}}}]",
        ]
    return "\n".join(lines) + "\n"


def test_a_catalog_too_big_as_text_is_stored_gzip_compressed_and_reads_back_exactly() -> None:
    """A 10,000-secret catalog is some 2.7 MB of text: more than a ConfigMap takes (1 MiB), about 5%
    of it gzip-compressed. Under binaryData ``catalog.yaml.gz``; the same bytes on every render."""
    text = large_catalog(10_000)
    assert len(text.encode()) > CONFIG_MAP_LIMIT
    config_map = catalog_config_map(CatalogFile("big.yaml", text))
    kubernetes_validate.validate(config_map, KUBERNETES_VERSION, strict=True)
    assert "data" not in config_map and list(config_map["binaryData"]) == [f"{DEFAULT_KEY}.gz"]
    packed = base64.b64decode(config_map["binaryData"][f"{DEFAULT_KEY}.gz"])
    assert len(packed) < CONFIG_MAP_LIMIT // 4
    assert gzip.decompress(packed).decode() == text
    written = catalog_yaml(CatalogFile("big.yaml", text))
    assert yaml.safe_load(written) == config_map and written == catalog_yaml(CatalogFile("big.yaml", text))
    # What fits stays text: reviewers read it in pull requests.
    assert catalog_config_map(CatalogFile("small.yaml", large_catalog(10)))["data"][DEFAULT_KEY]


def test_a_catalog_too_big_even_compressed_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    random = "".join(hashlib.sha256(str(n).encode()).hexdigest() for n in range(CONFIG_MAP_LIMIT // 32))
    big = CatalogFile("big.yaml", "# " + random + "\n")  # hex digits: gzip saves less than half
    with pytest.raises(
        InputError,
        match=r"^big\.yaml: \d+ bytes, \d+ gzip-compressed; a ConfigMap holds at most 1048576, so the "
        r"pipelines could not read it from configmap://argo/vaultflow-catalog$",
    ):
        catalog_config_map(big)
    with pytest.raises(InputError):
        render(load_registry(), tmp_path / "out", catalog=big)
    assert not (tmp_path / "out").exists()


def test_without_a_catalog_a_generated_config_map_is_removed_and_a_hand_written_one_kept(
    tmp_path: Path,
) -> None:
    render(load_registry(), tmp_path, catalog=CatalogFile("catalog.yaml", EXAMPLE.read_text()))
    generated = tmp_path / "configmaps" / "vaultflow-catalog.yaml"
    assert generated.is_file()
    (tmp_path / "configmaps" / "mine.yaml").write_text("apiVersion: v1\nkind: ConfigMap\n")
    render(load_registry(), tmp_path)
    assert not generated.exists()
    assert (tmp_path / "configmaps" / "mine.yaml").is_file()


def test_the_command_records_the_catalog_path_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    (repo / "platform").mkdir(parents=True)
    (repo / "platform" / "catalog.yaml").write_text(EXAMPLE.read_text())
    monkeypatch.chdir(repo)
    for given in ("platform/catalog.yaml", str(repo / "platform" / "catalog.yaml")):
        result = CliRunner().invoke(app, ["workflows", "render", "--catalog", given, "--out", "out"])
        assert result.exit_code == 0, result.output
        config_map = _load(repo / "out" / "configmaps" / "vaultflow-catalog.yaml")
        assert config_map["metadata"]["annotations"][CATALOG_FILE_ANNOTATION] == "platform/catalog.yaml"


def test_a_value_in_the_catalog_is_refused_so_none_reaches_the_config_map(tmp_path: Path) -> None:
    """The catalog model has no field for a value: a planted one is an error, and nothing is written."""
    planted = tmp_path / "catalog.yaml"
    text = EXAMPLE.read_text()
    needle = "{name: password, generator: {type: password, length: 32}}"
    assert needle in text
    planted.write_text(
        text.replace(needle, "{name: password, value: planted-7f3a, generator: {type: static}}", 1)
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["workflows", "render", "--catalog", str(planted), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "value" in result.output and "Traceback" not in result.output
    assert not out.exists()


def test_a_ca_file_beside_the_catalog_is_warned_about(tmp_path: Path) -> None:
    """The pipelines parse the ConfigMap's text with no file beside it: vault.tls.caFile cannot resolve."""
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    catalog = tmp_path / "catalog.yaml"
    text = EXAMPLE.read_text()
    provider = "    caProvider:\n      type: ConfigMap\n      name: vault-ca\n"
    provider += "      namespace: external-secrets-system\n      key: ca.crt\n"
    assert provider in text
    catalog.write_text(text.replace(provider, "    caFile: ca.pem\n", 1))
    load_catalog(catalog)  # a valid catalog on disk
    result = CliRunner().invoke(
        app, ["workflows", "render", "--catalog", str(catalog), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 0, result.output
    assert "warning:" in result.stderr and "vault.tls.caFile" in result.stderr
    assert (tmp_path / "o" / "configmaps" / "vaultflow-catalog.yaml").is_file()
