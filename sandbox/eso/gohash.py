"""ESO's hashes, computed exactly as its Go code computes them.

ESO hashes with ``esutils.ObjectHash(x)`` = hex SHA3-224 of ``fmt.Sprintf("%+v", x)``:

* the **data hash** annotation of a managed Secret,
  ``reconcile.external-secrets.io/data-hash`` = ObjectHash(secret.Data), where
  ``Data`` is a ``map[string][]byte`` printed with sorted keys and bytes as
  decimal lists: ``{"password": b"abc"}`` prints ``map[password:[97 98 99]]``;
* ``status.syncedResourceVersion`` = ``"<generation>-" +
  ObjectHash(meta{annotations, labels})``, printed
  ``{annotations:map[k:v] labels:map[k:v]}`` (so any label or annotation
  change, ``force-sync`` included, makes ESO refresh);
* the ``reconcile.external-secrets.io/created-by`` label = ObjectHash("<namespace>/<name>").

Go prints map keys sorted by bytes; for Python ``str`` keys that is code-point
order, the same thing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping


def object_hash(printed: str) -> str:
    """ObjectHash of a value whose ``%+v`` rendering is ``printed``."""
    return hashlib.sha3_224(printed.encode()).hexdigest()


def format_byte_map(data: Mapping[str, bytes]) -> str:
    """``fmt.Sprintf("%+v", map[string][]byte)``."""
    entries = " ".join(f"{key}:[{' '.join(str(byte) for byte in data[key])}]" for key in sorted(data))
    return f"map[{entries}]"


def format_string_map(data: Mapping[str, str] | None) -> str:
    """``fmt.Sprintf("%+v", map[string]string)`` (a nil map prints ``map[]``)."""
    values = data or {}
    return "map[" + " ".join(f"{key}:{values[key]}" for key in sorted(values)) + "]"


def data_hash(data: Mapping[str, bytes]) -> str:
    """The ``reconcile.external-secrets.io/data-hash`` of a Secret holding ``data``."""
    return object_hash(format_byte_map(data))


def resource_version(metadata: Mapping[str, object]) -> str:
    """``ctrlutil.GetResourceVersion``: what ``status.syncedResourceVersion`` records."""
    annotations = metadata.get("annotations")
    labels = metadata.get("labels")
    printed = (
        f"{{annotations:{format_string_map(annotations if isinstance(annotations, dict) else None)} "
        f"labels:{format_string_map(labels if isinstance(labels, dict) else None)}}}"
    )
    generation = metadata.get("generation", 0)
    return f"{generation}-{object_hash(printed)}"


def owner_label(namespace: str, name: str) -> str:
    """The ``reconcile.external-secrets.io/created-by`` label value of an owned Secret."""
    return object_hash(f"{namespace}/{name}")
