"""Where a step finds the secrets catalog: a file, or (in a cluster) a ConfigMap.

``configmap://<namespace>/<name>[/<key>][?context=<kube-context>]`` reads the
ConfigMap through the Kubernetes API with the pod's own identity (the
bootstrap role may get exactly ``argo/vaultflow-catalog``); the key defaults to
``catalog.yaml``, and a key that holds too much text for a ConfigMap is read
from ``binaryData`` ``<key>.gz``, gzip-compressed (``vaultflow workflows render``
writes it so). Anything else is a file path. The catalog holds references
only (paths, names, URLs), never a secret value, so a ConfigMap is the right
home for it; GitOps keeps that ConfigMap in sync with the catalog in Git.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import zlib
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from vaultflow.base.errors import InputError, OperationError
from vaultflow.gitops.catalog import LoadedCatalog, load_catalog, parse_catalog

DEFAULT_KEY = "catalog.yaml"
COMPRESSED_SUFFIX = ".gz"  # binaryData <key>.gz: the key's text, gzip-compressed


def load_catalog_source(source: str) -> LoadedCatalog:
    if not source.startswith("configmap://"):
        return load_catalog(source)
    parsed = urlparse(source)
    parts = [part for part in parsed.path.split("/") if part]
    if not parsed.netloc or not 1 <= len(parts) <= 2:
        raise InputError(f"catalog {source!r}: write configmap://<namespace>/<name>[/<key>]")
    namespace, name, key = parsed.netloc, parts[0], parts[1] if len(parts) == 2 else DEFAULT_KEY
    context = parse_qs(parsed.query).get("context", [None])[-1]
    from vaultflow.steps.kube import core_v1
    from vaultflow.steps.kube.errors import kube_errors

    with kube_errors(f"catalog ConfigMap {namespace}/{name}", "read it"):
        config_map = core_v1(context).read_namespaced_config_map(name, namespace)
    text = (config_map.data or {}).get(key)
    packed = (config_map.binary_data or {}).get(key + COMPRESSED_SUFFIX)
    if text is None and packed is not None:
        text = _decompressed(
            packed, f"catalog ConfigMap {namespace}/{name} binaryData {key}{COMPRESSED_SUFFIX}"
        )
    if text is None:
        raise OperationError(f"catalog ConfigMap {namespace}/{name} has no key {key!r}")
    return parse_catalog(text, Path(f"configmap:{namespace}/{name}/{key}"))


def _decompressed(value: str, where: str) -> str:
    """The text of a ``binaryData`` value (base64 of gzip of UTF-8), or one error naming it."""
    try:
        return gzip.decompress(base64.b64decode(value, validate=True)).decode("utf-8")
    except (binascii.Error, OSError, EOFError, zlib.error, UnicodeDecodeError) as error:
        raise OperationError(f"{where}: not gzip-compressed UTF-8 text ({error})") from None
