"""vaultflow's exporter in the sandbox, as the cluster runs it: ``vaultflow exporter`` as the
catalog's observer service account, under the RBAC onboarding gave it, scraped by the sandbox's
Prometheus.

The observer's account and RBAC in every catalog cluster are ``vaultflow cluster onboard``'s (which
``sandbox up --catalog`` and the demo run before ``enable_exporter``): the same objects
``gitops/monitoring_exporter.observer_rbac`` renders for argocd-apps/monitoring, whose per-cluster
Applications sync them on a platform. The sandbox's Argo CD syncs the catalog's rendered tree from
the sandbox's GitOps repository, not argocd-apps/, so in the sandbox onboarding is their one source
(docs/observability.md, "In the sandbox").

``enable_exporter`` gives the exporter what its pod has: its own token in the workflows cluster (a
TokenRequest standing for the projected token, ``DIR/monitoring/exporter/kubeconfig``) and, for the
other clusters, the onboarded kubeconfig Secret ``vaultflow-observer-kubeconfig`` of the workflows
cluster as its volume holds it (``volume/config``: the process keeps it in step with the Secret as
kubelet does, every ``VOLUME_SYNC_SECONDS``, and the exporter makes its clients again when it
changes). Both mode 0600: the kube emulator enforces RBAC for these tokens as kube-apiserver does,
so a broken onboarding (a missing Secret, a revoked token) shows here as on a cluster. It records
the exporter's settings (``exporter.json``), then asks the supervisor (SIGUSR1) to start it. The
supervisor owns the process (``SandboxExporter``): it starts it again at every ``up`` while
``exporter.json`` is there, stops it at ``down``, and gives it the OpenBao nodes' current addresses.
The exporter logs in to Vault as the observer (Kubernetes auth, role ``vaultflow-observer``) with
its own token in the workflows cluster, as a pod sends its projected token; while Vault is sealed or
the bootstrap has not configured that role yet it reports Vault down and tries again at each
scrape. Prometheus reads its address from ``targets.json`` (``file_sd_configs``), empty until it
runs.

Run as ``python -m vaultflow.sandbox.exporter --dir DIR/monitoring/exporter`` (the supervisor does):
its settings are read from that folder, which is in its command line for ``down`` to find it.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vaultflow.base.errors import OperationError
from vaultflow.gitops.catalog import LoadedCatalog
from vaultflow.gitops.monitoring_exporter import KUBECONFIG_SECRET
from vaultflow.sandbox.openbao import free_port
from vaultflow.sandbox.prometheus import LoopbackProcess
from vaultflow.sandbox.state import SandboxState, read_state, write_json_atomically
from vaultflow.steps.kube.onboard import KUBECONFIG_KEY

log = logging.getLogger("vaultflow.sandbox.exporter")

JOB = "vaultflow-exporter"
SETTINGS = "exporter.json"
TARGETS = "targets.json"
KUBECONFIG = "kubeconfig"  # the observer's own token in the workflows cluster (a pod's projected one)
VOLUME = "volume"  # the kubeconfig Secret volume: the onboarded contexts of the other clusters
VOLUME_SYNC_SECONDS = 2.0  # kubelet's syncFrequency is 1m; the sandbox follows a change sooner
TOKEN_SECONDS = 30 * 86400  # the observer's own token (the sandbox has no kubelet to rotate it)


def exporter_dir(monitoring: Path) -> Path:
    return monitoring / "exporter"


def targets_file(monitoring: Path) -> Path:
    """Prometheus' targets file of the exporter's job (an empty list until the exporter runs)."""
    path = exporter_dir(monitoring) / TARGETS
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomically(path, "[]\n")
    return path


@dataclass
class SandboxExporter(LoopbackProcess):
    """The exporter process the supervisor owns (``data_dir``: ``DIR/monitoring/exporter``)."""

    vault_addresses: list[str] = field(default_factory=list)
    ca_file: str = ""

    name = "exporter"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "exporter.log"

    def command(self) -> list[str]:
        settings = json.loads((self.data_dir / SETTINGS).read_text())
        settings.update(
            listen=self.address, vault_addresses=",".join(self.vault_addresses), ca_cert=self.ca_file
        )
        write_json_atomically(self.data_dir / SETTINGS, json.dumps(settings, indent=2) + "\n")
        return [sys.executable, "-m", "vaultflow.sandbox.exporter", "--dir", str(self.data_dir)]

    @classmethod
    def requested(
        cls, monitoring: Path, vault_addresses: list[str], ca_file: str = ""
    ) -> SandboxExporter | None:
        """The exporter ``enable_exporter`` asked for (none when it was not), not started."""
        directory = exporter_dir(monitoring)
        try:
            settings = json.loads((directory / SETTINGS).read_text())
        except (OSError, ValueError):
            return None
        port = int(settings.get("port") or 0) or free_port()
        return cls(directory, port=port, vault_addresses=vault_addresses, ca_file=ca_file)

    def start(self, timeout: float = 30.0) -> SandboxExporter:
        super().start(timeout)
        write_json_atomically(self.data_dir / TARGETS, json.dumps([{"targets": [self.address]}]) + "\n")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        write_json_atomically(self.data_dir / TARGETS, "[]\n")
        super().stop(timeout)


# ------------------------------------------------------------ the client side (up --catalog, the demo)


def _admin(state: SandboxState, context: str) -> Any:
    from kubernetes import config

    return config.new_client_from_config(config_file=state.kubeconfig, context=context)


def volume_file(directory: Path) -> Path:
    """Where the exporter's kubeconfig Secret volume holds its ``config`` key (what the rendered
    Deployment mounts at ``monitoring_exporter.KUBECONFIG_DIR``)."""
    return directory / VOLUME / KUBECONFIG_KEY


def mount_kubeconfig_secret(admin: Any, namespace: str, name: str, target: Path) -> bool:
    """Write the Secret ``namespace/name``'s ``config`` to ``target`` as kubelet fills a Secret volume:
    only when it changed, atomically (readers see the old bytes or the new), mode 0600. Whether it
    changed. A Secret that is gone, or has no ``config``, is an ``OperationError`` (kubelet keeps the
    volume as it was; the caller decides what that means)."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    try:
        secret = client.CoreV1Api(admin).read_namespaced_secret(name, namespace)
    except ApiException as error:
        raise OperationError(
            f"no kubeconfig Secret {namespace}/{name} in the workflows cluster (HTTP {error.status}): "
            "onboard the other clusters first (vaultflow cluster onboard)"
        ) from None
    encoded = (secret.data or {}).get(KUBECONFIG_KEY)
    if not encoded:
        raise OperationError(f"kubeconfig Secret {namespace}/{name} has no {KUBECONFIG_KEY!r} key")
    text = base64.b64decode(encoded).decode()
    if target.is_file() and target.read_text() == text:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomically(target, text, mode=0o600)
    return True


