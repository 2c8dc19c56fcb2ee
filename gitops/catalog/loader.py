"""Load a catalog file and report every problem at its line, column and field path."""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from vaultflow.gitops.catalog.checks import check_catalog
from vaultflow.gitops.catalog.errors import CatalogError, CatalogIssue, FieldPath
from vaultflow.gitops.catalog.model import Catalog
from vaultflow.gitops.catalog.placement import Plan
from vaultflow.gitops.catalog.yaml_source import PositionedYaml, load_positioned_yaml
from vaultflow.gitops.gc_pause import gc_paused


@dataclass(frozen=True)
class LoadedCatalog:
    """A valid catalog, where its ESO objects go, and the file it came from.

    Relative paths inside the catalog resolve from the file's directory.
    """

    catalog: Catalog
    plan: Plan
    source: Path

    @property
    def base_dir(self) -> Path:
        return self.source.parent

    def resolve(self, relative: str) -> Path:
        return (self.base_dir / relative).resolve()


def load_catalog(path: Path | str) -> LoadedCatalog:
    """Read, parse and validate the catalog at ``path``; raise ``CatalogError`` listing every problem."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CatalogError(source, [CatalogIssue(1, 1, (), "file not found")]) from None
    except IsADirectoryError:
        raise CatalogError(source, [CatalogIssue(1, 1, (), "is a directory, not a catalog file")]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise CatalogError(source, [CatalogIssue(1, 1, (), f"cannot be read: {error}")]) from None
    return parse_catalog(text, source)


def parse_catalog(text: str, source: Path) -> LoadedCatalog:
    with gc_paused():
        return _parse(text, source)


def _parse(text: str, source: Path) -> LoadedCatalog:
    document, issues = load_positioned_yaml(text)
    if document is None:
        raise CatalogError(source, issues)
    if not isinstance(document.data, dict):
        found = "an empty file" if document.data is None else type(document.data).__name__
        raise CatalogError(source, [document.issue((), f"the catalog must be a YAML mapping, found {found}")])
    try:
        catalog = Catalog.model_validate(document.data)
    except ValidationError as error:
        raise CatalogError(source, [_issue_from(document, e) for e in error.errors()]) from None
    findings, plan = check_catalog(catalog)
    findings += _file_references(catalog, source.resolve().parent)
    if findings or plan is None:
        raise CatalogError(source, [document.issue(path, message) for path, message in findings])
    return LoadedCatalog(catalog=catalog, plan=plan, source=source.resolve())


def _file_references(catalog: Catalog, base_dir: Path) -> list[tuple[FieldPath, str]]:
    wanted: list[tuple[FieldPath, str]] = []
    if catalog.vault.tls.ca_file is not None:
        wanted.append((("vault", "tls", "caFile"), catalog.vault.tls.ca_file))
    for index, secret in enumerate(catalog.secrets):
        credential = secret.rotation.credential if secret.rotation else None
        if credential is not None and credential.ca_file is not None:
            wanted.append((("secrets", index, "rotation", "credential", "caFile"), credential.ca_file))
    return [finding for where, ca_file in wanted for finding in _ca_file_problems(where, ca_file, base_dir)]


def _ca_file_problems(where: FieldPath, ca_file: str, base_dir: Path) -> list[tuple[FieldPath, str]]:
    path = (base_dir / ca_file).resolve()
    if not path.is_file():
        return [(where, f"CA file {ca_file!r} not found (looked at {path})")]
    if b"-----BEGIN CERTIFICATE-----" not in path.read_bytes():
        return [(where, f"CA file {ca_file!r} holds no PEM certificate")]
    return []


# --- pydantic errors -> catalog issues --------------------------------------------------------


def _issue_from(document: PositionedYaml, error: Any) -> CatalogIssue:
    path = _data_path(document.data, tuple(error["loc"]), error["type"])
    at_key = error["type"] in ("missing", "extra_forbidden")
    return document.issue(path, _message(error, path, document.data), at_key=at_key)


def _data_path(data: Any, loc: tuple[Any, ...], error_type: str) -> FieldPath:
    """Drop the parts of a pydantic ``loc`` that are not in the document (union tags, type names)."""
    path: list[str | int] = []
    current = data
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if _has(current, part):
            current = current[part]
            path.append(part)
        elif last and error_type in ("missing", "extra_forbidden") and isinstance(part, str):
            path.append(part)
    return tuple(path)


def _message(error: Any, path: FieldPath, data: Any) -> str:
    kind, field = error["type"], (str(path[-1]) if path else "")
    ctx = error.get("ctx", {})
    if kind == "missing":
        return f"missing required field {field!r}"
    if kind == "extra_forbidden":
        allowed = _allowed_fields(path[:-1], data)
        hint = difflib.get_close_matches(field, allowed, n=1)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
        known = f" (allowed: {', '.join(allowed)})" if allowed and not hint else ""
        return f"unknown field {field!r}{suggestion}{known}"
    if kind == "union_tag_invalid":
        expected = ctx.get("expected_tags", "")
        discriminator = str(ctx.get("discriminator", "type")).strip("'")
        return f"unknown {discriminator} {ctx.get('tag')!r}: expected one of {expected}"
    if kind == "union_tag_not_found":
        discriminator = str(ctx.get("discriminator", "type")).strip("'")
        return f"missing required field {discriminator!r}"
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind.endswith("_type") or kind in ("literal_error", "string_pattern_mismatch"):
        return f"{message} (got {_shown(error.get('input'))})"
    return message


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _allowed_fields(path: FieldPath, data: Any) -> list[str]:
    """The camelCase fields of the model at ``path`` (for 'did you mean')."""
    candidates: list[type[BaseModel]] = [Catalog]
    current = data
    for part in path:
        parent, current = current, (current[part] if _has(current, part) else None)
        if isinstance(part, int):
            continue
        model = _choose(candidates, parent)
        field = None
        if model is not None:
            field = next((f for name, f in model.model_fields.items() if (f.alias or name) == part), None)
        if field is None:
            return []
        candidates = _models_in(field.annotation)
    model = _choose(candidates, current)
    return sorted(f.alias or name for name, f in model.model_fields.items()) if model else []


def _has(container: Any, part: str | int) -> bool:
    if isinstance(container, dict):
        return part in container
    return isinstance(container, list) and isinstance(part, int) and 0 <= part < len(container)


def _choose(candidates: list[type[BaseModel]], data: Any) -> type[BaseModel] | None:
    """The candidate ``data`` is meant for: in a discriminated union (clouds, generators),
    the member whose ``Literal`` tag equals the tag written in ``data``."""
    if len(candidates) <= 1 or not isinstance(data, dict):
        return candidates[0] if candidates else None
    for model in candidates:
        tags = {
            (field.alias or name): typing.get_args(field.annotation)
            for name, field in model.model_fields.items()
            if typing.get_origin(field.annotation) is typing.Literal
        }
        if tags and all(data.get(alias) in values for alias, values in tags.items()):
            return model
    return None


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Annotated, list, typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        if origin is typing.Annotated:
            args = args[:1]
        return [model for arg in args for model in _models_in(arg)]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return []
