"""A real Prometheus server (Debian's ``prometheus`` package) for the sandbox and the tests.

It scrapes what it is given (OpenBao's ``/v1/sys/metrics``, the ESO emulator's
and vaultflow's exporter's ``/metrics``), evaluates the alert rules of
``monitoring/vaultflow.rules.yaml`` and answers on its HTTP API, on loopback
only, with its own data directory. Scrape and evaluation run every 5 s (a
production Prometheus usually uses 30 s to 1 min) so that an alert's ``for:``
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
from typing import Any

import yaml

from vaultflow.base.errors import OperationError
from vaultflow.sandbox.openbao import free_port

INTERVAL = "5s"


@dataclass(frozen=True)
class ScrapeTarget:
    job: str
    address: str  # host:port
    metrics_path: str = "/metrics"
    params: dict[str, list[str]] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        raise OperationError(
            "prometheus not found: install Debian's prometheus package (apt-get install prometheus)"
        )
    return found


def prometheus_config(targets: list[ScrapeTarget], rule_files: list[Path]) -> dict[str, Any]:
    """The configuration file's content: one job per target, the rule files, fast intervals."""
    return {
        "global": {"scrape_interval": INTERVAL, "evaluation_interval": INTERVAL, "scrape_timeout": "4s"},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [
            {
                "job_name": target.job,
                "metrics_path": target.metrics_path,
                **({"params": target.params} if target.params else {}),
                "static_configs": [
                    {"targets": [target.address], **({"labels": target.labels} if target.labels else {})}
                ],
            }
            for target in targets
        ],
    }


@dataclass
class PrometheusServer:
    """One ``prometheus`` process with its data under ``data_dir``, listening on 127.0.0.1."""

    data_dir: Path
    targets: list[ScrapeTarget]
    rule_files: list[Path]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "prometheus.log"

    def start(self, timeout: float = 30.0) -> PrometheusServer:
        self.data_dir = self.data_dir.absolute()
        (self.data_dir / "data").mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "prometheus.yml"
        config.write_text(yaml.safe_dump(prometheus_config(self.targets, self.rule_files), sort_keys=False))
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                prometheus_binary(),
                f"--config.file={config}",
                f"--storage.tsdb.path={self.data_dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
            ],
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
                    f"prometheus exited with code {self.process.returncode}; see {self.log_path}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as response:  # noqa: S310 (loopback)
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        raise OperationError(f"prometheus did not become ready on {self.url} within {timeout:.0f}s")

    def api(self, path: str) -> Any:
        """GET ``/api/v1/<path>``'s ``data``; a clear error when Prometheus says it failed."""
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}", timeout=10) as response:  # noqa: S310
            body = json.loads(response.read())
        if body.get("status") != "success":
            raise OperationError(f"prometheus {path}: {body.get('error', body)}")
        return body["data"]

    def alert_states(self, name: str) -> list[str]:
        """The states (``pending``, ``firing``) of every active alert called ``name``."""
        return [
            alert["state"]
            for alert in self.api("alerts")["alerts"]
            if alert["labels"].get("alertname") == name
        ]

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)
