"""The demo's last step (after stage 9's clean audit): a fault that leaves one consumer stale, seen
by Prometheus and named by the audit, then undone.

ESO loses Vault (``vaultflow sandbox fault vault --down``: every ESO emulator's calls to Vault fail,
Vault itself keeps answering everyone else); a person writes a new version of one consumed path by
hand (a break-glass root token generated from the keeper's shares and the bootstrap identity,
revoked right after, as the bootstrap pipeline does); its ExternalSecret is asked to refresh
(``force-sync``, again once Prometheus has scraped each failure ESO counts, rather than waiting out
ESO's backoff of 1 s doubling) and cannot. ESO's ``externalsecret_sync_calls_error`` climbs until
``ExternalSecretSyncFailures`` (more than 5 in 10 minutes, no ``for:``) fires; the exporter reports
the consumer stale (``vaultflow_consumer_stale_seconds``); ``vaultflow audit`` exits 1 naming it.
Then the fault is lifted, ESO retried, the consumer refreshes, and the audit is clean again.
(``ExternalSecretStale`` waits twice the refresh interval plus 5 minutes: too long for a demo.)
"""

from __future__ import annotations

import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from vaultflow.base.errors import OperationError
from vaultflow.gitops.catalog import LoadedCatalog
from vaultflow.gitops.catalog.placement import PlannedExternalSecret
from vaultflow.sandbox.admin import AdminClient
from vaultflow.sandbox.faults import Fault
from vaultflow.sandbox.layout import SandboxPaths
from vaultflow.sandbox.observe import ready_condition, wait_for
from vaultflow.sandbox.prometheus import prometheus_api
from vaultflow.sandbox.recovery import recover
from vaultflow.steps.vault.root_token import ensure_root_token, revoke_root_token, root_client

ALERT = "ExternalSecretSyncFailures"
ALERT_THRESHOLD = 5  # the alert fires at more than 5 failures in 10 minutes


def stale_candidate(loaded: LoadedCatalog) -> PlannedExternalSecret | None:
    """The consumer the fault leaves stale: the only ExternalSecret of its path, one the catalog's
    consumers own (no push, no Merge into someone else's Secret), not rotated; else any consumer."""
    plan = loaded.plan
    consumers = [es for es in plan.external_secrets if not es.for_pushes]
    alone = [
        es for es in consumers if sum(e.secret.path == es.secret.path for e in plan.external_secrets) == 1
    ]
    best = [
        es
        for es in alone
        if not es.secret.pushes and es.creation_policy == "Owner" and es.secret.rotation is None
    ]
    chosen = best or alone or consumers
    return chosen[0] if chosen else None


def write_new_version(state: Any, loaded: LoadedCatalog, path: str) -> int:
    """A new version of ``path`` holding what it holds (a hand edit), with a break-glass root token
    that is revoked before this returns; the new version's number. No value leaves this function."""
    addresses = ",".join(node.address for node in state.vault)
    keeper = SandboxPaths(Path(state.directory)).keeper.as_uri()
    catalog = str(loaded.source)
    kv = loaded.catalog.vault.kv_mount
    ca = str(state.ca_file)  # OpenBao's certificate chains to the sandbox CA
    ensure_root_token(addresses, keeper, catalog=catalog, ca_cert=ca)
    try:
        root = root_client(addresses, keeper, ca)
        secrets = root.client.secrets.kv.v2
        current = secrets.read_secret_version(path, mount_point=kv, raise_on_deleted_version=True)["data"]
        written = secrets.create_or_update_secret(
            path, secret=current["data"], cas=current["metadata"]["version"], mount_point=kv
        )
        return int(written["data"]["version"])
    finally:
        revoke_root_token(addresses, keeper, catalog=catalog, ca_cert=ca)


