"""The package's shape: one import name, one-way dependencies, no cycles, a steps image without emulators.

These read the installed package and the wheel that ``pip`` builds, so they see
what a user installs, not what happens to be importable from the checkout.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import pkgutil
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import vaultflow

REPO = Path(__file__).resolve().parent.parent
LINKED_TREES = ("steps", "workflows", "gitops", "sandbox")

# What each package may import (besides itself and the root ``vaultflow``, which holds only the version).
ALLOWED = {
    "base": set(),
    "gitops": {"base"},
    "steps": {"base", "gitops"},
    "workflows": {"base", "gitops", "steps"},
    "sandbox": {"base", "gitops", "steps", "workflows"},
    "cli": {"base", "gitops", "steps", "workflows", "sandbox"},
    "__main__": {"cli"},
}


def installed_modules() -> dict[str, Path]:
    found = {"vaultflow": Path(vaultflow.__file__)}
    for info in pkgutil.walk_packages(vaultflow.__path__, "vaultflow."):
        spec = importlib.util.find_spec(info.name)
        assert spec is not None and spec.origin is not None
        found[info.name] = Path(spec.origin)
    return found


def imported_by(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every project module ``name`` imports, at module level or inside a function (lazy imports count)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                targets.add(submodule if submodule in known else module)
    return {target for target in targets if target in known and target != name}


def import_graph() -> dict[str, set[str]]:
    known = installed_modules()
    return {name: imported_by(name, path, known) for name, path in known.items()}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iteratively: the groups of modules that import each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return groups


def top(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "vaultflow"


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(graph) == [["a", "b", "c"]]


def test_no_module_imports_itself_back() -> None:
    assert strongly_connected(import_graph()) == []


def test_packages_depend_one_way() -> None:
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        for target in targets
        if top(module) != "vaultflow"
        and top(target) not in {top(module), "vaultflow"}
        and top(target) not in ALLOWED[top(module)]
    )
    assert wrong == []


def test_no_code_imports_the_folders_by_their_bare_names() -> None:
    """``import steps`` works from the checkout's root by accident; installed, only vaultflow.steps exists."""
    bare = []
    for path in sorted(REPO.glob("*/**/*.py")):
        if path.parts[len(REPO.parts)] in {".venv", "build"}:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            bare += [f"{path.relative_to(REPO)}: {n}" for n in names if n.split(".")[0] in LINKED_TREES]
    assert bare == []


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(REPO)],
        check=True,
        capture_output=True,
    )
    [built] = out.glob("vaultflow-*.whl")
    return built


def test_the_wheel_installs_one_top_level_name_and_every_module(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")} == {
        "vaultflow"
    }
    sources = {
        f"vaultflow/{path.relative_to(REPO).as_posix()}"
        for tree in LINKED_TREES
        for path in (REPO / tree).rglob("*")
        if path.suffix == ".py" or (path.parent.name == "crds" and path.is_file())
    } | {
        f"vaultflow/{p.relative_to(REPO / 'vaultflow').as_posix()}"
        for p in (REPO / "vaultflow").glob("[!s]*/**/*.py")
    }
    assert sorted(sources - set(names)) == []
    assert "vaultflow/py.typed" in names


def own_modules() -> list[Path]:
    """The modules that live in vaultflow/ itself (not behind its links to the top-level folders)."""
    root = REPO / "vaultflow"
    return [path for path in root.rglob("*.py") if path.relative_to(root).parts[0] not in LINKED_TREES]


# Run in the image's Python tree: import every module (``__main__`` would run the CLI), and no sandbox.
PROBE = """
import importlib, pkgutil, vaultflow
assert vaultflow.__file__.startswith({target!r}), vaultflow.__file__
names = [m.name for m in pkgutil.walk_packages(vaultflow.__path__, "vaultflow.")]
for name in names:
    if not name.endswith("__main__"):
        importlib.import_module(name)
assert not any(name.startswith("vaultflow.sandbox") for name in names), names
try:
    import vaultflow.sandbox
except ModuleNotFoundError:
    print("no sandbox", len(names))
"""


def build_stage_copies(dockerfile: Path) -> list[str]:
    """The sources the Dockerfile's build stage COPYs from the context (not ``--from`` copies)."""
    sources: list[str] = []
    stage = 0
    for line in dockerfile.read_text().splitlines():
        words = line.split()
        if words[:1] == ["FROM"]:
            stage += 1
        if stage == 1 and words[:1] == ["COPY"] and not words[1].startswith("--"):
            sources += words[1:-1]
    return sources


def test_the_steps_image_has_no_emulator_code(tmp_path: Path) -> None:
    """Build the image's Python tree as its Dockerfile does (same COPY set and pip install), minus Docker."""
    context = tmp_path / "context"
    context.mkdir()
    copies = build_stage_copies(REPO / "Dockerfile")
    assert "sandbox" not in copies and "steps" in copies
    for source in copies:
        origin = REPO / source
        if origin.is_dir():
            shutil.copytree(
                origin, context / source, symlinks=True, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(origin, context / source)
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(context)],
        check=True,
        capture_output=True,
    )
    assert not (target / "vaultflow" / "sandbox").exists()
    probe = PROBE.format(target=str(target))
    # -S: no site processing, so the checkout's editable install (a .pth finder) cannot supply vaultflow;
    # the dependencies come from site-packages named explicitly, after the image's tree.
    site_packages = [path for path in sys.path if path.endswith("site-packages")]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), *site_packages])}
    done = subprocess.run(
        [sys.executable, "-S", "-c", probe],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("no sandbox")
