"""Label and field selectors with kube-apiserver's grammar and errors.

Label selectors: ``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``, ``a notin (x)``,
``a`` (exists) and ``!a`` (does not exist), comma-separated (AND).
Field selectors: ``path=value``, ``path==value``, ``path!=value`` on the fields
a resource supports; any other field is a 400, as on a real cluster.
``metav1.LabelSelector`` objects (``matchLabels``/``matchExpressions``), as
controllers read them, become the same predicates.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from vaultflow.sandbox.kube.errors import bad_request

JsonObject = dict[str, Any]
Predicate = Callable[[JsonObject], bool]

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_SET_EXPR = re.compile(rf"^\s*({_KEY})\s+(in|notin)\s*\(([^)]*)\)\s*$")
_EQUALITY = re.compile(rf"^\s*({_KEY})\s*(==|!=|=)\s*({_VALUE})\s*$")
_EXISTS = re.compile(rf"^\s*(!?)\s*({_KEY})\s*$")


@dataclass(frozen=True)
class _Requirement:
    key: str
    operator: str  # "=", "!=", "in", "notin", "exists", "!"
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.operator == "=":
            return present and value in self.values
        if self.operator == "in":
            return present and value in self.values
        if self.operator in ("!=", "notin"):
            return not present or value not in self.values
        if self.operator == "exists":
            return present
        return not present


def _split_top_level(selector: str) -> list[str]:
    """Split on commas that are not inside an ``in (...)`` value list."""
    parts: list[str] = []
    depth = 0
    current = ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [part for part in parts if part.strip()]


def parse_label_selector(selector: str) -> Predicate:
    """A predicate on an object's ``metadata.labels``; 400 on a malformed selector."""
    requirements: list[_Requirement] = []
    for part in _split_top_level(selector):
        if match := _SET_EXPR.match(part):
            values = frozenset(v.strip() for v in match.group(4).split(",") if v.strip())
            requirements.append(_Requirement(match.group(1), match.group(3), values))
        elif match := _EQUALITY.match(part):
            operator = "!=" if match.group(3) == "!=" else "="
            requirements.append(_Requirement(match.group(1), operator, frozenset({match.group(4)})))
        elif match := _EXISTS.match(part):
            requirements.append(_Requirement(match.group(2), "!" if match.group(1) else "exists"))
        else:
            raise bad_request(
                f"unable to parse requirement: found '{part.strip()}', expected a label selector"
            )

    def matches(obj: JsonObject) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(requirement.matches(labels) for requirement in requirements)

    return matches


_OPERATORS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}


def _go_strings(values: list[str]) -> str:
    """``%#v`` of a Go ``[]string``."""
    return "[]string{" + ", ".join('"' + v.replace('"', '\\"') + '"' for v in values) + "}"


def label_selector_predicate(selector: Mapping[str, Any] | None) -> Predicate:
    """A ``metav1.LabelSelector`` as ``LabelSelectorAsSelector`` reads it (apimachinery ``helpers.go``).

    ``None`` selects nothing, ``{}`` everything; a bad operator or value count is
    a ``ValueError`` with apimachinery's message (``labels.NewRequirement``).
    """
    if selector is None:
        return lambda obj: False
    requirements = [
        _Requirement(k, "=", frozenset({str(v)})) for k, v in (selector.get("matchLabels") or {}).items()
    ]
    for expression in selector.get("matchExpressions") or []:
        operator = _OPERATORS.get(str(expression.get("operator", "")))
        if operator is None:
            raise ValueError(f'"{expression.get("operator", "")}" is not a valid label selector operator')
        values = [str(v) for v in expression.get("values") or []]
        if operator in ("in", "notin") and not values:
            raise ValueError(
                f"values: Invalid value: {_go_strings(values)}: "
                "for 'in', 'notin' operators, values set can't be empty"
            )
        if operator in ("exists", "!") and values:
            raise ValueError(
                f"values: Invalid value: {_go_strings(values)}: "
                "values set must be empty for exists and does not exist"
            )
        requirements.append(_Requirement(str(expression.get("key", "")), operator, frozenset(values)))

    def matches(obj: JsonObject) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(requirement.matches(labels) for requirement in requirements)

    return matches


def label_selector_string(selector: Mapping[str, Any] | None) -> str:
    """``%s`` of a ``*metav1.LabelSelector`` in Go (its generated ``String``), as error messages print it."""
    if selector is None:
        return "nil"
    labels = selector.get("matchLabels") or {}
    expressions = "".join(
        f"LabelSelectorRequirement{{Key:{e.get('key', '')},Operator:{e.get('operator', '')},"
        f"Values:[{' '.join(str(v) for v in e.get('values') or [])}],}},"
        for e in selector.get("matchExpressions") or []
    )
    matching = "".join(f"{key}: {labels[key]}," for key in sorted(labels))
    return (
        f"&LabelSelector{{MatchLabels:map[string]string{{{matching}}},"
        f"MatchExpressions:[]LabelSelectorRequirement{{{expressions}}},}}"
    )


def _field_value(obj: JsonObject, path: str) -> str:
    node: Any = obj
    for part in path.split("."):
        if not isinstance(node, dict):
            return ""
        node = node.get(part)
    if node is None:
        return ""
    if isinstance(node, bool):
        return "true" if node else "false"
    return str(node)


# The field selectors each built-in kind supports beyond metadata.name / metadata.namespace.
EXTRA_FIELDS: dict[tuple[str, str], frozenset[str]] = {
    ("", "secrets"): frozenset({"type"}),
    ("", "namespaces"): frozenset({"status.phase"}),
    ("", "pods"): frozenset({"spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "status.phase"}),
    ("", "events"): frozenset(
        {
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "type",
            "source",
        }
    ),
}


def parse_field_selector(selector: str, supported: frozenset[str]) -> Predicate:
    """A predicate on dotted field paths; 400 naming the field when it is not supported."""
    clauses: list[tuple[str, bool, str]] = []
    allowed = supported | {"metadata.name", "metadata.namespace"}
    for part in (p for p in selector.split(",") if p.strip()):
        match = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|!=|=)\s*(.*?)\s*$", part)
        if match is None:
            raise bad_request(f"invalid selector: '{selector}'; can't understand '{part.strip()}'")
        field, operator, value = match.groups()
        if field not in allowed:
            raise bad_request(f"field label not supported: {field}")
        clauses.append((field, operator == "!=", value))

    def matches(obj: JsonObject) -> bool:
        return all((_field_value(obj, field) == value) != negate for field, negate, value in clauses)

    return matches
