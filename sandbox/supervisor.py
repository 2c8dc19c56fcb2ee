"""The sandbox's one long-running process: ``python -m vaultflow.sandbox.supervisor --dir DIR``.

It hosts every emulator in threads (one Kubernetes API per cluster, moto for
AWS, GCP Secret Manager, Azure Key Vaults, ESO in every cluster, Argo CD in the
management cluster, see ``vaultflow.sandbox.emulators``) and owns the OpenBao server
processes as its children, so that stopping it (SIGTERM, what ``down`` sends)
stops the whole sandbox. It reads the request from ``DIR/spec.json`` and, once
every component answers, writes the endpoints to ``DIR/sandbox.json``; ``up``
waits for that file. A failure during start is written to
``DIR/run/supervisor-error.json`` so ``up`` can repeat the one clear message.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from vaultflow.base.errors import InputError, VaultflowError
from vaultflow.sandbox import layout
from vaultflow.sandbox.crd_sources import CrdSource, load_crds
from vaultflow.sandbox.emulators import ServiceEmulators
from vaultflow.sandbox.kube import KubeCluster
from vaultflow.sandbox.kubeconfig import ClusterAccess, write_kubeconfig
from vaultflow.sandbox.openbao import OpenBaoServer, raft_cluster
from vaultflow.sandbox.processes import write_pid
from vaultflow.sandbox.state import (
    ClusterEndpoint,
    SandboxSpec,
    SandboxState,
    VaultNode,
    dump,
    read_spec,
    write_json_atomically,
)

log = logging.getLogger("vaultflow.sandbox.supervisor")


class Supervisor:
    """Starts, records and stops every component of one sandbox."""

    def __init__(self, directory: Path, spec: SandboxSpec) -> None:
        self.directory = directory
        self.spec = spec
        self.paths = layout.SandboxPaths(directory)
        self.vault: list[OpenBaoServer] = []
        self.clusters: list[KubeCluster] = []
        self._moto: Any = None
        self.services: ServiceEmulators | None = None

    def start(self) -> SandboxState:
        self._launch_openbao()  # boots in its own processes while the emulators start here
        aws_endpoint = self._start_moto()
        crds = load_crds(CrdSource(Path(self.spec.crd_dir), self.spec.crd_upstream))
        endpoints = [self._start_cluster(name, crds) for name in self.spec.cluster_names]
        self.services = services = ServiceEmulators.start(self.paths, self.spec, self.clusters, aws_endpoint)
        self._wait_openbao()
        write_kubeconfig(
            self.paths.kubeconfig,
            [
                ClusterAccess(c.name, c.url, c.admin_token, ca_file=str(self.paths.cluster_ca(c.name)))
                for c in self.clusters
            ],
            current=self.spec.workload_clusters[0],
        )
        return SandboxState(
            directory=str(self.directory),
            spec=self.spec,
            supervisor_pid=os.getpid(),
            started_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            kubeconfig=str(self.paths.kubeconfig),
            clusters=endpoints,
            vault=[
                VaultNode(
                    node_id=server.node_id,
                    address=server.address,
                    cluster_address=f"http://127.0.0.1:{server.cluster_port}",
                    pid=server.pid or 0,
                    data_dir=str(server.data_dir),
                )
                for server in self.vault
            ],
            aws_endpoint=aws_endpoint,
            crd_source=CrdSource(Path(self.spec.crd_dir), self.spec.crd_upstream).describe(),
            gcp_endpoint=services.gcp.url,
            azure_vaults=services.azure_vaults,
            ca_file=str(self.paths.ca_file),
            admin_endpoint=services.admin.url if services.admin is not None else "",
            argo_server=services.argo_server.url if services.argo_server is not None else "",
            argo_token_file=str(self.paths.argo_token),
        )

    def _launch_openbao(self) -> None:
        nodes = raft_cluster(self.paths.openbao, self.spec.vault_replicas, first_port=self.spec.vault_port)
        for server in nodes:
            self.vault.append(server)
            server.launch()
            write_pid(self.paths.openbao_pid(server.node_id), server.pid or 0)

    def _wait_openbao(self) -> None:
        for server in self.vault:
            server.wait_ready(timeout=60)
            log.info("OpenBao %s listens on %s (sealed, uninitialised)", server.node_id, server.address)

    def _start_moto(self) -> str:
        from moto.server import ThreadedMotoServer  # heavy; only the supervisor needs it

        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        log.info("moto (AWS Secrets Manager, KMS) listens on http://%s:%s", host, port)
        return f"http://{host}:{port}"

    def _start_cluster(self, name: str, crds: list[dict[str, Any]]) -> ClusterEndpoint:
        cluster = KubeCluster(name).start()
        self.clusters.append(cluster)
        cluster.register_crds(crds)
        ca_file = self.paths.cluster_ca(name)
        ca_file.parent.mkdir(parents=True, exist_ok=True)
        ca_file.write_text(cluster.ca_pem)
        role = "management" if name == self.spec.management_cluster else "workload"
        log.info("Kubernetes API emulator %s (%s) listens on %s", name, role, cluster.url)
        return ClusterEndpoint(name=name, role=role, url=cluster.url, ca_file=str(ca_file))

    def stop(self) -> None:
        if self.services is not None:
            self.services.stop()  # controllers first: they write into the clusters
        for cluster in self.clusters:
            cluster.stop()
        if self._moto is not None:
            self._moto.stop()
        for server in self.vault:
            server.stop()
            self.paths.openbao_pid(server.node_id).unlink(missing_ok=True)


class _StartAborted(Exception):
    """``down`` or a timeout stopped the supervisor before it was ready."""


def _write_error(paths: layout.SandboxPaths, error: BaseException) -> None:
    kind = "input" if isinstance(error, InputError) else "operation"
    message = str(error) if isinstance(error, VaultflowError) else f"{error.__class__.__name__}: {error}"
    write_json_atomically(paths.supervisor_error, json.dumps({"kind": kind, "message": message}))


def run(directory: Path) -> int:
    paths = layout.SandboxPaths(directory)
    write_pid(paths.supervisor_pid, os.getpid())
    stop_requested = threading.Event()
    ready = threading.Event()

    def request_stop(signum: int, _: Any) -> None:
        log.info("signal %s: stopping", signum)
        stop_requested.set()
        if not ready.is_set():
            raise _StartAborted(f"start aborted by signal {signum}")

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    supervisor: Supervisor | None = None
    try:
        supervisor = Supervisor(directory, read_spec(directory))
        state = supervisor.start()
        write_json_atomically(paths.state, dump(state))
        ready.set()
        log.info("sandbox ready in %s", directory)
        while not stop_requested.wait(1.0):
            pass
        return 0
    except Exception as error:
        if not isinstance(error, VaultflowError):
            log.exception("sandbox failed to start")
        else:
            log.error("sandbox failed to start: %s", error)
        _write_error(paths, error)
        return error.exit_code if isinstance(error, VaultflowError) else 1
    finally:
        ready.set()  # from here on a signal only asks to stop; cleanup must not be interrupted
        if supervisor is not None:
            supervisor.stop()
        paths.supervisor_pid.unlink(missing_ok=True)
        log.info("stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vaultflow.sandbox.supervisor", description=__doc__)
    parser.add_argument("--dir", required=True, type=Path, help="the sandbox directory (holds spec.json)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    return run(args.dir.resolve())


if __name__ == "__main__":
    sys.exit(main())
