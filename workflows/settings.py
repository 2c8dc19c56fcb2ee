"""Deployment settings of the workflows that are theirs alone (the steps image, shared with the
exporter, is ``vaultflow.base.steps_image``)."""

from __future__ import annotations

# Service accounts declared (with their RBAC) in argocd-apps/workflows/rbac.
DEFAULT_SERVICE_ACCOUNT = "vaultflow-workflow"
