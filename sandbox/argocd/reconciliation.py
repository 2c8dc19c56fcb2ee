"""How often Argo CD reads Git on its own: the defaults of its reconciliation settings.

argocd-cm's ``timeout.reconciliation`` (the controller's
``ARGOCD_RECONCILIATION_TIMEOUT``) and ``timeout.reconciliation.jitter``
(``ARGOCD_RECONCILIATION_JITTER``), as
cmd/argocd-application-controller/commands/argocd_application_controller.go
defines them (``defaultAppResyncPeriod``, ``defaultAppResyncPeriodJitter``).
``vaultflow sandbox up --argocd-reconciliation-timeout/--argocd-reconciliation-jitter``
set the sandbox's. Kept apart from the controller so that the sandbox's state and
CLI read them without importing the Kubernetes emulator.
"""

from __future__ import annotations

DEFAULT_RECONCILIATION_TIMEOUT = 120.0  # seconds
DEFAULT_RECONCILIATION_JITTER = 60.0  # seconds
