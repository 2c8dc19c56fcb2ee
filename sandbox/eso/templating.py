"""``target.template``: how ESO renders the Secret an ExternalSecret writes, with ESO's error messages.

Followed from ESO 2.9.0:

* ``pkg/controllers/externalsecret/externalsecret_controller_template.go`` ``ApplyTemplate``:
  the template is validated first (``esv1.ValidateSecretTemplate``: no service-account-token
  Secret naming its account, no bootstrap token, ``templateFrom`` targets only ``Data``,
  ``Annotations``, ``Labels``); with a template the Secret gets ``template.metadata``'s labels,
  annotations and finalizers instead of the ExternalSecret's, ``template.type`` when it is set,
  the provider data only with ``mergePolicy: Merge`` or when the template renders no data, then
  ``templateFrom``, ``template.data`` (which win over ``templateFrom``) and the labels and
  annotations rendered as templates too;
* ``pkg/controllers/templating/parser.go``: ``templateFrom`` ConfigMaps and Secrets (read when
  the ExternalSecret refreshes: ESO does not watch them), ``items[].templateAs`` ``Values`` (the
  item's key is the output key) or ``KeysAndValues`` (the rendered text is a YAML map), and
  ``literal``;
* ``runtime/template/v2/template.go``: each template is parsed and executed on the provider data
  as ``map[string]string`` (``vaultflow.sandbox.eso.gotemplate``), then decoded with the
  ``valuesDecodingStrategy``; errors are wrapped as ESO wraps them, so the Warning event reads
  ``could not apply template: could not execute template: could not execute template: unable to
  execute template at key url: unable to parse template at key url: template: url:1: ...``.

The CRD defaults (``engineVersion: v2``, ``mergePolicy: Replace``, ``templateAs: Values``,
``target: Data``) are assumed when a field is absent, as the API server would have set them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from vaultflow.sandbox.eso import gotemplate, transform

JsonObject = dict[str, Any]

SERVICE_ACCOUNT_TOKEN = "kubernetes.io/service-account-token"
SERVICE_ACCOUNT_NAME = "kubernetes.io/service-account.name"
BOOTSTRAP_TOKEN = "bootstrap.kubernetes.io/token"
TARGETS = ("Data", "Annotations", "Labels")


class TemplateFailure(Exception):
    """What ``ApplyTemplate`` returned; the message is ESO's, from ``could not apply template:`` on."""


@dataclass
class RenderedSecret:
    """The part of the target Secret a template writes (``data`` decoded)."""

    type: str
    labels: dict[str, str]
    annotations: dict[str, str]
    finalizers: list[str]
    data: dict[str, bytes]
    deleting: bool = False

    def apply(self, target: str, key: str, value: bytes) -> None:
        """``applyToTarget``: ``data``, ``labels`` or ``annotations``, matched case-insensitively."""
        kind = target.lower() or "data"
        if kind == "labels":
            self.labels[key] = gotemplate.go_string(value)
        elif kind == "annotations":
            self.annotations[key] = gotemplate.go_string(value)
        else:
            self.data[key] = value


@dataclass(frozen=True)
class Sources:
    """How ``templateFrom`` reads its ConfigMaps and Secrets: ``(namespace, name)`` to the data, or None."""

    configmap: Callable[[str, str], Mapping[str, str] | None]
    secret: Callable[[str, str], Mapping[str, bytes] | None]


@dataclass(frozen=True)
class _Context:
    data: Mapping[str, str]  # ESO's ``strValData``: the provider data as Go strings
    secret: RenderedSecret = field(compare=False)


# ------------------------------------------------------------------ validation (externalsecret_validator.go)


def validate(template: JsonObject) -> None:
    """``esv1.ValidateSecretTemplate``; several problems are joined with newlines, as ``errors.Join`` does."""
    problems: list[str] = []
    secret_type = str(template.get("type") or "")
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    sources = template.get("templateFrom") or []
    if secret_type == SERVICE_ACCOUNT_TOKEN:
        if SERVICE_ACCOUNT_NAME in annotations:
            problems.append(
                f'template.type="{SERVICE_ACCOUNT_TOKEN}" with annotation "{SERVICE_ACCOUNT_NAME}" '
                "is not allowed"
            )
        elif any(str(s.get("target") or "").lower() == "annotations" for s in sources):
            problems.append(
                f'template.type="{SERVICE_ACCOUNT_TOKEN}" with templateFrom target="Annotations" '
                "is not allowed"
            )
    elif secret_type == BOOTSTRAP_TOKEN:
        problems.append(f'template.type="{BOOTSTRAP_TOKEN}" is not allowed')
    for source in sources:
        target = str(source.get("target") or "")
        if target and target.lower() not in ("data", "annotations", "labels"):
            problems.append(
                f'templateFrom target="{target}" is not allowed when targeting a Secret, '
                'must be one of "Data", "Annotations" or "Labels"'
            )
    if problems:
        raise TemplateFailure("\n".join(problems))


