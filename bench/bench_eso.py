"""The ESO emulator refreshing 1,000 ExternalSecrets after one ``force-sync`` each (issues 6, 11).

Setup (not timed): a real OpenBao with KV v2, a Kubernetes auth mount that
reviews the emulated cluster's tokens and ESO's role; 1,000 secrets in Vault;
1,000 ExternalSecrets (``dataFrom.extract``, ``refreshInterval: 1h``) synced
once; then every Vault value is rotated, as a rotation run does.

Measured, once per ESO ``--concurrent`` in ``VAULTFLOW_BENCH_ESO_CONCURRENT``
(default ``1,4``; 1 is ESO's default): from the first ``force-sync``
annotation to the last ExternalSecret reporting the refresh (status
``syncedResourceVersion`` matching the new annotation, its Secret rewritten).
Each reconcile does what ESO's does: a TokenRequest and a Kubernetes-auth login
(OpenBao reviews the token with the cluster), the read, ``lookup-self`` and
``revoke-self`` when the client closes, the Secret and the status writes.
Baseline, in the same run: the same calls without the emulator, 1,000 times
one after another (a TokenRequest through the cluster's API, then with
``hvac`` the login, the read, ``lookup-self`` and ``revoke-self``), so the
ratio is the emulator's own cost (the Secret and status writes, the queue).
Everything runs over verified TLS, as ``sandbox up`` serves it (issue 14): OpenBao's listener
with a certificate from a throwaway sandbox CA (the store's ``caBundle``), the cluster's API with
its own CA (ESO's TokenRequests, OpenBao's TokenReviews); the baseline uses the same TLS
connections, reused. Target: under 3x. The 1,000 bare reads with one token (the baseline before
ESO's token life was emulated, when one token served every refresh) are
measured too and shown in the note.
"""

from __future__ import annotations

import base64
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

from bench.common import Measurement, best_of, int_list_from_env, stopwatch
from bench.platform_setup import initialise_vault, refreshed_for

COUNT = 1_000
NAMESPACE = "bench"
ESO_NAMESPACE, ESO_ACCOUNT, ROLE, MOUNT = (
    "external-secrets-system",
    "external-secrets",
    "eso",
    "kubernetes-bench",
)
VAULT_ADDRESS = "https://vault.vault-system.svc:8200"


def _openbao(directory: Path) -> tuple[Any, Any]:
    from vaultflow.sandbox.openbao import OpenBaoServer
    from vaultflow.sandbox.pki import CertificateAuthority

    ca_file = directory / "ca.crt"
    authority = CertificateAuthority.kept_in(ca_file, directory / "ca.key", "vaultflow bench CA")
    server = OpenBaoServer(directory / "openbao", authority=authority, ca_file=ca_file)
    server.start()
    root = initialise_vault(server.address, ca_file=str(ca_file))
    root.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
    return server, root


def _cluster() -> Any:
    from vaultflow.sandbox.crd_sources import load_crds, resolve_crd_source
    from vaultflow.sandbox.kube import KubeCluster

    cluster = KubeCluster("bench", tls=True).start()
    cluster.register_crds(load_crds(resolve_crd_source()))
    for namespace in (NAMESPACE, ESO_NAMESPACE):
        cluster.store.create(cluster.type_of("v1", "Namespace"), "", {"metadata": {"name": namespace}})
    accounts = cluster.type_of("v1", "ServiceAccount")
    cluster.store.create(accounts, ESO_NAMESPACE, {"metadata": {"name": ESO_ACCOUNT}})
    cluster.store.create(accounts, "kube-system", {"metadata": {"name": "vault-auth"}})
    cluster.store.create(  # the reviewer may create TokenReviews (RBAC is enforced)
        cluster.type_of("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
        "",
        {
            "metadata": {"name": "vault-auth-delegator"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "system:auth-delegator",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "vault-auth", "namespace": "kube-system"}],
        },
    )
    return cluster


