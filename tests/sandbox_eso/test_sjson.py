"""sjson's SetBytes and gjson's Get as ESO's PushSecret ``property`` uses them.

Every expected output below is what tidwall/sjson v1.2.5 and tidwall/gjson v1.18.0
(the versions ESO v2.9.0 builds with) return for the same input, run with Go.
"""

from __future__ import annotations

import pytest

from vaultflow.sandbox.eso import sjson

FORMATTED = b'{\n  "user": "app",\n  "password": "old"\n}\n'


@pytest.mark.parametrize(
    ("document", "path", "value", "expected"),
    [
        # replace: only the value changes; order, whitespace, other keys stay
        (FORMATTED, "password", b"new", b'{\n  "user": "app",\n  "password": "new"\n}\n'),
        (b'  {"a":1}  \n', "a", b"v", b'  {"a":"v"}  \n'),
        (b'{"a":"1","a":"2"}', "a", b"v", b'{"a":"v","a":"2"}'),  # the first of duplicate keys
        (b'{"\\u0070": "old"}', "p", b"new", b'{"\\u0070": "new"}'),  # keys compare unescaped
        (b'{"p": "\\u0073ame"}', "p", b"same", b'{"p": "same"}'),  # the new text is sjson's own
        # append: before the last "}", no whitespace; around the object is dropped
        (FORMATTED, "host", b"db", b'{\n  "user": "app",\n  "password": "old"\n,"host":"db"}'),
        (b"{ }", "a", b"v", b'{ "a":"v"}'),
        (b'  {"x":1}  \n', "a", b"v", b'{"x":1,"a":"v"}'),
        # nested paths
        (
            b'{"db": {"user": "u", "password": "old"}}',
            "db.password",
            b"new",
            b'{"db": {"user": "u", "password": "new"}}',
        ),
        (b'{"a": 1}', "db.password", b"p", b'{"a": 1,"db":{"password":"p"}}'),
        (b'{"db": "x"}', "db.password", b"p", b'{"db": {"password":"p"}}'),  # a scalar on the way
        (b"{}", "list.1", b"v", b'{"list":[null,"v"]}'),
        (b"{}", "list.-1", b"v", b'{"list":["v"]}'),
        (b"{}", "a.", b"v", b'{"a":["v"]}'),  # an empty part is index 0 to sjson
        # a backslash escapes a dot; ':' makes a part an object key
        (b'{"a.b": "old"}', "a\\.b", b"v", b'{"a.b": "v"}'),
        (b'{"a.b": "old"}', "a.b", b"v", b'{"a.b": "old","a":{"b":"v"}}'),
        (b"{}", ":1", b"v", b'{"1":"v"}'),
        # arrays
        (b'["a", "b"]', "1", b"v", b'["a", "v"]'),
        (b'["a", "b"]', "3", b"v", b'["a","b",null,"v"]'),
        (b'["a", "b"]', "-1", b"v", b'["a", "b","v"]'),
        (b'{"l": [ 1 , 2 ] }', "l.-1", b"v", b'{"l": [ 1 , 2 ,"v"] }'),
        (b'{"l": [ 1 , 2 ] }', "l.3", b"v", b'{"l": [1,2,null,"v"] }'),
        (b"[ ]", "0", b"v", b'["v"]'),
        # documents that are not an object or array become one
        (b"", "a", b"v", b'{"a":"v"}'),
        (b"  \n", "a", b"v", b'{"a":"v"}'),
        (b"", "0", b"v", b'["v"]'),
        (b"", "2", b"v", b'[null,null,"v"]'),
        (b'"a string"', "a", b"v", b'{"a":"v"}'),
        (b"42", "a", b"v", b'{"a":"v"}'),
        (b"plain text", "a", b"v", b'{"a":"v"}'),
    ],
)
def test_set_bytes_edits_the_document_as_sjson_does(
    document: bytes, path: str, value: bytes, expected: bytes
) -> None:
    assert sjson.set_bytes(document, path, value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"a<b&c>", b'"a<b&c>"'),  # plain ASCII is quoted as it is, HTML characters included
        (b'a<b"', b'"a\\u003cb\\""'),  # anything to escape: Go's json.Marshal, which escapes HTML
        (b"line\nbreak", b'"line\\nbreak"'),
        (b"\x01", b'"\\u0001"'),
        ("é".encode(), '"é"'.encode()),
        ("\u2028".encode(), b'"\\u2028"'),
        (b"\xff", b'"\\ufffd"'),  # not UTF-8: one \ufffd per byte, as Go writes it
        (b"x\xe2\x82y", b'"x\\ufffd\\ufffdy"'),
        (b"", b'""'),
    ],
)
def test_the_value_is_a_json_string_escaped_as_sjson_escapes_it(value: bytes, expected: bytes) -> None:
    assert sjson.set_bytes(b"{}", "a", value) == b'{"a":' + expected + b"}"
    assert sjson.set_bytes(b"{}", 'k"q', b"v") == b'{"k\\"q":"v"}'  # keys alike


