"""The rotation service account's Kubernetes RBAC, derived from the catalog: exactly what rotation calls.

The rotation steps (``vaultflow.steps.rotation``) make these requests, each in
every catalog cluster, as ``vault.kubernetesAuth.rotationServiceAccount``:

* discover: one LIST each of ``externalsecrets``, ``pushsecrets``,
  ``secretstores`` and ``clustersecretstores`` (external-secrets.io) across
  all namespaces, to find consumers written by hand too. Granted by the
  ClusterRole ``<sa>-discovery`` (list, and in a cluster with a consuming
  namespace watch of ExternalSecrets and PushSecrets for verify) in every cluster as soon as
  one secret rotates: discovery reads every cluster.
* verify: LIST ``externalsecrets`` across namespaces once per cluster, then
  WATCH them from that LIST's resourceVersion (by the rendered
  ``vaultflow.io/secret`` label; the discovery ClusterRole's, which grants
  ``watch`` on ExternalSecrets and PushSecrets alone), and LIST ``secrets`` in a
  consuming namespace when one of its ExternalSecrets refreshed (by ESO's
  ``created-by`` label, or in full for a hand-written or ``Merge``/``Orphan``
  target): the Role ``<sa>-consumers`` of that namespace. The PushSecrets are
  watched the same way (their status says when to read the cloud secret).
* force-sync: PATCH an ``externalsecret`` or ``pushsecret`` (the
  ``force-sync`` annotation; RBAC cannot narrow patch to annotations) in a
  consuming namespace: the Role. PATCH the ``clusterexternalsecret`` that
  controls a consumer (ESO reverts annotations put on its ExternalSecrets):
  the ClusterRole ``<sa>-cluster-external-secrets``, in clusters with a
  consuming namespace. Its name is known only when discovery finds it, so it
  cannot be narrowed by name.
* restart: GET and PATCH ``deployments``, ``statefulsets``, ``daemonsets``
  (apps), exactly the ones ``rotation.restart`` names: the Role, with
  ``resourceNames`` per kind. The step never lists or watches them.

A *consuming namespace* is a (cluster, namespace) where the catalog places an
ExternalSecret or a PushSecret of a secret that has ``rotation`` (push
sources included); the catalog's checks put every restarted workload in one.
Nothing is granted where only secrets without ``rotation`` are consumed,
nothing is ever granted ``get`` on a Secret, ``watch`` (but on ExternalSecrets and PushSecrets), ``create`` or
``delete``, and a catalog in which no secret rotates renders nothing.

In the workflows cluster the service account comes with the workflows
(``argocd-apps/workflows/rbac/service-accounts.yaml``). In every other
cluster it is rendered here; its Namespace, which Argo CD never prunes or
deletes (it may hold more than this account), is rendered once for every
account it holds (``rbac_objects.account_namespaces``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from vaultflow.gitops.catalog.model import Catalog, ServiceAccountRef
from vaultflow.gitops.catalog.placement import Plan, PlannedExternalSecret, PlannedPushSecret
from vaultflow.gitops.names import k8s_name
from vaultflow.gitops.rbac_objects import ESO_GROUP, MetaFactory, PlacedObject, remote_account, role_pair
from vaultflow.gitops.resources.rbac import PolicyRule

APPS_GROUP = "apps"
WORKLOAD_RESOURCES = {"Deployment": "deployments", "StatefulSet": "statefulsets", "DaemonSet": "daemonsets"}
DISCOVERED_KINDS = ("externalsecrets", "pushsecrets", "secretstores", "clustersecretstores")

_DISCOVERY_WHY = (
    "vaultflow rotation, discover: one LIST per kind across namespaces finds every consumer of a "
    "rotated path (hand-written ones too) and the stores they read. List only."
)
_DISCOVERY_VERIFY_WHY = (
    "vaultflow rotation, discover: one LIST per kind across namespaces finds every consumer of a "
    "rotated path (hand-written ones too) and the stores they read; verify watches the "
    "ExternalSecrets and PushSecrets it waits for. List, and watch of those two kinds only."
)
_CES_WHY = (
    "vaultflow rotation, force-sync: an ExternalSecret that a ClusterExternalSecret controls is "
    "annotated through it (ESO copies force-sync onto its ExternalSecrets); its name is known only "
    "at run time. Patch only."
)
_CONSUMERS_WHY = (
    "vaultflow rotation in a namespace that consumes a rotated secret: verify lists its Secrets, "
    "force-sync patches ExternalSecrets and PushSecrets (the force-sync annotation)."
)
_RESTART_WHY = " Restart gets and patches exactly the workloads of rotation.restart named here."
_ACCOUNT_WHAT = (
    "vaultflow rotation's identity in this cluster (catalog vault.kubernetesAuth.rotationServiceAccount)"
)


@dataclass(frozen=True)
class ClusterGrants:
    """What the rotation service account may do in one cluster (before it is turned into objects)."""

    cluster: str
    discovery: bool  # some secret rotates: discovery lists this cluster, and may force-sync here
    namespaces: tuple[str, ...]  # consuming namespaces, sorted
    # namespace -> workload resource (deployments, ...) -> the names rotation.restart gives, sorted
    workloads: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)


def rotation_grants(catalog: Catalog, plan: Plan) -> dict[str, ClusterGrants]:
    """Per catalog cluster, in catalog order: the consuming namespaces and the workloads to restart."""
    rotations = [secret.rotation for secret in catalog.secrets if secret.rotation is not None]
    namespaces: dict[str, set[str]] = defaultdict(set)
    placed: list[PlannedExternalSecret | PlannedPushSecret] = [*plan.external_secrets, *plan.push_secrets]
    for item in placed:
        if item.secret.rotation is not None:
            namespaces[item.cluster].add(item.namespace)
    workloads: dict[str, dict[str, dict[str, set[str]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(set))
    )
    for rotation in rotations:
        for ref in rotation.restart:
            workloads[ref.cluster][ref.namespace][WORKLOAD_RESOURCES[ref.kind]].add(ref.name)
            # The catalog's checks already put each workload beside a consumer; never drop a grant.
            namespaces[ref.cluster].add(ref.namespace)
    return {
        cluster.name: ClusterGrants(
            cluster=cluster.name,
            discovery=bool(rotations),
            namespaces=tuple(sorted(namespaces[cluster.name])),
            workloads={
                namespace: {resource: tuple(sorted(names)) for resource, names in sorted(kinds.items())}
                for namespace, kinds in sorted(workloads[cluster.name].items())
            },
        )
        for cluster in catalog.clusters
    }


def discovery_rules(*, verify: bool = False) -> list[PolicyRule]:
    """``verify``: the cluster has consuming namespaces, whose ExternalSecrets and PushSecrets the
    verification watches."""
    rules = [PolicyRule(api_groups=[ESO_GROUP], resources=list(DISCOVERED_KINDS), verbs=["list"])]
    if verify:  # one WATCH of the ExternalSecrets and one of the PushSecrets it waits for, from each LIST
        rules.append(
            PolicyRule(api_groups=[ESO_GROUP], resources=["externalsecrets", "pushsecrets"], verbs=["watch"])
        )
    return rules


def cluster_external_secret_rules() -> list[PolicyRule]:
    return [PolicyRule(api_groups=[ESO_GROUP], resources=["clusterexternalsecrets"], verbs=["patch"])]


def consumer_rules(workloads: Mapping[str, tuple[str, ...]]) -> list[PolicyRule]:
    """A consuming namespace's rules; ``workloads`` maps deployments/statefulsets/daemonsets to names."""
    rules = [
        # verify: a LIST once an ExternalSecret of the namespace refreshed (never a single Secret's GET)
        PolicyRule(api_groups=[""], resources=["secrets"], verbs=["list"]),
        # force-sync: a merge patch of the annotation
        PolicyRule(api_groups=[ESO_GROUP], resources=["externalsecrets", "pushsecrets"], verbs=["patch"]),
    ]
    rules += [
        # restart: read the workload (paused? its own run id?), then patch its pod template
        PolicyRule(
            api_groups=[APPS_GROUP], resources=[resource], resource_names=list(names), verbs=["get", "patch"]
        )
        for resource, names in workloads.items()
    ]
    return rules


