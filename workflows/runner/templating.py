"""Argo's ``{{...}}`` variable substitution.

Argo replaces every ``{{tag}}`` (whitespace around the tag is ignored) with the
value of that variable in scope, and fails the node when a tag cannot be
resolved. Expression tags (``{{=...}}``, the expr language) are a different
feature that the local runner does not implement; they are reported by
:func:`references` so that validation can refuse them before anything runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

_TAG = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)


class UnresolvedVariable(KeyError):
    """A ``{{tag}}`` had no value in scope."""

    def __init__(self, tag: str) -> None:
        super().__init__(tag)
        self.tag = tag

    def __str__(self) -> str:
        return f"failed to resolve {{{{{self.tag}}}}}"


def references(text: str) -> Iterator[str]:
    """Yield every tag of ``text``, stripped, in order of appearance."""
    for match in _TAG.finditer(text):
        yield match.group(1).strip()


def has_references(text: str) -> bool:
    return "{{" in text and _TAG.search(text) is not None


def substitute(text: str, scope: Mapping[str, str], *, allow_unresolved: bool = False) -> str:
    """Replace the tags of ``text`` with their values in ``scope``.

    With ``allow_unresolved`` unknown tags stay as they are (Argo does this in
    its first pass over a task, before item expansion); otherwise an unknown
    tag raises :class:`UnresolvedVariable`.
    """
    if "{{" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        tag = match.group(1).strip()
        value = scope.get(tag)
        if value is None:
            if allow_unresolved:
                return match.group(0)
            raise UnresolvedVariable(tag)
        return value

    return _TAG.sub(replace, text)
