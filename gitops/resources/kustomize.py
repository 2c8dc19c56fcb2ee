"""The kustomize ``Kustomization`` that lists a rendered directory's resources."""

from __future__ import annotations

from typing import Literal

from vaultflow.gitops.resources.meta import K8sModel


class Kustomization(K8sModel):
    """Plain resource list; kustomize reads it client-side, so there is no CRD to validate against."""

    api_version: Literal["kustomize.config.k8s.io/v1beta1"] = "kustomize.config.k8s.io/v1beta1"
    kind: Literal["Kustomization"] = "Kustomization"
    resources: list[str]
