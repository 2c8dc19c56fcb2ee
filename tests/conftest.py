"""Fixtures shared by every test package.

The upstream CRDs live beside the checkout in ``../shared/schemas`` (CI has
that folder); ``VAULTFLOW_SCHEMAS`` overrides the location. Tests that need
them fail, never skip, when they are missing: CI must not go green on a
test that did not run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gitops.crd_schemas import CrdRegistry

REPO_ROOT = Path(__file__).resolve().parent.parent


def upstream_schemas_dir() -> Path:
    return Path(os.environ.get("VAULTFLOW_SCHEMAS", REPO_ROOT.parent / "shared" / "schemas")).resolve()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def schemas_dir() -> Path:
    directory = upstream_schemas_dir()
    if not directory.is_dir():
        pytest.fail(f"upstream schemas not found at {directory}; set VAULTFLOW_SCHEMAS")
    return directory


@pytest.fixture(scope="session")
def upstream_crds(schemas_dir: Path) -> CrdRegistry:
    return CrdRegistry.from_directory(schemas_dir)
