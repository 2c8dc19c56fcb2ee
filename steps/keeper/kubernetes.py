"""A keeper in a Kubernetes Secret: the in-cluster default.

The Secret lives in the bootstrap workflow's own namespace; RBAC lets only
that workflow's service account read it (argocd-apps/workflows/rbac/bootstrap.yaml:
create Secrets, get and update this one). Before anything is written the keeper
asks the API server (SelfSubjectAccessReview, what ``kubectl auth can-i`` asks)
whether the caller may do those three things, so a missing grant is named
before Vault is initialised. Updates carry the resourceVersion of the read just
before, so two concurrent runs cannot silently overwrite each other.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator
from typing import Any

from vaultflow.base.errors import OperationError
from vaultflow.steps.keeper.base import Keeper, KeeperConflict, corrupt
from vaultflow.steps.kube.errors import kube_errors

DATA_KEY = "unseal.json"
RBAC_FILE = "argocd-apps/workflows/rbac/bootstrap.yaml"


class KubernetesSecretKeeper(Keeper):
    def __init__(self, namespace: str, name: str, *, context: str | None = None, api: Any = None) -> None:
        self.namespace = namespace
        self.name = name
        self.context = context
        self._api = api
        self._seen: Any = None  # the Secret as last read or written: what an update replaces

    @property
    def location(self) -> str:
        where = f" (context {self.context})" if self.context else ""
        return f"Kubernetes Secret {self.namespace}/{self.name}{where}"

    def _core(self) -> Any:
        if self._api is None:
            from vaultflow.steps.kube import core_v1

            self._api = core_v1(self.context)
        return self._api

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """A 409 is someone else's write (never overwritten); anything else, one clear message."""
        from kubernetes.client.exceptions import ApiException

        with kube_errors(self.location, action):
            try:
                yield
            except ApiException as error:
                if error.status == 409:
                    raise KeeperConflict(
                        f"{self.location} was created or changed by someone else meanwhile: "
                        "refusing to overwrite it"
                    ) from None
                raise

    def _check_access(self) -> None:
        from vaultflow.steps.kube.access import Permission, denied

        checks = [
            Permission("create", "secrets", self.namespace),
            Permission("get", "secrets", self.namespace, name=self.name),
            Permission("update", "secrets", self.namespace, name=self.name),
        ]
        with self._errors("check its permissions"):
            refused = denied(self._core().api_client, checks)
        if refused:
            what = ", ".join(f"{p.verb} secrets" + (f"/{p.name}" if p.name else "") for p in refused)
            raise OperationError(
                f"{self.location}: this identity may not {what} in namespace {self.namespace} "
                f"(SelfSubjectAccessReview); grant it ({RBAC_FILE}) before initialising"
            )

    def _read(self) -> bytes | None:
        from kubernetes.client.exceptions import ApiException

        with self._errors("read it"):
            try:
                self._seen = self._core().read_namespaced_secret(self.name, self.namespace)
            except ApiException as error:
                if error.status != 404:
                    raise
                self._seen = None
                return None
        encoded = (self._seen.data or {}).get(DATA_KEY)
        if encoded is None:
            raise corrupt(self.location, f"the Secret exists but has no {DATA_KEY!r} key")
        return base64.b64decode(encoded)  # the API server accepts only valid base64 in data

    @staticmethod
    def _data(text: str) -> dict[str, str]:
        return {DATA_KEY: base64.b64encode(text.encode()).decode()}

    def _create(self, text: str) -> None:
        from kubernetes import client

        body = client.V1Secret(
            metadata=client.V1ObjectMeta(
                name=self.name, namespace=self.namespace, labels={"app.kubernetes.io/managed-by": "vaultflow"}
            ),
            type="Opaque",
            data=self._data(text),
        )
        with self._errors("create it"):
            self._seen = self._core().create_namespaced_secret(self.namespace, body)

    def _update(self, text: str) -> None:
        if self._seen is None:
            raise OperationError(f"{self.location} disappeared while it was being updated")
        self._seen.data = self._data(text)
        with self._errors("update it"):
            self._seen = self._core().replace_namespaced_secret(self.name, self.namespace, self._seen)
