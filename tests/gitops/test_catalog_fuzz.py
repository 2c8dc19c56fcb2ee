"""Property: whatever is done to a catalog, loading it either works or reports positioned problems.

Mutations of the example catalog (dropped fields, wrong types, unknown keys,
duplicated list items) must never surface as a traceback. A mutant that is
still valid must render into manifests the upstream CRDs accept.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vaultflow.gitops.catalog import CatalogError, parse_catalog
from vaultflow.gitops.crd_schemas import CrdRegistry
from vaultflow.gitops.render import is_custom_resource, render_catalog

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml"
BASE: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
PROBLEM_LINE = re.compile(r"^c\.yaml:\d+:\d+: (<document>|[A-Za-z\[]\S*( \S*)*?): .+")

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 70000),
    st.text(max_size=12),
    st.sampled_from(
        ["Owner", "Merge", "prod-eu", "aws-prod", "5m", "0 3 * * *", "password", "static", "a/b"]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def _containers(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path] if isinstance(node, dict | list) and node else []
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, child in children:
        found.extend(_containers(child, (*path, key)))
    return found


def _at(node: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        node = node[part]
    return node


@st.composite
def mutated_catalogs(draw: st.DrawFn) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        targets = _containers(data)
        if not targets:
            break
        container = _at(data, draw(st.sampled_from(targets)))
        keys = list(container) if isinstance(container, dict) else list(range(len(container)))
        key = draw(st.sampled_from(keys))
        action = draw(st.sampled_from(["delete", "replace", "add-unknown", "duplicate"]))
        if action == "delete":
            del container[key]
        elif action == "replace":
            container[key] = draw(values)
        elif action == "add-unknown" and isinstance(container, dict):
            container[draw(st.text(min_size=1, max_size=8))] = draw(values)
        elif action == "duplicate" and isinstance(container, list):
            container.append(copy.deepcopy(container[key]))
    return data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=mutated_catalogs())
def test_mutations_never_raise_anything_but_positioned_problems(
    data: dict[str, Any], upstream_crds: CrdRegistry
) -> None:
    text = yaml.safe_dump(data, sort_keys=False)
    try:
        loaded = parse_catalog(text, Path("c.yaml"))
    except CatalogError as error:
        assert error.issues
        for issue in error.issues:
            rendered = issue.render("c.yaml")
            assert PROBLEM_LINE.match(rendered), rendered
            assert 1 <= issue.line <= text.count("\n") + 1
        return
    tree = render_catalog(loaded)
    for path, manifest in tree.manifests():
        if is_custom_resource(manifest):  # the built-in (RBAC) kinds: tests/gitops/test_rotation_rbac.py
            assert upstream_crds.validate(manifest) == [], path
