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
        path.relative_to(directory).as_posix(): path.read_text(encoding="utf-8")
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


def write_tree(tree: RenderedTree, out: Path) -> TreeChanges:
    """Make ``out`` hold exactly ``tree``; return what changed."""
    out = out.absolute()
    check_replaceable(out)
    new = tree.by_path()
    changes = compare(read_tree(out), new)
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
