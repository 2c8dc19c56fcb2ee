"""Where things live inside a sandbox directory (one place, so ``down`` removes exactly them)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vaultflow.sandbox.state import KUBECONFIG_FILE, SPEC_FILE, STATE_FILE


@dataclass(frozen=True)
class SandboxPaths:
    """The files and folders ``up`` creates in ``root``."""

    root: Path

    @property
    def spec(self) -> Path:
        return self.root / SPEC_FILE

    @property
    def state(self) -> Path:
        return self.root / STATE_FILE

    @property
    def kubeconfig(self) -> Path:
        return self.root / KUBECONFIG_FILE

    @property
    def run(self) -> Path:
        return self.root / "run"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def openbao(self) -> Path:
        return self.root / "openbao"

    @property
    def clusters(self) -> Path:
        return self.root / "clusters"

    @property
    def tls(self) -> Path:
        return self.root / "tls"

    @property
    def ca_file(self) -> Path:
        """The sandbox CA (PEM): what clients of the HTTPS emulators verify against."""
        return self.tls / "ca.crt"

    @property
    def admin_token(self) -> Path:
        """The bearer token of the supervisor's admin API (mode 0600)."""
        return self.run / "admin.token"

    @property
    def argo_token(self) -> Path:
        """The bearer token of the sandbox Argo Server (mode 0600)."""
        return self.run / "argo.token"

    @property
    def argo_runs(self) -> Path:
        """Where workflows submitted to the sandbox Argo Server write their step logs."""
        return self.root / "argo-runs"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"

    @property
    def gitignore(self) -> Path:
        return self.root / ".gitignore"

    @property
    def supervisor_pid(self) -> Path:
        return self.run / "supervisor.pid"

    @property
    def supervisor_error(self) -> Path:
        return self.run / "supervisor-error.json"

    @property
    def supervisor_log(self) -> Path:
        return self.logs / "supervisor.log"

    def openbao_pid(self, node_id: str) -> Path:
        return self.run / f"openbao-{node_id}.pid"

    def openbao_config(self, node_id: str) -> Path:
        return self.openbao / node_id / "openbao.hcl"

    def cluster_ca(self, name: str) -> Path:
        return self.clusters / name / "ca.crt"

    def pid_files(self) -> list[Path]:
        return sorted(self.run.glob("*.pid")) if self.run.is_dir() else []

    def created(self) -> list[Path]:
        """Everything ``up`` may have created, in removal order (``.lock`` last)."""
        return [
            self.state,
            self.spec,
            self.kubeconfig,
            self.run,
            self.logs,
            self.openbao,
            self.clusters,
            self.tls,
            self.gitignore,
            self.lock,
        ]

    def has_runtime_files(self) -> bool:
        return any(path.exists() for path in (self.state, self.spec, self.run, self.openbao, self.kubeconfig))