def install_observer(state: SandboxState, loaded: LoadedCatalog) -> tuple[Path, Path | None]:
    """What the exporter's pod has, as files: its own token in the workflows cluster (a TokenRequest,
    as its projected token; ``DIR/monitoring/exporter/kubeconfig``) and, with other catalog clusters,
    the onboarded kubeconfig Secret as its volume holds it (``volume/config``), or None. Both mode 0600.

    The observer's account and RBAC are onboarding's (``vaultflow cluster onboard``, which ``sandbox
    up --catalog`` and the demo run first): nothing is applied here, so a cluster onboarding missed
    is reported down by the exporter, as on a platform."""
    from vaultflow.sandbox.accounts import account_kubeconfig

    catalog = loaded.catalog
    account = catalog.vault.kubernetes_auth.observer_service_account
    workflows = catalog.workflows_cluster()
    directory = exporter_dir(Path(state.directory) / "monitoring")
    own = account_kubeconfig(
        state,
        account,
        [workflows.name],
        path=directory / KUBECONFIG,
        expiration_seconds=TOKEN_SECONDS,
        contexts={workflows.name: workflows.kube_context or workflows.name},
    )
    if len(catalog.clusters) == 1:
        return own, None
    volume = volume_file(directory)
    with _admin(state, workflows.name) as admin:
        mount_kubeconfig_secret(admin, account.namespace, KUBECONFIG_SECRET, volume)
    return own, volume


