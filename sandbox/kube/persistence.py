"""A cluster's state across a sandbox restart: what etcd and the control plane's keys keep.

A real cluster that stops and starts (``minikube stop``/``start``, a control-plane
reboot) comes back at the same address with its objects (etcd), its CA and its
service-account signing key, so the tokens it issued before (the reviewer JWT a
Vault ``kubernetes`` auth mount holds, ESO's) stay valid and the UIDs they name
still exist. ``save_cluster`` writes exactly that to one JSON file, mode 0600 (it
holds Secrets, the admin token and two private keys); ``load_cluster`` builds
the cluster back from it, unstarted.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vaultflow.sandbox.kube.cluster import KubeCluster
from vaultflow.sandbox.kube.controllers import CRD_KEY
from vaultflow.sandbox.kube.errors import JsonObject
from vaultflow.sandbox.kube.resources import ResourceType
from vaultflow.sandbox.kube.tokens import TokenIssuer
from vaultflow.sandbox.pki import CertificateAuthority

log = logging.getLogger(__name__)

FORMAT = "vaultflow-sandbox-cluster/v1"
_NAMESPACES = ("", "namespaces")


def save_cluster(cluster: KubeCluster, path: Path) -> None:
    """Write ``cluster``'s objects, keys, admin token and port to ``path`` (atomically, mode 0600).

    Objects are written from the store's cached encodings: saving a large cluster
    costs a join, not a serialisation of every object.
    """
    resource_version, entries = cluster.store.snapshot()
    header: JsonObject = {
        "format": FORMAT,
        "name": cluster.name,
        "port": cluster.port,
        "adminToken": cluster.admin_token,
        "ca": {
            "certificate": cluster.certificate_authority.certificate_pem,
            "key": cluster.certificate_authority.key_pem,
        },
        "issuer": {"issuer": cluster.issuer.issuer, "key": cluster.issuer.private_key_pem()},
        "resourceVersion": resource_version,
    }
    objects = b",".join(
        json.dumps({"group": rtype.group, "version": rtype.version, "resource": rtype.plural})[:-1].encode()
        + b',"object":'
        + entry.encoded
        + b"}"
        for rtype, entry in entries
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(json.dumps(header)[:-1].encode() + b',"objects":[' + objects + b"]}")
    temporary.replace(path)


def saved_port(path: Path) -> int:
    """The port the saved cluster listened on (a restart binds it again)."""
    port: int = _read(path)["port"]
    return port


def _read(path: Path) -> JsonObject:
    try:
        document: JsonObject = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: unreadable cluster state ({error.__class__.__name__})") from None
    if document.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} file")
    return document


def load_cluster(path: Path, *, port: int | None = None, tls: bool = False) -> KubeCluster:
    """The cluster ``save_cluster`` wrote, with the same objects and keys (not started).

    ``port`` (default: the saved one) is where ``start`` will bind it; ``tls`` as ``KubeCluster``'s.
    """
    document = _read(path)
    cluster = KubeCluster(
        document["name"],
        port=document["port"] if port is None else port,
        admin_token=document["adminToken"],
        certificate_authority=CertificateAuthority.from_pem(
            document["ca"]["certificate"], document["ca"]["key"]
        ),
        issuer=TokenIssuer.from_private_key_pem(document["issuer"]["key"], document["issuer"]["issuer"]),
        tls=tls,
    )
    cluster.store.restore(document["resourceVersion"], _typed_objects(cluster, document["objects"]))
    return cluster


def _typed_objects(
    cluster: KubeCluster, saved: list[JsonObject]
) -> Iterator[tuple[ResourceType, JsonObject]]:
    """CRDs first (restoring one serves its kinds), namespaces last (their controller then finds
    every ServiceAccount restored and creates none)."""

    def rank(item: JsonObject) -> int:
        key = (item["group"], item["resource"])
        return 0 if key == CRD_KEY else 2 if key == _NAMESPACES else 1

    for item in sorted(saved, key=rank):
        rtype = _type_of(cluster, item)
        if rtype is None:
            log.warning(
                "cluster %s: %s.%s is no longer served; %s not restored",
                cluster.name,
                item["resource"],
                item["group"],
                item["object"]["metadata"].get("name"),
            )
            continue
        yield rtype, item["object"]


def _type_of(cluster: KubeCluster, item: dict[str, Any]) -> ResourceType | None:
    exact = cluster.catalog.lookup(item["group"], item["version"], item["resource"])
    if exact is not None:
        return exact
    key = (item["group"], item["resource"])
    return next((rtype for rtype in cluster.catalog.types() if rtype.storage_key == key), None)
