"""Argo's enhanced ``depends`` logic for DAG tasks.

A ``depends`` expression combines operands ``task`` or ``task.Result`` with
``&&``, ``||``, ``!`` and parentheses. A bare ``task`` means
``(task.Succeeded || task.Skipped || task.Daemoned)``, widened by the task's
``continueOn`` (``.Failed`` / ``.Errored``); the legacy ``dependencies: [A, B]``
list means ``A && B`` in that sense. ``.AnySucceeded`` and ``.AllFailed`` look
at the items of a ``withItems`` / ``withParam`` task.

Expressions are parsed once, before anything runs, so that a typo, an unknown
task, an unknown result or an operator Argo would not accept is refused with
the task named, instead of surfacing halfway through a run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from vaultflow.workflows.runner.nodes import Phase

RESULTS = ("Succeeded", "Failed", "Errored", "Skipped", "Omitted", "AnySucceeded", "AllFailed")
_GROUP_RESULTS = ("AnySucceeded", "AllFailed")
_TASK_NAME = r"[a-zA-Z0-9][-a-zA-Z0-9]*"
_TOKEN = re.compile(rf"\s*(?:(?P<op>&&|\|\||!|\(|\))|(?P<ref>{_TASK_NAME}(?:\.[A-Za-z]+)?)|(?P<bad>\S+))")


_RESULT_PHASES = {
    "Succeeded": Phase.SUCCEEDED,
    "Failed": Phase.FAILED,
    "Errored": Phase.ERROR,
    "Skipped": Phase.SKIPPED,
    "Omitted": Phase.OMITTED,
}


class DependsSyntaxError(ValueError):
    """The expression is not one Argo's ``depends`` accepts."""


@dataclass(frozen=True)
class TaskOutcome:
    """What a finished dependency looks like to a ``depends`` expression."""

    phase: Phase
    any_succeeded: bool = False
    all_failed: bool = False

    def has(self, result: str) -> bool:
        if result == "AnySucceeded":
            return self.any_succeeded
        if result == "AllFailed":
            return self.all_failed
        return self.phase is _RESULT_PHASES[result]  # parse() admits only RESULTS


@dataclass(frozen=True)
class Ref:
    task: str
    result: str


@dataclass(frozen=True)
class Not:
    operand: Expr


@dataclass(frozen=True)
class All:
    operands: tuple[Expr, ...]


@dataclass(frozen=True)
class Any_:
    operands: tuple[Expr, ...]


Expr = Ref | Not | All | Any_


@dataclass(frozen=True)
class ContinueOn:
    """A dependency's ``continueOn``: which failures its dependants tolerate."""

    failed: bool = False
    error: bool = False


def _default_results(continue_on: ContinueOn) -> tuple[str, ...]:
    # ``.Daemoned`` is part of Argo's expansion but always false here: the local
    # runner has no daemon templates, so it is simply left out.
    results = ["Succeeded", "Skipped"]
    if continue_on.error:
        results.append("Errored")
    if continue_on.failed:
        results.append("Failed")
    return tuple(results)


def _expand_bare(task: str, continue_on: ContinueOn) -> Expr:
    return Any_(tuple(Ref(task, result) for result in _default_results(continue_on)))


