"""The exporter on a cluster: its Deployment, Service and ServiceMonitor, the catalog it reads, and
the least-privilege RBAC of its identity, ``kubernetesAuth.observerServiceAccount``, in every
catalog cluster, derived from the catalog: exactly what ``vaultflow exporter`` asks of the clusters
(``steps/observe/exporter.py``, ``steps/observe/login.py``).

The exporter runs in the workflows cluster (the cluster Argo CD's ``monitoring`` Application syncs
to) as the observer service account, in that account's namespace:

* one LIST of ExternalSecrets across namespaces per catalog cluster and scrape: the ClusterRole
  ``vaultflow-observer`` in every catalog cluster, ``list`` on ``externalsecrets`` only (never a
  watch, never a Secret, never a write);
* the Vault login as the observer (Kubernetes auth) needs no grant: in its pod it sends its
  projected token; with a kubeconfig (``KUBECONFIG``: more than one catalog cluster, or the sandbox)
  the token that kubeconfig holds for it in the workflows cluster (``steps/vault/login.py``), never
  a TokenRequest for itself.

Outside the workflows cluster the account exists only to be bound (the exporter reaches those
clusters through a kubeconfig holding the account's token there), with its Namespace, rendered as
``delivery_rbac`` renders the pipelines' (``rbac_objects``), and delivered by an Application per
such cluster (``cluster_applications``), as the ESO resources reach each cluster: the monitoring
Application syncs those Applications, each syncs its cluster's folder to that cluster.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from vaultflow.base.errors import InputError
from vaultflow.base.steps_image import STEPS_UID, image
from vaultflow.gitops.catalog import LoadedCatalog
from vaultflow.gitops.catalog.model import Catalog, Cluster, ServiceAccountRef
from vaultflow.gitops.names import k8s_name
from vaultflow.gitops.rbac_objects import (
    ESO_GROUP,
    PlacedObject,
    account_namespaces,
    described,
    remote_account,
    role_pair,
)
from vaultflow.gitops.resources.meta import ObjectMeta
from vaultflow.gitops.resources.rbac import PolicyRule, ServiceAccount

EXPORTER = "vaultflow-exporter"
OBSERVER_ROLE = "vaultflow-observer"  # the ClusterRole (list ExternalSecrets) in every catalog cluster
LISTED_KINDS = ("externalsecrets",)  # what the exporter lists per cluster and scrape (exporter._list)
PORT = 9469
CATALOG_DIR = "/etc/vaultflow/catalog"
CATALOG_KEY = "catalog.yaml"
CA_DIR = "/etc/vaultflow/vault-ca"
CA_KEY = "vault-ca.crt"
KUBECONFIG_SECRET = "vaultflow-observer-kubeconfig"
KUBECONFIG_DIR = "/var/run/secrets/vaultflow.io/kube"
# The project of the monitoring Application and of each cluster's (argocd-apps/monitoring/project.yaml).
PROJECT = "vaultflow-monitoring"
APPLICATIONS_DIR = "applications"  # beside the workflows cluster's manifests: what the parent syncs
CLUSTERS_DIR = "clusters"  # clusters/<cluster>/: each other cluster's objects, excluded by the parent
# Where argocd-apps/monitoring/manifests/ lies in the GitOps repository (its application.yaml's path).
MANIFESTS_PATH = "argocd-apps/monitoring/manifests"
# Bytes the API server accepts in one ConfigMap (ValidateConfigMap, MaxSecretSize = 1 MiB).
CONFIG_MAP_LIMIT = 1024 * 1024

_LIST_WHY = (
    "vaultflow exporter: one LIST of ExternalSecrets across namespaces per scrape (stale consumers). "
    "List only: no watch, no Secret, no write."
)
_ACCOUNT_WHAT = "vaultflow's observer (the exporter)"
_WORKFLOWS_ACCOUNT_WHY = (
    "vaultflow's observer: the exporter runs as it and logs in to Vault with its token (Vault role "
    "{role}: KV metadata, never a value)."
)


def _labels(component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": EXPORTER,
        "app.kubernetes.io/part-of": "vaultflow",
        "app.kubernetes.io/component": component,
    }


def _meta(name: str, namespace: str | None) -> ObjectMeta:
    return ObjectMeta(name=name, namespace=namespace, labels=_labels("observer"))


def observer_rbac(catalog: Catalog) -> dict[str, list[PlacedObject]]:
    """Per catalog cluster, the observer's objects (paths relative to that cluster's folder)."""
    account = catalog.vault.kubernetes_auth.observer_service_account
    workflows = catalog.workflows_cluster().name
    listing = PolicyRule(api_groups=[ESO_GROUP], resources=list(LISTED_KINDS), verbs=["list"])
    rbac: dict[str, list[PlacedObject]] = {}
    for cluster in catalog.clusters:
        objects: list[PlacedObject] = []
        if cluster.name == workflows:
            why = _WORKFLOWS_ACCOUNT_WHY.format(role=catalog.vault.kubernetes_auth.observer_role)
            objects.append(
                (
                    f"{account.namespace}/service-account-{account.name}.yaml",
                    ServiceAccount(metadata=described(_meta(account.name, account.namespace), why)),
                )
            )
        else:
            objects.append(remote_account(account, _meta, what=_ACCOUNT_WHAT, cluster=workflows))
        objects += role_pair(
            account, _meta, name=OBSERVER_ROLE, namespace=None, why=_LIST_WHY, rules=[listing]
        )
        if cluster.name != workflows:
            objects = account_namespaces(objects, _meta) + objects
        rbac[cluster.name] = objects
    return rbac


def catalog_config_map(loaded: LoadedCatalog, account: ServiceAccountRef) -> dict[str, Any]:
    """The ConfigMap the exporter mounts: the catalog's text (and the CA file it names, if any)."""
    data = {CATALOG_KEY: loaded.source.read_text(encoding="utf-8")}
    ca_file = loaded.catalog.vault.tls.ca_file
    if ca_file is not None:
        data[CA_KEY] = loaded.resolve(ca_file).read_text(encoding="utf-8")
    size = sum(len(key) + len(value.encode()) for key, value in data.items())
    if size > CONFIG_MAP_LIMIT:
        raise InputError(
            f"{loaded.source}: {size} bytes; the exporter's ConfigMap holds at most {CONFIG_MAP_LIMIT}"
        )
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"{EXPORTER}-catalog",
            "namespace": account.namespace,
            "labels": _labels("exporter"),
        },
        "data": data,
    }


