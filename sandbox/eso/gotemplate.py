"""The part of Go's ``text/template`` that ESO's template engine v2 runs, with Go's results and errors.

ESO renders ``target.template`` with ``text/template`` (``runtime/template/v2/template.go``:
``missingkey=error``, the data as a ``map[string]string``, sprig's functions plus ESO's own).
A Python template engine (Jinja, ``string.Template``) parses, trims and fails differently, so
this module follows Go's own lexer, parser and executor (``text/template/parse/lex.go``,
``parse.go``, ``text/template/exec.go``, ``funcs.go``) for the subset production templates
use; their messages were checked against Go's ``text/template``:

* text, actions ``{{ ... }}``, trim markers ``{{- `` and `` -}}``, comments ``{{/* */}}``;
* fields ``.key`` and chains ``.a.b``, ``.``, ``$`` and ``$.key``, parenthesised pipelines
  ``(.a | fromJson).b``, pipes ``|``, string (``"..."``, raw), number, char, bool and nil
  literals;
* the functions ``b64enc``, ``b64dec``, ``toJson``, ``fromJson``, ``upper``, ``lower``,
  ``trim``, ``quote`` (sprig's, as ESO vendors them in ``runtime/template/v2/sprig``) and
  Go's ``index``.

Anything else is refused with a message naming it: another function ESO offers
(``function "sha256sum" is not emulated by the sandbox's ESO``), a control action
(``if``, ``range``, ``with``, ``define``, ``template``, ``block``) or a variable declaration.
A function ESO does not offer fails as in Go (``function "foo" not defined``).

Go strings are bytes: data values are held as ``str`` decoded with ``surrogateescape`` so
any byte survives ``b64enc`` and the output; positions in messages are byte offsets, as Go's.
"""

from __future__ import annotations

import base64
import json
import math
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

from vaultflow.sandbox.eso.gojson import marshal
from vaultflow.sandbox.eso.transform import DecodeError, go_base64_decode

NOT_EMULATED = "is not emulated by the sandbox's ESO"

# Every function name ESO's engine knows (``runtime/template/v2/template.go`` ``tplFuncs``,
# ``runtime/template/v2/sprig/functions.go`` ``genericMap`` and Go's builtins): one of these
# that the sandbox lacks is "not emulated"; any other name is Go's "not defined".
_ESO_FUNCTION_NAMES = """
    pkcs12key pkcs12keyPass pkcs12cert pkcs12certPass pemToPkcs12 pemToPkcs12Pass fullPemToPkcs12
    fullPemToPkcs12Pass pemTruststoreToPKCS12 pemTruststoreToPKCS12Pass filterPEM filterCertChain
    certSANs jwkPublicKeyPem jwkPrivateKeyPem toYaml fromYaml rsaDecrypt
    hello ago date date_in_zone date_modify dateInZone dateModify duration durationRound htmlDate
    htmlDateInZone must_date_modify mustDateModify mustToDate now toDate unixEpoch
    abbrev abbrevboth trunc trim upper lower title untitle substr repeat trimall trimAll trimSuffix
    trimPrefix nospace initials randAlphaNum randAlpha randAscii randNumeric swapcase shuffle
    snakecase camelcase kebabcase wrap wrapWith contains hasPrefix hasSuffix quote squote cat indent
    nindent replace plural sha1sum sha256sum sha512sum adler32sum toString atoi int64 int float64
    seq toDecimal split splitList splitn toStrings until untilStep add1 add sub div mod mul randInt
    add1f addf subf divf mulf biggest max min maxf minf ceil floor round join sortAlpha
    default empty coalesce all any compact mustCompact fromJson toJson toPrettyJson toRawJson
    mustFromJson mustToJson mustToPrettyJson mustToRawJson ternary deepCopy mustDeepCopy
    typeOf typeIs typeIsLike kindOf kindIs deepEqual base dir clean ext isAbs osBase osClean osDir
    osExt osIsAbs b64enc b64dec b32enc b32dec hexdec tuple list dict get set unset hasKey pluck keys
    pick omit merge mergeOverwrite mustMerge mustMergeOverwrite values append push mustAppend
    mustPush prepend mustPrepend first mustFirst rest mustRest last mustLast initial mustInitial
    reverse mustReverse uniq mustUniq without mustWithout has mustHas slice mustSlice concat dig
    chunk mustChunk bcrypt htpasswd genPrivateKey derivePassword buildCustomCert genCA genCAWithKey
    genSelfSignedCert genSelfSignedCertWithKey genSignedCert genSignedCertWithKey encryptAES
    decryptAES randBytes uuidv4 semver semverCompare fail regexMatch mustRegexMatch regexFindAll
    mustRegexFindAll regexFind mustRegexFind regexReplaceAll mustRegexReplaceAll
    regexReplaceAllLiteral mustRegexReplaceAllLiteral regexSplit mustRegexSplit regexQuoteMeta
    urlParse urlJoin
    and call html index js len not or print printf println urlquery eq ge gt le lt ne
"""
_ESO_FUNCTIONS = frozenset(_ESO_FUNCTION_NAMES.split())


class TemplateError(Exception):
    """Parsing or executing failed; the message is Go's (``template: <name>:<line>: ...``)."""


# ------------------------------------------------------------------ Go strings


def go_string(raw: bytes) -> str:
    """Bytes as the engine holds a Go string: every byte kept (invalid UTF-8 as surrogate escapes)."""
    return raw.decode("utf-8", "surrogateescape")


def go_bytes(text: str) -> bytes:
    """A Go string back to its bytes."""
    return text.encode("utf-8", "surrogateescape")


def _valid_utf8(text: str) -> str:
    """What Go's ``encoding/json`` makes of a string: invalid UTF-8 (and lone surrogates) as U+FFFD."""
    return "".join("\ufffd" if 0xD800 <= ord(char) <= 0xDFFF else char for char in text)


