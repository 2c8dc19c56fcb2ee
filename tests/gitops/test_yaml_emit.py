"""The manifest emitter writes YAML that every reader reads back as the same data."""

from __future__ import annotations

import math
from typing import Any

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from vaultflow.gitops.yaml_emit import emit_yaml

# Strings some YAML reader resolves to another type when written plain: YAML 1.1 booleans and nulls
# (PyYAML, Go's yaml.v2 reads y/n too), numbers in every base and spelling, timestamps, sexagesimal
# numbers, the merge key and PyYAML's `=` value, and the characters YAML gives a syntax meaning.
AMBIGUOUS = [
    *("y", "Y", "n", "N", "yes", "Yes", "YES", "no", "No", "on", "On", "ON", "off", "Off", "OFF"),
    *("true", "True", "TRUE", "false", "False", "FALSE", "null", "Null", "NULL", "~", ""),
    *("0", "-1", "+1", "1.5", "1e+20", "1E5", "1.0e-05", "-1e-7", "1_000", "1_000.5", "0b101", "0o17", "017"),
    *("0x1F", "0X1f", "190:20:30", "1:20", "-1:20.5", "inf", "nan", ".inf", "-.inf", "+.inf", ".Inf"),
    *(".NAN", ".nan", "NaN", "Infinity", "-Infinity", ".5", "5.", "2026-12-01", "2026-12-01T10:00:00Z"),
    *("2026-12-01 10:00:00.5 +01:00", "<<", "=", "- a", "a: b", "a:", "#x", "a #b", "&a", "*a", "!t", "|"),
    *(">", "'", '"', "%", "@", "`", "?", "? a", "[a]", "{a: 1}", ",", "https://h:1/p", " a", "a ", "\ufeffa"),
]
FLOATS = [1e20, -1e20, 1e-05, 1.5e300, 5e-324, float("inf"), float("-inf"), float("nan"), 0.0, -0.0, 1.0, 2.5]

keys = st.text(min_size=1, max_size=12) | st.sampled_from(AMBIGUOUS[:-1])
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(AMBIGUOUS),
    st.sampled_from(FLOATS),
)
trees = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=25,
)


def same(read: Any, written: Any) -> bool:
    """Equality of YAML data that also holds for NaN and tells 1 from 1.0 and True from 1."""
    if isinstance(written, float) and math.isnan(written):
        return isinstance(read, float) and math.isnan(read)
    if type(read) is not type(written):
        return False
    if isinstance(written, dict):
        return read.keys() == written.keys() and all(same(read[k], v) for k, v in written.items())
    if isinstance(written, list):
        return len(read) == len(written) and all(same(r, w) for r, w in zip(read, written, strict=True))
    return bool(read == written)


@settings(max_examples=500, deadline=None)
@given(document=st.dictionaries(keys, trees, max_size=5))
@example(document={"big": 1e20, "small": 1e-05, "inf": float("inf"), "nan": float("nan")})
@example(document={"values": list(AMBIGUOUS)})
def test_round_trip(document: dict[str, Any]) -> None:
    assert same(yaml.safe_load(emit_yaml(document)), document)


@pytest.mark.parametrize("text", AMBIGUOUS)
def test_every_ambiguous_string_reads_back_as_that_string(text: str) -> None:
    assert same(yaml.safe_load(emit_yaml({text or "k": text})), {text or "k": text})


@pytest.mark.parametrize("number", FLOATS)
def test_every_float_reads_back_as_that_float(number: float) -> None:
    assert same(yaml.safe_load(emit_yaml({"x": number, "l": [number]})), {"x": number, "l": [number]})


def test_floats_are_spelled_as_yaml_floats() -> None:
    text = emit_yaml(
        {"a": 1e20, "b": 1e-05, "c": float("inf"), "d": float("-inf"), "e": float("nan"), "f": 2.5}
    )
    assert text == "a: 1.0e+20\nb: 1.0e-05\nc: .inf\nd: -.inf\ne: .nan\nf: 2.5\n"


def test_ambiguous_strings_are_quoted_plain_ones_are_not() -> None:
    text = emit_yaml({"wave": "0", "flag": "y", "url": "https://vault:8200", "path": "/prod/db", "n": "null"})
    assert text == 'wave: "0"\nflag: "y"\nurl: https://vault:8200\npath: /prod/db\n"n": "null"\n'
