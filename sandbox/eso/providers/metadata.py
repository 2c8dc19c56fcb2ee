"""``spec.data[].metadata`` of a PushSecret: ESO's ``PushSecretMetadata`` envelope.

ESO accepts provider metadata only in its envelope
(``apiVersion: kubernetes.external-secrets.io/v1alpha1``, ``kind:
PushSecretMetadata``, ``spec: {...}``) and refuses anything else; the
providers read fields of ``spec`` (tags, labels, ``secretPushFormat`` ...).
"""

from __future__ import annotations

from typing import Any

from vaultflow.sandbox.eso.providers.base import JsonObject, ProviderError

API_VERSION = "kubernetes.external-secrets.io/v1alpha1"
KIND = "PushSecretMetadata"


def push_metadata(metadata: Any) -> JsonObject:
    """The ``spec`` of a PushSecretMetadata (``{}`` when there is none)."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise ProviderError("failed to parse metadata: metadata must be an object")
    if metadata.get("apiVersion") != API_VERSION or metadata.get("kind") != KIND:
        raise ProviderError(
            f"failed to parse metadata: unexpected apiVersion/kind {metadata.get('apiVersion')}/"
            f"{metadata.get('kind')} (want {API_VERSION}/{KIND})"
        )
    spec = metadata.get("spec") or {}
    if not isinstance(spec, dict):
        raise ProviderError("failed to parse metadata: spec must be an object")
    tags = spec.get("tags")
    if tags is not None and "managed-by" in tags:
        raise ProviderError("error parsing tags in metadata: Cannot specify a 'managed-by' tag")
    return spec
