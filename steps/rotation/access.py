"""Before anything is written: may the rotation reach every consumer it found? (SelfSubjectAccessReview)

A rotation that writes a new version to Vault and only then meets a 403 (a hand-written
ExternalSecret in a namespace the rendered RBAC does not cover, a restart the catalog names in a
namespace without the Role) leaves consumers on the old value, or rolls back. So the plan asks the
API server of each cluster, as the rotation's own identity, for every request the rotation will
make of what discovery found (what ``gitops/rotation_rbac.py`` grants):

* force-sync: ``patch`` ExternalSecrets and PushSecrets in each consuming namespace, and each
  ClusterExternalSecret that controls a consumer (by name);
* verify: ``list`` Secrets in each namespace holding a consumer's target, and ``list`` and ``watch``
  ExternalSecrets, and PushSecrets where one reads a target, at the cluster scope (one watch of each
  per cluster, ``steps/kube/reflector.py``);
* restart: ``get`` and ``patch`` of each workload ``rotation.restart`` names (by name).

One review per distinct request per cluster, never one per consumer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from vaultflow.base.errors import InputError
from vaultflow.gitops.catalog.model import Catalog
from vaultflow.gitops.rotation_rbac import APPS_GROUP, WORKLOAD_RESOURCES
from vaultflow.steps.kube.access import Permission, denied
from vaultflow.steps.kube.errors import kube_errors
from vaultflow.steps.rotation.discover import Consumers

ESO_GROUP = "external-secrets.io"


def needed_permissions(catalog: Catalog, found: Iterable[Consumers]) -> dict[str, list[Permission]]:
    """Per cluster, the distinct requests the rotation of ``found`` makes, in a stable order."""
    needed: dict[str, set[Permission]] = {}
    rotated = set()
    for consumers in found:
        rotated.add(consumers.path)
        for es in consumers.external_secrets:
            asks = needed.setdefault(es.cluster, set())
            asks.add(Permission("list", "secrets", es.namespace))
            asks.update(Permission(verb, "externalsecrets", group=ESO_GROUP) for verb in ("list", "watch"))
            if es.cluster_external_secret:
                asks.add(
                    Permission(
                        "patch", "clusterexternalsecrets", group=ESO_GROUP, name=es.cluster_external_secret
                    )
                )
            else:
                asks.add(Permission("patch", "externalsecrets", es.namespace, group=ESO_GROUP))
        for push in consumers.push_secrets:
            asks = needed.setdefault(push.cluster, set())
            asks.add(Permission("patch", "pushsecrets", push.namespace, group=ESO_GROUP))
            asks.update(Permission(verb, "pushsecrets", group=ESO_GROUP) for verb in ("list", "watch"))
    for secret in catalog.secrets:
        if secret.path in rotated and secret.rotation is not None:
            for ref in secret.rotation.restart:
                resource = WORKLOAD_RESOURCES[ref.kind]
                for verb in ("get", "patch"):
                    needed.setdefault(ref.cluster, set()).add(
                        Permission(verb, resource, ref.namespace, group=APPS_GROUP, name=ref.name)
                    )
    order = ("verb", "group", "resource", "namespace", "name")
    return {
        cluster: sorted(asks, key=lambda p: tuple(getattr(p, field) for field in order))
        for cluster, asks in sorted(needed.items())
    }


def check_rotation_access(catalog: Catalog, found: Iterable[Consumers], clients: Mapping[str, Any]) -> None:
    """InputError (nothing written yet) naming each request the rotation's identity may not make."""
    refused = []
    for cluster, permissions in needed_permissions(catalog, found).items():
        with kube_errors(f"cluster {cluster}", "check the rotation's permissions (SelfSubjectAccessReview)"):
            refused += [f"cluster {cluster}: may not {p}" for p in denied(clients[cluster], permissions)]
    if refused:
        raise InputError(
            "nothing was rotated: the rotation's identity lacks what it needs to reach every consumer "
            "(render the catalog and let Argo CD sync its RBAC, gitops/rotation_rbac.py):\n"
            + "\n".join(refused)
        )