def test_sjson_errors_are_its_own() -> None:
    with pytest.raises(sjson.SjsonError, match=r"^cannot set array element for non-numeric key 'x'$"):
        sjson.set_bytes(b'["a", "b"]', "x", b"v")
    with pytest.raises(sjson.SjsonError, match=r"^cannot set array element for non-numeric key '1'$"):
        sjson.set_bytes(b'["a"]', ":1", b"v")
    with pytest.raises(sjson.SjsonError, match=r"^path cannot be empty$"):
        sjson.set_bytes(b"{}", "", b"v")


@pytest.mark.parametrize(
    ("document", "path"),
    [
        (b"{}", "a|b"),
        (b"{}", "list.#"),
        (b"{}", "a.@reverse"),
        (b"{}", "a*"),
        (b"{}", "a.[b]"),
        (b"{}", "..a"),
        (b'{"broken": ', "a"),  # not JSON, and sjson's scanner would look into it
    ],
)
def test_what_is_not_emulated_is_refused_by_name(document: bytes, path: str) -> None:
    with pytest.raises(sjson.NotEmulated):
        sjson.set_bytes(document, path, b"v")


DOCUMENT = (
    b'{"n": 1.50, "i": 5432, "s": "x\\u00e9", "o": {"k": 1}, "z": null, "t": true, "f": false,'
    b' "e": 1e3, "neg": -7, "l": ["a", {"b": "c"}], "a.b": "flat", "a": {"b": "nested"},'
    b' "lone": "\\ud800", "pair": "\\ud83d\\ude00"}'
)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("n", b"1.5"),  # a number that is not an integer is re-formatted from its float
        ("i", b"5432"),
        ("e", b"1000"),
        ("neg", b"-7"),
        ("s", "xé".encode()),
        ("o", b'{"k": 1}'),  # objects and arrays as written
        ("z", b""),  # null exists, and reads empty
        ("t", b"true"),
        ("f", b"false"),
        ("o.k", b"1"),
        ("l.1", b'{"b": "c"}'),
        ("l.1.b", b"c"),
        ("a\\.b", b"flat"),
        ("a.b", b"nested"),
        ("lone", "\ufffd".encode()),
        ("pair", "\U0001f600".encode()),
        ("missing", None),
        ("o.missing", None),
        ("l.5", None),
        ("l.x", None),
    ],
)
def test_get_reads_as_gjson_result_string(path: str, expected: bytes | None) -> None:
    assert sjson.get(DOCUMENT, path) == expected


def test_get_goes_on_past_a_duplicate_key_without_the_path() -> None:
    assert sjson.get(b'{"a":{"x":1},"a":{"b":2}}', "a.b") == b"2"


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (b'{"a": [1, -0.5e+3, "x\\u00e9", true, false, null]}', True),
        (b' "s" \n', True),
        (b'{"raw": "\xff"}', True),  # neither gjson nor Go checks UTF-8
        (b"", False),
        (b"  ", False),
        (b"plain", False),
        (b'{"a": 01}', False),
        (b'{"a": 1,}', False),
        (b'{"a": "tab\tinside"}', False),
        (b'{"a": "\\x"}', False),
        (b'{"a": 1} x', False),
        (b"NaN", False),
    ],
)
def test_valid_is_gjson_valid(document: bytes, expected: bool) -> None:
    assert sjson.valid(document) is expected