class _Parser:
    def __init__(self, text: str, continue_on: Mapping[str, ContinueOn]) -> None:
        self._tokens = self._tokenize(text)
        self._position = 0
        self._continue_on = continue_on

    @staticmethod
    def _tokenize(text: str) -> list[tuple[str, str]]:
        tokens: list[tuple[str, str]] = []
        for match in _TOKEN.finditer(text):
            if match.group("bad") is not None:
                bad = match.group("bad")
                hint = " (use &&, || and !)" if bad in ("and", "or", "not", "&", "|") else ""
                raise DependsSyntaxError(f"unexpected {bad!r}{hint}")
            if match.group("op") is not None:
                tokens.append(("op", match.group("op")))
            elif match.group("ref") is not None:
                if match.group("ref") in ("and", "or", "not"):
                    raise DependsSyntaxError(f"unexpected {match.group('ref')!r} (use &&, || and !)")
                tokens.append(("ref", match.group("ref")))
        if not tokens:
            raise DependsSyntaxError("empty expression")
        return tokens

    def _peek(self) -> tuple[str, str] | None:
        return self._tokens[self._position] if self._position < len(self._tokens) else None

    def _take(self) -> tuple[str, str]:
        token = self._peek()
        if token is None:
            raise DependsSyntaxError("unexpected end of expression")
        self._position += 1
        return token

    def parse(self) -> Expr:
        expr = self._or()
        if self._peek() is not None:
            raise DependsSyntaxError(f"unexpected {self._peek()[1]!r}")  # type: ignore[index]
        return expr

    def _or(self) -> Expr:
        operands = [self._and()]
        while self._peek() == ("op", "||"):
            self._take()
            operands.append(self._and())
        return operands[0] if len(operands) == 1 else Any_(tuple(operands))

    def _and(self) -> Expr:
        operands = [self._unary()]
        while self._peek() == ("op", "&&"):
            self._take()
            operands.append(self._unary())
        return operands[0] if len(operands) == 1 else All(tuple(operands))

    def _unary(self) -> Expr:
        if self._peek() == ("op", "!"):
            self._take()
            return Not(self._unary())
        return self._primary()

    def _primary(self) -> Expr:
        kind, value = self._take()
        if (kind, value) == ("op", "("):
            expr = self._or()
            if self._peek() != ("op", ")"):
                raise DependsSyntaxError("missing ')'")
            self._take()
            return expr
        if kind != "ref":
            raise DependsSyntaxError(f"unexpected {value!r}")
        task, _, result = value.partition(".")
        if not result:
            return _expand_bare(task, self._continue_on.get(task, ContinueOn()))
        if result == "Daemoned":
            raise DependsSyntaxError(f"'{value}': daemon templates are not supported by the local runner")
        if result not in RESULTS:
            raise DependsSyntaxError(
                f"'{value}': unknown task result {result!r} (known: {', '.join(RESULTS)})"
            )
        return Ref(task, result)


def parse(text: str, continue_on: Mapping[str, ContinueOn] | None = None) -> Expr:
    """Parse a ``depends`` expression; bare task names are expanded as Argo does."""
    return _Parser(text, continue_on or {}).parse()


def from_dependencies(names: Iterable[str], continue_on: Mapping[str, ContinueOn] | None = None) -> Expr:
    """The expression equivalent to the legacy ``dependencies`` list."""
    operands = tuple(_expand_bare(name, (continue_on or {}).get(name, ContinueOn())) for name in names)
    return operands[0] if len(operands) == 1 else All(operands)


def refs(expr: Expr) -> Iterable[Ref]:
    if isinstance(expr, Ref):
        yield expr
    elif isinstance(expr, Not):
        yield from refs(expr.operand)
    else:
        for operand in expr.operands:
            yield from refs(operand)


def task_names(expr: Expr) -> list[str]:
    """The tasks an expression depends on, in order of first appearance."""
    return list(dict.fromkeys(ref.task for ref in refs(expr)))


def group_results(expr: Expr) -> list[Ref]:
    """Operands that only make sense on a ``withItems`` / ``withParam`` task."""
    return [ref for ref in refs(expr) if ref.result in _GROUP_RESULTS]


def evaluate(expr: Expr, outcomes: Mapping[str, TaskOutcome]) -> bool:
    """Evaluate with every dependency fulfilled (the caller waits until then)."""
    if isinstance(expr, Ref):
        return outcomes[expr.task].has(expr.result)
    if isinstance(expr, Not):
        return not evaluate(expr.operand, outcomes)
    if isinstance(expr, All):
        return all(evaluate(operand, outcomes) for operand in expr.operands)
    return any(evaluate(operand, outcomes) for operand in expr.operands)
