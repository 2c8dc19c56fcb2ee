"""vaultflow's exporter: what the catalog promises, measured against Vault and the clusters.

Each scrape reads, and only reads: the KV metadata of every catalog path (one
read per path, 8 at a time on kept-alive connections, ``metadata_reads``; never a
value), one LIST of ExternalSecrets per cluster, and the ESO role of each
cluster's Kubernetes auth mount. From them:

- per rotated secret, the last rotation recorded in Vault's custom metadata and
  how far past its schedule the next one is (``SecretRotationDelayed`` reads it);
- per catalog path, when its current version was written;
- per rendered ExternalSecret (the ``vaultflow.io/vault-path`` annotation names
  its path), how long it has been stale (its ``refreshTime`` before that write)
  and its refresh interval (``ExternalSecretStale`` reads both);
- per cluster, the TTL and max TTL of the Vault tokens ESO's role hands out, and
  when the token reviewer JWT of its auth mount expires (as configure recorded it);
- Vault's latency as the exporter sees it, and whether each source answered
  (a source that fails is reported down; the other metrics still come).

Metric names are the contract docs/observability.md lists. No label or value
carries a secret value: labels are paths, cluster, namespace and object names.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric

from vaultflow.base.cron import next_run
from vaultflow.base.durations import parse_go_duration
from vaultflow.base.errors import VaultflowError
from vaultflow.base.times import parse_time
from vaultflow.gitops.catalog import LoadedCatalog
from vaultflow.gitops.catalog.model import Catalog
from vaultflow.gitops.policies import REVIEWER_EXPIRY, reviewer_record_path
from vaultflow.gitops.render import VAULT_PATH_ANNOTATION  # on every rendered ExternalSecret
from vaultflow.steps.observe.freshness import stale_seconds
from vaultflow.steps.observe.login import revoke_quietly
from vaultflow.steps.observe.metadata_reads import MetadataReads
from vaultflow.steps.rotation.write import ROTATED_AT, SecretMetadata
from vaultflow.steps.vault.api import VaultApi

log = logging.getLogger(__name__)

# Concurrent Vault metadata reads per scrape. The reads are bound by CPU (the exporter's Python and
# Vault's per-request ACL check) rather than by waiting: on 2 cores, 4, 8 or 16 took about as long.
READERS = 8
DEFAULT_REFRESH = "1h"  # the ExternalSecret CRD's default refreshInterval


@dataclass
class _Scrape:
    """What one scrape read (references and times only)."""

    metadata: dict[str, SecretMetadata | None] = field(default_factory=dict)
    external_secrets: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    role_ttls: dict[str, tuple[int, int]] = field(default_factory=dict)
    reviewer_expiry: dict[str, datetime] = field(default_factory=dict)
    up: dict[str, bool] = field(default_factory=dict)


class CatalogCollector:
    """A prometheus_client collector: every scrape reads Vault and the clusters anew."""

    def __init__(
        self,
        catalog: Catalog,
        vault: VaultApi | None,
        clusters: Mapping[str, Any],
        registry: CollectorRegistry,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        login: Callable[[], VaultApi] | None = None,
        relogin_after: float = 1800.0,
        reclients: Callable[[], Mapping[str, Any]] | None = None,
    ) -> None:
        """``login``: how to get a fresh token (Kubernetes auth as the observer), used once the last
        one is ``relogin_after`` seconds old (half its TTL), before it can expire under a scrape, and
        at each scrape while there is none (``vault`` None: Vault sealed or not configured yet when
        the exporter started; its source is reported down until a login succeeds). ``reclients``:
        the cluster clients to use, asked at each scrape (``KubeconfigClients.current``)."""
        self.catalog = catalog
        self._reclients = reclients
        self.vault = vault
        self._login = login
        self._relogin_after = relogin_after
        self._logged_in = time.monotonic()
        self.clusters = dict(clusters)  # cluster name -> kubernetes ApiClient
        self.clock = clock
        self._reads: MetadataReads | None = None  # for self.vault's token; made at the first scrape
        # Not registered on its own: collected after the reads, so a scrape includes its own requests.
        self.vault_latency = Histogram(
            "vaultflow_exporter_vault_request_duration_seconds",
            "Vault request latency as the exporter sees it",
            ["operation"],
            registry=None,
        )
        registry.register(self)

    # ------------------------------------------------------------ prometheus_client

    def describe(self) -> list[Metric]:
        return []  # no reads at registration: the families are only known by a scrape

    def collect(self) -> Iterator[Metric]:
        started = time.monotonic()
        self._fresh_token(started)
        now = self.clock()
        scrape = self._read()
        yield from self._rotation(scrape, now)
        yield from self._consumers(scrape, now)
        yield from self._roles(scrape)
        up = GaugeMetricFamily(
            "vaultflow_exporter_source_up", "1 when the source answered this scrape", labels=["source"]
        )
        for source, answered in sorted(scrape.up.items()):
            up.add_metric([source], 1.0 if answered else 0.0)
        yield up
        yield from self.vault_latency.collect()
        yield GaugeMetricFamily(
            "vaultflow_exporter_scrape_duration_seconds",
            "How long the last scrape took",
            value=time.monotonic() - started,
        )

    # ------------------------------------------------------------ reads

    def _fresh_token(self, now: float) -> None:
        if self._login is None or (self.vault is not None and now - self._logged_in < self._relogin_after):
            return
        try:
            fresh = self._login()
        except VaultflowError as error:  # the old token may still work: the scrape says what fails
            log.warning("scrape: cannot log in%s: %s", "" if self.vault is None else " again", error)
            return
        if self.vault is not None:
            revoke_quietly(self.vault)
        self._close_reads()
        self.vault, self._logged_in = fresh, now

    def _metadata_reads(self, vault: VaultApi) -> MetadataReads:
        if self._reads is None or self._reads.vault is not vault:
            self._close_reads()
            timed = self.vault_latency.labels("metadata").observe
            kv = self.catalog.vault.kv_mount
            self._reads = MetadataReads(vault, kv, connections=READERS, timed=timed)
        return self._reads

    def _close_reads(self) -> None:
        if self._reads is not None:
            self._reads.close()
            self._reads = None

    def close(self) -> None:
        """Stop the reading threads and close their connections (the exporter's end)."""
        self._close_reads()

    def _read(self) -> _Scrape:
        scrape = _Scrape()
        if self._reclients is not None:
            self.clusters = dict(self._reclients())
        if self.vault is None:  # no login yet: only the clusters can be read
            scrape.up["vault"] = False
            for cluster in self.catalog.clusters:
                scrape.up[f"cluster/{cluster.name}"] = self._list(cluster.name, scrape)
            return scrape
        records = {reviewer_record_path(cluster.name): cluster.name for cluster in self.catalog.clusters}
        paths = [*(secret.path for secret in self.catalog.secrets), *records]
        try:
            read = self._metadata_reads(self.vault).read_all(paths)
            scrape.up["vault"] = True
        except VaultflowError as error:
            log.warning("scrape: %s", error)
            read, scrape.up["vault"] = {}, False
        for record, cluster_name in records.items():
            expiry = _reviewer_expiry(read.pop(record, None))
            if expiry is not None:
                scrape.reviewer_expiry[cluster_name] = expiry
        scrape.metadata.update(read)
        for cluster in self.catalog.clusters:
            scrape.up[f"cluster/{cluster.name}"] = self._list(cluster.name, scrape)
            auth = self.catalog.vault.kubernetes_auth
            ttls = self._role(cluster.auth_mount(auth), auth.eso_role) if scrape.up["vault"] else None
            if ttls is not None:
                scrape.role_ttls[cluster.name] = ttls
        return scrape

    def _list(self, cluster: str, scrape: _Scrape) -> bool:
        from kubernetes import client

        api = self.clusters.get(cluster)
        if api is None:  # KubeconfigClients said why, once
            return False
        try:
            listed = client.CustomObjectsApi(api).list_cluster_custom_object(
                "external-secrets.io", "v1", "externalsecrets", _request_timeout=30
            )
        except Exception as error:  # any failure of one cluster: reported down, the scrape goes on
            log.warning("scrape: cluster %s: cannot list ExternalSecrets: %s", cluster, error)
            return False
        scrape.external_secrets[cluster] = list(listed.get("items") or [])
        return True

    def _role(self, mount: str, role: str) -> tuple[int, int] | None:
        where = f"auth/{mount}/role/{role}"
        assert self.vault is not None
        try:
            with self.vault_latency.labels("role").time(), self.vault.errors(f"read {where}"):
                data = self.vault.client.read(where)
        except VaultflowError as error:
            log.warning("scrape: %s", error)
            return None
        values = (data or {}).get("data") or {}
        return int(values.get("token_ttl") or 0), int(values.get("token_max_ttl") or 0)

    # ------------------------------------------------------------ families

    def _rotation(self, scrape: _Scrape, now: datetime) -> Iterator[Metric]:
        written = GaugeMetricFamily(
            "vaultflow_secret_last_write_timestamp_seconds",
            "When the current version of the catalog path was written (Unix time)",
            labels=["path"],
        )
        rotated = GaugeMetricFamily(
            "vaultflow_secret_last_rotation_timestamp_seconds",
            "The last rotation recorded in Vault's custom metadata (Unix time)",
            labels=["path"],
        )
        overdue = GaugeMetricFamily(
            "vaultflow_secret_rotation_overdue_seconds",
            "Seconds since the catalog schedule fired with no rotation recorded since (0: none due)",
            labels=["path"],
        )
        for secret in self.catalog.secrets:
            metadata = scrape.metadata.get(secret.path)
            if metadata is None:
                continue
            if metadata.written_time:
                written.add_metric([secret.path], parse_time(metadata.written_time).timestamp())
            if secret.rotation is None:
                continue
            last = metadata.custom.get(ROTATED_AT)
            if last:
                rotated.add_metric([secret.path], parse_time(last).timestamp())
            due = next_run(secret.rotation.schedule, parse_time(last or metadata.created_time))
            overdue.add_metric([secret.path], max(0.0, (now - due).total_seconds()))
        yield from (written, rotated, overdue)

    def _consumers(self, scrape: _Scrape, now: datetime) -> Iterator[Metric]:
        labels = ["cluster", "namespace", "externalsecret", "path"]
        stale = GaugeMetricFamily(
            "vaultflow_consumer_stale_seconds",
            "Seconds since the Vault write the ExternalSecret has not refreshed after (0: it has)",
            labels=labels,
        )
        interval = GaugeMetricFamily(
            "vaultflow_consumer_refresh_interval_seconds",
            "The ExternalSecret's refreshInterval",
            labels=labels,
        )
        for cluster, items in sorted(scrape.external_secrets.items()):
            for item in items:
                metadata = item.get("metadata") or {}
                path = (metadata.get("annotations") or {}).get(VAULT_PATH_ANNOTATION)
                vault = scrape.metadata.get(path) if path else None
                if vault is None or not vault.written_time:
                    continue  # not a catalog consumer, or its path is missing (audit's business)
                key = [cluster, metadata.get("namespace", ""), metadata.get("name", ""), str(path)]
                stale.add_metric(key, stale_seconds(item, parse_time(vault.written_time), now))
                spec = item.get("spec") or {}
                refresh = str(spec.get("refreshInterval") or DEFAULT_REFRESH)
                interval.add_metric(key, parse_go_duration(refresh))
        yield from (stale, interval)

    def _roles(self, scrape: _Scrape) -> Iterator[Metric]:
        role = self.catalog.vault.kubernetes_auth.eso_role
        ttl = GaugeMetricFamily(
            "vaultflow_vault_role_token_ttl_seconds",
            "TTL of the Vault tokens ESO's role hands out (0: the mount's default)",
            labels=["cluster", "role"],
        )
        max_ttl = GaugeMetricFamily(
            "vaultflow_vault_role_token_max_ttl_seconds",
            "Max TTL of the Vault tokens ESO's role hands out (0: the mount's default)",
            labels=["cluster", "role"],
        )
        for cluster, (token_ttl, token_max_ttl) in sorted(scrape.role_ttls.items()):
            ttl.add_metric([cluster, role], float(token_ttl))
            max_ttl.add_metric([cluster, role], float(token_max_ttl))
        reviewer = GaugeMetricFamily(
            "vaultflow_vault_kubernetes_reviewer_token_expiry_timestamp_seconds",
            "When the token reviewer JWT of the cluster's Vault Kubernetes auth expires (Unix time)",
            labels=["cluster"],
        )
        for cluster, expiry in sorted(scrape.reviewer_expiry.items()):
            reviewer.add_metric([cluster], expiry.timestamp())
        yield from (ttl, max_ttl, reviewer)


def _reviewer_expiry(record: SecretMetadata | None) -> datetime | None:
    """When a cluster's token reviewer JWT expires, as the bootstrap's configure recorded it."""
    recorded = record.custom.get(REVIEWER_EXPIRY) if record is not None else None
    return parse_time(recorded) if recorded and recorded != "never" else None


class KubeconfigClients:
    """The catalog's cluster clients, made again when a file of ``$KUBECONFIG`` changes.

    The exporter's pod reads the other clusters from the onboarded kubeconfig Secret its Deployment
    mounts; kubelet updates that volume in place when the Secret changes (a re-onboarding's new
    token), but a client reads its kubeconfig once. So each scrape compares the files' bytes with
    what the clients were made from. A cluster whose client cannot be made (its context missing)
    is left out, said once per change, and reported down; the others are unaffected (``strict``:
    the first time, it is an error instead, for a one-shot scrape)."""

    def __init__(self, loaded: LoadedCatalog, *, strict: bool = False) -> None:
        self.loaded = loaded
        self._strict = strict
        self._made_from: str | None = None
        self._clients: dict[str, Any] = {}

    def current(self) -> Mapping[str, Any]:
        seen = _kubeconfig_fingerprint()
        if seen != self._made_from:
            self._clients = self._make(strict=self._strict and self._made_from is None)
            self._made_from = seen
        return self._clients

    def _make(self, *, strict: bool) -> dict[str, Any]:
        from vaultflow.steps.kube import api_client
        from vaultflow.steps.kube.clusters import kube_context

        clients = {}
        for cluster in self.loaded.catalog.clusters:
            try:
                clients[cluster.name] = api_client(kube_context(self.loaded, cluster))
            except VaultflowError as error:
                if strict:
                    raise
                log.warning("cluster %s: %s; reported down until the kubeconfig changes", cluster.name, error)
        return clients


def _kubeconfig_fingerprint() -> str:
    """A digest of the bytes of every file of ``$KUBECONFIG`` (a missing one counts as empty)."""
    digest = hashlib.sha256()
    for entry in os.environ.get("KUBECONFIG", "").split(os.pathsep):
        digest.update(entry.encode() + b"\0")
        try:
            digest.update(Path(entry).expanduser().read_bytes() if entry else b"")
        except OSError:
            digest.update(b"\0missing")
    return digest.hexdigest()


def catalog_registry(
    loaded: LoadedCatalog, addresses: str, ca_cert: str, *, required: bool, say: Callable[[str], None]
) -> CollectorRegistry:
    """A registry holding the catalog's collector, logged in to Vault as the observer (or with
    ``$VAULT_TOKEN``). ``required``: a failed first login is an error; otherwise it is said and
    each scrape tries again (the exporter must serve while Vault is sealed)."""
    from vaultflow.gitops.catalog.types import duration_seconds
    from vaultflow.steps.observe.login import observer_login

    def login() -> VaultApi:
        return observer_login(loaded, addresses, ca_cert)

    try:
        vault: VaultApi | None = login()
    except VaultflowError as error:
        if required:
            raise
        say(f"cannot log in to Vault yet ({error}): each scrape tries again")
        vault = None
    registry = CollectorRegistry()
    clients = KubeconfigClients(loaded, strict=required)
    CatalogCollector(
        loaded.catalog,
        vault,
        clients.current(),
        registry,
        login=None if os.environ.get("VAULT_TOKEN") and vault is not None else login,
        relogin_after=duration_seconds(loaded.catalog.vault.kubernetes_auth.token_ttl) / 2,
        reclients=clients.current,
    )
    return registry


def serve_until_stopped(registry: CollectorRegistry, host: str, port: int) -> None:
    """Serve ``/metrics`` on ``host:port`` until SIGTERM or Ctrl-C."""
    from prometheus_client import start_http_server

    server, thread = start_http_server(port, addr=host, registry=registry)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        thread.join(timeout=5)
