"""The delivery pipeline's Kubernetes RBAC in each catalog cluster, derived from the catalog: exactly
what ``apply-eso-resources`` asks of the clusters (``vaultflow.steps.delivery``).

The pipeline runs as ``vaultflow-delivery`` (namespace ``argo``). What it needs only in the workflows
cluster (the catalog's ConfigMap, Argo CD's Applications, reporting outputs) is hand-written beside
the templates (``argocd-apps/workflows/rbac/delivery-pipeline.yaml``); what it asks of every catalog
cluster is rendered here, with that cluster's ESO objects:

* preflight, logging in to Vault as ESO: CREATE ``serviceaccounts/token`` of ESO's service account
  (``vault.kubernetesAuth.esoServiceAccount``) in ESO's namespace: the Role
  ``vaultflow-delivery-preflight`` there, on that one name;
* preflight, ownership: GET each target Secret of the ExternalSecrets the catalog places in a
  namespace (is it controlled by something else? does a ``Merge`` target exist?): the Role
  ``vaultflow-delivery-consumers`` of that namespace, ``resourceNames`` = exactly those targets. It
  never lists Secrets: a namespace may hold others (Argo CD's repository credentials in ``argocd``);
* preflight, refresh (only when some secret rotates): the rotation's discovery, one LIST each of
  ``externalsecrets``, ``pushsecrets``, ``secretstores`` and ``clustersecretstores`` across
  namespaces, to find hand-written consumers of a rotated path: the ClusterRole
  ``vaultflow-delivery-discovery``, list only;
* verify-ready: LIST ``externalsecrets`` and ``pushsecrets`` in each namespace that holds rendered
  ones, once per look: the namespace's Role, unless the discovery ClusterRole already grants it.

Nothing is ever created, changed, watched or deleted in a catalog cluster, nothing is listed on
Secrets. Outside the workflows cluster the account is rendered too (no pod runs as it there), with
its Namespace (``rbac_objects.account_namespaces``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from vaultflow.gitops.catalog.model import Catalog, ServiceAccountRef
from vaultflow.gitops.catalog.placement import Plan
from vaultflow.gitops.rbac_objects import ESO_GROUP, MetaFactory, PlacedObject, remote_account, role_pair
from vaultflow.gitops.resources.rbac import PolicyRule
from vaultflow.gitops.rotation_rbac import DISCOVERED_KINDS

# The pipeline's identity: apply-eso-resources' serviceAccountName (workflows/pipelines), its account
# and hand-written RBAC in the workflows cluster (argocd-apps/workflows/rbac/delivery-pipeline.yaml).
DELIVERY_ACCOUNT = ServiceAccountRef(name="vaultflow-delivery", namespace="argo")
PREFLIGHT_ROLE = "vaultflow-delivery-preflight"
CONSUMERS_ROLE = "vaultflow-delivery-consumers"
DISCOVERY_ROLE = "vaultflow-delivery-discovery"
WATCHED_KINDS = ("externalsecrets", "pushsecrets")  # what verify-ready lists

_PREFLIGHT_WHY = (
    "vaultflow delivery, preflight: a token of ESO's service account (TokenRequest) to read every "
    "Vault reference as ESO would. Create on that one account only."
)
_DISCOVERY_WHY = (
    "vaultflow delivery, preflight: the rotation's discovery (one LIST per kind across namespaces) "
    "finds hand-written consumers of rotated paths that ESO never refreshes. List only."
)
_CONSUMERS_WHY = (
    "vaultflow delivery in a namespace the catalog delivers to: preflight reads exactly the target "
    "Secrets named here (does something else control them?), never lists Secrets."
)
_WATCHED_WHY = " Verify-ready lists the namespace's ExternalSecrets and PushSecrets."
_ACCOUNT_WHAT = "vaultflow delivery's identity in this cluster (the apply-eso-resources pipeline)"


@dataclass(frozen=True)
class DeliveryGrants:
    """What the delivery account may do in one cluster (before it is turned into objects)."""

    cluster: str
    discovery: bool  # some secret rotates: preflight's refresh check lists the ESO kinds cluster-wide
    targets: dict[str, tuple[str, ...]]  # namespace -> the target Secrets of its ExternalSecrets, sorted
    watched: dict[str, tuple[str, ...]]  # namespace -> the ESO kinds verify-ready lists there (unless
    # the discovery ClusterRole grants them)


def delivery_grants(catalog: Catalog, plan: Plan) -> dict[str, DeliveryGrants]:
    """Per catalog cluster, in catalog order: the targets preflight reads and the kinds verify-ready lists."""
    discovery = any(secret.rotation is not None for secret in catalog.secrets)
    targets: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    watched: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for es in plan.external_secrets:
        targets[es.cluster][es.namespace].add(es.target)
        watched[es.cluster][es.namespace].add("externalsecrets")
    for ps in plan.push_secrets:
        watched[ps.cluster][ps.namespace].add("pushsecrets")
    return {
        cluster.name: DeliveryGrants(
            cluster=cluster.name,
            discovery=discovery,
            targets={ns: tuple(sorted(names)) for ns, names in sorted(targets[cluster.name].items())},
            watched={}
            if discovery
            else {
                ns: tuple(kind for kind in WATCHED_KINDS if kind in kinds)
                for ns, kinds in sorted(watched[cluster.name].items())
            },
        )
        for cluster in catalog.clusters
    }


def consumer_rules(targets: tuple[str, ...], watched: tuple[str, ...]) -> list[PolicyRule]:
    rules = []
    if targets:
        # preflight, ownership: a GET of each target, by name (never a LIST of the namespace's Secrets)
        rules.append(
            PolicyRule(api_groups=[""], resources=["secrets"], resource_names=list(targets), verbs=["get"])
        )
    if watched:
        # verify-ready: one LIST per kind and look
        rules.append(PolicyRule(api_groups=[ESO_GROUP], resources=list(watched), verbs=["list"]))
    return rules


def cluster_objects(catalog: Catalog, grants: DeliveryGrants, meta: MetaFactory) -> list[PlacedObject]:
    """One cluster's delivery objects, with their paths relative to the cluster's directory."""
    account = DELIVERY_ACCOUNT
    eso = catalog.vault.kubernetes_auth.eso_service_account
    workflows = catalog.workflows_cluster().name
    objects: list[PlacedObject] = []
    if grants.cluster != workflows:
        objects.append(remote_account(account, meta, what=_ACCOUNT_WHAT, cluster=workflows))
    token = PolicyRule(
        api_groups=[""], resources=["serviceaccounts/token"], resource_names=[eso.name], verbs=["create"]
    )
    objects += role_pair(
        account, meta, name=PREFLIGHT_ROLE, namespace=eso.namespace, why=_PREFLIGHT_WHY, rules=[token]
    )
    if grants.discovery:
        listing = PolicyRule(api_groups=[ESO_GROUP], resources=list(DISCOVERED_KINDS), verbs=["list"])
        objects += role_pair(
            account, meta, name=DISCOVERY_ROLE, namespace=None, why=_DISCOVERY_WHY, rules=[listing]
        )
    for namespace in sorted({*grants.targets, *grants.watched}):
        watched = grants.watched.get(namespace, ())
        rules = consumer_rules(grants.targets.get(namespace, ()), watched)
        if rules:
            why = _CONSUMERS_WHY + (_WATCHED_WHY if watched else "")
            objects += role_pair(
                account, meta, name=CONSUMERS_ROLE, namespace=namespace, why=why, rules=rules
            )
    return objects


def delivery_rbac(catalog: Catalog, plan: Plan, meta: MetaFactory) -> dict[str, list[PlacedObject]]:
    """Every cluster's delivery objects (paths relative to ``clusters/<cluster>/``)."""
    return {
        name: cluster_objects(catalog, grants, meta)
        for name, grants in delivery_grants(catalog, plan).items()
    }
