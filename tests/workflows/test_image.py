"""The steps image: non-root as the templates expect, pinned dependencies, versioned reference."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from vaultflow import __version__
from vaultflow.base import steps_image

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text()


def _instructions(name: str) -> list[str]:
    return re.findall(rf"^{name}\s+(.+)$", DOCKERFILE, flags=re.MULTILINE)


def test_the_image_runs_as_the_uid_the_templates_require() -> None:
    assert _instructions("USER")[-1] == f"{steps_image.STEPS_UID}:{steps_image.STEPS_UID}"
    template = yaml.safe_load(
        (REPO_ROOT / "argocd-apps/workflows/templates/workflowtemplates/vaultflow-selftest.yaml").read_text()
    )
    assert template["spec"]["securityContext"]["runAsUser"] == steps_image.STEPS_UID
    assert template["spec"]["securityContext"]["runAsNonRoot"] is True


def test_dependencies_are_installed_from_the_constraints_file() -> None:
    assert "-c constraints.txt" in DOCKERFILE
    for package in ("steps", "workflows"):
        assert f"COPY {package} ./{package}" in DOCKERFILE


def test_the_default_image_reference_carries_the_package_version() -> None:
    assert steps_image.DEFAULT_IMAGE.endswith(f":{__version__}")
    assert steps_image.IMAGE_REPOSITORY in DOCKERFILE
