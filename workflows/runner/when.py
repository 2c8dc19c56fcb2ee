"""Argo's ``when`` conditions: the subset of govaluate Argo users write.

Argo substitutes the ``{{...}}`` variables into the condition, parses it with
govaluate and, before evaluating, turns every bare word (a govaluate
"variable") into a string literal, so that ``heads == tails`` compares two
strings without quotes. The result must be a boolean.

Supported, with govaluate's typing rules: number literals (float64), quoted
strings (``'...'`` or ``"..."``), ``true``/``false``, bare words (strings),
``==`` ``!=`` (equal only when type and value are equal), ``<`` ``>`` ``<=``
``>=`` (two numbers or two strings), ``&&`` ``||`` ``!`` on booleans, unary
``-`` on numbers, and parentheses. Other govaluate operators (``=~``, ``in``,
arithmetic, ``?:``, ...) raise :class:`WhenError`, as does any type mismatch.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Value = float | str | bool


class WhenError(ValueError):
    """The condition cannot be parsed or evaluated."""


_TWO_CHAR_OPERATORS = ("==", "!=", "<=", ">=", "&&", "||", "=~", "!~", "**", "<<", ">>", "??")
_ONE_CHAR_OPERATORS = "<>!()-+*/%&|^~?:,"
_ORDERINGS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    ">": operator.gt,
    "<=": operator.le,
    ">=": operator.ge,
}
_SUPPORTED = frozenset({"==", "!=", "<=", ">=", "<", ">", "&&", "||", "!", "(", ")", "-"})


@dataclass(frozen=True)
class _Token:
    kind: str  # "value" | "op"
    value: Value

    def is_op(self, *ops: str) -> bool:
        return self.kind == "op" and self.value in ops


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char in "_."


def _read_quoted(text: str, start: int) -> tuple[str, int]:
    quote = text[start]
    chars: list[str] = []
    index = start + 1
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            chars.append(text[index + 1])
            index += 2
            continue
        if char == quote:
            return "".join(chars), index + 1
        chars.append(char)
        index += 1
    raise WhenError(f"unclosed string starting at position {start}")


def tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char.isspace():
            index += 1
        elif char in "'\"":
            value, index = _read_quoted(text, index)
            tokens.append(_Token("value", value))
        elif char.isdigit():
            end = index
            while end < len(text) and (text[end].isdigit() or text[end] == "."):
                end += 1
            try:
                tokens.append(_Token("value", float(text[index:end])))
            except ValueError:
                raise WhenError(f"cannot parse number {text[index:end]!r}") from None
            index = end
        elif char.isalpha() or char == "_":
            end = index
            while end < len(text) and _is_word_char(text[end]):
                end += 1
            word = text[index:end]
            tokens.append(_Token("value", {"true": True, "false": False}.get(word, word)))
            index = end
        elif text[index : index + 2] in _TWO_CHAR_OPERATORS or char in _ONE_CHAR_OPERATORS or char == "=":
            operator = text[index : index + 2] if text[index : index + 2] in _TWO_CHAR_OPERATORS else char
            if operator not in _SUPPORTED:
                raise WhenError(f"operator {operator!r} is not supported by the local runner")
            tokens.append(_Token("op", operator))
            index += len(operator)
        else:
            raise WhenError(f"invalid token {char!r} at position {index} (hint: quote the value)")
    return tokens


def _type_name(value: Value) -> str:
    if isinstance(value, bool):
        return "boolean"
    return "number" if isinstance(value, float) else "string"


def _compare(op: str, left: Value, right: Value) -> bool:
    if op == "==":
        return type(left) is type(right) and left == right
    if op == "!=":
        return not (type(left) is type(right) and left == right)
    comparable = (isinstance(left, float) and isinstance(right, float)) or (
        isinstance(left, str) and isinstance(right, str)
    )
    if not comparable:
        raise WhenError(
            f"cannot compare {_type_name(left)} {left!r} with {_type_name(right)} {right!r} using {op!r}"
        )
    return bool(_ORDERINGS[op](left, right))


def _boolean(value: Value, op: str) -> bool:
    if not isinstance(value, bool):
        raise WhenError(f"{_type_name(value)} {value!r} cannot be used with {op!r}")
    return value


class _Parser:
    """Precedence (low to high): ``||``, ``&&``, comparisons, unary ``!``/``-``."""

    def __init__(self, tokens: list[_Token]) -> None:
        self._tokens = tokens
        self._position = 0

    def _peek(self) -> _Token | None:
        return self._tokens[self._position] if self._position < len(self._tokens) else None

    def _take(self) -> _Token:
        token = self._peek()
        if token is None:
            raise WhenError("unexpected end of condition")
        self._position += 1
        return token

    def parse(self) -> Value:
        if not self._tokens:
            raise WhenError("empty condition")
        value = self._or()
        leftover = self._peek()
        if leftover is not None:
            raise WhenError(f"unexpected {leftover.value!r}")
        return value

    def _or(self) -> Value:
        left = self._and()
        while (token := self._peek()) is not None and token.is_op("||"):
            self._take()
            right = self._and()
            left = _boolean(left, "||") | _boolean(right, "||")
        return left

    def _and(self) -> Value:
        left = self._comparison()
        while (token := self._peek()) is not None and token.is_op("&&"):
            self._take()
            right = self._comparison()
            left = _boolean(left, "&&") & _boolean(right, "&&")
        return left

    def _comparison(self) -> Value:
        left = self._unary()
        while (token := self._peek()) is not None and token.is_op("==", "!=", "<", ">", "<=", ">="):
            self._take()
            left = _compare(str(token.value), left, self._unary())
        return left

    def _unary(self) -> Value:
        token = self._peek()
        if token is not None and token.is_op("!"):
            self._take()
            return not _boolean(self._unary(), "!")
        if token is not None and token.is_op("-"):
            self._take()
            operand = self._unary()
            if not isinstance(operand, float):
                raise WhenError(f"{_type_name(operand)} {operand!r} cannot be negated")
            return -operand
        return self._primary()

    def _primary(self) -> Value:
        token = self._take()
        if token.is_op("("):
            value = self._or()
            if not self._take().is_op(")"):
                raise WhenError("missing ')'")
            return value
        if token.kind == "op":
            raise WhenError(f"unexpected {token.value!r}")
        return token.value


def evaluate(condition: str) -> bool:
    """Evaluate a substituted ``when`` condition; raise :class:`WhenError` if it is not a boolean."""
    value = _Parser(tokenize(condition)).parse()
    if not isinstance(value, bool):
        raise WhenError(f"expected a boolean, got {_type_name(value)} {value!r}")
    return value


def check_syntax(condition: str) -> None:
    """Parse a condition whose variables were replaced by placeholders (validation before a run).

    Type errors are not reported here: they depend on the values substituted
    at run time.
    """
    tokens = tokenize(condition)
    _SyntaxOnly(tokens).parse()


class _SyntaxOnly(_Parser):
    """The same grammar, with every operation accepted regardless of operand types."""

    def _or(self) -> Value:
        self._and()
        while (token := self._peek()) is not None and token.is_op("||"):
            self._take()
            self._and()
        return True

    def _and(self) -> Value:
        self._comparison()
        while (token := self._peek()) is not None and token.is_op("&&"):
            self._take()
            self._comparison()
        return True

    def _comparison(self) -> Value:
        self._unary()
        while (token := self._peek()) is not None and token.is_op("==", "!=", "<", ">", "<=", ">="):
            self._take()
            self._unary()
        return True

    def _unary(self) -> Value:
        token = self._peek()
        if token is not None and token.is_op("!", "-"):
            self._take()
            self._unary()
            return True
        self._primary()
        return True
