"""One emulated Kubernetes cluster: object store, controllers, token issuer and HTTP server.

    cluster = KubeCluster("workload-1").start()
    cluster.register_crds(crd_documents)
    ... kubernetes.client against cluster.url with cluster.admin_token ...
    cluster.stop()

In-process code (controller emulators in the sandbox supervisor) may use
``cluster.store`` directly; everything else goes through HTTP like a real client.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from vaultflow.sandbox.http import HttpServer, Request, Response
from vaultflow.sandbox.kube import controllers
from vaultflow.sandbox.kube.api import KubeApi
from vaultflow.sandbox.kube.authz import ensure_bootstrap_policy
from vaultflow.sandbox.kube.errors import ApiError, JsonObject
from vaultflow.sandbox.kube.resources import ResourceCatalog, ResourceType
from vaultflow.sandbox.kube.store import EVENT_LOG_SIZE, ObjectStore
from vaultflow.sandbox.kube.strategies import (
    CustomResourceSchemas,
    CustomResourceStrategy,
    Strategy,
    strategy_for,
)
from vaultflow.sandbox.kube.tokens import TokenIssuer
from vaultflow.sandbox.pki import CertificateAuthority

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
# The names kube-apiserver's serving certificate carries (``--apiserver-cert-extra-sans`` aside):
# the loopback address the sandbox serves on and the in-cluster ``kubernetes`` Service's names.
SERVING_NAMES = (
    "127.0.0.1",
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)


class KubeCluster:
    """A named cluster served on 127.0.0.1 (``port=0``: a free port)."""

    def __init__(
        self,
        name: str,
        *,
        port: int = 0,
        admin_token: str | None = None,
        event_log_size: int = EVENT_LOG_SIZE,
        certificate_authority: CertificateAuthority | None = None,
        issuer: TokenIssuer | None = None,
        tls: bool = False,
    ) -> None:
        """``tls``: serve HTTPS with a certificate from ``certificate_authority`` (the cluster's CA, as
        kube-apiserver's serving certificate is; kubectl sends a bearer token only over HTTPS);
        otherwise plain HTTP on loopback (in-process test clusters)."""
        self.name = name
        self.tls = tls
        self.admin_token = admin_token or secrets.token_urlsafe(32)
        self.certificate_authority = certificate_authority or CertificateAuthority(
            f"vaultflow sandbox cluster {name}"
        )
        self.issuer = issuer or TokenIssuer()
        self.catalog = ResourceCatalog()
        self._schemas = CustomResourceSchemas()
        custom = CustomResourceStrategy(self._schemas)

        def strategies(rtype: ResourceType) -> Strategy:
            return strategy_for(rtype, custom)

        self.store = ObjectStore(self.catalog, strategies, event_log_size=event_log_size)
        controllers.install(self.store, self.issuer, self._schemas, self.ca_pem)
        self._port = port
        self._server: HttpServer | None = None
        self._api: KubeApi | None = None
        namespaces = self.type_of("v1", "Namespace")
        for namespace in DEFAULT_NAMESPACES:
            self.store.create(namespaces, "", {"metadata": {"name": namespace}})

    @property
    def ca_pem(self) -> str:
        return self.certificate_authority.certificate_pem

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError(f"cluster {self.name} is not started")
        return self._server.url

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"cluster {self.name} is not started")
        return self._server.port

    def start(self) -> KubeCluster:
        """Bind and serve; ``OSError`` when a fixed port is taken.

        The default RBAC policy (``authz.bootstrap_policy``) is ensured first, as kube-apiserver's
        ``rbac/bootstrap-roles`` hook does at every start (a restored cluster keeps its own).
        """
        ensure_bootstrap_policy(self.store)
        context = (
            self.certificate_authority.issue_server_certificate(SERVING_NAMES).ssl_context()
            if self.tls
            else None
        )
        server = HttpServer(self._dispatch, port=self._port, ssl_context=context, name=f"kube-{self.name}")
        server.start()
        self._server = server
        self._api = KubeApi(self.store, self.issuer, frozenset({self.admin_token}), server.url)
        return self

    def _dispatch(self, request: Request) -> Response:
        if self._api is None:  # a request between bind and the API being wired
            return Response.json({"error": "starting"}, 503)
        return self._api(request)

    def stop(self) -> None:
        if self._api is not None:
            self._api.stopped.set()
        if self._server is not None:
            self._server.stop()
            self._server = None

    def type_of(self, api_version: str, kind: str) -> ResourceType:
        rtype = self.catalog.by_kind(api_version, kind)
        if rtype is None:
            raise KeyError(f"{kind} ({api_version}) is not served by cluster {self.name}")
        return rtype

    def register_crds(self, crds: Iterable[JsonObject]) -> list[str]:
        """Create (or replace) CustomResourceDefinitions; returns their names.

        The CRDs' ``spec`` objects are shared, not copied: the store never
        mutates a stored object, and the (large) upstream schemas are then
        translated once for every cluster of the sandbox.
        """
        crd_type = self.type_of("apiextensions.k8s.io/v1", "CustomResourceDefinition")
        names = []
        for crd in crds:
            metadata = {"name": crd["metadata"]["name"]}
            for key in ("labels", "annotations"):
                if key in crd["metadata"]:
                    metadata[key] = crd["metadata"][key]
            body: JsonObject = {
                "apiVersion": crd["apiVersion"],
                "kind": crd["kind"],
                "metadata": metadata,
                "spec": crd["spec"],
            }
            try:
                self.store.create(crd_type, "", body)
            except ApiError as error:
                if error.code != 409:
                    raise
                self.store.update(crd_type, "", metadata["name"], body)
            names.append(metadata["name"])
        return names

    def __enter__(self) -> KubeCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
