"""The exporter's scrape and the audit of a 1,000-secret catalog across 2 clusters (issue 15).

The catalog is the delivery benchmark's (``bench_delivery.catalog_text``):
``VAULTFLOW_BENCH_OBSERVE_COUNT`` secrets (default 1,000), each consumed in one of two clusters,
every tenth consumed a second time and rotated: 1,100 ExternalSecrets, 1,000 distinct paths.

Setup (not timed): a real OpenBao (KV v2, every path written, each cluster's Kubernetes auth mount
with ESO's role, the reviewer records, the rendered policies), two emulated clusters (the upstream
CRDs, no ESO running) holding every rendered ExternalSecret, each with a ``refreshTime``. The
exporter and the audit read Vault with a token of the rendered ``vaultflow-observer`` policy and no
``default`` policy (what the observer role, as configure writes it, hands out at login) and the
clusters with their admin client.

Measured, the best of 3:

* *exporter scrape*: one ``generate_latest`` of the exporter's registry (``CatalogCollector``: every
  read anew). Counted at urllib3's ``HTTPConnectionPool.urlopen``, under every client here (hvac
  through requests, the exporter's pooled metadata reads, the Kubernetes client; nothing of the
  exporter replaced): Vault requests and Kubernetes requests per scrape. Target: one LIST per kind
  per cluster, one metadata read per path (plus each cluster's ESO role and reviewer record), under
  2 s. Baselines: the same reads made raw (the metadata reads with ``hvac`` in 8 threads, as the
  exporter read them before ``steps/observe/metadata_reads.py``, the role and reviewer reads, one
  LIST of ExternalSecrets per cluster), without building a metric; and the metadata reads alone
  with ``http.client`` on one kept-alive connection per thread (8 threads), the floor of what Python
  can ask of Vault here.
* *audit*: ``audit`` of the same catalog (its clean verdict aside: no PushSecret, so no cloud read).
  Counted the same way. Baseline: the raw calls it needs (the LISTs of ExternalSecrets and
  PushSecrets per cluster, the metadata reads in 8 threads, the KV folder LISTs, the policy reads).
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.bench_delivery import CLUSTERS, KV, catalog_text
from bench.common import Measurement, best_of
from bench.platform_setup import initialise_vault

REPEAT = 3
READERS = 8  # what the exporter and the audit use (steps/observe/exporter.READERS)
ESO_GROUP = "external-secrets.io"


def secret_count() -> int:
    text = os.environ.get("VAULTFLOW_BENCH_OBSERVE_COUNT", "1000")
    if not text.isdigit() or int(text) < 1:
        raise SystemExit(f"error: VAULTFLOW_BENCH_OBSERVE_COUNT={text!r}: a positive integer")
    return int(text)


# --------------------------------------------------------------------------- counting


class Calls:
    """Requests sent to Vault and to each cluster (urllib3's ``HTTPConnectionPool.urlopen``, which
    requests, hvac, the exporter's pooled reads and the Kubernetes client all send through), by
    method and path kind; the requests themselves are unchanged."""

    def __init__(self, vault: str, clusters: dict[str, str]) -> None:
        self.vault = _host_port(vault)
        self.clusters = {_host_port(url): name for name, url in clusters.items()}
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def reset(self) -> None:
        with self.lock:
            self.counts.clear()

    def _add(self, key: str) -> None:
        with self.lock:
            self.counts[key] += 1

    @contextmanager
    def installed(self) -> Iterator[Calls]:
        from urllib3.connectionpool import HTTPConnectionPool

        urlopen = HTTPConnectionPool.urlopen
        calls = self

        def counted(pool: HTTPConnectionPool, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            where = (str(pool.host), int(pool.port or 0))
            path = urlsplit(url).path
            cluster = calls.clusters.get(where)
            if where == calls.vault:
                calls._add(f"vault {method} {_vault_kind(path)}")
            elif cluster is not None:
                calls._add(f"{cluster} {method} {path.rsplit('/', 1)[-1]}")
            return urlopen(pool, method, url, *args, **kwargs)

        HTTPConnectionPool.urlopen = counted  # type: ignore[method-assign,assignment]
        try:
            yield self
        finally:
            HTTPConnectionPool.urlopen = urlopen  # type: ignore[method-assign]


def _host_port(url: str) -> tuple[str, int]:
    split = urlsplit(url)
    return str(split.hostname), int(split.port or (443 if split.scheme == "https" else 80))


def _vault_kind(path: str) -> str:
    path = path.removeprefix("/v1/")
    if path.startswith(f"{KV}/metadata/vaultflow/"):
        return f"{KV}/metadata/vaultflow/*"
    if path.startswith(f"{KV}/metadata/"):
        return f"{KV}/metadata/*"
    if path.startswith("sys/policies/acl/") or path.startswith("sys/policy/"):
        return "sys/policy/*"
    if path.startswith("auth/") and "/role/" in path:
        return "auth/*/role/*"
    return path


# --------------------------------------------------------------------------- setup


@dataclass
class Platform:
    loaded: Any
    vault: Any  # VaultApi with an observer-policy token
    root: Any  # hvac.Client, setup only
    clients: dict[str, Any]  # cluster -> kubernetes ApiClient (admin)
    urls: dict[str, str]
    address: str


def _seed(root: Any, paths: list[str]) -> None:
    def seed(path: str) -> None:
        root.secrets.kv.v2.create_or_update_secret(  # bench data, never a real secret
            path, secret={"username": "bench", "password": "bench-value"}, mount_point=KV
        )

    with ThreadPoolExecutor(READERS) as pool:
        list(pool.map(seed, paths))


def _kv_serving(root: Any) -> None:
    """Wait for the KV v2 mount just enabled: it upgrades its storage first, refusing every request
    meanwhile (``KV_UPGRADING``), for a moment whose length depends on the machine."""
    from vaultflow.base.retry import poll_until
    from vaultflow.steps.vault.api import KvUpgrading, vault_errors

    def configuration() -> object:
        with vault_errors("the bench's OpenBao", f"read the configuration of {KV}/"):
            return root.secrets.kv.v2.read_configuration(mount_point=KV)

    poll_until(configuration, lambda _: True, what=f"{KV}/ to serve", timeout=30, transient=(KvUpgrading,))


def _vault_setup(root: Any, loaded: Any) -> str:
    """KV, the clusters' auth mounts with ESO's role, reviewer records, rendered policies; an observer
    token."""
    from vaultflow.gitops.policies import (
        REVIEWER_EXPIRY,
        all_policies,
        observer_policy,
        reviewer_record_path,
    )

    catalog = loaded.catalog
    auth = catalog.vault.kubernetes_auth
    root.sys.enable_secrets_engine("kv", path=KV, options={"version": "2"})
    _kv_serving(root)
    _seed(root, sorted({secret.path for secret in catalog.secrets}))
    for cluster in catalog.clusters:
        mount = cluster.auth_mount(auth)
        root.sys.enable_auth_method("kubernetes", path=mount)
        root.write(
            f"auth/{mount}/role/{auth.eso_role}",
            bound_service_account_names=auth.eso_service_account.name,
            bound_service_account_namespaces=auth.eso_service_account.namespace,
            token_ttl="10m",
            token_max_ttl="1h",
        )
        record = reviewer_record_path(cluster.name)
        root.secrets.kv.v2.create_or_update_secret(record, secret={"recorded": "yes"}, mount_point=KV)
        root.secrets.kv.v2.update_metadata(
            record, custom_metadata={REVIEWER_EXPIRY: "2099-01-01T00:00:00Z"}, mount_point=KV
        )
    for policy in [*all_policies(catalog, loaded.plan), observer_policy(catalog)]:
        root.sys.create_or_update_policy(policy.name, policy.hcl)
    token = root.auth.token.create(policies=[observer_policy(catalog).name], ttl="2h", no_default_policy=True)
    return str(token["auth"]["client_token"])


def _clusters(loaded: Any) -> dict[str, Any]:
    """One emulated cluster per catalog cluster (no ESO), holding every rendered ExternalSecret, each
    refreshed a minute ago (status, as ESO writes it)."""
    from vaultflow.gitops.render import render_catalog
    from vaultflow.sandbox.crd_sources import load_crds, resolve_crd_source
    from vaultflow.sandbox.kube import KubeCluster

    crds = load_crds(resolve_crd_source())
    refreshed = datetime.now(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    served: dict[str, Any] = {}
    by_cluster: dict[str, list[dict[str, Any]]] = {}
    for path, manifest in render_catalog(loaded).manifests():
        if manifest["kind"] == "ExternalSecret":
            by_cluster.setdefault(path.split("/")[1], []).append(manifest)
    for cluster in loaded.catalog.clusters:
        kube = KubeCluster(f"bench-observe-{cluster.name}").start()
        kube.register_crds(crds)
        namespaces = sorted({m["metadata"]["namespace"] for m in by_cluster.get(cluster.name, [])})
        for namespace in namespaces:
            kube.store.create(kube.type_of("v1", "Namespace"), "", {"metadata": {"name": namespace}})
        kind = kube.type_of(f"{ESO_GROUP}/v1", "ExternalSecret")
        for manifest in by_cluster.get(cluster.name, []):
            namespace = manifest["metadata"]["namespace"]
            created = kube.store.create(kind, namespace, manifest).copy()  # status is a subresource
            created["status"] = {
                "refreshTime": refreshed,
                "conditions": [{"type": "Ready", "status": "True"}],
            }
            kube.store.update(kind, namespace, created["metadata"]["name"], created, subresource="status")
        served[cluster.name] = kube
    return served


@contextmanager
def platform(count: int) -> Iterator[Platform]:
    from vaultflow.gitops.catalog import parse_catalog
    from vaultflow.sandbox.openbao import OpenBaoServer
    from vaultflow.steps.vault.api import VaultApi

    with tempfile.TemporaryDirectory(prefix="vaultflow-bench-observe-") as scratch:
        directory = Path(scratch)
        catalog = directory / "catalog.yaml"
        catalog.write_text(catalog_text(count))
        loaded = parse_catalog(catalog.read_text(), catalog)
        server = OpenBaoServer(directory / "openbao")
        server.start()
        served: dict[str, Any] = {}
        try:
            root = initialise_vault(server.address)
            token = _vault_setup(root, loaded)
            served = _clusters(loaded)
            clients = {name: _admin(kube) for name, kube in served.items()}
            yield Platform(
                loaded,
                VaultApi(server.address, token=token),
                root,
                clients,
                {name: kube.url for name, kube in served.items()},
                server.address,
            )
        finally:
            for kube in served.values():
                kube.stop()
            server.stop()


def _admin(kube: Any) -> Any:
    from kubernetes import client

    configuration = client.Configuration()
    configuration.host = kube.url
    configuration.api_key = {"authorization": f"Bearer {kube.admin_token}"}
    return client.ApiClient(configuration)


# --------------------------------------------------------------------------- measured


@dataclass(frozen=True)
class Result:
    secrets: int
    external_secrets: int
    scrape: float
    scrape_calls: dict[str, int]
    scrape_raw: float
    metadata_floor: float  # the scrape's metadata reads alone, http.client
    audit: float
    audit_calls: dict[str, int]
    audit_raw: float
    audit_drift: int


def _counted(calls: Calls, action: Callable[[], object]) -> dict[str, int]:
    calls.reset()
    action()
    return dict(sorted(calls.counts.items()))


def _raw_metadata(platform: Platform, paths: list[str]) -> None:
    client = platform.vault.client

    def read(path: str) -> None:
        client.secrets.kv.v2.read_secret_metadata(path, mount_point=KV)

    with ThreadPoolExecutor(READERS) as pool:
        list(pool.map(read, paths))


def _floor_metadata(platform: Platform, paths: list[str]) -> None:
    """The metadata reads with the least Python there is: ``http.client``, a kept-alive connection per
    thread, the token header, the JSON parsed (plain http: the bench's OpenBao is on loopback)."""
    import http.client
    import json

    split = urlsplit(platform.address)
    token = str(platform.vault.client.token)
    local = threading.local()

    def read(path: str) -> None:
        connection = getattr(local, "connection", None)
        if connection is None:
            connection = local.connection = http.client.HTTPConnection(str(split.hostname), split.port)
        connection.request("GET", f"/v1/{KV}/metadata/{path}", headers={"X-Vault-Token": token})
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"metadata read of {path}: HTTP {response.status}")
        json.loads(body)

    with ThreadPoolExecutor(READERS) as pool:
        list(pool.map(read, paths))


def _raw_list(platform: Platform, plural: str, version: str) -> None:
    from kubernetes import client

    for api in platform.clients.values():
        client.CustomObjectsApi(api).list_cluster_custom_object(ESO_GROUP, version, plural)


def measure(count: int) -> Result:
    from prometheus_client import CollectorRegistry, generate_latest

    from vaultflow.gitops.policies import all_policies, reviewer_record_path
    from vaultflow.steps.observe.audit import _kv_paths, audit
    from vaultflow.steps.observe.exporter import CatalogCollector

    with platform(count) as made:
        catalog = made.loaded.catalog
        auth = catalog.vault.kubernetes_auth
        paths = sorted({secret.path for secret in catalog.secrets})
        registry = CollectorRegistry()
        CatalogCollector(catalog, made.vault, made.clients, registry)
        calls = Calls(made.address, made.urls)

        def raw_scrape() -> None:
            _raw_metadata(made, [*paths, *(reviewer_record_path(c.name) for c in catalog.clusters)])
            for cluster in catalog.clusters:
                made.vault.client.read(f"auth/{cluster.auth_mount(auth)}/role/{auth.eso_role}")
            _raw_list(made, "externalsecrets", "v1")

        report: list[Any] = []

        def run_audit() -> None:
            report[:] = [audit(made.loaded, made.vault, made.clients)]

        def raw_audit() -> None:
            _raw_list(made, "externalsecrets", "v1")
            _raw_list(made, "pushsecrets", "v1alpha1")
            _raw_metadata(made, paths)
            list(_kv_paths(made.vault, KV, ""))
            for policy in all_policies(catalog, made.loaded.plan):
                made.vault.client.sys.read_acl_policy(policy.name)

        generate_latest(registry)  # warm: connections open, as in a running exporter
        with calls.installed():
            scrape_calls = _counted(calls, lambda: generate_latest(registry))
            audit_calls = _counted(calls, run_audit)
        scrape = best_of(REPEAT, lambda: generate_latest(registry))
        scrape_raw = best_of(REPEAT, raw_scrape)
        metadata_floor = best_of(REPEAT, lambda: _floor_metadata(made, paths))
        audit_seconds = best_of(REPEAT, run_audit)
        audit_raw = best_of(REPEAT, raw_audit)
        return Result(
            secrets=len(paths),
            external_secrets=len(made.loaded.plan.external_secrets),
            scrape=scrape,
            scrape_calls=scrape_calls,
            scrape_raw=scrape_raw,
            metadata_floor=metadata_floor,
            audit=audit_seconds,
            audit_calls=audit_calls,
            audit_raw=audit_raw,
            audit_drift=len(report[0].drift) if report else -1,
        )


def _calls_note(calls: dict[str, int]) -> str:
    return ", ".join(f"{n:,} {kind}" for kind, n in calls.items())


def measurements(result: Result) -> list[Measurement]:
    clusters = len(CLUSTERS)
    return [
        Measurement(
            f"exporter scrape: {result.secrets:,} secrets, {result.external_secrets:,} ExternalSecrets, "
            f"{clusters} clusters",
            result.scrape,
            baseline_name="the same reads through hvac (8 threads), one LIST per cluster",
            baseline_seconds=result.scrape_raw,
            target_seconds=2.0,
            note=f"per scrape: {_calls_note(result.scrape_calls)}",
        ),
        Measurement(
            f"the scrape's {result.secrets:,} metadata reads alone, http.client (8 threads, kept alive)",
            result.metadata_floor,
            note="the floor: the least Python a read can cost, and Vault's own work",
        ),
        Measurement(
            f"audit of the same catalog ({result.audit_drift} drift)",
            result.audit,
            baseline_name="the raw calls it needs (LISTs, metadata reads, folder LISTs, policy reads)",
            baseline_seconds=result.audit_raw,
            note=f"per audit: {_calls_note(result.audit_calls)}",
        ),
    ]


def run() -> list[Measurement]:
    return measurements(measure(secret_count()))
