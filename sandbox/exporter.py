"""vaultflow's exporter in the sandbox, as the cluster runs it: ``vaultflow exporter`` as the
catalog's observer service account, under the RBAC ``vaultflow monitoring render`` writes for it,
scraped by the sandbox's Prometheus.

``enable_exporter`` (``sandbox up --catalog``, the demo) applies the observer's rendered RBAC
(``gitops/monitoring_exporter.py``) in every catalog cluster, as Argo CD would, writes a kubeconfig
whose every context is the observer's own token in that cluster (``DIR/monitoring/exporter/kubeconfig``,
mode 0600: the kube emulator enforces RBAC for it, as kube-apiserver does) and the exporter's
settings (``exporter.json``), then asks the supervisor (SIGUSR1) to start it. The supervisor owns the
process (``SandboxExporter``): it starts it again at every ``up`` while ``exporter.json`` is there,
stops it at ``down``, and gives it the OpenBao nodes' current addresses. The exporter logs in to
Vault as the observer (Kubernetes auth, role ``vaultflow-observer``) with the kubeconfig's token for
its account in the workflows cluster, as a pod sends its projected token; while Vault is sealed or
the bootstrap has not configured that role yet it reports Vault down and tries again at each
scrape. Prometheus reads its address from ``targets.json`` (``file_sd_configs``), empty until it
runs.

Run as ``python -m vaultflow.sandbox.exporter --dir DIR/monitoring/exporter`` (the supervisor does):
its settings are read from that folder, which is in its command line for ``down`` to find it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vaultflow.base.errors import OperationError
from vaultflow.gitops.catalog import LoadedCatalog
from vaultflow.gitops.monitoring_exporter import exporter_manifests
from vaultflow.sandbox.openbao import free_port
from vaultflow.sandbox.prometheus import LoopbackProcess
from vaultflow.sandbox.state import SandboxState, read_state, write_json_atomically

log = logging.getLogger("vaultflow.sandbox.exporter")

JOB = "vaultflow-exporter"
SETTINGS = "exporter.json"
TARGETS = "targets.json"
KUBECONFIG = "kubeconfig"
TOKEN_SECONDS = 30 * 86400  # the observer's tokens in the kubeconfig (the sandbox has no rotation of them)
RBAC_KINDS = frozenset(
    ["Namespace", "ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"]
)


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


def _apply(api: Any, manifest: dict[str, Any]) -> None:
    """Create one object as Argo CD would (admin); an existing one is replaced by what was rendered."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    kind, namespace, name = (
        manifest["kind"],
        manifest["metadata"].get("namespace"),
        manifest["metadata"]["name"],
    )
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    create = {
        "Namespace": lambda: core.create_namespace(manifest),
        "ServiceAccount": lambda: core.create_namespaced_service_account(namespace, manifest),
        "Role": lambda: rbac.create_namespaced_role(namespace, manifest),
        "RoleBinding": lambda: rbac.create_namespaced_role_binding(namespace, manifest),
        "ClusterRole": lambda: rbac.create_cluster_role(manifest),
        "ClusterRoleBinding": lambda: rbac.create_cluster_role_binding(manifest),
    }
    replace = {
        "Role": lambda: rbac.replace_namespaced_role(name, namespace, manifest),
        "RoleBinding": lambda: rbac.replace_namespaced_role_binding(name, namespace, manifest),
        "ClusterRole": lambda: rbac.replace_cluster_role(name, manifest),
        "ClusterRoleBinding": lambda: rbac.replace_cluster_role_binding(name, manifest),
    }
    try:
        create[kind]()
    except ApiException as error:
        if error.status != 409:
            raise
        if kind in replace:
            replace[kind]()


def install_observer(state: SandboxState, loaded: LoadedCatalog) -> Path:
    """The observer's rendered RBAC in every catalog cluster, and a kubeconfig of its own tokens (the
    file the exporter runs with)."""
    from vaultflow.sandbox.accounts import account_kubeconfig

    account = loaded.catalog.vault.kubernetes_auth.observer_service_account
    clusters = []
    for cluster, manifests in exporter_manifests(loaded).items():
        admin = _admin(state, cluster)
        objects = sorted(
            (m for _, m in manifests if m["kind"] in RBAC_KINDS), key=lambda m: m["kind"] != "Namespace"
        )
        namespaces = {m["metadata"].get("namespace") for m in objects} - {None}
        for namespace in sorted(
            namespaces - {m["metadata"]["name"] for m in objects if m["kind"] == "Namespace"}
        ):
            _apply(admin, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        for manifest in objects:
            _apply(admin, manifest)
        clusters.append(cluster)
    return account_kubeconfig(
        state,
        account,
        clusters,
        path=exporter_dir(Path(state.directory) / "monitoring") / KUBECONFIG,
        expiration_seconds=TOKEN_SECONDS,
        contexts={c: loaded.catalog.cluster(c).kube_context or c for c in clusters},
    )


def enable_exporter(state: SandboxState, loaded: LoadedCatalog, timeout: float = 60.0) -> str:
    """Install the observer, record the exporter's settings and have the supervisor start it; its
    URL once it serves. A sandbox without Prometheus (packages missing) still runs it."""
    from vaultflow.sandbox.layout import SandboxPaths

    paths = SandboxPaths(Path(state.directory))
    kubeconfig = install_observer(state, loaded)
    directory = exporter_dir(paths.monitoring)
    previous = {}
    if (directory / SETTINGS).is_file():
        previous = json.loads((directory / SETTINGS).read_text())
    settings = {
        "catalog": str(loaded.source.resolve()),
        "kubeconfig": str(kubeconfig),
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vaultflow.sandbox.exporter", description=__doc__)
    parser.add_argument("--dir", required=True, type=Path, help="the exporter's folder (holds exporter.json)")
    args = parser.parse_args(argv)
    settings = json.loads((args.dir / SETTINGS).read_text())
    os.environ["KUBECONFIG"] = settings["kubeconfig"]
    os.environ.pop("VAULT_TOKEN", None)  # always as the observer, never an inherited token
    from vaultflow.base.errors import VaultflowError
    from vaultflow.gitops.catalog import load_catalog
    from vaultflow.steps.observe.exporter import catalog_registry, serve_until_stopped

    host, _, port = settings["listen"].rpartition(":")
    try:
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