def _kubernetes_auth(root: Any, cluster: Any, mount: str) -> None:
    import urllib3

    from vaultflow.sandbox.eso.kube import KubeAccess

    reviewer = KubeAccess(cluster, urllib3.PoolManager()).token_request(
        "kube-system", "vault-auth", [], 86400
    )
    root.sys.enable_auth_method("kubernetes", path=mount)
    root.write_data(
        f"auth/{mount}/config",
        data={
            "kubernetes_host": cluster.url,
            "kubernetes_ca_cert": cluster.ca_pem,
            "token_reviewer_jwt": reviewer,
            "disable_local_ca_jwt": True,
        },
    )
    root.sys.create_or_update_policy(
        "eso-bench", 'path "secret/data/bench/*" {\n  capabilities = ["read"]\n}\n'
    )
    root.write_data(
        f"auth/{mount}/role/{ROLE}",
        data={
            "bound_service_account_names": [ESO_ACCOUNT],
            "bound_service_account_namespaces": [ESO_NAMESPACE],
            "token_policies": ["eso-bench"],
            "token_ttl": "1h",
        },
    )


def _store(mount: str, ca_pem: str) -> dict[str, Any]:
    return {
        "apiVersion": "external-secrets.io/v1",
        "kind": "ClusterSecretStore",
        "metadata": {"name": "vault"},
        "spec": {
            "provider": {
                "vault": {
                    "server": VAULT_ADDRESS,
                    "path": "secret",
                    "version": "v2",
                    "caBundle": base64.b64encode(ca_pem.encode()).decode(),
                    "auth": {
                        "kubernetes": {
                            "mountPath": mount,
                            "role": ROLE,
                            "serviceAccountRef": {"name": ESO_ACCOUNT, "namespace": ESO_NAMESPACE},
                        }
                    },
                }
            }
        },
    }


def _external_secret(index: int) -> dict[str, Any]:
    return {
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": f"es-{index:04d}"},
        "spec": {
            "refreshInterval": "1h",
            "secretStoreRef": {"name": "vault", "kind": "ClusterSecretStore"},
            "target": {"name": f"secret-{index:04d}"},
            "dataFrom": [{"extract": {"key": f"bench/secret-{index:04d}"}}],
        },
    }


class _Progress:
    """Counts ExternalSecrets whose status records a given sync (from the store's events, no polling)."""

    def __init__(self, annotation: str) -> None:
        self.annotation = annotation
        self.done: set[str] = set()
        self.finished = threading.Event()

    def __call__(self, _: Any, event: Any) -> None:
        obj = event.entry.obj
        if obj.get("kind") != "ExternalSecret" or event.type == "DELETED":
            return
        if refreshed_for(obj, self.annotation):
            self.done.add(obj["metadata"]["name"])
            if len(self.done) == COUNT:
                self.finished.set()


def _concurrency() -> list[int]:
    return int_list_from_env("VAULTFLOW_BENCH_ESO_CONCURRENT", "1,4")


