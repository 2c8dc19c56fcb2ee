"""Typed models of the Argo CD ``Application`` that vaultflow renders per cluster."""

from __future__ import annotations

from typing import Final, Literal

from pydantic import Field

from vaultflow.gitops.resources.meta import K8sModel, ObjectMeta

ARGOCD_API_VERSION: Final = "argoproj.io/v1alpha1"


class ApplicationSource(K8sModel):
    repo_url: str = Field(alias="repoURL")
    target_revision: str
    path: str


class ApplicationDestination(K8sModel):
    server: str | None = None
    name: str | None = None
    namespace: str | None = None


class Automated(K8sModel):
    prune: bool
    self_heal: bool


class Backoff(K8sModel):
    duration: str
    factor: int
    max_duration: str


class Retry(K8sModel):
    limit: int
    backoff: Backoff


class SyncPolicy(K8sModel):
    automated: Automated
    sync_options: list[str] | None = None
    retry: Retry | None = None


class ApplicationSpec(K8sModel):
    project: str
    source: ApplicationSource
    destination: ApplicationDestination
    sync_policy: SyncPolicy


class Application(K8sModel):
    api_version: Literal["argoproj.io/v1alpha1"] = ARGOCD_API_VERSION
    kind: Literal["Application"] = "Application"
    metadata: ObjectMeta
    spec: ApplicationSpec
