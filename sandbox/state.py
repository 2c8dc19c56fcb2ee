"""What a sandbox directory records: the request (``spec.json``) and the running state (``sandbox.json``).

``up`` writes the spec, the supervisor writes the state once every component
answers; ``status``, ``env``, the demo and the tests read the state. No secret
is in either file: the clusters' admin tokens live only in the 0600 kubeconfig.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vaultflow.base.errors import OperationError
from vaultflow.sandbox.argocd.reconciliation import (
    DEFAULT_RECONCILIATION_JITTER,
    DEFAULT_RECONCILIATION_TIMEOUT,
)

SPEC_FILE = "spec.json"
STATE_FILE = "sandbox.json"
KUBECONFIG_FILE = "kubeconfig"
MANAGEMENT_CLUSTER = "mgmt"
AWS_REGION = "us-east-1"
DEFAULT_AZURE_VAULTS = ("sandbox",)


class PostgresSpec(BaseModel):
    """The PostgreSQL server a sandbox runs because its catalog names a postgres credential
    (``vaultflow.sandbox.postgres``): what it holds, and the address the catalog gives it."""

    model_config = ConfigDict(frozen=True)

    host: str  # the catalog's host: the server's certificate names it, VAULTFLOW_POSTGRES_ROUTES maps it
    port: int = 5432  # the catalog's port
    database: str
    user: str  # the database's owner, whose credential the catalog's secret holds
    admin_user: str  # CREATEROLE and ADMIN OPTION on ``user``: what alternating users log in as
    secret_path: str  # the catalog secret holding ``user``'s credential
    admin_path: str = ""  # the Vault path of the admin's credential ("": the catalog names none)
    username_key: str = "username"
    password_key: str = "password"
    admin_username_key: str = "username"
    admin_password_key: str = "password"


class SandboxSpec(BaseModel):
    """The options a sandbox was started with; ``up`` with other options must not reuse it."""

    model_config = ConfigDict(frozen=True)

    workload_clusters: tuple[str, ...]
    management_cluster: str = MANAGEMENT_CLUSTER
    vault_replicas: int = 1
    vault_port: int = 0
    crd_dir: str
    crd_upstream: bool
    azure_vaults: tuple[str, ...] = DEFAULT_AZURE_VAULTS
    eso_concurrent: int = 1  # ESO's --concurrent: workers per ESO controller
    eso_vault_token_cache: bool = False  # ESO's --enable-vault-token-cache
    # Argo CD's timeout.reconciliation and timeout.reconciliation.jitter (argocd-cm), seconds
    argocd_reconciliation_timeout: float = DEFAULT_RECONCILIATION_TIMEOUT
    argocd_reconciliation_jitter: float = DEFAULT_RECONCILIATION_JITTER
    # How the Vault nodes are sealed: Shamir shares, or auto-unseal by a second OpenBao's transit engine
    seal: Literal["shamir", "transit"] = "shamir"
    # A PostgreSQL server (the catalog given to ``up --catalog`` names a postgres credential)
    postgres: PostgresSpec | None = None

    @property
    def cluster_names(self) -> tuple[str, ...]:
        return (*self.workload_clusters, self.management_cluster)

    def describe(self) -> str:
        replicas = "1 OpenBao node" if self.vault_replicas == 1 else f"{self.vault_replicas} OpenBao nodes"
        described = (
            f"clusters {', '.join(self.cluster_names)}; {replicas}; Key Vaults {', '.join(self.azure_vaults)}"
        )
        reconciliation = (self.argocd_reconciliation_timeout, self.argocd_reconciliation_jitter)
        if reconciliation != (DEFAULT_RECONCILIATION_TIMEOUT, DEFAULT_RECONCILIATION_JITTER):
            described += f"; Argo CD reconciliation {reconciliation[0]:g}s + up to {reconciliation[1]:g}s"
        if self.seal != "shamir":
            described += f"; {self.seal} seal"
        if self.postgres is not None:
            described += f"; PostgreSQL (database {self.postgres.database})"
        return described


class ClusterEndpoint(BaseModel):
    name: str
    role: Literal["workload", "management"]
    url: str
    ca_file: str = Field(description="PEM of the cluster's CA (the kubernetes_ca_cert of a Vault auth mount)")


class AzureVault(BaseModel):
    """One emulated Key Vault: ``https://<name>.vault.azure.net`` is served at ``url``."""

    name: str
    url: str


class VaultNode(BaseModel):
    node_id: str
    address: str
    cluster_address: str
    pid: int
    data_dir: str