def _refresh_all(server: Any, root: Any, concurrent: int) -> float:
    """Seconds for 1,000 force-synced refreshes with ``concurrent`` workers (a fresh cluster each)."""
    from vaultflow.sandbox.eso import EsoController
    from vaultflow.sandbox.eso.environment import EsoEnvironment
    from vaultflow.sandbox.observe import is_ready, wait_for
    from vaultflow.sandbox.routes import Routes

    mount = f"{MOUNT}-{concurrent}"
    cluster = _cluster()
    controller = None
    try:
        _kubernetes_auth(root, cluster, mount)
        for index in range(COUNT):
            root.secrets.kv.v2.create_or_update_secret(
                f"bench/secret-{index:04d}", secret={"password": f"initial-{index}"}, mount_point="secret"
            )
        routes = Routes.for_sandbox({cluster.url: "bench"}, "bench")
        routes.set("vault", VAULT_ADDRESS, server.address)
        controller = EsoController(cluster, EsoEnvironment(routes), concurrent=concurrent).start()
        stores = cluster.type_of("external-secrets.io/v1", "ClusterSecretStore")
        cluster.store.create(stores, "", _store(mount, server.authority.certificate_pem))
        wait_for(lambda: is_ready(cluster.store.get(stores, "", "vault").obj), what="the store")
        external_secrets = cluster.type_of("external-secrets.io/v1", "ExternalSecret")
        for index in range(COUNT):
            cluster.store.create(external_secrets, NAMESPACE, _external_secret(index))
        wait_for(
            lambda: (
                sum(is_ready(e.obj) for e in cluster.store.list(external_secrets, NAMESPACE).entries) == COUNT
            ),
            timeout=900,
            what="the first sync of every ExternalSecret",
        )
        for index in range(COUNT):  # the rotation the force-sync is about
            root.secrets.kv.v2.create_or_update_secret(
                f"bench/secret-{index:04d}", secret={"password": f"rotated-{index}"}, mount_point="secret"
            )

        stamp = uuid.uuid4().hex
        progress = _Progress(stamp)
        cluster.store.add_hook(progress)

        def annotate(document: dict[str, Any]) -> dict[str, Any]:
            document["metadata"].setdefault("annotations", {})["force-sync"] = stamp
            return document

        with stopwatch() as eso_time:
            for index in range(COUNT):
                cluster.store.patch(external_secrets, NAMESPACE, f"es-{index:04d}", annotate)
            if not progress.finished.wait(timeout=900):
                raise RuntimeError(f"only {len(progress.done)} of {COUNT} ExternalSecrets refreshed")
        sample = cluster.store.get(cluster.type_of("v1", "Secret"), NAMESPACE, "secret-0999").obj
        assert sample["data"]["password"]  # rewritten with the rotated value (not printed)
        return eso_time()
    finally:
        if controller is not None:
            controller.stop()
        cluster.stop()


def _raw_calls(server: Any, root: Any) -> tuple[float, float]:
    """Seconds for what 1,000 refreshes send, without the emulator; and for the 1,000 bare reads."""
    import hvac
    import urllib3

    from vaultflow.sandbox.eso.kube import KubeAccess

    cluster = _cluster()
    try:
        mount = f"{MOUNT}-baseline"
        _kubernetes_auth(root, cluster, mount)
        kube = KubeAccess(cluster, urllib3.PoolManager())
        client = hvac.Client(url=server.address, verify=str(server.ca_file))

        def read(index: int) -> None:
            client.secrets.kv.v2.read_secret_version(
                f"bench/secret-{index:04d}", mount_point="secret", raise_on_deleted_version=True
            )

        def refreshes() -> None:
            for index in range(COUNT):
                jwt = kube.token_request(ESO_NAMESPACE, ESO_ACCOUNT, [], 600)
                client.auth.kubernetes.login(role=ROLE, jwt=jwt, mount_point=mount)
                read(index)
                client.auth.token.lookup_self()
                client.auth.token.revoke_self()

        def reads() -> None:
            for index in range(COUNT):
                read(index)

        calls = best_of(2, refreshes)
        client.auth.kubernetes.login(
            role=ROLE, jwt=kube.token_request(ESO_NAMESPACE, ESO_ACCOUNT, [], 600), mount_point=mount
        )
        return calls, best_of(3, reads)
    finally:
        cluster.stop()


def run() -> list[Measurement]:
    concurrency = _concurrency()
    with tempfile.TemporaryDirectory() as directory:
        server, root = _openbao(Path(directory))
        try:
            timings = {concurrent: _refresh_all(server, root, concurrent) for concurrent in concurrency}
            baseline, reads = _raw_calls(server, root)
        finally:
            server.stop()
    return [
        Measurement(
            name=f"ESO emulator (--concurrent {concurrent}): {COUNT:,} force-synced refreshes",
            seconds=seconds,
            baseline_name=f"the same Vault and TokenRequest calls, {COUNT:,} times, without the emulator",
            baseline_seconds=baseline,
            target_ratio=3.0,
            note=f"each: TokenRequest, login, read, lookup + revoke, Secret and status writes; "
            f"{COUNT:,} bare reads with one token: {reads:.2f} s",
        )
        for concurrent, seconds in timings.items()
    ]