def role_names(account: ServiceAccountRef) -> tuple[str, str, str]:
    """(discovery ClusterRole, ClusterExternalSecret ClusterRole, namespace Role) names; bindings alike."""
    return (
        k8s_name(account.name, "discovery"),
        k8s_name(account.name, "cluster-external-secrets"),
        k8s_name(account.name, "consumers"),
    )


def cluster_objects(catalog: Catalog, grants: ClusterGrants, meta: MetaFactory) -> list[PlacedObject]:
    """One cluster's rotation objects, with their paths relative to the cluster's directory (the
    account's Namespace outside the workflows cluster: ``rbac_objects.account_namespaces``)."""
    if not grants.discovery:
        return []
    account = catalog.vault.kubernetes_auth.rotation_service_account
    discovery, cluster_es, consumers = role_names(account)
    objects: list[PlacedObject] = []
    workflows = catalog.workflows_cluster().name
    if grants.cluster != workflows:
        objects.append(remote_account(account, meta, what=_ACCOUNT_WHAT, cluster=workflows))
    verify = bool(grants.namespaces)
    cluster_pairs = [
        (discovery, _DISCOVERY_VERIFY_WHY if verify else _DISCOVERY_WHY, discovery_rules(verify=verify))
    ]
    if grants.namespaces:
        cluster_pairs.append((cluster_es, _CES_WHY, cluster_external_secret_rules()))
    for name, why, rules in cluster_pairs:
        objects += role_pair(account, meta, name=name, namespace=None, why=why, rules=rules)
    for namespace in grants.namespaces:
        workloads = grants.workloads.get(namespace, {})
        why = _CONSUMERS_WHY + (_RESTART_WHY if workloads else "")
        objects += role_pair(
            account, meta, name=consumers, namespace=namespace, why=why, rules=consumer_rules(workloads)
        )
    return objects


def rotation_rbac(catalog: Catalog, plan: Plan, meta: MetaFactory) -> dict[str, list[PlacedObject]]:
    """Every cluster's rotation objects (paths relative to ``clusters/<cluster>/``)."""
    return {
        name: cluster_objects(catalog, grants, meta)
        for name, grants in rotation_grants(catalog, plan).items()
    }
