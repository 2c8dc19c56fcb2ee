"""Load catalog YAML while remembering where every value came from.

PyYAML's data loader forgets positions, so the file is also *composed* into a
node tree; a field path such as ``secrets[2].consumers[0]`` is then walked
through that tree to find its line and column. The same pass rejects what
PyYAML would otherwise accept silently: duplicate mapping keys (the last one
would win) and multi-document files.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from vaultflow.gitops.catalog.errors import CatalogIssue, FieldPath

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class PositionedYaml:
    """Parsed data plus the node tree that knows positions."""

    data: Any
    root: yaml.Node | None

    def position(self, path: FieldPath, *, at_key: bool = False) -> tuple[int, int]:
        """1-based (line, column) of the deepest node of ``path`` that exists.

        The value is pointed at, or with ``at_key`` the mapping key that holds
        it (an unknown field is pointed at where its name is written).
        """
        node = self.root
        if node is None:
            return (1, 1)
        best = node.start_mark
        for part in path:
            child = _child(node, part)
            if child is None:
                break
            key_node, node = child
            best = (key_node if at_key and key_node is not None else node).start_mark
        return (best.line + 1, best.column + 1)

    def issue(self, path: FieldPath, message: str, *, at_key: bool = False) -> CatalogIssue:
        line, column = self.position(path, at_key=at_key)
        return CatalogIssue(line=line, column=column, path=path, message=message)


def _child(node: yaml.Node, part: str | int) -> tuple[yaml.Node | None, yaml.Node] | None:
    if isinstance(node, yaml.MappingNode) and isinstance(part, str):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == part:
                return key, value
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
        return None, node.value[part]
    return None


def _duplicate_keys(node: yaml.Node, path: FieldPath) -> Iterator[tuple[FieldPath, yaml.Mark, str]]:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, yaml.Mark] = {}
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    first = seen[key.value]
                    yield (
                        (*path, key.value),
                        key.start_mark,
                        f"duplicate key {key.value!r} (first defined at line {first.line + 1})",
                    )
                else:
                    seen[key.value] = key.start_mark
                yield from _duplicate_keys(value, (*path, key.value))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _duplicate_keys(item, (*path, index))


def load_positioned_yaml(text: str) -> tuple[PositionedYaml | None, list[CatalogIssue]]:
    """Parse ``text``; return the document or the issues that prevent using it."""
    try:
        nodes = list(yaml.compose_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = error.problem or "malformed YAML"
        context = f" ({error.context})" if error.context else ""
        return None, [CatalogIssue(line, column, (), f"YAML syntax error: {problem}{context}")]
    except yaml.YAMLError as error:
        return None, [CatalogIssue(1, 1, (), f"YAML error: {error}")]
    if len(nodes) > 1:
        mark = nodes[1].start_mark
        return None, [
            CatalogIssue(mark.line + 1, mark.column + 1, (), "the catalog must be a single YAML document")
        ]
    root = nodes[0] if nodes else None
    if root is not None:
        duplicates = [
            CatalogIssue(mark.line + 1, mark.column + 1, path, message)
            for path, mark, message in _duplicate_keys(root, ())
        ]
        if duplicates:
            return None, duplicates
    data = _construct(root) if root is not None else None
    return PositionedYaml(data=data, root=root), []


_SCALAR_TAGS = "tag:yaml.org,2002:"


def _construct(node: yaml.Node) -> Any:
    """Plain Python data from a composed node tree (the same values ``safe_load`` gives).

    Walking the tree that was composed for positions is about twice as fast as
    parsing the text a second time with ``safe_load``. Timestamps and binary
    stay strings: the catalog has no field of those types, and a string gives
    the clearer error.
    """
    if isinstance(node, yaml.MappingNode):
        return {_construct(key): _construct(value) for key, value in node.value}
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item) for item in node.value]
    tag = node.tag.removeprefix(_SCALAR_TAGS)
    if tag in ("int", "float", "bool", "null"):
        return _SAFE_CONSTRUCTOR.construct_object(node, deep=True)
    return node.value


_SAFE_CONSTRUCTOR = yaml.constructor.SafeConstructor()
