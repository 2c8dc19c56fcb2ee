"""The sandbox's monitoring: a real Prometheus, Pushgateway and Alertmanager, started by the supervisor.

Prometheus scrapes every OpenBao node (``/v1/sys/metrics``, served without a
token as argocd-apps/apps/vault.yaml configures Vault), the ESO emulator of
every cluster (``/metrics``, ESO's metric names), vaultflow's exporter once it
runs (``vaultflow.sandbox.exporter``) and the Pushgateway, loads
``monitoring/vaultflow.rules.yaml`` and sends its alerts to the Alertmanager.
Their data lives in ``DIR/monitoring/`` and survives ``down``/``up``. Without
Debian's packages installed the sandbox runs without them and ``sandbox status``
says so (``task demo`` installs them).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from vaultflow.sandbox.prometheus import (
    Alertmanager,
    LoopbackProcess,
    PrometheusServer,
    Pushgateway,
    ScrapeTarget,
)

log = logging.getLogger("vaultflow.sandbox.monitoring")

RULES = Path(__file__).resolve().parents[1] / "monitoring" / "vaultflow.rules.yaml"
PACKAGES = {
    "prometheus": "prometheus",
    "prometheus-pushgateway": "prometheus-pushgateway",
    "prometheus-alertmanager": "prometheus-alertmanager",
}


def missing_packages() -> list[str]:
    """The Debian packages whose binaries the sandbox's monitoring needs and cannot find."""
    return [package for binary, package in PACKAGES.items() if shutil.which(binary) is None]


@dataclass
class SandboxMonitoring:
    prometheus: PrometheusServer
    pushgateway: Pushgateway
    alertmanager: Alertmanager

    @classmethod
    def start(
        cls,
        root: Path,
        vault: list[str],
        eso: dict[str, str],
        vault_ca_file: str = "",
        file_targets: dict[str, Path] | None = None,
    ) -> SandboxMonitoring:
        """``vault``: the nodes' addresses (http(s)://host:port; https ones verified against
        ``vault_ca_file``); ``eso``: cluster name to its metrics URL; ``file_targets``: jobs whose
        targets come later, from a file (vaultflow's exporter, ``vaultflow.sandbox.exporter``)."""
        pushgateway = Pushgateway(root / "pushgateway").start()
        alertmanager = Alertmanager(root / "alertmanager").start()
        targets = [
            ScrapeTarget(
                "vault",
                _host_port(address),
                "/v1/sys/metrics",
                params={"format": ["prometheus"]},
                ca_file=vault_ca_file if address.startswith("https://") else "",
            )
            for address in vault
        ]
        targets += [
            ScrapeTarget("external-secrets", _host_port(url), labels={"cluster": cluster})
            for cluster, url in sorted(eso.items())
        ]
        targets.append(ScrapeTarget("pushgateway", pushgateway.address))
        prometheus = PrometheusServer(
            root / "prometheus",
            targets=targets,
            rule_files=[RULES],
            alertmanager=alertmanager.address,
            file_targets=dict(file_targets or {}),
        ).start()
        log.info(
            "Prometheus on %s (Pushgateway %s, Alertmanager %s)",
            prometheus.url,
            pushgateway.url,
            alertmanager.url,
        )
        return cls(prometheus, pushgateway, alertmanager)

    @property
    def processes(self) -> list[LoopbackProcess]:
        """Stop order: Prometheus first, so it does not scrape or alert into what is gone."""
        return [self.prometheus, self.alertmanager, self.pushgateway]

    def stop(self) -> None:
        for process in self.processes:
            process.stop()


def _host_port(url: str) -> str:
    return url.split("://", 1)[-1].rstrip("/")