class SandboxState(BaseModel):
    """Every endpoint of a running sandbox."""

    directory: str
    spec: SandboxSpec
    supervisor_pid: int
    started_at: str
    kubeconfig: str
    clusters: list[ClusterEndpoint]
    vault: list[VaultNode]
    aws_endpoint: str
    aws_region: str = AWS_REGION
    crd_source: str
    gcp_endpoint: str = ""
    azure_vaults: list[AzureVault] = Field(default_factory=list)
    ca_file: str = Field(
        "", description="PEM of the sandbox CA that the HTTPS emulators' certificates chain to"
    )
    admin_endpoint: str = Field("", description="the supervisor's admin API (faults, routes, controllers)")
    argo_server: str = Field("", description="the Argo Server endpoints; submitted workflows run locally")
    argo_token_file: str = Field("", description="its bearer token (mode 0600)")
    github_endpoint: str = Field(
        "", description="the GitHub emulator's origin; its REST API is under /api/v3"
    )
    github_token_file: str = Field("", description="the GitHub emulator's bearer token (mode 0600)")
    gitops_repo: str = Field("", description="file:// URL of the sandbox's GitOps bare repository")
    unsealer: VaultNode | None = Field(
        None, description="the second OpenBao whose transit engine auto-unseals the nodes (--seal transit)"
    )
    eso_metrics: dict[str, str] = Field(
        default_factory=dict, description="each cluster's ESO emulator metrics endpoint (GET /metrics)"
    )
    prometheus: str = Field("", description="Prometheus (empty: its Debian packages are not installed)")
    pushgateway: str = Field("", description="the Prometheus Pushgateway")
    alertmanager: str = Field("", description="the Alertmanager Prometheus sends its alerts to")
    exporter: str = Field("", description="vaultflow's exporter as the observer (after `up --catalog`)")
    postgres: str = Field("", description="PostgreSQL's host:port on loopback (TLS, sandbox CA), if started")

    @property
    def github_api_url(self) -> str:
        """``GITHUB_API_URL`` (PyGithub's ``base_url``), empty when the sandbox has no GitHub emulator."""
        return f"{self.github_endpoint}/api/v3" if self.github_endpoint else ""

    @property
    def vault_addr(self) -> str:
        """The address clients use: the first node (the one bootstrap initialises)."""
        return self.vault[0].address

    @property
    def workload_clusters(self) -> list[ClusterEndpoint]:
        return [c for c in self.clusters if c.role == "workload"]

    @property
    def management_cluster(self) -> ClusterEndpoint:
        return next(c for c in self.clusters if c.role == "management")

    def ports(self) -> list[int]:
        """Every port on 127.0.0.1 the sandbox listens on."""
        urls = [c.url for c in self.clusters] + [self.aws_endpoint]
        urls += [n.address for n in self.vault] + [n.cluster_address for n in self.vault]
        if self.unsealer is not None:
            urls += [self.unsealer.address, self.unsealer.cluster_address]
        urls += [v.url for v in self.azure_vaults] + [
            u for u in (self.gcp_endpoint, self.admin_endpoint, self.argo_server, self.github_endpoint) if u
        ]
        urls += list(self.eso_metrics.values())
        urls += [u for u in (self.prometheus, self.pushgateway, self.alertmanager, self.exporter) if u]
        urls += [f"tcp://{self.postgres}"] if self.postgres else []
        return [int(url.rsplit(":", 1)[1]) for url in urls]

    def azure_vault_url(self, name: str) -> str:
        """The loopback URL serving Key Vault ``name`` (``https://<name>.vault.azure.net``)."""
        for vault in self.azure_vaults:
            if vault.name == name:
                return vault.url
        raise KeyError(
            f"no Key Vault {name!r} in the sandbox (have {', '.join(v.name for v in self.azure_vaults)})"
        )

    def cluster(self, name: str) -> ClusterEndpoint:
        for endpoint in self.clusters:
            if endpoint.name == name:
                return endpoint
        raise KeyError(
            f"no cluster {name!r} in the sandbox (have {', '.join(c.name for c in self.clusters)})"
        )


def write_json_atomically(path: Path, text: str, mode: int = 0o644) -> None:
    """Readers never see a half-written file: write beside it, then rename."""
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    temporary.replace(path)


def read_state(directory: Path) -> SandboxState | None:
    """The recorded state, or None when the directory has none."""
    path = directory / STATE_FILE
    if not path.is_file():
        return None
    try:
        return SandboxState.model_validate_json(path.read_text())
    except ValueError as error:
        raise OperationError(
            f"{path}: unreadable sandbox state ({error.__class__.__name__}); run `down` to clean up"
        ) from None


def read_spec(directory: Path) -> SandboxSpec:
    return SandboxSpec.model_validate_json((directory / SPEC_FILE).read_text())


def dump(model: BaseModel) -> str:
    return json.dumps(model.model_dump(mode="json"), indent=2) + "\n"
