"""The manifest emitter writes YAML that every reader reads back as the same data."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from vaultflow.gitops.yaml_emit import emit_yaml

keys = st.text(min_size=1, max_size=12)
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.text(max_size=20),
    st.sampled_from(
        [
            "y",
            "N",
            "on",
            "Off",
            "null",
            "~",
            "0",
            "1.5",
            "0x1F",
            "1:20",
            "2026-11-27",
            ".inf",
            "- a",
            "a: b",
            "#x",
            "&a",
            "*a",
            "!t",
            "|",
            ">",
            "'",
            '"',
            "%",
            "@",
            "`",
            "https://h:1/p",
            "=",
            "<<",
        ]
    ),
)
trees = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None)
@given(document=st.dictionaries(keys, trees, max_size=5))
def test_round_trip(document: dict[str, Any]) -> None:
    assert yaml.safe_load(emit_yaml(document)) == (document or {})


def test_ambiguous_strings_are_quoted_plain_ones_are_not() -> None:
    text = emit_yaml({"wave": "0", "flag": "y", "url": "https://vault:8200", "path": "/prod/db", "n": "null"})
    assert text == 'wave: "0"\nflag: "y"\nurl: https://vault:8200\npath: /prod/db\n"n": "null"\n'
