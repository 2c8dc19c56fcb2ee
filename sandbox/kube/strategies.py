"""Per-kind write rules: the defaulting and validation kube-apiserver's registry applies.

A ``Strategy`` is consulted by the store on every create and update, after the
generic metadata handling: it may default fields (``prepare_*``) and return
field causes (``validate``) that become a 422. Kinds without special rules use
the base class. Custom resources also get their CRD schema's ``default``s
whenever an object is decoded (``default``: every request body, ``stored``: an
object read back from storage), see ``defaulting``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import time

from vaultflow.gitops.crd_schemas import CrdRegistry, CrdVersion
from vaultflow.sandbox.kube.defaulting import CrdDefaults
from vaultflow.sandbox.kube.errors import FieldCause, JsonObject, bad_request
from vaultflow.sandbox.kube.resources import ResourceType
from vaultflow.sandbox.kube.validation import (
    NameValidator,
    config_key,
    dns1123_label,
    dns1123_subdomain,
    path_segment_name,
)

MAX_SECRET_BYTES = 1024 * 1024


def condition(kind: str, reason: str, message: str) -> JsonObject:
    return {
        "type": kind,
        "status": "True",
        "reason": reason,
        "message": message,
        "lastTransitionTime": now_rfc3339(),
    }


SERVICE_ACCOUNT_TOKEN_TYPE = "kubernetes.io/service-account-token"


class Strategy:
    """Defaults and validation of one kind; the base applies no kind-specific rule."""

    name_validator: NameValidator = staticmethod(dns1123_subdomain)

    def default(self, obj: JsonObject) -> None:
        """The decoder's defaulting of a request body (before ``prepare_*``; ``/status`` writes too)."""

    def stored(self, obj: JsonObject) -> JsonObject:
        """``obj`` as decoding it from storage yields it now (``obj`` itself when nothing changes)."""
        return obj

    def prepare_create(self, obj: JsonObject) -> None:
        """Default fields of a new object."""

    def prepare_update(self, new: JsonObject, old: JsonObject) -> None:
        """Default fields of a replacement object."""

    def validate(self, obj: JsonObject, old: JsonObject | None) -> list[FieldCause]:
        """Kind-specific problems of ``obj`` (``old`` is set on update)."""
        return []


