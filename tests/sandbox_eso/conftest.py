"""Fixtures of the ESO emulator tests: one stack per session, a namespace per test.

The stack is what ESO sees on a real platform, run in this process: an
emulated cluster with the upstream CRDs, the session's real OpenBao with a
Kubernetes auth mount of its own that reviews the cluster's tokens (the ESO
role may read ``secret/data/prod/*`` and ``secret/data/team/*`` only), moto,
the GCP and Azure emulators, and the ESO emulator reconciling the cluster.
Objects are created through the real ``kubernetes`` client, as Argo CD or a
user would; results are read back through it and the clouds' real SDKs.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import hvac
import pytest
from azure.keyvault.secrets import SecretClient
from google.auth.credentials import AnonymousCredentials
from google.cloud import secretmanager
from kubernetes import client, config

from tests.conftest import UnsealedVault
from vaultflow.sandbox.azure import AzureKeyVaultEmulator
from vaultflow.sandbox.azure.credential import StaticTokenCredential
from vaultflow.sandbox.crd_sources import CrdSource, load_crds
from vaultflow.sandbox.eso import EsoController
from vaultflow.sandbox.eso.environment import CloudEndpoints, EsoEnvironment
from vaultflow.sandbox.faults import FaultInjector
from vaultflow.sandbox.gcp import GcpSecretManagerEmulator
from vaultflow.sandbox.kube import KubeCluster
from vaultflow.sandbox.kubeconfig import ClusterAccess, write_kubeconfig
from vaultflow.sandbox.observe import is_ready, wait_for
from vaultflow.sandbox.pki import CertificateAuthority
from vaultflow.sandbox.routes import Routes

VAULT_ADDRESS = "https://vault.vault-system.svc:8200"  # what stores name; routed to the OpenBao
ESO_NAMESPACE, ESO_ACCOUNT, ROLE = "external-secrets-system", "external-secrets", "external-secrets"
MOUNT = f"kubernetes-eso-{uuid.uuid4().hex[:6]}"  # the session's OpenBao is shared with other tests
POLICY = f"eso-test-{uuid.uuid4().hex[:6]}"
STORE = "vault-backend"
AZURE_VAULT = "eso-test-vault"
ESO_POLICY = """
path "secret/data/prod/*" {
  capabilities = ["read"]
}
path "secret/data/team/*" {
  capabilities = ["read"]
}
"""


@dataclass
class EsoStack:
    cluster: KubeCluster
    api: client.ApiClient
    core: client.CoreV1Api
    custom: client.CustomObjectsApi
    vault: hvac.Client  # root: only the tests write Vault
    faults: FaultInjector
    routes: Routes
    controller: EsoController
    aws_endpoint: str
    gcp: GcpSecretManagerEmulator
    azure: AzureKeyVaultEmulator
    ca_file: str

    # ------------------------------------------------------------ objects

    def create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        group, version = body["apiVersion"].split("/")
        plural = {
            "ExternalSecret": "externalsecrets",
            "PushSecret": "pushsecrets",
            "SecretStore": "secretstores",
        }
        created: dict[str, Any] = self.custom.create_namespaced_custom_object(
            group, version, namespace, plural[body["kind"]], body
        )
        return created

    def get(self, namespace: str, kind: str, name: str) -> dict[str, Any]:
        version = "v1alpha1" if kind == "PushSecret" else "v1"
        plural = {
            "ExternalSecret": "externalsecrets",
            "PushSecret": "pushsecrets",
            "SecretStore": "secretstores",
        }
        found: dict[str, Any] = self.custom.get_namespaced_custom_object(
            "external-secrets.io", version, namespace, plural[kind], name
        )
        return found

    def annotate(self, namespace: str, kind: str, name: str, annotations: dict[str, str]) -> None:
        version = "v1alpha1" if kind == "PushSecret" else "v1"
        plural = {"ExternalSecret": "externalsecrets", "PushSecret": "pushsecrets"}[kind]
        self.custom.patch_namespaced_custom_object(
            "external-secrets.io",
            version,
            namespace,
            plural,
            name,
            {"metadata": {"annotations": annotations}},
        )

    def force_sync(self, namespace: str, kind: str, name: str) -> None:
        self.annotate(namespace, kind, name, {"force-sync": uuid.uuid4().hex})

    def secret_data(self, namespace: str, name: str) -> dict[str, bytes] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            secret = self.core.read_namespaced_secret(name, namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return {key: base64.b64decode(value) for key, value in (secret.data or {}).items()}

    def ready(self, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
        obj = self.get(namespace, kind, name)
        return obj if is_ready(obj) else None

    def condition(self, namespace: str, kind: str, name: str) -> dict[str, Any]:
        for condition in (self.get(namespace, kind, name).get("status") or {}).get("conditions") or []:
            if condition["type"] == "Ready":
                return dict(condition)
        return {}

    def events(self, namespace: str, name: str) -> list[Any]:
        return [
            event
            for event in self.core.list_namespaced_event(namespace).items
            if event.involved_object.name == name
        ]

    def wait_ready(self, namespace: str, kind: str, name: str, timeout: float = 20.0) -> dict[str, Any]:
        return wait_for(
            lambda: self.ready(namespace, kind, name), timeout=timeout, what=f"{kind} {name} Ready"
        )


def external_secret(name: str, *, data: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": name},
        "spec": {
            "refreshInterval": "1h",
            "secretStoreRef": {"name": STORE, "kind": "ClusterSecretStore"},
            **spec,
        },
    }
    if data is not None:
        body["spec"]["data"] = data
    return body


def _configure_vault(root: hvac.Client, cluster: KubeCluster, core: client.CoreV1Api) -> None:
    for namespace, account in (("kube-system", "vault-auth"), (ESO_NAMESPACE, ESO_ACCOUNT)):
        if namespace != "kube-system":
            core.create_namespace({"metadata": {"name": namespace}})
        core.create_namespaced_service_account(namespace, {"metadata": {"name": account}})
    client.RbacAuthorizationV1Api(core.api_client).create_cluster_role_binding(
        {  # the reviewer may create TokenReviews, as Vault's Kubernetes auth requires
            "metadata": {"name": "vault-auth-delegator"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "system:auth-delegator",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "vault-auth", "namespace": "kube-system"}],
        }
    )
    reviewer = core.create_namespaced_service_account_token(
        "vault-auth", "kube-system", {"spec": {"expirationSeconds": 86400}}
    ).status.token
    root.sys.enable_auth_method("kubernetes", path=MOUNT)
    root.write_data(
        f"auth/{MOUNT}/config",
        data={
            "kubernetes_host": cluster.url,
            "kubernetes_ca_cert": cluster.ca_pem,
            "token_reviewer_jwt": reviewer,
            "disable_local_ca_jwt": True,
        },
    )
    root.sys.create_or_update_policy(POLICY, ESO_POLICY)
    root.write_data(
        f"auth/{MOUNT}/role/{ROLE}",
        data={
            "bound_service_account_names": [ESO_ACCOUNT],
            "bound_service_account_namespaces": [ESO_NAMESPACE],
            "token_policies": [POLICY],
            "token_ttl": "1h",
        },
    )


def vault_store(custom: client.CustomObjectsApi, name: str, role: str = ROLE) -> None:
    custom.create_cluster_custom_object(
        "external-secrets.io",
        "v1",
        "clustersecretstores",
        {
            "apiVersion": "external-secrets.io/v1",
            "kind": "ClusterSecretStore",
            "metadata": {"name": name},
            "spec": {
                "provider": {
                    "vault": {
                        "server": VAULT_ADDRESS,
                        "path": "secret",
                        "version": "v2",
                        "auth": {
                            "kubernetes": {
                                "mountPath": MOUNT,
                                "role": role,
                                "serviceAccountRef": {"name": ESO_ACCOUNT, "namespace": ESO_NAMESPACE},
                            }
                        },
                    }
                }
            },
        },
    )


@pytest.fixture(scope="session")
def eso(
    schemas_dir: Path, tmp_path_factory: pytest.TempPathFactory, unsealed_vault: UnsealedVault
) -> Iterator[EsoStack]:
    from moto.server import ThreadedMotoServer

    directory = tmp_path_factory.mktemp("eso")
    cluster = KubeCluster("eso").start()
    cluster.register_crds(load_crds(CrdSource(schemas_dir, upstream=True)))
    kubeconfig = write_kubeconfig(
        directory / "kubeconfig", [ClusterAccess("eso", cluster.url, cluster.admin_token)]
    )
    api = config.new_client_from_config(config_file=str(kubeconfig), context="eso")
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    authority = CertificateAuthority()
    ca_file = directory / "ca.crt"
    ca_file.write_text(authority.certificate_pem)
    gcp = GcpSecretManagerEmulator().start()
    azure = AzureKeyVaultEmulator(authority)
    azure.add_vault(AZURE_VAULT)
    controller = None
    try:
        root = unsealed_vault.client()
        _configure_vault(root, cluster, core)

        routes = Routes.for_sandbox({cluster.url: "eso"}, "eso")
        routes.set("vault", VAULT_ADDRESS, unsealed_vault.address)
        faults = FaultInjector(seed=7)
        host, port = moto.get_host_and_port()
        clouds = CloudEndpoints(
            aws=f"http://{host}:{port}",
            gcp=gcp.url,
            azure_vaults=lambda: {v.name: v.url for v in azure.vaults},
            ca_file=str(ca_file),
        )
        controller = EsoController(cluster, EsoEnvironment(routes, faults, clouds)).start()
        vault_store(custom, STORE)
        stack = EsoStack(
            cluster, api, core, custom, root, faults, routes, controller, clouds.aws, gcp, azure, str(ca_file)
        )
        wait_for(
            lambda: is_ready(
                custom.get_cluster_custom_object("external-secrets.io", "v1", "clustersecretstores", STORE)
            ),
            what="the ClusterSecretStore to be Ready",
        )
        yield stack
    finally:
        if controller is not None:
            controller.stop()
        azure.stop()
        gcp.stop()
        moto.stop()
        api.close()
        cluster.stop()


@pytest.fixture
def namespace(eso: EsoStack) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    eso.core.create_namespace({"metadata": {"name": name}})
    yield name
    eso.faults.clear()
    eso.core.delete_namespace(name)


@pytest.fixture
def vault_path(eso: EsoStack) -> str:
    """A fresh path under ``prod/`` (readable by the ESO role) for one test."""
    return f"prod/{uuid.uuid4().hex[:8]}"


# ---------------------------------------------------------------- the clouds, read with their own SDKs


@pytest.fixture(scope="module")
def aws(eso: EsoStack) -> Any:
    return boto3.client(
        "secretsmanager",
        region_name="eu-west-1",
        endpoint_url=eso.aws_endpoint,
        aws_access_key_id="sandbox",
        aws_secret_access_key="sandbox",
    )


@pytest.fixture(scope="module")
def gcp(eso: EsoStack) -> Any:
    return secretmanager.SecretManagerServiceClient(
        transport="rest", client_options={"api_endpoint": eso.gcp.url}, credentials=AnonymousCredentials()
    )


@pytest.fixture(scope="module")
def azure(eso: EsoStack) -> Iterator[SecretClient]:
    vault = eso.azure.vault(AZURE_VAULT)
    with SecretClient(
        vault.url, StaticTokenCredential(), connection_verify=eso.ca_file, verify_challenge_resource=False
    ) as client:
        yield client
