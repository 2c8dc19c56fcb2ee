"""Real Prometheus, Pushgateway and Alertmanager (Debian's packages) for the sandbox and the tests.

Prometheus scrapes what it is given (OpenBao's ``/v1/sys/metrics``, the ESO
emulator's and vaultflow's exporter's ``/metrics``, the Pushgateway), evaluates
the alert rules of ``monitoring/vaultflow.rules.yaml``, sends firing alerts to
the Alertmanager when one is given and answers on its HTTP API. Each runs on
loopback only, with its own data directory. Scrape and evaluation run every 5 s
(a production Prometheus usually uses 30 s to 1 min) so that an alert's ``for:``
is what a test waits for, not the scrape interval.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import yaml

from vaultflow.base.errors import OperationError
from vaultflow.sandbox.openbao import free_port
from vaultflow.sandbox.processes import stop_child

INTERVAL = "5s"


@dataclass(frozen=True)
class ScrapeTarget:
    job: str
    address: str  # host:port
    metrics_path: str = "/metrics"
    params: dict[str, list[str]] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    ca_file: str = ""  # an HTTPS target: scraped over TLS, verified against this CA


def binary(name: str, package: str) -> str:
    """The path of a monitoring binary; a clear error naming the Debian package when it is missing."""
    found = shutil.which(name)
    if found is None:
        raise OperationError(
            f"{name} not found: install Debian's {package} package (apt-get install {package})"
        )
    return found


def prometheus_config(
    targets: list[ScrapeTarget],
    rule_files: list[Path],
    alertmanager: str = "",
    file_targets: dict[str, Path] | None = None,
) -> dict[str, Any]:
    """The configuration file's content: one job per job name (its targets together), the rule files,
    the Alertmanager when given, fast intervals. ``file_targets``: jobs whose targets are read from a
    file (``file_sd_configs``, which Prometheus watches: a target that comes and goes later)."""
    jobs: dict[str, dict[str, Any]] = {
        job: {"job_name": job, "file_sd_configs": [{"files": [str(path)], "refresh_interval": INTERVAL}]}
        for job, path in sorted((file_targets or {}).items())
    }
    for target in targets:
        job = jobs.setdefault(
            target.job,
            {
                "job_name": target.job,
                "metrics_path": target.metrics_path,
                **({"params": target.params} if target.params else {}),
                **({"scheme": "https", "tls_config": {"ca_file": target.ca_file}} if target.ca_file else {}),
                # A Pushgateway's metrics keep the job and instance they were pushed with.
                **({"honor_labels": True} if target.job == "pushgateway" else {}),
                "static_configs": [],
            },
        )
        job["static_configs"].append(
            {"targets": [target.address], **({"labels": target.labels} if target.labels else {})}
        )
    alerting = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]} if alertmanager else {}
    return {
        "global": {"scrape_interval": INTERVAL, "evaluation_interval": INTERVAL, "scrape_timeout": "4s"},
        **({"alerting": alerting} if alerting else {}),
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": list(jobs.values()),
    }


def prometheus_api(url: str, path: str) -> Any:
    """GET ``<url>/api/v1/<path>``'s ``data``; a clear error when Prometheus says it failed."""
    with urllib.request.urlopen(f"{url}/api/v1/{path}", timeout=10) as response:  # noqa: S310 (loopback)
        body = json.loads(response.read())
    if body.get("status") != "success":
        raise OperationError(f"prometheus {path}: {body.get('error', body)}")
    return body["data"]


def alert_states(url: str, name: str) -> list[str]:
    """The states (``pending``, ``firing``) of every active alert called ``name``."""
    alerts = prometheus_api(url, "alerts")["alerts"]
    return [alert["state"] for alert in alerts if alert["labels"].get("alertname") == name]


@dataclass
class LoopbackProcess:
    """One monitoring process on 127.0.0.1 with its files under ``data_dir``; ready when ``/-/ready`` is."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    name = "process"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / f"{self.name}.log"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self, timeout: float = 30.0) -> Self:
        self.data_dir = self.data_dir.absolute()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=self.data_dir,
            env=dict(os.environ),
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise OperationError(
                    f"{self.name} exited with code {self.process.returncode}; see {self.log_path}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:  # noqa: S310 (loopback)
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        raise OperationError(f"{self.name} did not become ready on {self.url} within {timeout:.0f}s")

    def stop(self, timeout: float = 10.0) -> None:
        stop_child(self.process, timeout)


@dataclass
class PrometheusServer(LoopbackProcess):
    """Prometheus scraping ``targets``, evaluating ``rule_files``, alerting ``alertmanager`` (host:port)."""

    targets: list[ScrapeTarget] = field(default_factory=list)
    rule_files: list[Path] = field(default_factory=list)
    alertmanager: str = ""
    file_targets: dict[str, Path] = field(default_factory=dict)  # job -> its targets file

    name = "prometheus"

    def command(self) -> list[str]:
        (self.data_dir / "data").mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "prometheus.yml"
        settings = prometheus_config(self.targets, self.rule_files, self.alertmanager, self.file_targets)
        config.write_text(yaml.safe_dump(settings, sort_keys=False))
        return [
            binary("prometheus", "prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={self.data_dir / 'data'}",
            f"--web.listen-address={self.address}",
            "--web.enable-lifecycle",
        ]

    def api(self, path: str) -> Any:
        return prometheus_api(self.url, path)

    def alert_states(self, name: str) -> list[str]:
        return alert_states(self.url, name)


@dataclass
class Pushgateway(LoopbackProcess):
    """``prometheus-pushgateway``, keeping what was pushed in a file across restarts."""

    name = "pushgateway"

    def command(self) -> list[str]:
        return [
            binary("prometheus-pushgateway", "prometheus-pushgateway"),
            f"--web.listen-address={self.address}",
            f"--persistence.file={self.data_dir / 'pushgateway.data'}",
        ]


@dataclass
class Alertmanager(LoopbackProcess):
    """``prometheus-alertmanager``, one instance (no cluster gossip), every alert to one null receiver."""

    name = "alertmanager"

    def command(self) -> list[str]:
        config = self.data_dir / "alertmanager.yml"
        routing = {"route": {"receiver": "sandbox", "group_wait": "5s"}, "receivers": [{"name": "sandbox"}]}
        config.write_text(yaml.safe_dump(routing, sort_keys=False))
        return [
            binary("prometheus-alertmanager", "prometheus-alertmanager"),
            f"--config.file={config}",
            f"--storage.path={self.data_dir / 'data'}",
            f"--web.listen-address={self.address}",
            "--cluster.listen-address=",  # one instance: no gossip port
        ]

    def alerts(self) -> list[dict[str, Any]]:
        """The alerts it holds (API v2)."""
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts", timeout=10) as response:  # noqa: S310
            return list(json.loads(response.read()))