class NamespaceStrategy(Strategy):
    name_validator = staticmethod(dns1123_label)

    def prepare_create(self, obj: JsonObject) -> None:
        name = obj["metadata"]["name"]
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj["status"] = {"phase": "Active"}

    def prepare_update(self, new: JsonObject, old: JsonObject) -> None:
        new["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = new["metadata"]["name"]
        new["spec"] = old.get("spec", {})


def now_rfc3339() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _decode_data(obj: JsonObject, field: str) -> dict[str, bytes]:
    """Base64 values of ``data``; an undecodable value is a 400, as JSON decoding is on a real server."""
    decoded: dict[str, bytes] = {}
    for key, value in (obj.get(field) or {}).items():
        if not isinstance(value, str):
            raise bad_request(
                f"{obj.get('kind', 'object')} cannot be handled: {field}[{key}] is not a string"
            )
        try:
            decoded[key] = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise bad_request(
                f'{obj.get("kind", "object")} in version "v1" cannot be handled as a {obj.get("kind")}: '
                f"illegal base64 data in {field}[{key}]"
            ) from None
    return decoded


def _validate_keys(obj: JsonObject, fields: tuple[str, ...]) -> list[FieldCause]:
    causes = []
    for field in fields:
        for key in obj.get(field) or {}:
            if (problem := config_key(key)) is not None:
                causes.append(FieldCause(f"{field}[{key}]", f'Invalid value: "{key}": {problem}'))
    return causes


def _immutability(obj: JsonObject, old: JsonObject | None, fields: tuple[str, ...]) -> list[FieldCause]:
    if old is None or not old.get("immutable"):
        return []
    causes = []
    if not obj.get("immutable"):
        causes.append(
            FieldCause(
                "immutable", "Forbidden: field is immutable when `immutable` is set", "FieldValueForbidden"
            )
        )
    for field in fields:
        if (obj.get(field) or {}) != (old.get(field) or {}):
            causes.append(
                FieldCause(
                    field, "Forbidden: field is immutable when `immutable` is set", "FieldValueForbidden"
                )
            )
    return causes


class SecretStrategy(Strategy):
    """``stringData`` merges into ``data`` and is never stored; ``type`` defaults to Opaque."""

    def _merge_string_data(self, obj: JsonObject) -> None:
        string_data = obj.pop("stringData", None) or {}
        if string_data:
            data = obj.setdefault("data", {}) or {}
            for key, value in string_data.items():
                data[key] = base64.b64encode(str(value).encode()).decode()
            obj["data"] = data
        _decode_data(obj, "data")

    def prepare_create(self, obj: JsonObject) -> None:
        obj.setdefault("type", "Opaque")
        self._merge_string_data(obj)

    def prepare_update(self, new: JsonObject, old: JsonObject) -> None:
        new.setdefault("type", old.get("type", "Opaque"))
        self._merge_string_data(new)

    def validate(self, obj: JsonObject, old: JsonObject | None) -> list[FieldCause]:
        causes = _validate_keys(obj, ("data",))
        size = sum(len(value) for value in _decode_data(obj, "data").values())
        if size > MAX_SECRET_BYTES:
            causes.append(
                FieldCause(
                    "data", f"Too long: must have at most {MAX_SECRET_BYTES} bytes", "FieldValueTooLong"
                )
            )
        if old is not None and obj.get("type") != old.get("type"):
            causes.append(FieldCause("type", f'Invalid value: "{obj.get("type")}": field is immutable'))
        if obj.get("type") == SERVICE_ACCOUNT_TOKEN_TYPE:
            annotations = obj["metadata"].get("annotations") or {}
            if not annotations.get("kubernetes.io/service-account.name"):
                causes.append(
                    FieldCause(
                        "metadata.annotations[kubernetes.io/service-account.name]",
                        "Required value",
                        "FieldValueRequired",
                    )
                )
        return causes + _immutability(obj, old, ("data",))


class ConfigMapStrategy(Strategy):
    def validate(self, obj: JsonObject, old: JsonObject | None) -> list[FieldCause]:
        causes = _validate_keys(obj, ("data", "binaryData"))
        _decode_data(obj, "binaryData")
        return causes + _immutability(obj, old, ("data", "binaryData"))


class WorkloadStrategy(Strategy):
    """Deployments and StatefulSets (DaemonSets below): apps/v1 defaults, selector rules."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def _default(self, obj: JsonObject) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        if self.kind == "Deployment":
            spec.setdefault("progressDeadlineSeconds", 600)
            spec.setdefault(
                "strategy",
                {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            )
        else:
            spec.setdefault("podManagementPolicy", "OrderedReady")
            spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})

    def prepare_create(self, obj: JsonObject) -> None:
        self._default(obj)

    def prepare_update(self, new: JsonObject, old: JsonObject) -> None:
        self._default(new)

    def validate(self, obj: JsonObject, old: JsonObject | None) -> list[FieldCause]:
        spec = obj.get("spec") or {}
        causes: list[FieldCause] = []
        selector = spec.get("selector")
        if not isinstance(selector, dict) or not (
            selector.get("matchLabels") or selector.get("matchExpressions")
        ):
            causes.append(FieldCause("spec.selector", "Required value", "FieldValueRequired"))
        template = spec.get("template") or {}
        labels = (template.get("metadata") or {}).get("labels") or {}
        match_labels = (selector.get("matchLabels") or {}) if isinstance(selector, dict) else {}
        if any(labels.get(key) != value for key, value in match_labels.items()):
            causes.append(
                FieldCause(
                    "spec.template.metadata.labels",
                    f"Invalid value: {json.dumps(labels, sort_keys=True)}: "
                    "`selector` does not match template `labels`",
                )
            )
        if not (template.get("spec") or {}).get("containers"):
            causes.append(FieldCause("spec.template.spec.containers", "Required value", "FieldValueRequired"))
        if not isinstance(spec.get("replicas", 1), int) or spec.get("replicas", 1) < 0:
            causes.append(FieldCause("spec.replicas", "Invalid value: must be greater than or equal to 0"))
        if old is not None and (old.get("spec") or {}).get("selector") != selector:
            causes.append(
                FieldCause("spec.selector", f"Invalid value: {json.dumps(selector)}: field is immutable")
            )
        return causes


TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"
_DAEMON_SET_STRATEGIES = ("OnDelete", "RollingUpdate")
_PERCENT = re.compile(r"[0-9]+%")


def int_or_percent(value: object, total: int) -> int:
    """An IntOrString scaled against ``total``, rounding up (intstr.GetScaledValueFromIntOrPercent)."""
    if isinstance(value, str) and _PERCENT.fullmatch(value):
        return math.ceil(int(value[:-1]) * total / 100)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _int_or_percent_causes(value: object, field: str) -> list[FieldCause]:
    """apps validation's ValidatePositiveIntOrPercent and IsNotMoreThan100Percent."""
    shown = json.dumps(value)
    if isinstance(value, str):
        if not _PERCENT.fullmatch(value):
            return [
                FieldCause(
                    field,
                    f"Invalid value: {shown}: a valid percent string must be a numeric string followed by "
                    "an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
                )
            ]
        if int(value[:-1]) > 100:
            return [FieldCause(field, f"Invalid value: {shown}: must not be greater than 100%")]
        return []
    if not isinstance(value, int) or isinstance(value, bool):
        return [FieldCause(field, f"Invalid value: {shown}: must be an integer or percentage (e.g '5%')")]
    if value < 0:
        return [FieldCause(field, f"Invalid value: {value}: must be greater than or equal to 0")]
    return []


def _template_generation(obj: JsonObject) -> int:
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(TEMPLATE_GENERATION)
    try:
        return int(value) if value is not None else 0
    except (TypeError, ValueError):
        return 0


def _set_template_generation(obj: JsonObject, generation: int) -> None:
    metadata = obj["metadata"]
    metadata["annotations"] = {**(metadata.get("annotations") or {}), TEMPLATE_GENERATION: str(generation)}


class DaemonSetStrategy(WorkloadStrategy):
    """DaemonSets: apps/v1 defaults (SetDefaults_DaemonSet), the update strategy's validation, and
    the template generation the registry keeps (pkg/registry/apps/daemonset/strategy.go), which
    apps/v1 serves as the ``deprecated.daemonset.template.generation`` annotation."""

    def __init__(self) -> None:
        super().__init__("DaemonSet")

    def _default(self, obj: JsonObject) -> None:
        spec = obj.setdefault("spec", {})
        spec.setdefault("revisionHistoryLimit", 10)
        strategy = spec.get("updateStrategy")
        if not isinstance(strategy, dict):
            strategy = spec["updateStrategy"] = {}
        if not strategy.get("type"):
            strategy["type"] = "RollingUpdate"
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.get("rollingUpdate")
            if not isinstance(rolling, dict):
                rolling = strategy["rollingUpdate"] = {}
            for key, default in (("maxUnavailable", 1), ("maxSurge", 0)):
                if rolling.get(key) is None:
                    rolling[key] = default

    def prepare_create(self, obj: JsonObject) -> None:
        self._default(obj)
        _set_template_generation(obj, max(1, _template_generation(obj)))

    def prepare_update(self, new: JsonObject, old: JsonObject) -> None:
        """The template generation is the server's: the old one, plus one when the template changes."""
        self._default(new)
        changed = (new.get("spec") or {}).get("template") != (old.get("spec") or {}).get("template")
        _set_template_generation(new, max(1, _template_generation(old)) + int(changed))

    def validate(self, obj: JsonObject, old: JsonObject | None) -> list[FieldCause]:
        causes = super().validate(obj, old)
        strategy = (obj.get("spec") or {}).get("updateStrategy") or {}
        kind = strategy.get("type")
        if kind not in _DAEMON_SET_STRATEGIES:
            supported = ", ".join(f'"{s}"' for s in _DAEMON_SET_STRATEGIES)
            causes.append(
                FieldCause(
                    "spec.updateStrategy",
                    f"Unsupported value: {json.dumps(kind)}: supported values: {supported}",
                    "FieldValueNotSupported",
                )
            )
        elif kind == "RollingUpdate":
            causes += _rolling_update_causes(strategy.get("rollingUpdate") or {})
        return causes


def _rolling_update_causes(rolling: JsonObject) -> list[FieldCause]:
    """ValidateRollingUpdateDaemonSet: valid numbers, and exactly one of them non-zero."""
    field = "spec.updateStrategy.rollingUpdate"
    unavailable, surge = rolling.get("maxUnavailable", 0), rolling.get("maxSurge", 0)
    causes = _int_or_percent_causes(unavailable, f"{field}.maxUnavailable")
    causes += _int_or_percent_causes(surge, f"{field}.maxSurge")
    if causes:
        return causes
    has_unavailable, has_surge = int_or_percent(unavailable, 100) != 0, int_or_percent(surge, 100) != 0
    if has_unavailable and has_surge:
        causes.append(
            FieldCause(
                f"{field}.maxSurge",
                f"Invalid value: {json.dumps(surge)}: may not be set when maxUnavailable is non-zero",
            )
        )
    elif not has_unavailable and not has_surge:
        causes.append(
            FieldCause(
                f"{field}.maxUnavailable",
                "Required value: cannot be 0 when maxSurge is 0",
                "FieldValueRequired",
            )
        )
    return causes


class CustomResourceDefinitionStrategy(Strategy):
    """A CRD must be named ``<plural>.<group>``, have one storage version and structural schemas.

    A new CRD is reported ``Established`` at once: kube-apiserver's
    establishing controller does that within milliseconds, and clients only
    ever wait for it.
    """

    def prepare_create(self, obj: JsonObject) -> None:
        spec = obj.get("spec") or {}
        obj["status"] = {
            "conditions": [
                condition("NamesAccepted", "NoConflicts", "no conflicts found"),
                condition("Established", "InitialNamesAccepted", "the initial names have been accepted"),
            ],
            "acceptedNames": spec.get("names") or {},
            "storedVersions": [v.get("name") for v in spec.get("versions") or [] if v.get("storage")],
        }

    def validate(self, obj: JsonObject, old: JsonObject | None) -> list[FieldCause]:
        spec = obj.get("spec") or {}
        names = spec.get("names") or {}
        causes: list[FieldCause] = []
        group, plural = spec.get("group", ""), names.get("plural", "")
        if not group or "." not in group:
            causes.append(
                FieldCause(
                    "spec.group", f'Invalid value: "{group}": should be a domain with at least one dot'
                )
            )
        if not plural or not names.get("kind"):
            causes.append(
                FieldCause("spec.names", "Required value: plural and kind are required", "FieldValueRequired")
            )
        if obj["metadata"]["name"] != f"{plural}.{group}":
            causes.append(
                FieldCause(
                    "metadata.name",
                    f'Invalid value: "{obj["metadata"]["name"]}": must be spec.names.plural+"."+spec.group',
                )
            )
        if spec.get("scope") not in ("Namespaced", "Cluster"):
            causes.append(
                FieldCause(
                    "spec.scope",
                    f'Unsupported value: "{spec.get("scope")}": supported values: "Cluster", "Namespaced"',
                )
            )
        versions = spec.get("versions") or []
        if not versions or sum(1 for v in versions if v.get("storage")) != 1:
            causes.append(
                FieldCause(
                    "spec.versions", "Invalid value: must have exactly one version marked as storage version"
                )
            )
        for index, version in enumerate(versions):
            if not (version.get("schema") or {}).get("openAPIV3Schema"):
                causes.append(
                    FieldCause(
                        f"spec.versions[{index}].schema.openAPIV3Schema",
                        "Required value: schemas are required",
                        "FieldValueRequired",
                    )
                )
        if old is not None:
            old_spec = old.get("spec") or {}
            if old_spec.get("group") != group:
                causes.append(FieldCause("spec.group", f'Invalid value: "{group}": field is immutable'))
            if (old_spec.get("names") or {}).get("plural") != plural:
                causes.append(
                    FieldCause("spec.names.plural", f'Invalid value: "{plural}": field is immutable')
                )
        return causes


def _translated_versions(spec: JsonObject, crd: JsonObject) -> list[CrdVersion]:
    """The JSON Schemas of a CRD's served versions, translated once per ``spec`` object.

    Translating the Argo Workflows CRDs takes a noticeable fraction of a second;
    every sandbox cluster registers the same (shared, read-only) spec objects,
    so the translation is remembered by object identity.
    """
    cached = _TRANSLATIONS.get(id(spec))
    if cached is not None and cached[0] is spec:
        return cached[1]
    registry = CrdRegistry.from_crds([_with_implicit_root_fields(crd)])
    versions = [v for v in (registry.lookup(av, kind) for av, kind in registry.kinds()) if v is not None]
    _TRANSLATIONS[id(spec)] = (spec, versions)
    return versions


_TRANSLATIONS: dict[int, tuple[JsonObject, list[CrdVersion]]] = {}


def _with_implicit_root_fields(crd: JsonObject) -> JsonObject:
    """kube-apiserver always allows ``apiVersion`` and ``kind`` at the root, listed in the schema or not."""
    versions = []
    for version in crd["spec"].get("versions") or []:
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        if isinstance(schema, dict) and "properties" in schema:
            implicit = {"apiVersion": {"type": "string"}, "kind": {"type": "string"}}
            schema = {**schema, "properties": {**implicit, **schema["properties"]}}
            versions.append({**version, "schema": {**version["schema"], "openAPIV3Schema": schema}})
        else:
            versions.append(version)
    return {**crd, "spec": {**crd["spec"], "versions": versions}}


class CustomResourceSchemas:
    """The schemas of the CRDs registered in one cluster, rebuilt when a CRD changes."""

    def __init__(self) -> None:
        self._by_crd: dict[str, list[CrdVersion]] = {}
        self._registry = CrdRegistry()
        self.defaults = CrdDefaults()

    def set(self, crd: JsonObject) -> None:
        """Register (or replace) a CRD's schemas; ``InputError`` when it cannot be translated."""
        self._by_crd[crd["metadata"]["name"]] = _translated_versions(crd["spec"], crd)
        self.defaults.set(crd)
        self._rebuild()

    def remove(self, crd_name: str) -> None:
        self._by_crd.pop(crd_name, None)
        self.defaults.remove(crd_name)
        self._rebuild()

    def _rebuild(self) -> None:
        self._registry = CrdRegistry(v for versions in self._by_crd.values() for v in versions)

    def validate(self, obj: JsonObject) -> list[str]:
        return self._registry.validate(obj)


class CustomResourceStrategy(Strategy):
    """Custom resources are defaulted and validated by their CRD's ``openAPIV3Schema``."""

    name_validator = staticmethod(path_segment_name)

    def __init__(self, schemas: CustomResourceSchemas) -> None:
        self._schemas = schemas

    def default(self, obj: JsonObject) -> None:
        self._schemas.defaults.default(obj)

    def stored(self, obj: JsonObject) -> JsonObject:
        decoded: JsonObject = json.loads(json.dumps(obj))
        self._schemas.defaults.default(decoded)
        return obj if decoded == obj else decoded

    def validate(self, obj: JsonObject, old: JsonObject | None) -> list[FieldCause]:
        causes = []
        for problem in self._schemas.validate(obj):
            field, _, message = problem.partition(": ")
            causes.append(FieldCause(field, message))
        return causes


BUILTIN_STRATEGIES: dict[tuple[str, str], Strategy] = {
    ("", "namespaces"): NamespaceStrategy(),
    ("", "secrets"): SecretStrategy(),
    ("", "configmaps"): ConfigMapStrategy(),
    ("apps", "deployments"): WorkloadStrategy("Deployment"),
    ("apps", "statefulsets"): WorkloadStrategy("StatefulSet"),
    ("apps", "daemonsets"): DaemonSetStrategy(),
    ("apiextensions.k8s.io", "customresourcedefinitions"): CustomResourceDefinitionStrategy(),
}
_SERVICE_LIKE = {("", "services")}
# pkg/apis/rbac/validation: ValidateRBACName = path.IsValidPathSegmentName ("system:basic-user").
_PATH_SEGMENT_NAMED = {
    ("rbac.authorization.k8s.io", plural)
    for plural in ("roles", "rolebindings", "clusterroles", "clusterrolebindings")
}


def strategy_for(rtype: ResourceType, custom: CustomResourceStrategy) -> Strategy:
    if rtype.is_custom:
        return custom
    strategy = BUILTIN_STRATEGIES.get(rtype.storage_key)
    if strategy is not None:
        return strategy
    if rtype.storage_key in _SERVICE_LIKE:
        return _LABEL_NAMED
    if rtype.storage_key in _PATH_SEGMENT_NAMED:
        return _PATH_SEGMENT
    return _DEFAULT


class _LabelNamedStrategy(Strategy):
    """Kinds whose names must be DNS labels (Services)."""

    name_validator = staticmethod(dns1123_label)


class _PathSegmentNamedStrategy(Strategy):
    """Kinds whose names need only be usable in a URL path (RBAC's ``system:...`` names)."""

    name_validator = staticmethod(path_segment_name)


_DEFAULT = Strategy()
_LABEL_NAMED = _LabelNamedStrategy()
_PATH_SEGMENT = _PathSegmentNamedStrategy()


def secret_data(obj: JsonObject) -> dict[str, bytes]:
    """The decoded ``data`` of a stored Secret (for in-process consumers)."""
    return _decode_data(obj, "data")
