"""Patch and selector semantics, checked directly against their specifications."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vaultflow.sandbox.kube.errors import ApiError
from vaultflow.sandbox.kube.patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from vaultflow.sandbox.kube.selectors import parse_field_selector, parse_label_selector

# RFC 7386, appendix A
RFC7386_EXAMPLES = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "expected"), RFC7386_EXAMPLES)
def test_merge_patch_rfc7386_examples(target: Any, patch: Any, expected: Any) -> None:
    assert merge_patch(target, patch) == expected


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=10,
)


@given(
    target=st.dictionaries(st.text(max_size=3), json_values, max_size=4),
    patch=st.dictionaries(st.text(max_size=3), json_values, max_size=4),
)
def test_merge_patch_is_idempotent_and_never_mutates(target: dict[str, Any], patch: dict[str, Any]) -> None:
    import copy

    before, patch_before = copy.deepcopy(target), copy.deepcopy(patch)
    once = merge_patch(target, patch)
    assert merge_patch(once, patch) == once
    assert target == before and patch == patch_before


def test_json_patch_rfc6902_examples() -> None:
    assert json_patch({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}]) == {
        "foo": "bar",
        "baz": "qux",
    }
    assert json_patch({"foo": ["bar", "baz"]}, [{"op": "add", "path": "/foo/1", "value": "qux"}]) == {
        "foo": ["bar", "qux", "baz"]
    }
    assert json_patch({"foo": ["bar"]}, [{"op": "add", "path": "/foo/-", "value": "x"}]) == {
        "foo": ["bar", "x"]
    }
    moved = json_patch(
        {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
        [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
    )
    assert moved == {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}
    assert (
        json_patch(
            {"a/b": 1, "m~n": 2}, [{"op": "remove", "path": "/a~1b"}, {"op": "remove", "path": "/m~0n"}]
        )
        == {}
    )
    with pytest.raises(PatchError):
        json_patch({"foo": "bar"}, [{"op": "add", "path": "/baz/bat", "value": "qux"}])
    with pytest.raises(PatchError):
        json_patch({"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}])
    with pytest.raises(PatchError):
        json_patch({}, [{"op": "frobnicate", "path": "/x"}])


@pytest.mark.parametrize(
    ("operations", "message"),
    [
        ([{"op": "test", "path": "/data/password", "value": "guess"}], "testing value /data/password failed"),
        (
            [{"op": "add", "path": "/data/x/y", "value": "v"}],
            "add operation does not apply: doc is missing path",
        ),
        ([{"op": "remove", "path": "/data/nope"}], "remove operation does not apply: doc is missing path"),
        ([{"op": "frobnicate", "path": "/x"}], "Unexpected kind: frobnicate"),
        ([{"op": "copy", "path": "/x"}], "operation, missing from field"),
        (
            [{"op": "move", "from": "/data", "path": "/data/inner"}],
            "move operation does not apply: /data/inner",
        ),
    ],
)
def test_json_patch_failures_name_the_operation_and_never_a_value(
    operations: list[dict[str, Any]], message: str
) -> None:
    """The library's messages quote the document; a Secret's data must not reach a log or a response."""
    doc = {"data": {"password": "hunter2"}}
    with pytest.raises(PatchError) as failed:
        json_patch(doc, [{"op": "replace", "path": "/data/password", "value": "changed"}, *operations])
    assert message in str(failed.value) and failed.value.code == 422
    assert "hunter2" not in str(failed.value) and "guess" not in str(failed.value)
    assert failed.value.api_error().status()["reason"] == "Invalid"
    assert doc == {"data": {"password": "hunter2"}}  # the target is never touched


def test_json_patch_body_shape_and_size_codes() -> None:
    with pytest.raises(PatchError) as not_a_list:
        json_patch({}, {"op": "add", "path": "/a", "value": 1})
    assert not_a_list.value.code == 400 and not_a_list.value.api_error().code == 400
    with pytest.raises(PatchError) as not_objects:
        json_patch({}, ["add"])
    assert not_objects.value.code == 400
    with pytest.raises(PatchError) as too_many:
        json_patch({}, [{"op": "test", "path": "", "value": {}}] * 10001)
    assert too_many.value.code == 413
    assert json_patch({"a": 1}, [{"op": "replace", "path": "", "value": {"b": 2}}]) == {"b": 2}


def test_strategic_merge_ports_merge_by_the_right_key() -> None:
    service = {"spec": {"ports": [{"port": 80, "name": "http"}, {"port": 443, "name": "https"}]}}
    patched = strategic_merge_patch(service, {"spec": {"ports": [{"port": 443, "name": "tls"}]}})
    assert patched["spec"]["ports"] == [{"port": 80, "name": "http"}, {"port": 443, "name": "tls"}]
    pod = {"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 8080, "protocol": "TCP"}]}]}}
    patched = strategic_merge_patch(
        pod, {"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 9090}]}]}}
    )
    assert [p["containerPort"] for p in patched["spec"]["containers"][0]["ports"]] == [8080, 9090]
    removed = strategic_merge_patch(pod, {"spec": {"containers": [{"name": "a", "$patch": "delete"}]}})
    assert removed["spec"]["containers"] == []


def test_label_selector_grammar_errors_are_400() -> None:
    with pytest.raises(ApiError) as error:
        parse_label_selector("a in b")
    assert error.value.code == 400
    matches = parse_label_selector("env in (prod,staging),!legacy,tier!=db")
    assert matches({"metadata": {"labels": {"env": "prod", "tier": "web"}}})
    assert not matches({"metadata": {"labels": {"env": "prod", "legacy": "yes"}}})


def test_field_selector_values_and_unsupported_fields() -> None:
    matches = parse_field_selector("metadata.name=a,type!=Opaque", frozenset({"type"}))
    assert matches({"metadata": {"name": "a"}, "type": "kubernetes.io/tls"})
    assert not matches({"metadata": {"name": "a"}, "type": "Opaque"})
    with pytest.raises(ApiError) as error:
        parse_field_selector("spec.foo=1", frozenset())
    assert error.value.code == 400 and "field label not supported: spec.foo" in error.value.message


def test_free_ports_are_never_handed_out_twice() -> None:
    """Two OpenBao nodes on one cluster port make the raft leader refuse the second."""
    from vaultflow.sandbox.openbao import free_port

    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
