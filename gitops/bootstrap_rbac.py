"""The bootstrap pipeline's Kubernetes RBAC in each catalog cluster other than the workflows cluster.

``vault-bootstrap`` runs as ``kubernetesAuth.bootstrapServiceAccount`` (``argo/vaultflow-bootstrap``)
in the workflows cluster, where ``argocd-apps/workflows/rbac/bootstrap.yaml`` grants it the keeper,
the lock, the catalog and two TokenRequests. In every other catalog cluster it asks exactly this
(``steps/vault/configure.py``, ``steps/kube/review.py``, ``steps/vault/smoke.py``):

* configure, that cluster's Kubernetes auth mount: CREATE ``serviceaccounts/token`` of Vault's token
  reviewer (``kubernetesAuth.reviewerServiceAccount``), only when Vault needs a new reviewer JWT: the
  Role ``vaultflow-bootstrap-reviewer-token`` in the reviewer's namespace, on that one name. The API
  server's URL and CA come from the kubeconfig, not from a request;
* smoke-test, logging in to Vault as that cluster's ESO: CREATE ``serviceaccounts/token`` of ESO's
  account: the Role ``vaultflow-bootstrap-eso-token`` in ESO's namespace, on that one name.

The keeper, the lock and the catalog live in the workflows cluster only: nothing else is granted here,
never a Secret, a list or a write. The account itself is rendered too (no pod runs as it here) with its
Namespace. These objects are not part of the ESO tree Argo CD syncs: the bootstrap runs before any
delivery, and a grant in Vault's namespace is not one the automated ``vaultflow-eso-resources`` project
may hand out; ``vaultflow cluster onboard`` (an admin, once per cluster) applies them.
"""

from __future__ import annotations

from vaultflow.gitops.catalog.model import Catalog
from vaultflow.gitops.rbac_objects import MetaFactory, PlacedObject, remote_account, role_pair
from vaultflow.gitops.resources.rbac import PolicyRule

REVIEWER_TOKEN_ROLE = "vaultflow-bootstrap-reviewer-token"  # the names bootstrap.yaml uses in the
ESO_TOKEN_ROLE = "vaultflow-bootstrap-eso-token"  # workflows cluster, so one name means one grant

_REVIEWER_WHY = (
    "vaultflow bootstrap, configure: a token of Vault's token reviewer (TokenRequest), handed to this "
    "cluster's Kubernetes auth mount when it needs a new one. Create on that one account only."
)
_ESO_WHY = (
    "vaultflow bootstrap, smoke-test: a token of ESO's service account (TokenRequest) to log in to Vault "
    "exactly as ESO will. Create on that one account only."
)
_ACCOUNT_WHAT = "vaultflow bootstrap's identity in this cluster (the vault-bootstrap pipeline)"


def _token_rule(name: str) -> PolicyRule:
    return PolicyRule(
        api_groups=[""], resources=["serviceaccounts/token"], resource_names=[name], verbs=["create"]
    )


def cluster_objects(catalog: Catalog, cluster: str, meta: MetaFactory) -> list[PlacedObject]:
    """The bootstrap's objects in ``cluster`` (none in the workflows cluster: bootstrap.yaml's there)."""
    workflows = catalog.workflows_cluster().name
    if cluster == workflows:
        return []
    auth = catalog.vault.kubernetes_auth
    account = auth.bootstrap_service_account
    reviewer, eso = auth.reviewer_service_account, auth.eso_service_account
    objects = [remote_account(account, meta, what=_ACCOUNT_WHAT, cluster=workflows)]
    objects += role_pair(
        account,
        meta,
        name=REVIEWER_TOKEN_ROLE,
        namespace=reviewer.namespace,
        why=_REVIEWER_WHY,
        rules=[_token_rule(reviewer.name)],
    )
    objects += role_pair(
        account,
        meta,
        name=ESO_TOKEN_ROLE,
        namespace=eso.namespace,
        why=_ESO_WHY,
        rules=[_token_rule(eso.name)],
    )
    return objects


def bootstrap_rbac(catalog: Catalog, meta: MetaFactory) -> dict[str, list[PlacedObject]]:
    """Every cluster's bootstrap objects (paths relative to the cluster's folder)."""
    return {cluster.name: cluster_objects(catalog, cluster.name, meta) for cluster in catalog.clusters}