# ------------------------------------------------------------------ the v2 engine (runtime/template/v2)


def _execute_one(name: str, text: str, data: Mapping[str, str]) -> bytes:
    """``execute``: parse (``unable to parse template at key``) and run (``unable to execute ...``)."""
    try:
        parsed = gotemplate.parse(name, text)
    except gotemplate.TemplateError as error:
        raise TemplateFailure(f"unable to parse template at key {name}: {error}") from None
    try:
        return gotemplate.go_bytes(parsed.execute(data))
    except gotemplate.TemplateError as error:
        raise TemplateFailure(f"unable to execute template at key {name}: {error}") from None


def _decoded(strategy: str, key: str, value: bytes) -> bytes:
    try:
        return transform.decode(strategy or "None", value)
    except transform.DecodeError as error:
        raise TemplateFailure(f"failed to decode rendered template value for key {key}: {error}") from None


def _values_scope(templates: Mapping[str, str], context: _Context, target: str, decoding: str) -> None:
    """``valueScopeApply``: each key's template renders that key (keys in order; Go's map order is random)."""
    for key in sorted(templates):
        try:
            value = _execute_one(key, templates[key], context.data)
        except TemplateFailure as error:
            raise TemplateFailure(f"unable to execute template at key {key}: {error}") from None
        context.secret.apply(target, key, _decoded(decoding, key, value))


class _YamlLoader(yaml.SafeLoader):
    """YAML 1.1 scalars as go-yaml v2 resolves them for ``sigs.k8s.io/yaml``, without timestamps."""


_YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _json_kind(value: Any) -> str:
    """How ``encoding/json`` names a JSON value's kind in an ``UnmarshalTypeError``."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, dict):
        return "object"
    return "array" if isinstance(value, list) else "string"


def _yaml_string(value: Any) -> str:
    """A scalar unmarshalled into a ``string`` field: sigs.k8s.io/yaml formats numbers and booleans."""
    if value is None:
        return ""  # JSON null leaves a map's string element empty
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return gotemplate.format_float(value)
    if isinstance(value, int | str):
        return str(value)
    raise TemplateFailure(
        "could not unmarshal template to 'map[string][]byte': error unmarshaling JSON: while decoding "
        f"JSON: json: cannot unmarshal {_json_kind(value)} into Go value of type string"
    )


def _keys_and_values_scope(text: str, context: _Context, target: str, decoding: str) -> None:
    """``mapScopeApply``: the whole rendered text is a YAML map of keys to values."""
    try:
        rendered = _execute_one(text, text, context.data)
    except TemplateFailure as error:
        raise TemplateFailure(f"unable to execute template at key {text}: {error}") from None
    try:
        parsed = yaml.load(rendered, Loader=_YamlLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        raise TemplateFailure(
            f"could not unmarshal template to 'map[string][]byte': error converting YAML to JSON: {error}"
        ) from None
    if parsed is None:
        return
    if not isinstance(parsed, dict):
        raise TemplateFailure(
            "could not unmarshal template to 'map[string][]byte': error unmarshaling JSON: while decoding "
            "JSON: json: cannot unmarshal "
            f"{_json_kind(parsed)} into Go value of type map[string]string"
        )
    for key, value in parsed.items():
        name = _yaml_string(key)
        decoded = _decoded(decoding, name, gotemplate.go_bytes(_yaml_string(value)))
        context.secret.apply(target, name, decoded)


def _execute(templates: Mapping[str, str], context: _Context, scope: str, target: str, decoding: str) -> None:
    """``Execute``: by ``templateAs`` scope (``Values`` when absent, the CRD's default)."""
    if scope in ("", "Values"):
        _values_scope(templates, context, target, decoding)
    elif scope == "KeysAndValues":
        for text in templates.values():
            _keys_and_values_scope(text, context, target, decoding)
    else:
        raise TemplateFailure(f"unknown scope '{scope}': expected 'Values' or 'KeysAndValues'")


# ------------------------------------------------------------------ the parser (pkg/controllers/templating)


def _merge_source(
    kind: str, ref: JsonObject, values: Mapping[str, str], source: JsonObject, context: _Context
) -> None:
    """``MergeConfigMap``/``MergeSecret`` once the object is read: each item in turn."""
    for item in ref.get("items") or []:
        key = str(item.get("key", ""))
        if key not in values:
            raise TemplateFailure(f"error in {kind} {ref.get('name', '')}: missing key {key}")
        scope = str(item.get("templateAs") or "Values")
        text = values[key]
        templates = {key: text} if scope == "Values" else {text: text}
        _execute(
            templates,
            context,
            scope,
            str(source.get("target") or "Data"),
            str(source.get("valuesDecodingStrategy") or "None"),
        )


def _merge_template_from(sources: Sources, namespace: str, template: JsonObject, context: _Context) -> None:
    """``MergeTemplateFrom``: each entry's ConfigMap, then its Secret, then its literal."""
    for source in template.get("templateFrom") or []:
        configmap = source.get("configMap")
        if configmap:
            name = str(configmap.get("name", ""))
            values = sources.configmap(namespace, name)
            if values is None:
                raise TemplateFailure(f'configmaps "{name}" not found')
            _merge_source("configmap", configmap, values, source, context)
        secret = source.get("secret")
        if secret:
            name = str(secret.get("name", ""))
            secret_values = sources.secret(namespace, name)
            if secret_values is None:
                raise TemplateFailure(f'secrets "{name}" not found')
            as_strings = {key: gotemplate.go_string(value) for key, value in secret_values.items()}
            _merge_source("secret", secret, as_strings, source, context)
        literal = source.get("literal")
        if literal is not None:
            _execute(
                {str(literal): str(literal)},
                context,
                "KeysAndValues",
                str(source.get("target") or "Data"),
                str(source.get("valuesDecodingStrategy") or "None"),
            )


def _merge_map(templates: Mapping[str, str], target: str, context: _Context) -> None:
    """``MergeMap``: ``template.data`` or a metadata map, rendered key by key (``could not execute ...``)."""
    try:
        _execute({str(k): str(v) for k, v in templates.items()}, context, "Values", target, "None")
    except TemplateFailure as error:
        raise TemplateFailure(f"could not execute template: {error}") from None


# ------------------------------------------------------------------ ApplyTemplate


def apply_template(
    template: JsonObject,
    secret: RenderedSecret,
    data: Mapping[str, bytes],
    *,
    sources: Sources,
    namespace: str,
) -> None:
    """The template half of ``ApplyTemplate``, after the Secret's data was cleared or kept.

    ``secret`` already lost what this ExternalSecret's field manager owned; here it
    gets ``template.metadata`` (raw), the type, the provider data when the policy
    keeps it, then the rendered templates. Raises ``TemplateFailure`` with ESO's
    message (``could not apply template: ...``).
    """
    try:
        _apply(template, secret, data, sources, namespace)
    except TemplateFailure as error:
        raise TemplateFailure(f"could not apply template: {error}") from None


def _apply(
    template: JsonObject, secret: RenderedSecret, data: Mapping[str, bytes], sources: Sources, namespace: str
) -> None:
    validate(template)
    metadata = template.get("metadata") or {}
    labels = {str(k): str(v) for k, v in (metadata.get("labels") or {}).items()}
    annotations = {str(k): str(v) for k, v in (metadata.get("annotations") or {}).items()}
    secret.labels.update(labels)
    secret.annotations.update(annotations)
    if not secret.deleting:
        for finalizer in metadata.get("finalizers") or []:
            if finalizer not in secret.finalizers:
                secret.finalizers.append(str(finalizer))
    if template.get("type"):
        secret.type = str(template["type"])
    renders_data = bool(template.get("data")) or bool(template.get("templateFrom"))
    if str(template.get("mergePolicy") or "Replace") == "Merge" or not renders_data:
        secret.data.update(data)
    version = str(template.get("engineVersion") or "v2")
    if version != "v2":
        raise TemplateFailure(f"unsupported template engine version: {version}")
    context = _Context({key: gotemplate.go_string(value) for key, value in data.items()}, secret)
    try:
        _merge_template_from(sources, namespace, template, context)
    except TemplateFailure as error:
        raise TemplateFailure(f"error fetching templateFrom data: {error}") from None
    for templates, target in (
        (template.get("data") or {}, "Data"),
        (labels, "Labels"),
        (annotations, "Annotations"),
    ):
        try:
            _merge_map(templates, target, context)
        except TemplateFailure as error:
            raise TemplateFailure(f"could not execute template: {error}") from None
