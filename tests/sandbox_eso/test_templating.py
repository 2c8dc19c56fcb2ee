"""``ApplyTemplate``'s template half (``vaultflow.sandbox.eso.templating``) on its own, without a cluster.

Upstream (ESO 2.9.0): ``pkg/controllers/externalsecret/externalsecret_controller_template.go``,
``pkg/controllers/templating/parser.go``, ``runtime/template/v2/template.go`` and
``apis/externalsecrets/v1/externalsecret_validator.go`` (``ValidateSecretTemplate``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from vaultflow.sandbox.eso.templating import RenderedSecret, Sources, TemplateFailure, apply_template

CONFIGMAPS: dict[str, dict[str, str]] = {
    "tpl": {
        "pairs": "a: {{ .user }}\nport: 5432\nratio: 1.5\nenabled: yes\nempty: null\n",
        "list": "- a\n- b\n",
    },
}
SOURCES = Sources(
    configmap=lambda namespace, name: CONFIGMAPS.get(name),
    secret=lambda namespace, name: None,
)


def render(template: dict[str, Any], data: Mapping[str, bytes] | None = None) -> RenderedSecret:
    secret = RenderedSecret(type="Opaque", labels={}, annotations={}, finalizers=[], data={})
    apply_template(template, secret, data or {"user": b"app"}, sources=SOURCES, namespace="ns")
    return secret


def failure(template: dict[str, Any]) -> str:
    with pytest.raises(TemplateFailure) as raised:
        render(template)
    return str(raised.value)


def test_keys_and_values_read_the_rendered_yaml_into_strings() -> None:
    """``mapScopeApply``: sigs.k8s.io/yaml turns YAML 1.1 numbers, booleans and null into strings."""
    item = {"key": "pairs", "templateAs": "KeysAndValues"}
    secret = render({"templateFrom": [{"configMap": {"name": "tpl", "items": [item]}}]})
    assert secret.data == {"a": b"app", "port": b"5432", "ratio": b"1.5", "enabled": b"true", "empty": b""}


def test_rendered_values_are_decoded_with_the_values_decoding_strategy() -> None:
    template = {
        "templateFrom": [{"literal": "k: {{ .user | b64enc }}", "valuesDecodingStrategy": "Base64"}],
    }
    assert render(template).data == {"k": b"app"}


def test_merge_policy_and_metadata() -> None:
    template = {
        "mergePolicy": "Merge",
        "metadata": {"labels": {"who": "{{ .user }}"}, "finalizers": ["example.com/keep"]},
        "data": {"greeting": "hi {{ .user }}"},
    }
    secret = render(template)
    assert secret.data == {"user": b"app", "greeting": b"hi app"}
    assert (secret.labels, secret.finalizers) == ({"who": "app"}, ["example.com/keep"])


@pytest.mark.parametrize(
    ("template", "message"),
    [
        (
            {"engineVersion": "v1", "data": {"a": "x"}},
            "could not apply template: unsupported template engine version: v1",
        ),
        (
            {
                "templateFrom": [
                    {"configMap": {"name": "tpl", "items": [{"key": "list", "templateAs": "KeysAndValues"}]}}
                ]
            },
            "could not apply template: error fetching templateFrom data: could not unmarshal template to "
            "'map[string][]byte': error unmarshaling JSON: while decoding JSON: json: cannot unmarshal array "
            "into Go value of type map[string]string",
        ),
        (
            {"templateFrom": [{"configMap": {"name": "tpl", "items": [{"key": "absent"}]}}]},
            "could not apply template: error fetching templateFrom data: error in configmap tpl: "
            "missing key absent",
        ),
        (
            {"templateFrom": [{"secret": {"name": "nope", "items": [{"key": "k"}]}}]},
            'could not apply template: error fetching templateFrom data: secrets "nope" not found',
        ),
        (
            {
                "type": "bootstrap.kubernetes.io/token",
                "templateFrom": [{"literal": "a: b", "target": "spec"}],
            },
            'could not apply template: template.type="bootstrap.kubernetes.io/token" is not allowed\n'
            'templateFrom target="spec" is not allowed when targeting a Secret, must be one of "Data", '
            '"Annotations" or "Labels"',
        ),
        (
            {"metadata": {"annotations": {"note": "{{ .missing }}"}}},
            "could not apply template: could not execute template: could not execute template: unable to "
            "execute template at key note: unable to execute template at key note: template: note:1:3: "
            'executing "note" at <.missing>: map has no entry for key "missing"',
        ),
    ],
)
def test_failures_are_worded_as_eso_wraps_them(template: dict[str, Any], message: str) -> None:
    assert failure(template) == message