_QUOTE_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def go_quote(text: str) -> str:
    """``strconv.Quote`` (Go's ``%q``): printable runes kept, the rest escaped as Go escapes them."""
    out = ['"']
    for char in text:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8
            out.append(f"\\x{code - 0xDC00:02x}")
        elif char in '"\\':
            out.append("\\" + char)
        elif char.isprintable():  # Python's and Go's (``unicode.IsPrint``) definitions agree
            out.append(char)
        elif char in _QUOTE_ESCAPES:
            out.append(_QUOTE_ESCAPES[char])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\\ufffd")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def _go_rune(char: str) -> str:
    """Go's ``%#U``: ``U+002D '-'`` (the character only when it is printable)."""
    code = ord(char)
    return f"U+{code:04X} '{char}'" if char.isprintable() else f"U+{code:04X}"


def format_float(value: float) -> str:
    """``strconv.FormatFloat(value, 'g', -1, 64)``, which is also Go's ``%v`` of a float64."""
    if math.isnan(value) or math.isinf(value) or value == 0:
        special = {math.inf: "+Inf", -math.inf: "-Inf"}
        if value == 0:
            return "-0" if math.copysign(1, value) < 0 else "0"
        return special.get(value, "NaN")
    sign, digit_tuple, exponent = Decimal(repr(value)).as_tuple()
    assert isinstance(exponent, int)
    all_digits = "".join(map(str, digit_tuple))
    digits = all_digits.rstrip("0") or "0"
    point = len(all_digits) + exponent  # digits before the decimal point
    prefix = "-" if sign else ""
    exp10 = point - 1
    if exp10 < -4 or exp10 >= 6:  # shortest formatting decides with a precision of 6, as strconv does
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if exp10 < 0 else '+'}{abs(exp10):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{digits}"
    whole, fraction = (digits + "0" * point)[:point], digits[point:]
    return prefix + whole + ("." + fraction if fraction else "")


# ------------------------------------------------------------------ lexing (lex.go)

_SPACE = " \t\r\n"
_EOF = ""


class _Item(NamedTuple):
    typ: str
    pos: int
    val: str
    line: int

    def __str__(self) -> str:
        """``item.String``: how a parse error shows a token."""
        if self.typ == "EOF":
            return "EOF"
        if self.typ == "error":
            return self.val
        if self.typ in _KEYWORDS.values():
            return f"<{self.val}>"
        if len(self.val) > 10:
            return go_quote(self.val[:10]) + "..."
        return go_quote(self.val)


_KEYWORDS = {
    ".": "dot",
    "block": "block",
    "break": "break",
    "continue": "continue",
    "define": "define",
    "else": "else",
    "end": "end",
    "if": "if",
    "nil": "nil",
    "range": "range",
    "template": "template",
    "with": "with",
}


def _is_alphanumeric(char: str) -> bool:
    return char == "_" or (bool(char) and (char.isalpha() or unicodedata.category(char) == "Nd"))


class _Lexer:
    """Go's lexer, run to the end (or the first error) up front."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.start = 0
        self.paren_depth = 0
        self.items: list[_Item] = []

    def run(self) -> list[_Item]:
        state: Callable[[], Any] | None = self.lex_text
        while state is not None:
            state = state()
        return self.items

    # -- primitives

    def next(self) -> str:
        if self.pos >= len(self.text):
            return _EOF
        self.pos += 1
        return self.text[self.pos - 1]

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else _EOF

    def backup(self) -> None:
        self.pos -= 1

    def line_of(self, pos: int) -> int:
        return 1 + self.text.count("\n", 0, pos)

    def emit(self, typ: str) -> None:
        self.items.append(_Item(typ, self.start, self.text[self.start : self.pos], self.line_of(self.start)))
        self.start = self.pos

    def ignore(self) -> None:
        self.start = self.pos

    def accept(self, valid: str) -> bool:
        char = self.next()
        if char and char in valid:
            return True
        if char:
            self.backup()
        return False

    def accept_run(self, valid: str) -> None:
        while (char := self.next()) and char in valid:
            pass
        if char:
            self.backup()

    def error(self, message: str) -> None:
        self.items.append(_Item("error", self.start, message, self.line_of(self.start)))

    def at_right_delim(self) -> tuple[bool, bool]:
        rest = self.text[self.pos :]
        if len(rest) >= 2 and rest[0] in _SPACE and rest[1] == "-" and rest[2:].startswith("}}"):
            return True, True
        return rest.startswith("}}"), False

    def at_terminator(self) -> bool:
        char = self.peek()
        return char in (_EOF, ".", ",", "|", ":", ")", "(", "}") or char in _SPACE

    # -- states

    def lex_text(self) -> Callable[[], Any] | None:
        found = self.text.find("{{", self.pos)
        if found < 0:
            self.pos = len(self.text)
            if self.pos > self.start:
                self.emit("text")
            self.emit("EOF")
            return None
        if found > self.pos:
            self.pos = found
            after = self.text[found + 2 : found + 4]
            trim = 0
            if len(after) == 2 and after[0] == "-" and after[1] in _SPACE:
                segment = self.text[self.start : self.pos]
                trim = len(segment) - len(segment.rstrip(_SPACE))
            self.pos -= trim
            if self.pos > self.start:
                self.emit("text")
            self.pos += trim
            self.ignore()
        return self.lex_left_delim

    def lex_left_delim(self) -> Callable[[], Any] | None:
        self.pos += 2
        after = self.text[self.pos : self.pos + 2]
        trim = len(after) == 2 and after[0] == "-" and after[1] in _SPACE
        marker = 2 if trim else 0
        if self.text.startswith("/*", self.pos + marker):
            self.pos += marker
            self.ignore()
            return self.lex_comment
        self.emit("leftDelim")
        self.pos += marker
        self.ignore()
        self.paren_depth = 0
        return self.lex_inside_action

    def lex_comment(self) -> Callable[[], Any] | None:
        self.pos += 2
        end = self.text.find("*/", self.pos)
        if end < 0:
            self.error("unclosed comment")
            return None
        self.pos = end + 2
        delim, trim = self.at_right_delim()
        if not delim:
            self.error("comment ends before closing delimiter")
            return None
        self.pos += (2 if trim else 0) + 2
        if trim:
            rest = self.text[self.pos :]
            self.pos += len(rest) - len(rest.lstrip(_SPACE))
        self.ignore()
        return self.lex_text

    def lex_right_delim(self) -> Callable[[], Any] | None:
        _, trim = self.at_right_delim()
        if trim:
            self.pos += 2
            self.ignore()
        self.pos += 2
        self.emit("rightDelim")
        if trim:
            rest = self.text[self.pos :]
            self.pos += len(rest) - len(rest.lstrip(_SPACE))
            self.ignore()
        return self.lex_text

    def lex_inside_action(self) -> Callable[[], Any] | None:  # noqa: PLR0911 - Go's state function
        delim, _ = self.at_right_delim()
        if delim:
            if self.paren_depth == 0:
                return self.lex_right_delim
            self.error("unclosed left paren")
            return None
        char = self.next()
        if char == _EOF:
            self.error("unclosed action")
            return None
        simple = {"=": "assign", "|": "pipe"}
        if char in _SPACE:
            self.backup()
            return self.lex_space
        if char in simple:
            self.emit(simple[char])
            return self.lex_inside_action
        handlers: dict[str, Callable[[], Callable[[], Any] | None]] = {
            ":": self.lex_declare,
            '"': self.lex_quote,
            "`": self.lex_raw_quote,
            "$": self.lex_variable,
            "'": self.lex_char,
            "(": self.lex_left_paren,
            ")": self.lex_right_paren,
        }
        if char in handlers:
            return handlers[char]()
        if char == "." and self.peek() and not "0" <= self.peek() <= "9":
            return self.lex_field
        if char in "+-." or "0" <= char <= "9":
            self.backup()
            return self.lex_number
        if _is_alphanumeric(char):
            self.backup()
            return self.lex_identifier
        if ord(char) < 0x80 and char.isprintable():
            self.emit("char")
            return self.lex_inside_action
        self.error(f"unrecognized character in action: {_go_rune(char)}")
        return None

    def lex_declare(self) -> Callable[[], Any] | None:
        if self.next() != "=":
            self.error("expected :=")
            return None
        self.emit("declare")
        return self.lex_inside_action

    def lex_left_paren(self) -> Callable[[], Any] | None:
        self.paren_depth += 1
        self.emit("leftParen")
        return self.lex_inside_action

    def lex_right_paren(self) -> Callable[[], Any] | None:
        self.paren_depth -= 1
        self.emit("rightParen")
        return self.lex_inside_action

    def lex_space(self) -> Callable[[], Any] | None:
        spaces = 0
        while self.peek() and self.peek() in _SPACE:
            self.next()
            spaces += 1
        rest = self.text[self.pos - 1 :]
        if len(rest) >= 2 and rest[0] in _SPACE and rest[1] == "-" and rest[2:].startswith("}}"):
            self.backup()
            if spaces == 1:
                return self.lex_right_delim
        self.emit("space")
        return self.lex_inside_action

    def lex_identifier(self) -> Callable[[], Any] | None:
        while _is_alphanumeric(char := self.next()):
            pass
        if char:
            self.backup()
        word = self.text[self.start : self.pos]
        if not self.at_terminator():
            self.error(f"bad character {_go_rune(self.peek())}")
            return None
        if word in _KEYWORDS:
            self.emit(_KEYWORDS[word])
        elif word in ("true", "false"):
            self.emit("bool")
        else:
            self.emit("identifier")
        return self.lex_inside_action

    def lex_field(self) -> Callable[[], Any] | None:
        return self._field_or_variable("field")

    def lex_variable(self) -> Callable[[], Any] | None:
        return self._field_or_variable("variable")

    def _field_or_variable(self, typ: str) -> Callable[[], Any] | None:
        if self.at_terminator():
            self.emit("variable" if typ == "variable" else "dot")
            return self.lex_inside_action
        while _is_alphanumeric(char := self.next()):
            pass
        if char:
            self.backup()
        if not self.at_terminator():
            self.error(f"bad character {_go_rune(self.peek())}")
            return None
        self.emit(typ)
        return self.lex_inside_action

    def lex_quote(self) -> Callable[[], Any] | None:
        return self._lex_escaped('"', "unterminated quoted string", "string")

    def lex_raw_quote(self) -> Callable[[], Any] | None:
        end = self.text.find("`", self.pos)
        if end < 0:
            self.error("unterminated raw quoted string")
            return None
        self.pos = end + 1
        self.emit("rawString")
        return self.lex_inside_action

    def lex_char(self) -> Callable[[], Any] | None:
        return self._lex_escaped("'", "unterminated character constant", "charConstant")

    def _lex_escaped(self, close: str, unterminated: str, token: str) -> Callable[[], Any] | None:
        """A quoted string or character constant: backslash escapes, no newline before ``close``."""
        while True:
            char = self.next()
            if char == "\\":
                escaped = self.next()
                if escaped not in (_EOF, "\n"):
                    continue
                char = escaped
            if char in (_EOF, "\n"):
                self.error(unterminated)
                return None
            if char == close:
                break
        self.emit(token)
        return self.lex_inside_action

    def lex_number(self) -> Callable[[], Any] | None:
        if not self._scan_number():
            self.error(f"bad number syntax: {go_quote(self.text[self.start : self.pos])}")
            return None
        if self.peek() in ("+", "-") and self.peek():
            if not self._scan_number() or self.text[self.pos - 1] != "i":
                self.error(f"bad number syntax: {go_quote(self.text[self.start : self.pos])}")
                return None
            self.emit("complex")
            return self.lex_inside_action
        self.emit("number")
        return self.lex_inside_action

    def _scan_number(self) -> bool:
        self.accept("+-")
        digits = "0123456789_"
        if self.accept("0"):
            if self.accept("xX"):
                digits = "0123456789abcdefABCDEF_"
            elif self.accept("oO"):
                digits = "01234567_"
            elif self.accept("bB"):
                digits = "01_"
        self.accept_run(digits)
        if self.accept("."):
            self.accept_run(digits)
        if len(digits) == 11 and self.accept("eE"):
            self.accept("+-")
            self.accept_run("0123456789_")
        if len(digits) == 23 and self.accept("pP"):
            self.accept("+-")
            self.accept_run("0123456789_")
        self.accept("i")
        if _is_alphanumeric(self.peek()):
            self.next()
            return False
        return True


# ------------------------------------------------------------------ parse nodes (node.go)


@dataclass(frozen=True)
class _Node:
    pos: int

    def __str__(self) -> str:  # pragma: no cover - every node overrides it
        raise NotImplementedError


@dataclass(frozen=True)
class _Text(_Node):
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class _Dot(_Node):
    def __str__(self) -> str:
        return "."


@dataclass(frozen=True)
class _Nil(_Node):
    def __str__(self) -> str:
        return "nil"


@dataclass(frozen=True)
class _Bool(_Node):
    value: bool

    def __str__(self) -> str:
        return "true" if self.value else "false"


@dataclass(frozen=True)
class _Number(_Node):
    text: str
    value: int | float

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class _String(_Node):
    quoted: str
    text: str

    def __str__(self) -> str:
        return self.quoted


@dataclass(frozen=True)
class _Field(_Node):
    idents: tuple[str, ...]

    def __str__(self) -> str:
        return "".join("." + ident for ident in self.idents)


@dataclass(frozen=True)
class _Variable(_Node):
    idents: tuple[str, ...]

    def __str__(self) -> str:
        return ".".join(self.idents)


@dataclass(frozen=True)
class _Identifier(_Node):
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class _Command(_Node):
    args: tuple[_Node, ...]

    def __str__(self) -> str:
        return " ".join(f"({arg})" if isinstance(arg, _Pipe) else str(arg) for arg in self.args)


@dataclass(frozen=True)
class _Pipe(_Node):
    line: int
    cmds: tuple[_Command, ...]

    def __str__(self) -> str:
        return " | ".join(str(cmd) for cmd in self.cmds)


@dataclass(frozen=True)
class _Chain(_Node):
    node: _Node
    fields: tuple[str, ...]

    def __str__(self) -> str:
        head = f"({self.node})" if isinstance(self.node, _Pipe) else str(self.node)
        return head + "".join("." + name for name in self.fields)


@dataclass(frozen=True)
class _Action(_Node):
    line: int
    pipe: _Pipe

    def __str__(self) -> str:
        return "{{" + str(self.pipe) + "}}"


# ------------------------------------------------------------------ parsing (parse.go)

_OPERAND_START = frozenset(
    ("bool", "charConstant", "complex", "dot", "field", "identifier", "number", "nil", "rawString")
) | {"string", "variable", "leftParen"}
_CONTROL = ("if", "range", "with", "define", "template", "block")


class _Parser:
    def __init__(self, name: str, text: str, functions: Mapping[str, _Function]) -> None:
        self.name = name
        self.items = _Lexer(text).run()
        self.index = 0
        self.seen = 0  # the furthest token read: Go reports a parse error at its line
        self.functions = functions

    # -- tokens

    def next(self) -> _Item:
        item = self.items[self.index]
        self.index += 1
        self.seen = max(self.seen, self.index - 1)
        return item

    def backup(self, count: int = 1) -> None:
        self.index -= count

    def peek(self) -> _Item:
        self.seen = max(self.seen, self.index)
        return self.items[self.index]

    def next_non_space(self) -> _Item:
        while (item := self.next()).typ == "space":
            pass
        return item

    def peek_non_space(self) -> _Item:
        item = self.next_non_space()
        self.backup()
        return item

    def errorf(self, message: str) -> TemplateError:
        line = self.items[min(self.seen, len(self.items) - 1)].line
        return TemplateError(f"template: {self.name}:{line}: {message}")

    def not_emulated(self, what: str) -> TemplateError:
        return self.errorf(f"{what} {NOT_EMULATED}")

    # -- grammar

    def parse(self) -> list[_Text | _Action]:
        nodes: list[_Text | _Action] = []
        while self.peek().typ != "EOF":
            item = self.next_non_space()
            if item.typ == "text":
                nodes.append(_Text(item.pos, item.val))
            elif item.typ == "leftDelim":
                nodes.append(self.action())
            elif item.typ == "error":
                raise self.errorf(item.val)
            else:
                raise self.errorf(f"unexpected {item} in input")
        return nodes

    def action(self) -> _Action:
        token = self.next_non_space()
        if token.typ in ("else", "end"):
            raise self.errorf(f"unexpected {{{{{token.typ}}}}}")
        if token.typ in ("break", "continue"):
            raise self.errorf(f"{{{{{token.typ}}}}} outside {{{{range}}}}")
        if token.typ in _CONTROL:
            raise self.not_emulated(f'the action "{token.val}"')
        if token.typ == "error":
            raise self.errorf(token.val)
        self.backup()
        start = self.peek()
        return _Action(start.pos, start.line, self.pipeline("command", "rightDelim"))

    def pipeline(self, context: str, end: str) -> _Pipe:
        start = self.peek_non_space()
        if start.typ == "variable":
            mark = self.index
            self.next_non_space()
            following = self.peek_non_space()
            if following.typ in ("assign", "declare") or (following.typ == "char" and following.val == ","):
                raise self.not_emulated("a variable declaration")
            self.index = mark
        cmds: list[_Command] = []
        while True:
            token = self.next_non_space()
            if token.typ == end:
                self.check_pipeline(cmds, context)
                return _Pipe(start.pos, start.line, tuple(cmds))
            if token.typ in _OPERAND_START:
                self.backup()
                cmds.append(self.command())
            elif token.typ == "error":
                raise self.errorf(token.val)
            else:
                raise self.errorf(f"unexpected {token} in {context}")

    def check_pipeline(self, cmds: list[_Command], context: str) -> None:
        if not cmds:
            raise self.errorf(f"missing value for {context}")
        for stage, cmd in enumerate(cmds[1:], start=2):
            if isinstance(cmd.args[0], _Bool | _Dot | _Nil | _Number | _String):
                raise self.errorf(f"non executable command in pipeline stage {stage}")

    def command(self) -> _Command:
        start = self.peek_non_space()
        args: list[_Node] = []
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                args.append(operand)
            token = self.next()
            if token.typ == "space":
                continue
            if token.typ == "error":
                raise self.errorf(token.val)
            if token.typ in ("rightDelim", "rightParen"):
                self.backup()
            elif token.typ != "pipe":
                raise self.errorf(f"unexpected {token} in operand")
            break
        if not args:
            raise self.errorf("empty command")
        return _Command(start.pos, tuple(args))

    def operand(self) -> _Node | None:
        node = self.term()
        if node is None or self.peek().typ != "field":
            return node
        chain_pos = self.peek().pos
        fields: list[str] = []
        while self.peek().typ == "field":
            fields.append(self.next().val[1:])
        if isinstance(node, _Field):
            return _Field(chain_pos, node.idents + tuple(fields))
        if isinstance(node, _Variable):
            return _Variable(chain_pos, node.idents + tuple(fields))
        if isinstance(node, _Bool | _String | _Number | _Nil | _Dot):
            raise self.errorf(f"unexpected . after term {go_quote(str(node))}")
        return _Chain(chain_pos, node, tuple(fields))

    def term(self) -> _Node | None:
        token = self.next_non_space()
        typ = token.typ
        if typ == "error":
            raise self.errorf(token.val)
        if typ == "identifier":
            return self.identifier(token)
        if typ == "leftParen":
            return self.pipeline("parenthesized pipeline", "rightParen")
        simple: dict[str, Callable[[_Item], _Node]] = {
            "dot": lambda t: _Dot(t.pos),
            "nil": lambda t: _Nil(t.pos),
            "bool": lambda t: _Bool(t.pos, t.val == "true"),
            "field": lambda t: _Field(t.pos, (t.val[1:],)),
            "variable": self.variable,
            "number": self.number,
            "charConstant": self.number,
            "complex": lambda t: self._raise(self.not_emulated("a complex number")),
            "string": self.string,
            "rawString": self.string,
        }
        if typ in simple:
            return simple[typ](token)
        self.backup()
        return None

    @staticmethod
    def _raise(error: Exception) -> _Node:
        raise error

    def identifier(self, token: _Item) -> _Node:
        if token.val not in self.functions:
            if token.val in _ESO_FUNCTIONS:
                raise self.not_emulated(f"function {go_quote(token.val)}")
            raise self.errorf(f"function {go_quote(token.val)} not defined")
        return _Identifier(token.pos, token.val)

    def variable(self, token: _Item) -> _Node:
        if token.val != "$":
            raise self.errorf(f"undefined variable {go_quote(token.val)}")
        return _Variable(token.pos, ("$",))

    def string(self, token: _Item) -> _Node:
        try:
            return _String(token.pos, token.val, unquote(token.val))
        except ValueError:
            raise self.errorf("invalid syntax") from None

    def number(self, token: _Item) -> _Node:
        text = token.val
        if token.typ == "charConstant":
            try:
                value, rest = _unquote_char(text[1:], "'")
            except ValueError:
                raise self.errorf("invalid syntax") from None
            if rest != "'":
                raise self.errorf(f"malformed character constant: {text}")
            return _Number(token.pos, text, ord(value))
        if text.endswith("i"):
            raise self.not_emulated("a complex number")
        parsed = _parse_number(text)
        if parsed is None:
            raise self.errorf(f"illegal number syntax: {go_quote(text)}")
        if isinstance(parsed, int) and not -(2**63) <= parsed < 2**64:
            raise self.errorf(f"integer overflow: {go_quote(text)}")
        return _Number(token.pos, text, parsed)


def _parse_number(text: str) -> int | float | None:
    """``strconv.ParseInt(text, 0, 64)``, else ``ParseFloat``: Go's base prefixes and octal ``0``."""
    try:
        return int(text, 0)
    except ValueError:
        pass
    body = text.lstrip("+-").replace("_", "")
    try:
        if len(body) > 1 and body[0] == "0" and body.isdigit():
            return int(text.replace("_", ""), 8)
        value = float.fromhex(text) if body[:2].lower() == "0x" else float(text.replace("_", ""))
    except ValueError:
        return None
    return None if math.isinf(value) else value


_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


def _unquote_char(text: str, quote: str) -> tuple[str, str]:  # noqa: PLR0912 - strconv's cases
    """``strconv.UnquoteChar``: one (possibly escaped) character and the rest; ``ValueError`` if bad."""
    if not text:
        raise ValueError("empty")
    if text[0] != "\\":
        if text[0] == quote and quote in "'\"":
            raise ValueError("unescaped quote")
        return text[0], text[1:]
    if len(text) < 2:
        raise ValueError("lone backslash")
    escape, rest = text[1], text[2:]
    if escape in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[escape], rest
    if escape in "'\"":
        if escape != quote:
            raise ValueError("wrong quote escaped")
        return escape, rest
    widths = {"x": 2, "u": 4, "U": 8}
    if escape in widths:
        digits, rest = rest[: widths[escape]], rest[widths[escape] :]
        if len(digits) != widths[escape] or any(c not in "0123456789abcdefABCDEF" for c in digits):
            raise ValueError("bad hex")
        code = int(digits, 16)
        if escape == "x":
            return (chr(code) if code < 0x80 else chr(0xDC00 + code)), rest  # a raw byte
        if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            raise ValueError("bad rune")
        return chr(code), rest
    if escape in "01234567":
        digits, rest = text[1:4], text[4:]
        if len(digits) != 3 or any(c not in "01234567" for c in digits) or int(digits, 8) > 255:
            raise ValueError("bad octal")
        code = int(digits, 8)
        return (chr(code) if code < 0x80 else chr(0xDC00 + code)), rest
    raise ValueError("unknown escape")


def unquote(literal: str) -> str:
    """``strconv.Unquote`` of a template string literal (``"..."`` or a raw ```...```)."""
    if len(literal) < 2 or literal[0] != literal[-1] or literal[0] not in '"`':
        raise ValueError("not quoted")
    body = literal[1:-1]
    if literal[0] == "`":
        return body.replace("\r", "")
    out: list[str] = []
    while body:
        char, body = _unquote_char(body, '"')
        out.append(char)
    return go_string(go_bytes("".join(out)))  # escaped bytes that form UTF-8 become characters


# ------------------------------------------------------------------ values (reflect, as exec.go sees them)


@dataclass(frozen=True)
class _Value:
    """A ``reflect.Value``: its Go type and content. ``interface {}``: ``data`` is a ``_Value`` or None."""

    type: str
    data: Any


_MISSING = _Value("missingValType", None)  # exec.go's missingVal: no final pipeline value
_STRING, _IFACE, _RVALUE = "string", "interface {}", "reflect.Value"
_MAP_ANY, _SLICE, _MAP_STRING = "map[string]interface {}", "[]interface {}", "map[string]string"


_JSON_TYPES: tuple[tuple[type, str], ...] = (
    (dict, _MAP_ANY),
    (list, _SLICE),
    (bool, "bool"),  # before int: a bool is an int in Python
    (float, "float64"),
    (int, "int"),
    (str, _STRING),
)


def _concrete(obj: Any) -> _Value | None:
    """The dynamic value an ``interface{}`` holds after ``json.Unmarshal`` (None: nil)."""
    if obj is None:
        return None
    for python_type, go_type in _JSON_TYPES:
        if isinstance(obj, python_type):
            return _Value(go_type, obj)
    return _Value(_STRING, str(obj))


def _element(obj: Any) -> _Value:
    return _Value(_IFACE, _concrete(obj))


def _indirect(value: _Value) -> tuple[_Value, bool]:
    """exec.go's ``indirect``: through interfaces; a nil one is returned with ``True``."""
    while value.type == _IFACE:
        if value.data is None:
            return value, True
        value = value.data
    return value, False


def _can_be_nil(typ: str) -> bool:
    """exec.go's ``canBeNil``: interfaces, maps, slices, and ``reflect.Value`` (``index``'s arguments)."""
    return typ in (_IFACE, _MAP_ANY, _SLICE, _MAP_STRING, _RVALUE)


def _python(value: _Value | None) -> Any:
    """The Go value as a plain Python object (maps, lists, strings, numbers, None)."""
    if value is None:
        return None
    if value.type in (_IFACE, _RVALUE):
        return _python(value.data)
    return value.data


def _format_v(obj: Any) -> str:
    """Go's ``%v`` (``fmt.Fprint``) of a value inside a printed one: nil is ``<nil>``, maps sorted."""
    if obj is None:
        return "<nil>"
    if isinstance(obj, bool):
        return "true" if obj else "false"
    if isinstance(obj, float):
        return format_float(obj)
    if isinstance(obj, dict):
        return "map[" + " ".join(f"{key}:{_format_v(obj[key])}" for key in sorted(obj)) + "]"
    if isinstance(obj, list):
        return "[" + " ".join(_format_v(item) for item in obj) + "]"
    return str(obj)


# ------------------------------------------------------------------ ESO's functions (sprig, funcs.go)


class _CallError(Exception):
    """A function returned an error (``error calling <name>: ...``)."""


@dataclass(frozen=True)
class _Function:
    params: tuple[str, ...]
    call: Callable[[list[_Value | None]], _Value | None]
    variadic: str | None = None


def _string_fn(transform: Callable[[str], str]) -> _Function:
    return _Function((_STRING,), lambda args: _Value(_STRING, transform(_python(args[0]))))


def _b64dec(text: str) -> str:
    """sprig's ``base64decode``: Go's ``StdEncoding``; a bad input yields the error text itself."""
    try:
        return go_string(go_base64_decode(go_bytes(text)))
    except DecodeError as error:
        return str(error)


def _from_json(text: str) -> _Value:
    """sprig's ``fromJson``: ``json.Unmarshal`` into ``interface{}`` (float64 numbers); an error is nil."""

    def reject(constant: str) -> Any:
        raise ValueError(constant)

    def clean(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {_valid_utf8(key): clean(item) for key, item in obj.items()}
        if isinstance(obj, list):
            return [clean(item) for item in obj]
        if isinstance(obj, float) and math.isinf(obj):
            raise ValueError("number out of range")
        return _valid_utf8(obj) if isinstance(obj, str) else obj

    try:
        decoded = json.loads(_valid_utf8(text), parse_int=float, parse_float=float, parse_constant=reject)
        return _Value(_IFACE, _concrete(clean(decoded)))
    except ValueError:
        return _Value(_IFACE, None)


def _to_json(args: list[_Value | None]) -> _Value:
    """sprig's ``toJson``: ``json.Marshal`` (HTML-escaping, sorted keys); an error is ``""``."""

    def clean(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {_valid_utf8(str(key)): clean(item) for key, item in obj.items()}
        if isinstance(obj, list):
            return [clean(item) for item in obj]
        return _valid_utf8(obj) if isinstance(obj, str) else obj

    try:
        return _Value(_STRING, marshal(clean(_python(args[0]))))
    except (TypeError, ValueError):
        return _Value(_STRING, "")


def _quote(args: list[_Value | None]) -> _Value:
    """sprig's ``quote``: each non-nil argument as Go's ``%q`` of its ``strval``, space-separated."""
    quoted = [go_quote(_format_v(_python(arg))) for arg in args if _python(arg) is not None]
    return _Value(_STRING, " ".join(quoted))


def _trim_space(text: str) -> str:
    """``strings.TrimSpace``: Unicode white space as Go's ``unicode.IsSpace`` defines it."""

    def space(char: str) -> bool:
        return char in "\t\n\v\f\r \x85\xa0" or unicodedata.category(char) in ("Zs", "Zl", "Zp")

    start, end = 0, len(text)
    while start < end and space(text[start]):
        start += 1
    while end > start and space(text[end - 1]):
        end -= 1
    return text[start:end]


def _case(convert: Callable[[str], str]) -> Callable[[str], str]:
    """``strings.ToUpper``/``ToLower``: rune by rune; a rune without a one-rune mapping stays."""

    def apply(text: str) -> str:
        out = []
        for char in text:
            mapped = convert(char)
            out.append(mapped if len(mapped) == 1 else char)
        return "".join(out)

    return apply


def _index_arg(index: _Value | None, size: int) -> int:
    if index is None:
        raise _CallError("cannot index slice/array with nil")
    if index.type not in ("int", "uint8"):
        raise _CallError(f"cannot index slice/array with type {index.type}")
    position = int(index.data)
    if position < 0 or position > size:
        raise _CallError(f"index out of range: {position}")
    return position


def _indirect_interface(value: _Value | None) -> _Value | None:
    if value is None or value.type != _IFACE:
        return value
    inner: _Value | None = value.data
    return inner


def _index_once(item: _Value, index: _Value | None) -> _Value:
    if item.type in (_SLICE, _STRING):
        size = len(item.data) if item.type == _SLICE else len(go_bytes(item.data))
        position = _index_arg(index, size)
        if position == size:  # Go checks with > and then panics in reflect
            kind = "slice" if item.type == _SLICE else "string"
            raise _CallError(f"reflect: {kind} index out of range")
        if item.type == _SLICE:
            return _element(item.data[position])
        return _Value("uint8", go_bytes(item.data)[position])
    if item.type in (_MAP_STRING, _MAP_ANY):
        if index is None:
            raise _CallError("value is nil; should be of type string")
        if index.type != _STRING:
            raise _CallError(f"value has type {index.type}; should be string")
        if item.type == _MAP_STRING:
            return _Value(_STRING, item.data.get(index.data, ""))
        return _element(item.data.get(index.data))
    raise _CallError(f"can't index item of type {item.type}")


def _index(args: list[_Value | None]) -> _Value | None:
    """Go's builtin ``index``: ``index x 1 "k"`` is ``x[1]["k"]``; a missing map key is the zero value."""
    first = args[0]
    item = _indirect_interface(first.data if first is not None else None)
    if item is None:
        raise _CallError("index of untyped nil")
    for wrapped in args[1:]:
        index = _indirect_interface(wrapped.data if wrapped is not None else None)
        item, is_nil = _indirect(item)
        if is_nil:
            raise _CallError("index of nil pointer")
        item = _index_once(item, index)
    return item


FUNCTIONS: Mapping[str, _Function] = {
    "b64enc": _string_fn(lambda text: base64.b64encode(go_bytes(text)).decode()),
    "b64dec": _string_fn(_b64dec),
    "fromJson": _Function((_STRING,), lambda args: _from_json(_python(args[0]))),
    "toJson": _Function((_IFACE,), _to_json),
    "upper": _string_fn(_case(str.upper)),
    "lower": _string_fn(_case(str.lower)),
    "trim": _string_fn(_trim_space),
    "quote": _Function((), _quote, variadic=_IFACE),
    "index": _Function((_RVALUE,), _index, variadic=_RVALUE),
}
EMULATED_FUNCTIONS = tuple(sorted(FUNCTIONS))


# ------------------------------------------------------------------ execution (exec.go)


@dataclass
class _State:
    name: str
    text: str
    root: _Value
    node: _Node | None = field(default=None)

    def at(self, node: _Node) -> None:
        self.node = node

    def errorf(self, message: str) -> TemplateError:
        if self.node is None:
            return TemplateError(f"template: {self.name}: {message}")
        before = go_bytes(self.text[: self.node.pos])
        line = 1 + before.count(b"\n")
        column = len(before) - (before.rfind(b"\n") + 1) if b"\n" in before else len(before)
        return TemplateError(
            f"template: {self.name}:{line}:{column}: executing {go_quote(self.name)} "
            f"at <{self.node}>: {message}"
        )

    # -- pipelines and commands

    def eval_pipeline(self, dot: _Value, pipe: _Pipe) -> _Value | None:
        self.at(pipe)
        value: _Value | None = _MISSING
        for cmd in pipe.cmds:
            value = self.eval_command(dot, cmd, value)
            if value is not None and value.type == _IFACE:
                value = value.data  # exec.go digs one level into an interface{}
        return value

    def not_a_function(self, args: tuple[_Node, ...], final: _Value | None) -> None:
        if len(args) > 1 or final is not _MISSING:
            raise self.errorf(f"can't give argument to non-function {args[0]}")

    def eval_command(self, dot: _Value, cmd: _Command, final: _Value | None) -> _Value | None:
        first = cmd.args[0]
        if isinstance(first, _Field):
            return self.eval_field_node(dot, first, cmd.args, final)
        if isinstance(first, _Chain):
            return self.eval_chain(dot, first, cmd.args, final)
        if isinstance(first, _Identifier):
            return self.eval_function(dot, first, cmd, cmd.args, final)
        if isinstance(first, _Pipe):
            self.not_a_function(cmd.args, final)
            return self.eval_pipeline(dot, first)
        if isinstance(first, _Variable):
            return self.eval_variable(dot, first, cmd.args, final)
        self.at(first)
        self.not_a_function(cmd.args, final)
        if isinstance(first, _Nil):
            raise self.errorf("nil is not a command")
        return self.literal(dot, first)

    def literal(self, dot: _Value, node: _Node) -> _Value:
        if isinstance(node, _Bool):
            return _Value("bool", node.value)
        if isinstance(node, _Number):
            return self.ideal_constant(node)
        if isinstance(node, _String):
            return _Value(_STRING, node.text)
        if isinstance(node, _Dot):
            return dot
        raise self.errorf(f"can't evaluate command {go_quote(str(node))}")

    def ideal_constant(self, node: _Number) -> _Value:
        self.at(node)
        if isinstance(node.value, float):
            return _Value("float64", node.value)
        if not -(2**63) <= node.value < 2**63:
            raise self.errorf(f"{node.text} overflows int")
        return _Value("int", node.value)

    # -- fields

    def eval_variable(
        self, dot: _Value, node: _Variable, args: tuple[_Node, ...] | None, final: _Value | None
    ) -> _Value | None:
        self.at(node)
        if len(node.idents) == 1:
            self.not_a_function(args or (node,), final)
            return self.root
        return self.eval_field_chain(self.root, node.idents[1:], args, final)

    def eval_field_node(
        self, dot: _Value, node: _Field, args: tuple[_Node, ...] | None, final: _Value | None
    ) -> _Value | None:
        self.at(node)
        return self.eval_field_chain(dot, node.idents, args, final)

    def eval_chain(
        self, dot: _Value, chain: _Chain, args: tuple[_Node, ...] | None, final: _Value | None
    ) -> _Value | None:
        self.at(chain)
        if isinstance(chain.node, _Nil):
            raise self.errorf(f"indirection through explicit nil in {chain}")
        receiver = self.eval_arg(dot, None, chain.node)
        return self.eval_field_chain(receiver, chain.fields, args, final)

    def eval_field_chain(
        self,
        receiver: _Value | None,
        idents: tuple[str, ...],
        args: tuple[_Node, ...] | None,
        final: _Value | None,
    ) -> _Value | None:
        """``evalFieldChain``: each field of the receiver in turn; the last one gets the arguments."""
        for ident in idents[:-1]:
            receiver = self.eval_field(ident, None, _MISSING, receiver)
        return self.eval_field(idents[-1], args, final, receiver)

    def eval_field(
        self, name: str, args: tuple[_Node, ...] | None, final: _Value | None, receiver: _Value | None
    ) -> _Value | None:
        if receiver is None:
            raise self.errorf(f"nil data; no entry for key {go_quote(name)}")
        typ = receiver.type
        receiver, is_nil = _indirect(receiver)
        if receiver.type == _IFACE and is_nil:
            raise self.errorf(f"nil pointer evaluating {typ}.{name}")
        if receiver.type in (_MAP_STRING, _MAP_ANY):
            if len(args or ()) > 1 or final is not _MISSING:
                raise self.errorf(f"{name} is not a method but has arguments")
            if name not in receiver.data:
                raise self.errorf(f"map has no entry for key {go_quote(name)}")
            element = receiver.data[name]
            return _Value(_STRING, element) if receiver.type == _MAP_STRING else _element(element)
        raise self.errorf(f"can't evaluate field {name} in type {typ}")

    # -- calls

    def eval_function(
        self,
        dot: _Value,
        node: _Identifier,
        cmd: _Node,
        args: tuple[_Node, ...] | None,
        final: _Value | None,
    ) -> _Value | None:
        self.at(node)
        function = FUNCTIONS[node.name]
        given = list(args[1:]) if args is not None else []
        count = len(given) + (0 if final is _MISSING else 1)
        fixed = len(function.params) if function.variadic else len(given)
        if function.variadic is not None and count < fixed:
            raise self.errorf(f"wrong number of args for {node.name}: want at least {fixed} got {len(given)}")
        if function.variadic is None and count != len(function.params):
            raise self.errorf(
                f"wrong number of args for {node.name}: want {len(function.params)} got {count}"
            )
        argv: list[_Value | None] = []
        for position, arg in enumerate(given):
            typ = function.params[position] if position < fixed else function.variadic
            argv.append(self.eval_arg(dot, typ, arg))
        if final is not _MISSING:
            if function.variadic is None:
                typ = function.params[-1]
            else:
                typ = function.params[count - 1] if count - 1 < fixed else function.variadic
            argv.append(self.validate_type(final, typ))
        try:
            result = function.call(argv)
        except _CallError as error:
            self.at(cmd)
            raise self.errorf(f"error calling {node.name}: {error}") from None
        if result is not None and result.type == _RVALUE:
            inner: _Value | None = result.data
            return inner
        return result

    def eval_arg(self, dot: _Value, typ: str | None, node: _Node) -> _Value | None:
        self.at(node)
        if isinstance(node, _Dot):
            return self.validate_type(dot, typ)
        if isinstance(node, _Nil):
            if typ is not None and _can_be_nil(typ):
                return _Value(typ, None)
            raise self.errorf(f"cannot assign nil to {typ}")
        if isinstance(node, _Field | _Variable | _Pipe | _Identifier | _Chain):
            return self.validate_type(self.eval_operand(dot, node), typ)
        if typ == _STRING:
            if isinstance(node, _String):
                return _Value(_STRING, node.text)
            raise self.errorf(f"expected string; found {node}")
        if typ == _IFACE:
            return self.literal(dot, node)
        if typ == _RVALUE:
            return _Value(_RVALUE, self.literal(dot, node))
        raise self.errorf(f"can't handle {node} for arg of type {typ}")

    def eval_operand(self, dot: _Value, node: _Node) -> _Value | None:
        """``evalArg`` of a node that is evaluated before its type is checked."""
        if isinstance(node, _Field):
            return self.eval_field_node(dot, node, (node,), _MISSING)
        if isinstance(node, _Variable):
            return self.eval_variable(dot, node, None, _MISSING)
        if isinstance(node, _Pipe):
            return self.eval_pipeline(dot, node)
        if isinstance(node, _Identifier):
            return self.eval_function(dot, node, node, None, _MISSING)
        assert isinstance(node, _Chain)
        return self.eval_chain(dot, node, None, _MISSING)

    def validate_type(self, value: _Value | None, typ: str | None) -> _Value | None:
        if value is None:
            if typ is None:
                return None
            if _can_be_nil(typ):
                return _Value(typ, None)
            raise self.errorf(f"invalid value; expected {typ}")
        if typ == _RVALUE and value.type != _RVALUE:
            return _Value(_RVALUE, value)
        if typ is not None and typ not in (value.type, _IFACE):
            if value.type == _IFACE and value.data is not None:
                value = value.data
                if value.type == typ:
                    return value
            raise self.errorf(f"wrong type for value; expected {typ}; got {value.type}")
        return value

    def print_value(self, node: _Action, value: _Value | None) -> str:
        """``printValue``: an invalid value is ``<no value>``, anything else Go's ``%v``."""
        self.at(node)
        return "<no value>" if value is None else _format_v(_python(value))


# ------------------------------------------------------------------ the API


@dataclass(frozen=True)
class Template:
    """A parsed template (``template.New(name).Option("missingkey=error").Funcs(...).Parse(text)``)."""

    name: str
    text: str
    nodes: tuple[_Text | _Action, ...]

    def execute(self, data: Mapping[str, str]) -> str:
        """``Execute`` on a ``map[string]string``: the rendered text, or a ``TemplateError``."""
        state = _State(self.name, self.text, _Value(_MAP_STRING, dict(data)))
        out: list[str] = []
        for node in self.nodes:
            if isinstance(node, _Text):
                out.append(node.text)
                continue
            state.at(node)
            value = state.eval_pipeline(state.root, node.pipe)
            out.append(state.print_value(node, value))
        return "".join(out)


def parse(name: str, text: str) -> Template:
    """Parse ``text`` as the template ``name``; a ``TemplateError`` (Go's parse error) if it is not one."""
    return Template(name, text, tuple(_Parser(name, text, FUNCTIONS).parse()))
