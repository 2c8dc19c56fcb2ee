"""ESO's GCP Secret Manager provider (push side), with the real ``google-cloud-secret-manager`` REST client.

As ESO's provider does it: a missing secret is created with the label
``managed-by: external-secrets`` and automatic replication (none for a
regional secret); an existing one without that label is refused ("secret
<key> is not managed by external secrets"); labels and annotations from the
metadata are updated when they differ; a version is added only when the
latest payload differs (an empty one reads as Go's nil, which always differs).
With ``property`` (``push_secret.go`` ``propertyPSBuilder``: no metadata, no
ownership check) only the property is compared: gjson's reading of it in the
latest payload (``getDataByProperty``: a dotted name as one key first, then as
a path) against the value, so a push that leaves it as it is adds no version,
however the document is formatted; a new version is the payload with the
property set by sjson (``sandbox/eso/sjson.py``), other keys and formatting kept.

The client talks to the sandbox's emulator with anonymous credentials: the
store's ``secretAccessKeySecretRef`` must exist (as ESO requires) but the key
inside is not used (the sandbox has no Google identity).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from vaultflow.sandbox.eso import sjson
from vaultflow.sandbox.eso.providers.base import (
    JsonObject,
    ProviderError,
    PushData,
    WriteOnly,
    extract_secret_data,
)
from vaultflow.sandbox.eso.providers.metadata import push_metadata
from vaultflow.sandbox.faults import FaultInjector, InjectedFault

MANAGED_BY = ("managed-by", "external-secrets")


class GcpSecretManagerProvider(WriteOnly):
    name = "gcp"

    def __init__(self, *, endpoint: str, project: str, location: str = "", faults: FaultInjector) -> None:
        self.endpoint = endpoint
        self.project = project
        self.location = location
        self._faults = faults
        self._client: Any = None
        self._lock = threading.Lock()

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                from google.auth.credentials import AnonymousCredentials
                from google.cloud import secretmanager

                self._client = secretmanager.SecretManagerServiceClient(
                    transport="rest",
                    client_options={"api_endpoint": self.endpoint},
                    credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                )
            return self._client

    @property
    def parent(self) -> str:
        base = f"projects/{self.project}"
        return f"{base}/locations/{self.location}" if self.location else base

    def _name(self, remote_key: str) -> str:
        return f"{self.parent}/secrets/{remote_key}"

    def _call(self, operation: str, **request: Any) -> Any:
        from google.api_core import exceptions

        try:
            self._faults.before_call("gcp", self.endpoint)
            return getattr(self.client(), operation)(request=request)
        except InjectedFault as fault:
            raise ProviderError(f"{operation}: {fault}") from None
        except exceptions.NotFound as error:
            raise _NotFound(str(error)) from None
        except exceptions.GoogleAPICallError as error:
            raise ProviderError(str(error)) from None

    def validate(self) -> None:
        self.client()

    def push_secret(self, data: Mapping[str, bytes], push: PushData) -> None:
        payload = extract_secret_data(data, push)
        spec = push_metadata(push.metadata)
        name = self._name(push.remote_key)
        try:
            secret = self._call("get_secret", name=name)
        except _NotFound:
            body: JsonObject = {"labels": dict([MANAGED_BY])}
            if not self.location:
                body["replication"] = {"automatic": {}}
            secret = self._call("create_secret", parent=self.parent, secret_id=push.remote_key, secret=body)
        if push.prop and push.metadata is not None:  # ``newPushSecretBuilder``, after the secret is created
            raise ProviderError("cannot specify metadata and property at the same time")
        labels, annotations = dict(secret.labels), dict(secret.annotations)
        if push.prop:
            new_labels, new_annotations = {**labels, MANAGED_BY[0]: MANAGED_BY[1]}, annotations
        else:
            if labels.get(MANAGED_BY[0]) != MANAGED_BY[1]:
                raise ProviderError(f"secret {push.remote_key} is not managed by external secrets")
            new_labels = {**(spec.get("labels") or {})}
            if spec.get("mergePolicy") == "Merge":
                new_labels.update(labels)
            new_labels[MANAGED_BY[0]] = MANAGED_BY[1]
            new_annotations = dict(spec.get("annotations") or {})
        if new_labels != labels or new_annotations != annotations:
            self._call(
                "update_secret",
                secret={
                    "name": secret.name,
                    "etag": secret.etag,
                    "labels": new_labels,
                    "annotations": new_annotations,
                },
                update_mask={"paths": ["labels", "annotations"]},
            )
        try:
            latest = self._call("access_secret_version", name=f"{name}/versions/latest").payload.data
        except _NotFound:
            latest = None
        original = bytes(latest) if latest else None  # protobuf hands Go an empty payload as nil
        if original is not None and not _need_update(original, push.prop, payload):
            return
        self._call("add_secret_version", parent=name, payload={"data": _build_data(original, push, payload)})

    def secret_exists(self, push: PushData) -> bool:
        """ESO's ``getLatestEnabledVersion``: the secret has an enabled version."""
        try:
            versions = self._call("list_secret_versions", parent=self._name(push.remote_key))
        except _NotFound:
            return False
        return any(version.state.name == "ENABLED" for version in versions)

    def delete_secret(self, push: PushData) -> None:
        name = self._name(push.remote_key)
        try:
            secret = self._call("get_secret", name=name)
        except _NotFound:
            return
        if secret.labels.get(MANAGED_BY[0]) != MANAGED_BY[1]:
            return
        self._call("delete_secret", name=name, etag=secret.etag)


class _NotFound(ProviderError):
    pass


def _property_value(original: bytes, prop: str) -> bytes | None:
    """ESO's ``getDataByProperty``: the property as gjson reads it, None when absent or not JSON."""
    if not sjson.valid(original):
        return None
    if prop.find(".") > 0:
        flat = sjson.get(original, prop.replace(".", "\\."))
        if flat is not None:
            return flat
    return sjson.get(original, prop)


def _need_update(original: bytes, prop: str, payload: bytes) -> bool:
    """``needUpdate`` of ESO's builders: the whole payload differs, or (with ``property``) that value."""
    if not prop:
        return original != payload
    try:
        return _property_value(original, prop) != payload
    except sjson.NotEmulated as error:
        raise ProviderError(str(error)) from None


def _build_data(original: bytes | None, push: PushData, payload: bytes) -> bytes:
    """``buildData``: the payload, or the original with the property set (sjson's error returned)."""
    if not push.prop:
        return payload
    try:
        return sjson.set_bytes(original or b"", push.prop, payload)
    except (sjson.SjsonError, sjson.NotEmulated) as error:
        raise ProviderError(str(error)) from None