def enable_exporter(state: SandboxState, loaded: LoadedCatalog, timeout: float = 60.0) -> str:
    """Give the exporter the observer's identity, record its settings and have the supervisor start
    it; its URL once it serves. A sandbox without Prometheus (packages missing) still runs it."""
    from vaultflow.sandbox.layout import SandboxPaths

    paths = SandboxPaths(Path(state.directory))
    own, volume = install_observer(state, loaded)
    directory = exporter_dir(paths.monitoring)
    previous = {}
    if (directory / SETTINGS).is_file():
        previous = json.loads((directory / SETTINGS).read_text())
    account = loaded.catalog.vault.kubernetes_auth.observer_service_account
    settings = {
        "catalog": str(loaded.source.resolve()),
        "kubeconfig": str(own),
        # kubelet's side: the Secret the volume mirrors, read with the sandbox's admin kubeconfig
        "volume": str(volume) if volume is not None else "",
        "secret": f"{account.namespace}/{KUBECONFIG_SECRET}",
        "admin_kubeconfig": state.kubeconfig,
        "admin_context": loaded.catalog.workflows_cluster().name,
        "port": int(previous.get("port") or 0) or free_port(),
    }
    write_json_atomically(directory / SETTINGS, json.dumps(settings, indent=2) + "\n")
    pid = state.supervisor_pid
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{settings['port']}"
    while time.monotonic() < deadline:
        current = read_state(paths.root)
        if current is not None and current.exporter == url:
            return url
        time.sleep(0.2)
    raise OperationError(
        f"the exporter did not start within {timeout:.0f}s; see {directory / 'exporter.log'}"
    )


# ------------------------------------------------------------ the process


def _sync_volume(settings: dict[str, Any], volume: Path) -> None:
    """One kubelet sync of the kubeconfig Secret volume (see ``mount_kubeconfig_secret``)."""
    from kubernetes import config

    namespace, _, name = settings["secret"].partition("/")
    with config.new_client_from_config(
        config_file=settings["admin_kubeconfig"], context=settings["admin_context"]
    ) as admin:
        if mount_kubeconfig_secret(admin, namespace, name, volume):
            log.warning("kubeconfig Secret %s changed: the volume holds it now", settings["secret"])


def _start_volume_sync(settings: dict[str, Any], volume: Path) -> None:
    """Keep the volume in step with the Secret, as kubelet does (its ``syncFrequency``, 1 minute by
    default; ``VOLUME_SYNC_SECONDS`` here). A Secret that is gone leaves the volume as it was."""

    def loop() -> None:
        while True:
            time.sleep(VOLUME_SYNC_SECONDS)
            try:
                _sync_volume(settings, volume)
            except Exception as error:  # the workflows cluster restarting: the next sync tries again
                log.warning("kubeconfig volume not synced: %s", error)

    threading.Thread(target=loop, name="kubeconfig-volume", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vaultflow.sandbox.exporter", description=__doc__)
    parser.add_argument("--dir", required=True, type=Path, help="the exporter's folder (holds exporter.json)")
    args = parser.parse_args(argv)
    settings = json.loads((args.dir / SETTINGS).read_text())
    volume = settings.get("volume") or ""
    # the pod's identity: its own token for the workflows cluster, the mounted Secret for the others
    os.environ["KUBECONFIG"] = os.pathsep.join(p for p in (settings["kubeconfig"], volume) if p)
    os.environ.pop("VAULT_TOKEN", None)  # always as the observer, never an inherited token
    from vaultflow.base.errors import VaultflowError
    from vaultflow.gitops.catalog import load_catalog
    from vaultflow.steps.observe.exporter import catalog_registry, serve_until_stopped

    host, _, port = settings["listen"].rpartition(":")
    try:
        if volume:  # a pod whose Secret volume cannot be filled does not start either
            _sync_volume(settings, Path(volume))
            _start_volume_sync(settings, Path(volume))
        loaded = load_catalog(Path(settings["catalog"]))
        registry = catalog_registry(
            loaded,
            settings["vault_addresses"],
            settings.get("ca_cert") or "",
            required=False,
            say=log.warning,
        )
    except VaultflowError as error:
        log.error("%s", error)
        return error.exit_code
    serve_until_stopped(registry, host, int(port))
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.exit(main())
