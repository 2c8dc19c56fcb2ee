"""The Go ``text/template`` subset of ESO's template engine v2 (``vaultflow.sandbox.eso.gotemplate``).

Upstream: Go's ``text/template/parse/lex.go``, ``parse.go``, ``text/template/exec.go`` and
``funcs.go``, run as ESO's ``runtime/template/v2/template.go`` runs them (``missingkey=error``,
data as ``map[string]string``), with sprig's functions from ``runtime/template/v2/sprig``.
Every expected output and error text below is what Go's ``text/template`` produced for the
same template and data.
"""

from __future__ import annotations

import base64

import pytest

from vaultflow.sandbox.eso import gotemplate
from vaultflow.sandbox.eso.gotemplate import TemplateError

JSON = '{"host":"db","port":5432,"big":1000000,"tags":["a","b"],"n":null,"f":1.5,"nested":{"k":"v"}}'
DATA = {"user": "admin", "pass": "p@ss w0rd", "json": JSON, "b64": "aGVsbG8=", "sp": "  x  "}


def render(text: str, data: dict[str, str] | None = None, name: str = "k") -> str:
    return gotemplate.parse(name, text).execute(DATA if data is None else data)


def failure(text: str, data: dict[str, str] | None = None, name: str = "k") -> str:
    with pytest.raises(TemplateError) as raised:
        render(text, data, name)
    return str(raised.value)


# ------------------------------------------------------------------ pipes and fields


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{ .user }}", "admin"),
        ("{{ .user | b64enc }}", "YWRtaW4="),
        ("{{ b64enc .user }}", "YWRtaW4="),
        ("{{ .user | b64enc | b64dec | upper }}", "ADMIN"),
        ("{{ ( .user | upper ) | lower }}", "admin"),
        ("{{ .b64 | b64dec }}", "hello"),
        ("{{ (.json | fromJson).host }}:{{ (.json | fromJson).port }}", "db:5432"),
        ("{{ (.json | fromJson).nested.k }}", "v"),
        ('{{ index (.json | fromJson) "host" }}|{{ index (.json | fromJson).tags 1 }}', "db|b"),
        ('{{ index . "user" }}|{{ index . "absent" }}|', "admin||"),
        ("{{ $.user }}", "admin"),
        ("{{ .sp | trim | quote }}", '"x"'),
    ],
)
def test_pipes_fields_and_calls(text: str, expected: str) -> None:
    assert render(text) == expected


def test_a_connection_string_renders_from_several_keys() -> None:
    text = "postgres://{{ .user }}:{{ .pass | quote }}@{{ (.json | fromJson).host }}/app"
    assert render(text) == 'postgres://admin:"p@ss w0rd"@db/app'


def test_values_print_as_go_prints_them() -> None:
    """``%v``: floats in shortest form with Go's exponent rule, maps sorted, nil as ``<nil>``."""
    data = {"j": '{"x":1000000,"y":[1,2.5,"s",null,true],"z":{"q":"<&>"}}'}
    assert render("{{ (.j | fromJson).x }}", data) == "1e+06"
    assert render("{{ (.j | fromJson).y }}", data) == "[1 2.5 s <nil> true]"
    assert render("{{ .j | fromJson }}", data) == "map[x:1e+06 y:[1 2.5 s <nil> true] z:map[q:<&>]]"
    assert render("{{ . }}", {"b": "2", "a": "1"}) == "map[a:1 b:2]"
    assert render('{{ (.j | fromJson).n }}|{{ index (.j | fromJson) "n" }}', {"j": '{"n":null}'}) == (
        "<no value>|<no value>"
    )
    numbers = '{"f":1.0,"g":1e21,"h":1e-7,"i":123456789012345678,"j":0.000001}'
    assert render("{{ fromJson .a }}", {"a": numbers}) == (
        "map[f:1 g:1e+21 h:1e-07 i:1.2345678901234568e+17 j:1e-06]"
    )


def test_to_json_escapes_as_go_json_marshal() -> None:
    assert render("{{ toJson .a }}", {"a": "<x>&\u2028"}) == '"\\u003cx\\u003e\\u0026\\u2028"'
    assert render("{{ (.j | fromJson).z | toJson }}", {"j": '{"z":{"q":"<&>","a":1}}'}) == (
        '{"a":1,"q":"\\u003c\\u0026\\u003e"}'
    )
    numbers = '{"f": 1.0, "g": 1e21, "h": 1e-7, "i": 123456789012345678}'
    assert render("{{ fromJson .a | toJson }}", {"a": numbers}) == (
        '{"f":1,"g":1e+21,"h":1e-7,"i":123456789012345680}'
    )


