"""Catalog problems, each tied to a field path and a position in the YAML file."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from vaultflow.base.errors import InputError

FieldPath = tuple[str | int, ...]
_PLAIN_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def format_field_path(path: FieldPath) -> str:
    """``("secrets", 2, "consumers", 0, "namespace")`` -> ``secrets[2].consumers[0].namespace``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not _PLAIN_FIELD.match(part):
            text += f"[{json.dumps(part)}]"  # a key with spaces or dots stays unambiguous
        else:
            text += f".{part}" if text else part
    return text or "<document>"


@dataclass(frozen=True, order=True)
class CatalogIssue:
    """One thing wrong with a catalog, positioned for an editor (1-based line and column)."""

    line: int
    column: int
    path: FieldPath
    message: str

    def render(self, source: str) -> str:
        return f"{source}:{self.line}:{self.column}: {format_field_path(self.path)}: {self.message}"


class CatalogError(InputError):
    """A catalog that cannot be used; carries every issue found, in file order."""

    def __init__(self, source: Path | str, issues: list[CatalogIssue]) -> None:
        self.source = str(source)
        self.issues = sorted(issues, key=lambda issue: (issue.line, issue.column, issue.message))
        count = len(self.issues)
        header = f"{self.source}: {count} problem{'s' if count != 1 else ''} in the secrets catalog"
        super().__init__("\n".join([header, *(issue.render(self.source) for issue in self.issues)]))
