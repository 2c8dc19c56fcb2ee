"""Point a running sandbox at what a catalog's rendered manifests name, the way a platform team would.

The rendered tree names things the sandbox cannot be: an in-cluster Vault
address, Argo CD's ``https://kubernetes.default.svc``, cloud credential
Secrets that a platform team creates out of band, the Vault CA ConfigMap that
``vault:deploy`` publishes. ``wire_catalog`` sets exactly these, and says what
it set (``vaultflow sandbox up --catalog`` and the demo print it):

* routes (sandbox-only, see ``vaultflow.sandbox.routes``): the catalog's Vault address
  to the sandbox's OpenBao; every Argo CD destination that is not a sandbox
  cluster's own URL or name to the catalog cluster it stands for; the
  catalog's GitOps repository to a ``file://`` bare repository when given;
* the credential Secrets each rendered cloud SecretStore reads, in each
  namespace that has one, holding **placeholder** values: moto accepts any
  key, and the GCP and Azure emulators have no identity platform;
* the Vault CA object of ``vault.tls.caProvider`` in every cluster, holding
  the sandbox CA (ESO reads it and verifies the sandbox OpenBao's certificate
  with it).

Idempotent: existing Secrets and ConfigMaps are left as they are.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from vaultflow.gitops.catalog import LoadedCatalog
from vaultflow.gitops.catalog.model import AwsCloud, AzureCloud, Catalog, GcpCloud
from vaultflow.sandbox.admin import AdminClient
from vaultflow.sandbox.state import SandboxState

AZURE_SUFFIX = ".vault.azure.net"
PLACEHOLDER_NOTE = "vaultflow sandbox placeholder, not a credential"


def azure_vault_names(catalog: Catalog) -> tuple[str, ...]:
    """The Key Vault names of the catalog's Azure clouds (``https://<name>.vault.azure.net``)."""
    names = []
    for cloud in catalog.clouds:
        if isinstance(cloud, AzureCloud):
            host = urlsplit(cloud.vault_url).hostname or ""
            if host.endswith(AZURE_SUFFIX):
                names.append(host.removesuffix(AZURE_SUFFIX))
    return tuple(dict.fromkeys(names))


def _placeholder_credentials(cloud: AwsCloud | GcpCloud | AzureCloud) -> tuple[str, dict[str, str]] | None:
    """(Secret name, data) a SecretStore of ``cloud`` reads, or None when it reads no Secret."""
    if isinstance(cloud, AwsCloud) and cloud.auth.secret_ref is not None:
        ref = cloud.auth.secret_ref
        return ref.secret_name, {
            ref.access_key_id_key: "AKIASANDBOXPLACEHOLDER",
            ref.secret_access_key_key: PLACEHOLDER_NOTE,
        }
    if isinstance(cloud, GcpCloud) and cloud.auth.secret_ref is not None:
        key = {"type": "service_account", "project_id": cloud.project_id, "note": PLACEHOLDER_NOTE}
        return cloud.auth.secret_ref.secret_name, {cloud.auth.secret_ref.key: json.dumps(key)}
    if isinstance(cloud, AzureCloud) and cloud.auth.service_principal is not None:
        principal = cloud.auth.service_principal
        return principal.secret_name, {
            principal.client_id_key: "00000000-0000-4000-8000-000000000000",
            principal.client_secret_key: PLACEHOLDER_NOTE,
        }
    return None


APP_OF_APPS = "vaultflow-apps"


def register_app_of_apps(state: SandboxState, loaded: LoadedCatalog, repo_url: str) -> str:
    """The one Application a platform team creates by hand: it syncs ``<gitops.path>/argocd`` into the
    management cluster, and Argo CD takes it from there. Created or updated; returns its name."""
    from kubernetes import client, config

    gitops = loaded.catalog.gitops
    application = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": APP_OF_APPS, "namespace": gitops.argocd_namespace},
        "spec": {
            "project": "default",
            "source": {
                "repoURL": repo_url,
                "targetRevision": gitops.revision,
                "path": f"{gitops.path}/argocd",
            },
            "destination": {"name": state.management_cluster.name, "namespace": gitops.argocd_namespace},
            "syncPolicy": {"automated": {"prune": True, "selfHeal": True}},
        },
    }
    with config.new_client_from_config(
        config_file=state.kubeconfig, context=state.management_cluster.name
    ) as api:
        _create(client.CoreV1Api(api).create_namespace, {"metadata": {"name": gitops.argocd_namespace}})
        custom = client.CustomObjectsApi(api)
        arguments = ("argoproj.io", "v1alpha1", gitops.argocd_namespace, "applications")
        if not _create(custom.create_namespaced_custom_object, *arguments, application):
            custom.patch_namespaced_custom_object(*arguments, APP_OF_APPS, {"spec": application["spec"]})
    return APP_OF_APPS


