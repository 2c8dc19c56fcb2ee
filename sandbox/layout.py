"""Where things live inside a sandbox directory (one place, so ``down --purge`` removes exactly them).

``down`` stops the processes and keeps every file here, as ``minikube stop``
keeps a cluster: OpenBao's raft data, each cluster's objects and keys, the
keeper, the runs' logs and the GitOps repository, so that ``up`` brings the
same platform back. ``down --purge`` removes what ``kept()`` lists.
"""

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
    def account_kubeconfigs(self) -> Path:
        """One kubeconfig per pipeline service account (``sandbox/accounts.py``), mode 0600."""
        return self.root / "kubeconfigs"

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
    def github_token(self) -> Path:
        """The bearer token of the sandbox's GitHub API (mode 0600)."""
        return self.run / "github.token"

    @property
    def github_state(self) -> Path:
        """The GitHub emulator's pull requests, comments and commit statuses, kept across a restart."""
        return self.root / "github.json"

    @property
    def argo_runs(self) -> Path:
        """Where workflows submitted to the sandbox Argo Server write their step logs."""
        return self.root / "argo-runs"

    @property
    def keeper(self) -> Path:
        """The keeper of unseal shares of the demo and ``vault:init`` (a ``file://`` keeper, mode 0600)."""
        return self.root / "vault-keeper.json"

    @property
    def runs(self) -> Path:
        """Where pipelines the demo and ``vault:init`` run locally write their step logs."""
        return self.root / "runs"

    @property
    def gitops_repo(self) -> Path:
        """The sandbox's GitOps remote (a bare repository the demo creates)."""
        return self.root / "gitops.git"

    @property
    def clouds(self) -> Path:
        """What the emulated clouds hold, kept across a restart (mode 0600: secret values)."""
        return self.root / "clouds.json"

    @property
    def routes(self) -> Path:
        """The admin API's route tables, kept across a restart."""
        return self.root / "routes.json"

    @property
    def monitoring(self) -> Path:
        """Prometheus', the Pushgateway's and the Alertmanager's data and configuration."""
        return self.root / "monitoring"

    def monitoring_pid(self, name: str) -> Path:
        return self.run / f"monitoring-{name}.pid"

    @property
    def restart_request(self) -> Path:
        """Which OpenBao nodes ``up``/``restart`` asks the supervisor to restart (then SIGHUP)."""
        return self.run / "restart-request.json"

    @property
    def restart_done(self) -> Path:
        """The supervisor's answer to a restart request."""
        return self.run / "restart-done.json"

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

    def cluster_snapshot(self, name: str) -> Path:
        """The cluster's objects, keys and port, saved by the supervisor (mode 0600: holds Secrets)."""
        return self.clusters / name / "state.json"

    @property
    def ca_key(self) -> Path:
        """The sandbox CA's key (mode 0600), kept so a restarted sandbox keeps its CA."""
        return self.tls / "ca.key"

    def pid_files(self) -> list[Path]:
        return sorted(self.run.glob("*.pid")) if self.run.is_dir() else []

    def kept(self) -> list[Path]:
        """Everything a sandbox directory holds, in removal order (``.lock`` last): what a purge removes."""
        return [
            self.state,
            self.spec,
            self.kubeconfig,
            self.account_kubeconfigs,
            self.run,
            self.logs,
            self.openbao,
            self.monitoring,
            self.clusters,
            self.tls,
            self.routes,
            self.clouds,
            self.keeper,
            self.runs,
            self.argo_runs,
            self.gitops_repo,
            self.github_state,
            self.gitignore,
            self.lock,
        ]

    def has_state(self) -> bool:
        """True when the directory holds a sandbox, running or stopped."""
        return any(path.exists() for path in (self.state, self.spec, self.run, self.openbao, self.kubeconfig))
