"""A keeper in a Kubernetes Secret: the in-cluster default.

The Secret lives in the bootstrap workflow's own namespace; RBAC lets only
that workflow's service account read it. Updates carry the resourceVersion
read just before, so two concurrent runs cannot silently overwrite each other.
"""

from __future__ import annotations

import base64
from typing import Any

from vaultflow.base.errors import OperationError
from vaultflow.steps.keeper.base import Keeper, KeeperConflict, UnsealMaterial

DATA_KEY = "unseal.json"


class KubernetesSecretKeeper(Keeper):
    def __init__(self, namespace: str, name: str, *, context: str | None = None, api: Any = None) -> None:
        self.namespace = namespace
        self.name = name
        self.context = context
        self._api = api

    @property
    def location(self) -> str:
        where = f" (context {self.context})" if self.context else ""
        return f"Kubernetes Secret {self.namespace}/{self.name}{where}"

    def _core(self) -> Any:
        if self._api is None:
            from vaultflow.steps.kube import core_v1

            self._api = core_v1(self.context)
        return self._api

    def _read(self) -> Any | None:
        from kubernetes.client.exceptions import ApiException

        try:
            return self._core().read_namespaced_secret(self.name, self.namespace)
        except ApiException as error:
            if error.status == 404:
                return None
            raise OperationError(f"{self.location}: cannot read ({error.status} {error.reason})") from None

    def load(self) -> UnsealMaterial | None:
        secret = self._read()
        if secret is None:
            return None
        encoded = (secret.data or {}).get(DATA_KEY)
        if encoded is None:
            raise OperationError(f"{self.location} exists but has no {DATA_KEY!r} key")
        return UnsealMaterial.from_json(base64.b64decode(encoded).decode(), self.location)

    def check_writable(self) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            self._core().read_namespace(self.namespace)
        except ApiException as error:
            raise OperationError(
                f"{self.location}: namespace {self.namespace} is not usable ({error.status} {error.reason})"
            ) from None

    def _write(self, material: UnsealMaterial, *, create: bool) -> None:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        data = {DATA_KEY: base64.b64encode(material.to_json().encode()).decode()}
        try:
            if create:
                body = client.V1Secret(
                    metadata=client.V1ObjectMeta(
                        name=self.name,
                        namespace=self.namespace,
                        labels={"app.kubernetes.io/managed-by": "vaultflow"},
                    ),
                    type="Opaque",
                    data=data,
                )
                self._core().create_namespaced_secret(self.namespace, body)
                return
            current = self._read()
            if current is None:
                raise OperationError(f"{self.location} disappeared while it was being updated")
            current.data = data
            self._core().replace_namespaced_secret(self.name, self.namespace, current)
        except ApiException as error:
            if error.status == 409:
                raise KeeperConflict(
                    f"{self.location} was written by someone else: refusing to overwrite"
                ) from None
            raise OperationError(f"{self.location}: cannot write ({error.status} {error.reason})") from None
