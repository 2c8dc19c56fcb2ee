"""Replace a rendered directory with a new tree, never leaving it half-written.

The tree is written to a temporary sibling directory first; only when every
file is in place is the old directory swapped out. A directory that is not a
previous render (no marker file) is never replaced: ``--out`` pointed at the
wrong place must not delete someone's files.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import yaml

from vaultflow.base.errors import InputError
from vaultflow.gitops.render import MARKER_FILE, RenderedTree


@dataclass(frozen=True)
class TreeChanges:
    """How the new tree differs from what was in the directory before."""

    added: list[str]
    changed: list[str]
    removed: list[str]
    unchanged: int

    @property
    def total_changes(self) -> int:
        return len(self.added) + len(self.changed) + len(self.removed)


def read_tree(directory: Path) -> dict[str, str]:
    """Every file below ``directory`` by relative POSIX path (empty when it does not exist)."""
    if not directory.is_dir():
        return {}
    return {
        # surrogateescape: a file that is not UTF-8 compares as different instead of failing the read
        path.relative_to(directory).as_posix(): path.read_text(encoding="utf-8", errors="surrogateescape")
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def compare(old: dict[str, str], new: dict[str, str]) -> TreeChanges:
    return TreeChanges(
        added=sorted(set(new) - set(old)),
        changed=sorted(p for p in set(new) & set(old) if new[p] != old[p]),
        removed=sorted(set(old) - set(new)),
        unchanged=sum(1 for p in set(new) & set(old) if new[p] == old[p]),
    )


def check_replaceable(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER_FILE).is_file():
        raise InputError(
            f"{out}: refusing to replace a non-empty directory that vaultflow did not render "
            f"(no {MARKER_FILE}); choose an empty or new directory"
        )


def _pending(tree: RenderedTree, out: Path) -> tuple[dict[str, str], dict[str, str], TreeChanges]:
    """What is in ``out``, what ``tree`` holds, and how they differ (after the same refusal)."""
    check_replaceable(out)
    old, new = read_tree(out), tree.by_path()
    return old, new, compare(old, new)


def write_tree(tree: RenderedTree, out: Path) -> TreeChanges:
    """Make ``out`` hold exactly ``tree``; return what changed."""
    out = out.absolute()
    _, new, changes = _pending(tree, out)
    if changes.total_changes == 0 and out.is_dir():
        return changes
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.rendering-", dir=out.parent))
    try:
        staging.chmod(0o755)
        for relative, content in new.items():
            target = staging / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
        if out.exists():
            retired = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
            out.replace(retired)
            staging.replace(out)
            shutil.rmtree(retired)
        else:
            staging.replace(out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return changes


@dataclass(frozen=True)
class FileObject:
    """One object a tree file holds, by kind and name only: a change summary never shows a value."""

    kind: str
    name: str
    namespace: str | None = None

    def __str__(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where}" if where else self.kind  # a Kustomization has no name


POLICY_DIR = "vault/policies/"


def objects_in(path: str, text: str) -> list[FileObject]:
    """The objects of one tree file (a Vault policy file is its policy); [] for text that is neither."""
    if path.startswith(POLICY_DIR) and path.endswith(".hcl"):
        return [FileObject("VaultPolicy", path.removeprefix(POLICY_DIR).removesuffix(".hcl"))]
    if not path.endswith((".yaml", ".yml")):
        return []
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError:
        return []  # a hand-broken file: the path alone says which
    found: list[FileObject] = []
    for document in documents:
        if not isinstance(document, dict):
            continue
        metadata = document.get("metadata")
        metadata = metadata if isinstance(metadata, dict) else {}
        kind, name, namespace = document.get("kind"), metadata.get("name"), metadata.get("namespace")
        if isinstance(kind, str):
            found.append(
                FileObject(
                    kind,
                    name if isinstance(name, str) else "",
                    namespace if isinstance(namespace, str) else None,
                )
            )
    return found


def changed_objects(path: str, old: str | None, new: str | None) -> list[FileObject]:
    """The objects a changed file held before or holds now (each once, new first)."""
    found: list[FileObject] = []
    for text in (new, old):
        if text is not None:
            found += [obj for obj in objects_in(path, text) if obj not in found]
    return found


@dataclass(frozen=True)
class TreeCheck:
    """What ``write_tree`` would change, and the objects of every file involved."""

    changes: TreeChanges
    objects: dict[str, list[FileObject]]


def check_tree(tree: RenderedTree, out: Path) -> TreeCheck:
    """``write_tree(tree, out)`` without writing (``vaultflow render --check``).

    The same refusal and the same comparison: a directory it would refuse to replace is refused
    here too, and every file it would delete (the whole directory is vaultflow's) is reported removed.
    """
    old, new, changes = _pending(tree, out.absolute())
    paths = [*changes.added, *changes.changed, *changes.removed]
    return TreeCheck(changes, {path: changed_objects(path, old.get(path), new.get(path)) for path in paths})