def test_sprig_functions_keep_their_quirks() -> None:
    """b64dec returns Go's error text; a bad fromJson is nil; quote skips nil; trim is Unicode's."""
    assert render("{{ .a | b64dec }}", {"a": "eA="}) == "illegal base64 data at input byte 3"
    assert render('{{ fromJson "not json" }}') == "<no value>"
    assert render("{{ quote (.j | fromJson).n }}", {"j": '{"n":null}'}) == ""
    assert render('{{ quote .user "b" 1 }}') == '"admin" "b" "1"'
    assert render("{{ trim .a }}|{{ upper .b }}", {"a": " \t x \u00a0\u0085", "b": "aBß"}) == "x|ABß"


def test_binary_values_survive_b64enc() -> None:
    """Go strings are bytes: a value that is not UTF-8 is encoded byte for byte."""
    raw = bytes(range(256))
    data = {"bin": gotemplate.go_string(raw)}
    assert render("{{ .bin | b64enc }}", data) == base64.b64encode(raw).decode()
    assert gotemplate.go_bytes(render("{{ .bin }}", data)) == raw


# ------------------------------------------------------------------ trimming and comments


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  x  {{- .a -}}  \n y", "  xxy"),
        ("{{ .a -}}\n\n  b", "xb"),
        ("a\n{{- .a }}\n  {{- .a -}}  \n\n{{ .a }}", "axxx"),
        ("x{{-3}}", "x-3"),  # no space after the dash: a negative number, not a trim marker
        ("{{/* c */}}a{{- /* c */ -}} b", "ab"),
        ("{{- .a -}}", "x"),
        ("{{ .a }}}", "x}"),
    ],
)
def test_trim_markers_and_comments(text: str, expected: str) -> None:
    assert render(text, {"a": "x"}) == expected


# ------------------------------------------------------------------ literals and quoting


def test_string_literals_unquote_as_go_does() -> None:
    assert render('{{ quote "b\\n\\t\\"é\\x01" }}') == '"b\\n\\t\\"é\\x01"'
    assert render("{{ `raw\\n` }}") == "raw\\n"
    assert render('{{ "\\u00e9\\x41\\101" }}') == "éAA"
    assert render("{{ 'a' }} {{ 12 }} {{ 1.5 }} {{ 0x1F }} {{ 017 }} {{ true }}") == "97 12 1.5 31 15 true"


def test_quote_escapes_as_strconv_quote() -> None:
    assert render("{{ .a | quote }}", {"a": "a\u00e9\u2028\u0000\u007f"}) == '"aé\\u2028\\x00\\x7f"'
    assert render("{{ .a | quote }}", {"a": gotemplate.go_string(b"\xff")}) == '"\\xff"'