def _create(create: Any, *args: Any) -> bool:
    """Create unless it exists; True when created."""
    from kubernetes.client.exceptions import ApiException

    try:
        create(*args)
    except ApiException as error:
        if error.status == 409:
            return False
        raise
    return True


def wire_catalog(state: SandboxState, loaded: LoadedCatalog, *, repo_url: str | None = None) -> list[str]:
    """Set the routes and objects above; one line per thing done (no values)."""
    from kubernetes import client, config

    done = _routes(state, loaded.catalog, repo_url)
    cores = {
        cluster.name: client.CoreV1Api(
            config.new_client_from_config(config_file=state.kubeconfig, context=cluster.name)
        )
        for cluster in loaded.catalog.clusters
    }
    try:
        done += _credentials(loaded, cores)
        done += _vault_ca(state, loaded.catalog, cores)
    finally:
        for core in cores.values():
            core.api_client.close()
    return done


def _routes(state: SandboxState, catalog: Catalog, repo_url: str | None) -> list[str]:
    admin = AdminClient.for_state(state)
    admin.set_route("vault", catalog.vault.address, state.vault_addr)
    done = [f"route vault {catalog.vault.address} -> {state.vault_addr} (the sandbox OpenBao)"]
    sandbox_urls = {c.url.rstrip("/") for c in state.clusters}
    for cluster in catalog.clusters:
        server, name = cluster.argocd.server, cluster.argocd.name
        if server and server.rstrip("/") not in sandbox_urls:
            admin.set_route("clusters", server, cluster.name)
            done.append(f"route Argo CD destination {server} -> cluster {cluster.name}")
        if name and name != cluster.name:
            admin.set_route("clusters", name, cluster.name)
            done.append(f"route Argo CD destination name {name} -> cluster {cluster.name}")
    if repo_url and repo_url != catalog.gitops.repo_url:
        admin.set_route("git", catalog.gitops.repo_url, repo_url)
        done.append(f"route repository {catalog.gitops.repo_url} -> {repo_url}")
    return done


def _credentials(loaded: LoadedCatalog, cores: dict[str, Any]) -> list[str]:
    done = []
    wanted = sorted({(p.cluster, p.namespace, p.push.cloud) for p in loaded.plan.push_secrets})
    for cluster_name, namespace, cloud_name in wanted:
        credentials = _placeholder_credentials(loaded.catalog.cloud(cloud_name))
        if credentials is None:
            continue
        secret_name, data = credentials
        core = cores[cluster_name]
        _create(core.create_namespace, {"metadata": {"name": namespace}})
        body = {
            "metadata": {"name": secret_name, "labels": {"vaultflow.io/sandbox": "placeholder"}},
            "stringData": data,
        }
        if _create(core.create_namespaced_secret, namespace, body):
            done.append(
                f"placeholder {cloud_name} credentials Secret {namespace}/{secret_name} in {cluster_name}"
            )
    return done


def _vault_ca(state: SandboxState, catalog: Catalog, cores: dict[str, Any]) -> list[str]:
    ca = catalog.vault.tls.ca_provider
    if ca is None:
        return []
    done = []
    pem = Path(state.ca_file).read_text() if state.ca_file else ""
    for cluster_name, core in cores.items():
        _create(core.create_namespace, {"metadata": {"name": ca.namespace}})
        body: dict[str, Any] = {"metadata": {"name": ca.name}}
        if ca.type == "ConfigMap":
            body["data"] = {ca.key: pem}
            created = _create(core.create_namespaced_config_map, ca.namespace, body)
        else:
            body["stringData"] = {ca.key: pem}
            created = _create(core.create_namespaced_secret, ca.namespace, body)
        if created:
            done.append(f"Vault CA {ca.type} {ca.namespace}/{ca.name} in {cluster_name} (the sandbox CA)")
    return done