def fail_until_counted(
    refresh: Callable[[int], None],
    scraped: Callable[[], float | None],
    *,
    more_than: int,
    timeout: float,
    explain: Callable[[], str] = lambda: "",
) -> float:
    """Ask for refreshes that fail (``refresh(attempt)``) until Prometheus has scraped more than
    ``more_than`` failures beyond the first value it saw; how many it has seen since.

    Each refresh waits until Prometheus has scraped a higher count than before it, so every
    failure the alert needs is in Prometheus's samples, whatever ESO's own backoff retries added
    meanwhile: ``increase()`` over the window is at least the difference between its first and last
    sample, and a counter's first sample shows no increase (under load it can already be at 5).
    A value below the one before is a reset (ESO restarted from 0), counted as ``increase()`` does.
    A timeout's message ends with ``explain()``: what ESO itself says at that moment.
    """
    refresh(0)
    seen = wait_for(scraped, timeout=timeout, what="Prometheus to scrape ESO's first failed refresh")
    gained, attempt = 0.0, 0
    while gained <= more_than:
        attempt += 1
        refresh(attempt)
        before = seen
        try:
            seen = wait_for(
                lambda: value if (value := scraped()) is not None and value != before else None,  # noqa: B023
                timeout=timeout,
                what=f"ESO to fail refresh {attempt} and Prometheus to scrape it (last seen {before:g})",
            )
        except OperationError as error:
            raise OperationError(f"{error}; {explain()}") from None
        gained += seen - before if seen > before else seen
    return gained


def _eso_view(metrics_url: str, api: Any, consumer: PlannedExternalSecret) -> str:
    """What ESO says of the consumer: its own error counter and the ExternalSecret's Ready condition."""
    from kubernetes import client
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(metrics_url, timeout=10) as response:  # noqa: S310 (loopback)
        families = text_string_to_metric_families(response.read().decode())
    counted = [
        sample.value
        for family in families
        for sample in family.samples
        # prometheus_client's parser names a counter's samples ..._total, which ESO's lacks
        if sample.name.removesuffix("_total") == "externalsecret_sync_calls_error"
        and (sample.labels.get("namespace"), sample.labels.get("name")) == (consumer.namespace, consumer.name)
    ]
    es = client.CustomObjectsApi(api).get_namespaced_custom_object(
        "external-secrets.io", "v1", consumer.namespace, "externalsecrets", consumer.name
    )
    ready = ready_condition(es) or {}
    return (
        f"ESO's own externalsecret_sync_calls_error: {counted[0] if counted else 'no series'}; "
        f"Ready {ready.get('status', '?')} ({ready.get('reason', '?')}: {ready.get('message', '')}), "
        f"refreshTime {(es.get('status') or {}).get('refreshTime', '?')}, "
        f"force-sync {(es['metadata'].get('annotations') or {}).get('force-sync', '-')}"
    )


def _scraped_errors(prometheus: str, instance: str, consumer: PlannedExternalSecret) -> float | None:
    """The consumer's ``externalsecret_sync_calls_error`` as Prometheus last scraped it from the ESO
    at ``instance`` (host:port; None: no series yet). The instance matters: after a resume on other
    ports the previous ESO's series stays queryable for Prometheus's 5-minute lookback, unchanging."""
    query = (
        f'externalsecret_sync_calls_error{{cluster="{consumer.cluster}",instance="{instance}",'
        f'namespace="{consumer.namespace}",name="{consumer.name}"}}'
    )
    found = _series(prometheus, query)
    return float(found[0]["value"][1]) if found else None


def _series(url: str, query: str) -> list[dict[str, Any]]:
    return list(prometheus_api(url, f"query?query={urllib.parse.quote(query)}")["result"])