# ------------------------------------------------------------------ errors, as Go words them


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{ .a", "template: k:1: unclosed action"),
        ("{{ }}", "template: k:1: missing value for command"),
        ("{{ | b64enc }}", 'template: k:1: unexpected "|" in command'),
        ('{{ .a | "x" }}', "template: k:1: non executable command in pipeline stage 2"),
        ('{{ "abc }}', "template: k:1: unterminated quoted string"),
        ("{{ .a # }}", 'template: k:1: unexpected "#" in operand'),
        ("{{ .my-key }}", "template: k:1: bad character U+002D '-'"),
        ("{{ (.a }}", "template: k:1: unclosed left paren"),
        ("{{ .a ) }}", 'template: k:1: unexpected ")" in command'),
        ('{{ "\\q" }}', "template: k:1: invalid syntax"),
        ('{{ "abc".x }}', 'template: k:1: unexpected . after term "\\"abc\\""'),
        ("{{/* c */ .a}}", "template: k:1: comment ends before closing delimiter"),
        ("{{/* c ", "template: k:1: unclosed comment"),
        ("x{{-.a}}", 'template: k:1: bad number syntax: "-.a"'),
        ("{{ end }}", "template: k:1: unexpected {{end}}"),
        ("{{ $x }}", 'template: k:1: undefined variable "$x"'),
        ("line1\nline2 {{ foo .a }}", 'template: k:2: function "foo" not defined'),
        ("{{ 99999999999999999999 }}", 'template: k:1: integer overflow: "99999999999999999999"'),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    assert failure(text, {"a": "x"}) == message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "{{ .missing }}",
            'template: k:1:3: executing "k" at <.missing>: map has no entry for key "missing"',
        ),
        (
            "ab\n  {{ .missing }}",
            'template: k:2:5: executing "k" at <.missing>: map has no entry for key "missing"',
        ),
        (  # columns are byte offsets: "é" is two bytes
            "é{{ .zz }}",
            'template: k:1:5: executing "k" at <.zz>: map has no entry for key "zz"',
        ),
        ("{{ .a.b }}", 'template: k:1:5: executing "k" at <.a.b>: can\'t evaluate field b in type string'),
        ("{{ .a .b }}", 'template: k:1:3: executing "k" at <.a>: a is not a method but has arguments'),
        (
            "{{ b64enc }}",
            'template: k:1:3: executing "k" at <b64enc>: wrong number of args for b64enc: want 1 got 0',
        ),
        (
            "{{ .a | b64enc .a }}",
            'template: k:1:8: executing "k" at <b64enc>: wrong number of args for b64enc: want 1 got 2',
        ),
        (
            "{{ .j | fromJson | b64enc }}",
            'template: k:1:19: executing "k" at <b64enc>: wrong type for value; expected string; '
            "got map[string]interface {}",
        ),
        ("{{ b64enc 3 }}", 'template: k:1:10: executing "k" at <3>: expected string; found 3'),
        ("{{ b64enc nil }}", 'template: k:1:10: executing "k" at <nil>: cannot assign nil to string'),
        (
            "{{ 3 | b64enc }}",
            'template: k:1:7: executing "k" at <b64enc>: wrong type for value; expected string; got int',
        ),
        (
            '{{ "x" nil }}',
            'template: k:1:3: executing "k" at <"x">: can\'t give argument to non-function "x"',
        ),
        ("{{ nil }}", 'template: k:1:3: executing "k" at <nil>: nil is not a command'),
        (
            "{{ (.j | fromJson).nope }}",
            'template: k:1:9: executing "k" at <fromJson>: map has no entry for key "nope"',
        ),
        (
            "{{ (.j | fromJson).port.x }}",
            'template: k:1:9: executing "k" at <fromJson>: can\'t evaluate field x in type interface {}',
        ),
        (
            "{{ (.j | fromJson).n.x }}",
            'template: k:1:9: executing "k" at <fromJson>: nil pointer evaluating interface {}.x',
        ),
        (
            "{{ (.a | fromJson).x }}",
            'template: k:1:9: executing "k" at <fromJson>: nil data; no entry for key "x"',
        ),
        (
            "{{ index . 1 }}",
            'template: k:1:3: executing "k" at <index . 1>: error calling index: '
            "value has type int; should be string",
        ),
        (
            "{{ index (.j | fromJson).tags 5 }}",
            'template: k:1:3: executing "k" at <index (.j | fromJson).tags 5>: '
            "error calling index: index out of range: 5",
        ),
        (
            "{{ index (.j | fromJson).tags nil }}",
            'template: k:1:3: executing "k" at <index (.j | fromJson).tags nil>: '
            "error calling index: cannot index slice/array with nil",
        ),
        (
            "{{ .j | fromJson | upper }}",
            'template: k:1:19: executing "k" at <upper>: invalid value; expected string',
        ),
    ],
)
def test_execution_errors(text: str, message: str) -> None:
    data = {"a": "x", "b": "y", "j": '{"port":5432,"n":null,"tags":["a","b"]}'}
    if "fromJson).x" in text:
        data["a"] = "not json"
    if text == "{{ .j | fromJson | upper }}":
        data["j"] = "null"
    assert failure(text, data) == message


def test_the_template_name_is_in_every_message() -> None:
    """ESO names a template after its key, and a ``KeysAndValues`` template after its whole text."""
    assert failure("{{ .zz }}", {}, name="tls.crt").startswith('template: tls.crt:1:3: executing "tls.crt"')


# ------------------------------------------------------------------ what the sandbox does not emulate


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{ sha256sum .a }}", 'template: k:1: function "sha256sum" is not emulated by the sandbox\'s ESO'),
        ('{{ printf "%s" .a }}', 'template: k:1: function "printf" is not emulated by the sandbox\'s ESO'),
        ("{{ .a | len }}", 'template: k:1: function "len" is not emulated by the sandbox\'s ESO'),
        ("{{ if .a }}y{{ end }}", 'template: k:1: the action "if" is not emulated by the sandbox\'s ESO'),
        (
            "{{ range .a }}{{ end }}",
            'template: k:1: the action "range" is not emulated by the sandbox\'s ESO',
        ),
        ("{{ $x := .a }}", "template: k:1: a variable declaration is not emulated by the sandbox's ESO"),
    ],
)
def test_what_is_not_emulated_is_refused_by_name(text: str, message: str) -> None:
    assert failure(text, {"a": "x"}) == message


def test_the_emulated_functions_are_the_documented_subset() -> None:
    assert gotemplate.EMULATED_FUNCTIONS == (
        "b64dec",
        "b64enc",
        "fromJson",
        "index",
        "lower",
        "quote",
        "toJson",
        "trim",
        "upper",
    )


def test_format_float_is_strconv_g() -> None:
    cases = {
        1.0: "1",
        -2.5: "-2.5",
        123456.0: "123456",
        1234567.0: "1.234567e+06",
        0.0001: "0.0001",
        0.00001: "1e-05",
        1e21: "1e+21",
        -0.0: "-0",
    }
    assert {value: gotemplate.format_float(value) for value in cases} == cases