def _ca(catalog: Catalog) -> tuple[dict[str, Any] | None, str | None]:
    """The volume holding Vault's CA and its path for ``--ca-cert`` (none: the system trust store)."""
    tls = catalog.vault.tls
    if tls.ca_file is not None:
        relative = PurePosixPath(tls.ca_file)
        if relative.is_absolute() or ".." in relative.parts:
            return None, None  # mounted beside the catalog only when it is below it
        return None, f"{CATALOG_DIR}/{relative.as_posix()}"
    provider = tls.ca_provider
    if provider is None:
        return None, None
    items = [{"key": provider.key, "path": provider.key}]
    source: dict[str, Any] = (
        {"configMap": {"name": provider.name, "items": items}}
        if provider.type == "ConfigMap"
        else {"secret": {"secretName": provider.name, "items": items}}
    )
    return {"name": "vault-ca", **source}, f"{CA_DIR}/{provider.key}"


def deployment(catalog: Catalog) -> dict[str, Any]:
    """The exporter's Deployment: ``vaultflow exporter`` as the observer, read-only root filesystem."""
    account = catalog.vault.kubernetes_auth.observer_service_account
    ca_volume, ca_path = _ca(catalog)
    catalog_items = [{"key": CATALOG_KEY, "path": CATALOG_KEY}]
    if catalog.vault.tls.ca_file is not None and ca_path is not None:
        catalog_items.append({"key": CA_KEY, "path": ca_path.removeprefix(CATALOG_DIR + "/")})
    args = ["exporter", "--catalog", f"{CATALOG_DIR}/{CATALOG_KEY}", "--listen", f"0.0.0.0:{PORT}"]
    if ca_path is not None:
        args += ["--ca-cert", ca_path]
    volumes: list[dict[str, Any]] = [
        {"name": "catalog", "configMap": {"name": f"{EXPORTER}-catalog", "items": catalog_items}},
        {"name": "tmp", "emptyDir": {}},
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "catalog", "mountPath": CATALOG_DIR, "readOnly": True},
        # The root filesystem is read-only; the Kubernetes client writes a kubeconfig's certificates here.
        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 (an emptyDir of this pod only)
    ]
    env: list[dict[str, Any]] = []
    if ca_volume is not None:
        volumes.append(ca_volume)
        mounts.append({"name": "vault-ca", "mountPath": CA_DIR, "readOnly": True})
    if len(catalog.clusters) > 1:
        # The other clusters through a kubeconfig with the observer's tokens there, written by
        # `vaultflow cluster onboard`, never in Git (its own cluster stays in-cluster).
        volumes.append({"name": "kubeconfig", "secret": {"secretName": KUBECONFIG_SECRET}})
        mounts.append({"name": "kubeconfig", "mountPath": KUBECONFIG_DIR, "readOnly": True})
        env.append({"name": "KUBECONFIG", "value": f"{KUBECONFIG_DIR}/config"})
    container: dict[str, Any] = {
        "name": "exporter",
        "image": image(),
        "imagePullPolicy": "IfNotPresent",
        "command": ["vaultflow"],
        "args": args,
        **({"env": env} if env else {}),
        "ports": [{"name": "metrics", "containerPort": PORT, "protocol": "TCP"}],
        # A TCP probe: an HTTP one would run a whole scrape (every metadata read) each period.
        "readinessProbe": {"tcpSocket": {"port": "metrics"}, "periodSeconds": 10},
        "livenessProbe": {"tcpSocket": {"port": "metrics"}, "periodSeconds": 30, "failureThreshold": 3},
        "resources": {
            "requests": {"cpu": "50m", "memory": "128Mi"},
            "limits": {"memory": "512Mi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": mounts,
    }
    selector = {"app.kubernetes.io/name": EXPORTER}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": EXPORTER, "namespace": account.namespace, "labels": _labels("exporter")},
        "spec": {
            "replicas": 1,  # each replica reads everything per scrape: one is enough
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": _labels("exporter")},
                "spec": {
                    "serviceAccountName": account.name,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": STEPS_UID,
                        "runAsGroup": STEPS_UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def service(catalog: Catalog) -> dict[str, Any]:
    account = catalog.vault.kubernetes_auth.observer_service_account
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": EXPORTER, "namespace": account.namespace, "labels": _labels("exporter")},
        "spec": {
            "selector": {"app.kubernetes.io/name": EXPORTER},
            "ports": [{"name": "metrics", "port": PORT, "targetPort": "metrics", "protocol": "TCP"}],
        },
    }


def service_monitor(catalog: Catalog) -> dict[str, Any]:
    """What kube-prometheus-stack's Prometheus scrapes (label ``release: prometheus``, as the rules)."""
    account = catalog.vault.kubernetes_auth.observer_service_account
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {
            "name": EXPORTER,
            "namespace": account.namespace,
            "labels": {**_labels("exporter"), "release": "prometheus"},
        },
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": EXPORTER}},
            "namespaceSelector": {"matchNames": [account.namespace]},
            "endpoints": [
                {
                    "port": "metrics",
                    "path": "/metrics",
                    # Each scrape reads every catalog path's metadata: once a minute is plenty for
                    # alerts whose thresholds are an hour, and the timeout covers a large catalog.
                    "interval": "60s",
                    "scrapeTimeout": "30s",
                }
            ],
        },
    }


def exporter_manifests(loaded: LoadedCatalog) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Per catalog cluster, its manifests: (file name relative to the cluster's folder, object)."""
    catalog = loaded.catalog
    account = catalog.vault.kubernetes_auth.observer_service_account
    workflows = catalog.workflows_cluster().name
    placed: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for cluster, objects in observer_rbac(catalog).items():
        placed[cluster] = [(path, resource.to_manifest()) for path, resource in objects]
    placed[workflows] = [
        (f"{EXPORTER}-catalog.yaml", catalog_config_map(loaded, account)),
        (f"{EXPORTER}-deployment.yaml", deployment(catalog)),
        (f"{EXPORTER}-service.yaml", service(catalog)),
        (f"{EXPORTER}-service-monitor.yaml", service_monitor(catalog)),
        *placed[workflows],
    ]
    return placed


def cluster_application_name(cluster: Cluster) -> str:
    return k8s_name(PROJECT, cluster.name)


def cluster_application(catalog: Catalog, cluster: Cluster) -> dict[str, Any]:
    """The Application that syncs ``clusters/<cluster>/`` (the observer's RBAC there) to that cluster.

    Pruned with a finalizer: a cluster dropped from the catalog loses its Application, and the grant
    goes with it (the Namespace stays: ``rbac_objects`` marks it ``Prune=false,Delete=false``)."""
    account = catalog.vault.kubernetes_auth.observer_service_account
    destination = {
        **({"server": cluster.argocd.server} if cluster.argocd.server else {}),
        **({"name": cluster.argocd.name} if cluster.argocd.name else {}),
        "namespace": account.namespace,
    }
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": cluster_application_name(cluster),
            "namespace": catalog.gitops.argocd_namespace,
            "labels": _labels("observer"),
            "finalizers": ["resources-finalizer.argocd.argoproj.io"],
        },
        "spec": {
            "project": PROJECT,
            "source": {
                "repoURL": catalog.gitops.repo_url,
                "targetRevision": catalog.gitops.revision,
                "path": f"{MANIFESTS_PATH}/{CLUSTERS_DIR}/{cluster.name}",
                # the account lies in a folder of its namespace
                "directory": {"recurse": True},
            },
            "destination": destination,
            "syncPolicy": {
                "automated": {"prune": True, "selfHeal": True},
                "syncOptions": ["FailOnSharedResource=true"],
                "retry": {"limit": 10, "backoff": {"duration": "10s", "factor": 2, "maxDuration": "5m"}},
            },
        },
    }


def cluster_applications(catalog: Catalog) -> list[tuple[str, dict[str, Any]]]:
    """One Application per catalog cluster other than the workflows one (file name, object)."""
    workflows = catalog.workflows_cluster().name
    return [
        (f"{cluster_application_name(cluster)}.yaml", cluster_application(catalog, cluster))
        for cluster in sorted(catalog.clusters, key=lambda c: c.name)
        if cluster.name != workflows
    ]
