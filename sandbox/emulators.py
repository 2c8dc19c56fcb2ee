"""Sandbox II in the supervisor: the cloud emulators, the controllers, and the admin API that steers them.

Started after the clusters, stopped before them:

* a sandbox CA (``DIR/tls/ca.crt``) for the HTTPS emulators;
* the GCP Secret Manager emulator (plain HTTP) and one Azure Key Vault per
  name in the spec (HTTPS, each its own port);
* an ESO emulator in every cluster (its metrics on ``GET /metrics``, a port of
  its own) and the Argo CD emulator in the management cluster, sharing one fault
  injector and one set of routes;
* the admin API (faults, routes, controller counters) with its token in
  ``DIR/run/admin.token`` (0600);
* the GitHub emulator (HTTPS, the sandbox CA) over the bare repositories the
  ``git`` routes name, its token in ``DIR/run/github.token`` (0600), its pull
  requests in ``DIR/github.json``; the sandbox's GitOps remote
  ``DIR/gitops.git`` exists from the first ``up`` on.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vaultflow.base.errors import InputError
from vaultflow.sandbox.admin import AdminApi
from vaultflow.sandbox.argo_server import ArgoServer
from vaultflow.sandbox.argocd import ArgoCdController
from vaultflow.sandbox.azure import AzureKeyVaultEmulator
from vaultflow.sandbox.eso import EsoController
from vaultflow.sandbox.eso.environment import CloudEndpoints, EsoEnvironment
from vaultflow.sandbox.eso.metrics import metrics_server
from vaultflow.sandbox.faults import FaultInjector
from vaultflow.sandbox.gcp import GcpSecretManagerEmulator
from vaultflow.sandbox.github import GitHubEmulator, GitHubStore, RepositoryDirectory, init_bare
from vaultflow.sandbox.http import HttpServer
from vaultflow.sandbox.kube import KubeCluster
from vaultflow.sandbox.layout import SandboxPaths
from vaultflow.sandbox.pki import CertificateAuthority
from vaultflow.sandbox.routes import Routes
from vaultflow.sandbox.state import AzureVault, SandboxSpec

log = logging.getLogger("vaultflow.sandbox.emulators")


@dataclass
class ServiceEmulators:
    """What Sandbox II runs in the supervisor; ``start`` builds it, ``stop`` tears it down."""

    gcp: GcpSecretManagerEmulator
    azure: AzureKeyVaultEmulator
    routes: Routes
    faults: FaultInjector
    eso: dict[str, EsoController] = field(default_factory=dict)
    eso_metrics: dict[str, HttpServer] = field(default_factory=dict)  # ESO's /metrics, per cluster
    argocd: ArgoCdController | None = None
    admin: HttpServer | None = None
    argo_server: ArgoServer | None = None
    github: GitHubEmulator | None = None

    @classmethod
    def start(
        cls,
        paths: SandboxPaths,
        spec: SandboxSpec,
        clusters: list[KubeCluster],
        aws_endpoint: str,
        prepare: Callable[[ServiceEmulators], None] | None = None,
    ) -> ServiceEmulators:
        """``prepare`` runs before any controller: a restarted sandbox restores its routes and clouds."""
        authority = CertificateAuthority.kept_in(paths.ca_file, paths.ca_key, "vaultflow sandbox CA")
        gcp = GcpSecretManagerEmulator().start()
        log.info("GCP Secret Manager emulator listens on %s", gcp.url)
        azure = AzureKeyVaultEmulator(authority)
        for name in spec.azure_vaults:
            vault = azure.add_vault(name)
            log.info("Azure Key Vault emulator %s listens on %s", name, vault.url)
        by_name = {cluster.name: cluster for cluster in clusters}
        routes = Routes.for_sandbox({c.url: c.name for c in clusters}, spec.management_cluster)
        faults = FaultInjector()
        clouds = CloudEndpoints(
            aws=aws_endpoint,
            gcp=gcp.url,
            azure_vaults=lambda: {v.name: v.url for v in azure.vaults},
            ca_file=str(paths.ca_file),
        )
        environment = EsoEnvironment(routes, faults, clouds)
        services = cls(gcp, azure, routes, faults)
        if prepare is not None:
            prepare(services)
        for cluster in clusters:
            services.eso[cluster.name] = EsoController(
                cluster,
                environment,
                concurrent=spec.eso_concurrent,
                vault_token_cache=spec.eso_vault_token_cache,
            ).start()
            services.eso_metrics[cluster.name] = metrics_server(services.eso[cluster.name].metrics).start()
        services.argocd = ArgoCdController(
            by_name[spec.management_cluster],
            by_name,
            routes,
            reconciliation_timeout=spec.argocd_reconciliation_timeout,
            reconciliation_jitter=spec.argocd_reconciliation_jitter,
        ).start()
        log.info(
            "Argo CD emulator watches Applications in %s (timeout.reconciliation %gs, jitter %gs)",
            spec.management_cluster,
            spec.argocd_reconciliation_timeout,
            spec.argocd_reconciliation_jitter,
        )
        services.admin = HttpServer(
            AdminApi(faults, routes, services.controllers, _write_token(paths.admin_token)),
            name="sandbox-admin",
        ).start()
        log.info("admin API listens on %s", services.admin.url)
        # Workflows submitted here run in this process with the local runner; their steps reach
        # the emulated clusters through the sandbox kubeconfig, as `vaultflow run` would.
        os.environ["KUBECONFIG"] = str(paths.kubeconfig)
        services.argo_server = ArgoServer(
            run_root=paths.argo_runs, token=_write_token(paths.argo_token)
        ).start()
        log.info("Argo Server (local runner) listens on %s", services.argo_server.url)
        services.github = _start_github(paths, routes, authority)
        return services

    def controllers(self) -> list[dict[str, Any]]:
        report: list[dict[str, Any]] = [
            {
                "controller": "external-secrets",
                "cluster": name,
                "reconciles": controller.reconciles,
                "errors": controller.errors,
                "queued": controller.queued,
                "scheduled": controller.scheduled,
            }
            for name, controller in sorted(self.eso.items())
        ]
        if self.argocd is not None:
            report.append(
                {
                    "controller": "argocd",
                    "cluster": self.argocd.management.name,
                    "reconciles": self.argocd.reconciles,
                    "errors": 0,
                    "queued": self.argocd.queue.depth,
                    "scheduled": self.argocd.queue.scheduled,
                }
            )
        return report

    @property
    def azure_vaults(self) -> list[AzureVault]:
        return [AzureVault(name=v.name, url=v.url) for v in self.azure.vaults]

    def stop(self) -> None:
        if self.github is not None:
            self.github.stop()
        if self.argo_server is not None:
            self.argo_server.stop()
        if self.admin is not None:
            self.admin.stop()
        if self.argocd is not None:
            self.argocd.stop()
        for server in self.eso_metrics.values():
            server.stop()
        for controller in self.eso.values():
            controller.stop()
        self.azure.stop()
        self.gcp.stop()


def _start_github(paths: SandboxPaths, routes: Routes, authority: CertificateAuthority) -> GitHubEmulator:
    """GitHub over the repositories the ``git`` routes name (read live: a route set later is served)."""
    init_bare(paths.gitops_repo)
    try:
        store = GitHubStore(paths.github_state)
    except (ValueError, KeyError, TypeError) as error:
        raise InputError(
            f"{paths.github_state}: unreadable GitHub emulator state ({error.__class__.__name__}); "
            f"start over with `vaultflow sandbox down --purge --dir {paths.root}`"
        ) from None
    directory = RepositoryDirectory(lambda: routes.to_json()["git"])
    github = GitHubEmulator(
        directory, token=_write_token(paths.github_token), authority=authority, store=store
    )
    github.start()
    log.info("GitHub emulator listens on %s (REST API %s)", github.url, github.api_url)
    return github


def _write_token(path: Path) -> str:
    """A fresh bearer token, written where only the sandbox's owner can read it."""
    token = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(token + "\n")
    return token