def stale_consumer_stage(
    loaded: LoadedCatalog,
    state: Any,
    *,
    vaultflow: Any,
    console: Console,
    applications: list[str],
    revision: str,
    timeout: float,
) -> None:
    """Run the fault and its recovery (``vaultflow``: the demo's ``RotateCli.vaultflow``)."""
    consumer = stale_candidate(loaded)
    if not state.prometheus or consumer is None:
        console.print("no Prometheus or no consumer in this catalog: the stale-consumer fault is skipped")
        return
    from kubernetes import config

    from vaultflow.steps.rotation.force_sync import force_sync

    path, where = consumer.secret.path, f"{consumer.cluster} {consumer.namespace}/{consumer.name}"
    catalog = str(loaded.source)
    console.print(
        f"[bold]A fault:[/bold] ESO loses Vault (`vaultflow sandbox fault vault --down`); a person writes a "
        f"new version of {path} by hand; its ExternalSecret ({where}) is asked to refresh and cannot."
    )
    admin = AdminClient.for_state(state)
    api = config.new_client_from_config(config_file=state.kubeconfig, context=consumer.cluster)
    before = time.time()
    try:
        admin.set_fault("vault", Fault(down=True))
        version = write_new_version(state, loaded, path)
        console.print(f"{path} is at version {version} now (break-glass root token, revoked again)")
        # Each refresh it is asked for fails and ESO counts a sync error; asked again as soon as
        # Prometheus has scraped the last one (not ESO's backoff, which spaces them 1 s, 2 s, 4 s ...).
        metrics = f"{state.eso_metrics[consumer.cluster].rstrip('/')}/metrics"  # the server's base URL
        errors = fail_until_counted(
            lambda attempt: force_sync(
                api,
                cluster=consumer.cluster,
                kind="ExternalSecret",
                namespace=consumer.namespace,
                name=consumer.name,
                run_id=f"demo-{int(before)}-{attempt}",
            ),
            lambda: _scraped_errors(state.prometheus, urllib.parse.urlsplit(metrics).netloc, consumer),
            more_than=ALERT_THRESHOLD,
            timeout=timeout,
            explain=lambda: _eso_view(metrics, api, consumer),
        )
        console.print(f"ESO failed to refresh {where}; Prometheus counted {errors:g} more sync errors")
        firing = wait_for(
            lambda: (
                [
                    a
                    for a in prometheus_api(state.prometheus, "alerts")["alerts"]
                    if a["labels"].get("alertname") == ALERT and a["state"] == "firing"
                ]
                or None
            ),
            timeout=timeout,
            what=f"the {ALERT} alert to fire",
        )
        for alert in firing:
            labels = alert["labels"]
            console.print(
                f"alert {ALERT} ({labels.get('severity', '?')}) in {labels.get('cluster', '?')}: firing: "
                f"{escape(alert['annotations'].get('summary', ''))}"
            )
        stale = wait_for(
            lambda: (
                _series(
                    state.prometheus,
                    f'vaultflow_consumer_stale_seconds{{externalsecret="{consumer.name}",'
                    f'cluster="{consumer.cluster}"}} > 0',
                )
                or None
            ),
            timeout=timeout,
            what="the exporter to report the consumer stale",
        )
        console.print(
            f'the exporter: vaultflow_consumer_stale_seconds{{externalsecret="{consumer.name}"}} '
            f"= {float(stale[0]['value'][1]):.0f} s"
        )
        code, output = vaultflow("audit", "--catalog", catalog)
        if code != 1 or consumer.name not in output:
            raise OperationError(f"the audit exited {code} without naming {where} (its output above)")
        console.print(f"the audit names the consumer the fault left behind ({where}): exit 1")
    finally:
        admin.clear_faults("vault")
        console.print("fault lifted: ESO reaches Vault again (`vaultflow sandbox fault vault --clear`)")
    clusters = [cluster.name for cluster in loaded.catalog.clusters]
    for line in recover(state, clusters, applications, revision, before=time.time()):
        console.print(f"[yellow]{escape(line)}[/yellow]")
    force_sync(
        api,
        cluster=consumer.cluster,
        kind="ExternalSecret",
        namespace=consumer.namespace,
        name=consumer.name,
        run_id=f"demo-{int(time.time())}",
    )
    wait_for(
        lambda: vaultflow("audit", "--catalog", catalog, show=False)[0] == 0 or None,
        timeout=timeout,
        what="the consumer to refresh and the audit to be clean",
    )
    code, _ = vaultflow("audit", "--catalog", catalog)
    if code != 0:
        raise OperationError(f"the audit exited {code} after the fault was lifted")
    console.print(f"{where} refreshed: the audit is clean again")
