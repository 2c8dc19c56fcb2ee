"""The sandbox's one long-running process: ``python -m vaultflow.sandbox.supervisor --dir DIR``.

It hosts every emulator in threads (one Kubernetes API per cluster, moto for
AWS, GCP Secret Manager, Azure Key Vaults, ESO in every cluster, Argo CD in the
management cluster, see ``vaultflow.sandbox.emulators``) and owns the OpenBao server
processes and the monitoring (Prometheus, Pushgateway, Alertmanager:
``vaultflow.sandbox.monitoring``) as its children, so that stopping it (SIGTERM, what ``down`` sends)
stops the whole sandbox. It reads the request from ``DIR/spec.json`` and, once
every component answers, writes the endpoints to ``DIR/sandbox.json``; ``up``
waits for that file. A failure during start is written to
``DIR/run/supervisor-error.json`` so ``up`` can repeat the one clear message.

A sandbox comes back the way it was stopped, as a real platform does
(``minikube stop``/``start``): OpenBao starts on its raft data (initialised and
sealed), each cluster from the objects, keys and port saved in
``DIR/clusters/<name>/state.json`` (written every few seconds when something
changed, and at stop), the admin API's routes from ``DIR/routes.json``, the
emulated clouds' secrets from ``DIR/clouds.json`` (``vaultflow.sandbox.persistence``), and
every port recorded in the previous ``sandbox.json`` that matters to someone
else is bound again: OpenBao's (raft peers know each other by them) and the
clusters' (a Vault ``kubernetes`` auth mount reviews tokens at that URL).

SIGHUP asks it to restart the OpenBao nodes named in ``DIR/run/restart-request.json``
on their data (``vaultflow sandbox restart vault``, and ``up`` for a node that died);
it answers in ``DIR/run/restart-done.json`` and records the new pids.

With ``--seal transit`` it first starts the transit unsealer (a second OpenBao,
``vaultflow.sandbox.unsealer``, node id ``unsealer``) and gives every Vault node
the rendered ``seal "transit"`` stanza and the unsealer's token: the nodes then
unseal themselves at every start, and cannot start while the unsealer is down.
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
from vaultflow.sandbox.exporter import JOB as EXPORTER_JOB
from vaultflow.sandbox.exporter import SandboxExporter
from vaultflow.sandbox.exporter import targets_file as exporter_targets
from vaultflow.sandbox.kube import KubeCluster
from vaultflow.sandbox.kube.persistence import load_cluster, save_cluster, saved_port
from vaultflow.sandbox.kubeconfig import ClusterAccess, write_kubeconfig
from vaultflow.sandbox.monitoring import SandboxMonitoring, missing_packages
from vaultflow.sandbox.openbao import OpenBaoServer, free_port, raft_cluster
from vaultflow.sandbox.persistence import CloudSaver, MotoServer, restore_clouds
from vaultflow.sandbox.pki import CertificateAuthority
from vaultflow.sandbox.postgres import POSTGRES_PID, PostgresServer, claim_postgres_dir, ensure_provisioned
from vaultflow.sandbox.processes import port_is_free, write_pid
from vaultflow.sandbox.state import (
    ClusterEndpoint,
    SandboxSpec,
    SandboxState,
    VaultNode,
    dump,
    read_spec,
    read_state,
    write_json_atomically,
)
from vaultflow.sandbox.unsealer import NODE_ID as UNSEALER_ID
from vaultflow.sandbox.unsealer import Unsealer

log = logging.getLogger("vaultflow.sandbox.supervisor")

SAVE_INTERVAL = 5.0  # seconds between checks whether a cluster or the routes changed and must be saved
CLOUD_SAVE_INTERVAL = 30.0  # the clouds' file holds every value: written less often; at stop anyway
# SDK loggers that log every request's headers at INFO (azure-core's HttpLoggingPolicy): the ESO
# emulator's pushes through the real Azure SDK would fill the supervisor log with them.
NOISY_LOGGERS = ("werkzeug", "azure.core.pipeline.policies.http_logging_policy")


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


class Supervisor:
    """Starts, records and stops every component of one sandbox."""

    def __init__(self, directory: Path, spec: SandboxSpec) -> None:
        self.directory = directory
        self.spec = spec
        self.paths = layout.SandboxPaths(directory)
        self.vault: list[OpenBaoServer] = []
        self.unsealer: Unsealer | None = None
        self.clusters: list[KubeCluster] = []
        self._moto: MotoServer | None = None
        self._cloud_saver: CloudSaver | None = None  # saves the clouds when they changed
        self._aws_endpoint = ""
        self._endpoints: list[ClusterEndpoint] = []
        self._started_at = ""
        self.services: ServiceEmulators | None = None
        self.monitoring: SandboxMonitoring | None = None
        self.postgres: PostgresServer | None = None  # when the catalog names a postgres credential
        self.exporter: SandboxExporter | None = None
        self.ready = False
        self._saved_versions: dict[str, int] = {}
        self._saved_routes: dict[str, Any] | None = None

    # ------------------------------------------------------------ start

    def start(self) -> SandboxState:
        previous = read_state(self.directory)  # the endpoints of the last run, if the sandbox ran before
        self._launch_openbao(previous)  # boots in its own processes while the emulators start here
        self._aws_endpoint = self._start_moto()
        crds = load_crds(CrdSource(Path(self.spec.crd_dir), self.spec.crd_upstream))
        self._endpoints = [self._start_cluster(name, crds) for name in self.spec.cluster_names]
        self.services = ServiceEmulators.start(
            self.paths,
            self.spec,
            self.clusters,
            self._aws_endpoint,
            prepare=lambda services: self._restore(services, previous),
        )
        self._wait_openbao()
        self._start_postgres(previous)
        self._start_monitoring()
        self.exporter_requested()  # the exporter of a kept `up --catalog`, on this run's addresses
        write_kubeconfig(
            self.paths.kubeconfig,
            [ClusterAccess(c.name, c.url, c.admin_token, ca_pem=c.ca_pem) for c in self.clusters],
            current=self.spec.workload_clusters[0],
        )
        self._started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.ready = True
        self.save()
        return self.state()

    def state(self) -> SandboxState:
        """What ``sandbox.json`` records: every endpoint and pid, no secret."""
        services = self.services
        assert services is not None
        return SandboxState(
            directory=str(self.directory),
            spec=self.spec,
            supervisor_pid=os.getpid(),
            started_at=self._started_at,
            kubeconfig=str(self.paths.kubeconfig),
            clusters=self._endpoints,
            vault=[_node(server) for server in self.vault],
            aws_endpoint=self._aws_endpoint,
            crd_source=CrdSource(Path(self.spec.crd_dir), self.spec.crd_upstream).describe(),
            gcp_endpoint=services.gcp.url,
            azure_vaults=services.azure_vaults,
            ca_file=str(self.paths.ca_file),
            admin_endpoint=services.admin.url if services.admin is not None else "",
            argo_server=services.argo_server.url if services.argo_server is not None else "",
            argo_token_file=str(self.paths.argo_token),
            github_endpoint=services.github.url if services.github is not None else "",
            github_token_file=str(self.paths.github_token),
            gitops_repo=self.paths.gitops_repo.resolve().as_uri(),
            unsealer=_node(self.unsealer.server) if self.unsealer is not None else None,
            eso_metrics={name: server.url for name, server in services.eso_metrics.items()},
            prometheus=self.monitoring.prometheus.url if self.monitoring is not None else "",
            pushgateway=self.monitoring.pushgateway.url if self.monitoring is not None else "",
            alertmanager=self.monitoring.alertmanager.url if self.monitoring is not None else "",
            exporter=self.exporter.url if self.exporter is not None else "",
            postgres=f"{self.postgres.host}:{self.postgres.port}" if self.postgres is not None else "",
        )

    def _openbao_ports(self, previous: SandboxState | None) -> list[tuple[int, int]]:
        """The (API, cluster) ports of the last run, when the nodes are to bind them again.

        A single node may move (raft needs no peer address; clients read the new
        one from ``sandbox.json``); raft peers cannot, so a taken port is refused.
        """
        if previous is None or len(previous.vault) != self.spec.vault_replicas:
            return []
        ports = [(_port(node.address), _port(node.cluster_address)) for node in previous.vault]
        taken = [
            (node.node_id, port) for node, pair in zip(previous.vault, ports, strict=True) for port in pair
        ]
        taken = [(node_id, port) for node_id, port in taken if not port_is_free(port)]
        if not taken:
            return ports
        node_id, port = taken[0]
        if self.spec.vault_replicas == 1 and not self.spec.vault_port:
            log.warning("port %s of OpenBao %s is taken now: it moves to another port", port, node_id)
            return [(free_port(), free_port())]
        raise InputError(
            f"port {port} on 127.0.0.1 (OpenBao {node_id} of this sandbox) is in use: the raft peers "
            f"know each other by it; stop what listens there, or start over with "
            f"`vaultflow sandbox down --purge --dir {self.directory}`"
        )

    def _authority(self) -> CertificateAuthority:
        """The sandbox CA (``DIR/tls``): every HTTPS server of the sandbox has its certificate from it."""
        return CertificateAuthority.kept_in(self.paths.ca_file, self.paths.ca_key, "vaultflow sandbox CA")

    def _start_unsealer(self, previous: SandboxState | None) -> tuple[str, dict[str, str]]:
        """``--seal transit``: the unsealer, started, unsealed and ready (on its last port when free);
        the nodes' seal stanza and environment. Nothing for Shamir."""
        if self.spec.seal != "transit":
            return "", {}
        port = 0
        if previous is not None and previous.unsealer is not None:
            kept = _port(previous.unsealer.address)
            port = (
                kept if port_is_free(kept) and port_is_free(_port(previous.unsealer.cluster_address)) else 0
            )
        self.unsealer = Unsealer.planned(self.paths.openbao, port, self._authority(), self.paths.ca_file)
        self.unsealer.server.data_dir.mkdir(parents=True, exist_ok=True)
        environment = self.unsealer.start()
        write_pid(self.paths.openbao_pid(UNSEALER_ID), self.unsealer.server.pid or 0)
        log.info("transit unsealer (OpenBao) listens on %s", self.unsealer.address)
        return self.unsealer.seal_hcl(), environment

    def _launch_openbao(self, previous: SandboxState | None) -> None:
        seal_hcl, environment = self._start_unsealer(previous)
        nodes = raft_cluster(
            self.paths.openbao,
            self.spec.vault_replicas,
            first_port=self.spec.vault_port,
            ports=self._openbao_ports(previous),
            seal_hcl=seal_hcl,
            env=environment,
            # every node's certificate from the sandbox CA (the emulators' CA, kept in DIR/tls)
            authority=self._authority(),
            ca_file=self.paths.ca_file,
        )
        for server in nodes:
            self.vault.append(server)
            server.launch()
            write_pid(self.paths.openbao_pid(server.node_id), server.pid or 0)

    def _wait_openbao(self) -> None:
        for server in self.vault:
            server.wait_ready(timeout=60)
            log.info("OpenBao %s listens on %s", server.node_id, server.address)

    def _start_postgres(self, previous: SandboxState | None) -> None:
        """PostgreSQL (``vaultflow.sandbox.postgres``) when the spec names one: on its kept data and
        port where free, TLS with the sandbox CA, its database and users provisioned once."""
        spec = self.spec.postgres
        if spec is None:
            return
        kept = _port(previous.postgres) if previous is not None and previous.postgres else 0
        server = PostgresServer(
            claim_postgres_dir(self.paths.root),
            self._authority(),
            port=kept if kept and port_is_free(kept) else free_port(),
            names=(spec.host,),
        )
        self.postgres = server
        server.start()
        write_pid(self.paths.run / POSTGRES_PID, server.process.pid if server.process else 0)
        ensure_provisioned(server, spec)
        log.info("PostgreSQL listens on %s:%s (database %s)", server.host, server.port, spec.database)

    def _start_monitoring(self) -> None:
        """Prometheus, the Pushgateway and the Alertmanager, when their Debian packages are installed."""
        missing = missing_packages()
        if missing:
            log.warning("monitoring not started: install %s (task demo does)", ", ".join(missing))
            return
        assert self.services is not None
        self.monitoring = SandboxMonitoring.start(
            self.paths.monitoring,
            [server.address for server in self.vault],
            {name: server.url for name, server in self.services.eso_metrics.items()},
            vault_ca_file=str(self.paths.ca_file),
            file_targets={EXPORTER_JOB: exporter_targets(self.paths.monitoring)},
        )
        for process in self.monitoring.processes:
            write_pid(self.paths.monitoring_pid(process.name), process.pid or 0)

    def _start_moto(self) -> str:
        # in this process (the cloud save reads its state in memory), over HTTPS from the sandbox CA, as
        # the real endpoint is: boto3 verifies it with AWS_CA_BUNDLE (`sandbox env`) or ``verify=``
        certificate = self._authority().issue_server_certificate(("127.0.0.1", "localhost"))
        self._moto = MotoServer(ssl_context=certificate.ssl_context())
        endpoint = self._moto.start()
        self._cloud_saver = CloudSaver(self._moto, self.paths.clouds)
        log.info("moto (AWS Secrets Manager, KMS) listens on %s", endpoint)
        return endpoint

    def _cluster(self, name: str) -> KubeCluster:
        """The cluster as the last run left it (same objects, keys and port), or a new one."""
        snapshot = self.paths.cluster_snapshot(name)
        if not snapshot.is_file():
            return KubeCluster(name, tls=True)  # HTTPS, its certificate from the cluster's own CA
        try:
            port = saved_port(snapshot)
            cluster = load_cluster(snapshot, tls=True)
        except ValueError as error:
            raise InputError(
                f"{error}; start over with `vaultflow sandbox down --purge --dir {self.directory}`"
            ) from None
        if not port_is_free(port):
            raise InputError(
                f"port {port} on 127.0.0.1 (cluster {name} of this sandbox) is in use: Vault reviews the "
                f"cluster's tokens at that address; stop what listens there, or start over with "
                f"`vaultflow sandbox down --purge --dir {self.directory}`"
            )
        log.info("cluster %s restored from %s", name, snapshot)
        return cluster

    def _start_cluster(self, name: str, crds: list[dict[str, Any]]) -> ClusterEndpoint:
        cluster = self._cluster(name).start()
        self.clusters.append(cluster)
        cluster.register_crds(crds)
        ca_file = self.paths.cluster_ca(name)
        ca_file.parent.mkdir(parents=True, exist_ok=True)
        ca_file.write_text(cluster.ca_pem)
        role = "management" if name == self.spec.management_cluster else "workload"
        log.info("Kubernetes API emulator %s (%s) listens on %s", name, role, cluster.url)
        return ClusterEndpoint(name=name, role=role, url=cluster.url, ca_file=str(ca_file))

    def _restore(self, services: ServiceEmulators, previous: SandboxState | None) -> None:
        """Before any controller runs: the routes set before the restart, and what the clouds held."""
        self._restore_routes(services, previous)
        try:
            restore_clouds(
                services,
                self._aws_endpoint,
                self.spec.azure_vaults,
                self.paths.clouds,
                str(self.paths.ca_file),
            )
        except (ValueError, KeyError) as error:
            raise InputError(
                f"{self.paths.clouds}: unreadable cloud state ({error}); start over with "
                f"`vaultflow sandbox down --purge --dir {self.directory}`"
            ) from None

    def _restore_routes(self, services: ServiceEmulators, previous: SandboxState | None) -> None:
        """A route to an OpenBao node that moved follows it."""
        if not self.paths.routes.is_file():
            return
        moved = {}
        if previous is not None:
            moved = {old.address: new.address for old, new in zip(previous.vault, self.vault, strict=False)}
        tables: dict[str, dict[str, str]] = json.loads(self.paths.routes.read_text())
        for kind, table in tables.items():
            for source, target in table.items():
                try:
                    services.routes.set(kind, source, moved.get(target, target))
                except ValueError as error:
                    log.warning("route %s %s -> %s not restored: %s", kind, source, target, error)

    # ------------------------------------------------------------ while running

    def save(self, *, clouds: bool = False) -> None:
        """Write each cluster that changed since the last save, the routes and, with ``clouds``, what the
        emulated clouds hold: what a restart restores."""
        if not self.ready:
            return  # a sandbox that failed to start must not overwrite what the last run saved
        for cluster in self.clusters:
            version = cluster.store.resource_version
            if self._saved_versions.get(cluster.name) != version:
                save_cluster(cluster, self.paths.cluster_snapshot(cluster.name))
                self._saved_versions[cluster.name] = version
        if self.services is not None:
            routes = self.services.routes.to_json()
            if routes != self._saved_routes:
                write_json_atomically(self.paths.routes, json.dumps(routes, indent=2) + "\n")
                self._saved_routes = routes
            if clouds and self._cloud_saver is not None:
                self._cloud_saver.save(self.services, self.spec.azure_vaults)

    def exporter_requested(self) -> None:
        """(Re)start vaultflow's exporter when ``enable_exporter`` asked for it (SIGUSR1, and at start)."""
        addresses = [server.address for server in self.vault]
        exporter = SandboxExporter.requested(self.paths.monitoring, addresses, str(self.paths.ca_file))
        if exporter is None:
            return
        if self.exporter is not None:
            self.exporter.stop()
        self.exporter = None
        try:
            self.exporter = exporter.start()
            write_pid(self.paths.monitoring_pid(exporter.name), exporter.pid or 0)
            log.info("vaultflow exporter on %s (as the observer)", exporter.url)
        except VaultflowError as error:
            exporter.stop()  # a process that did not become ready is not left behind
            log.error("vaultflow exporter not started: %s", error)
        if self.ready:
            write_json_atomically(self.paths.state, dump(self.state()))

    def restart_requested(self) -> None:
        """Restart the OpenBao nodes ``restart-request.json`` names; answer in ``restart-done.json``."""
        try:
            request = json.loads(self.paths.restart_request.read_text())
        except (OSError, ValueError):
            return
        self.paths.restart_request.unlink(missing_ok=True)
        error = ""
        try:
            self.restart_vault(list(request.get("nodes") or []))
        except VaultflowError as failure:
            error = str(failure)
        write_json_atomically(
            self.paths.restart_done, json.dumps({"id": request.get("id", ""), "error": error}) + "\n"
        )

    def restart_vault(self, node_ids: list[str]) -> None:
        """Restart the named nodes on their data and ports; they come back sealed (under the transit
        seal they unseal themselves). The unsealer, when named, is restarted (and unsealed) first."""
        if self.unsealer is not None and UNSEALER_ID in node_ids:
            log.info("restarting the transit unsealer on its data")
            try:
                self.unsealer.restart()
            finally:
                write_pid(self.paths.openbao_pid(UNSEALER_ID), self.unsealer.server.pid or 0)
                write_json_atomically(self.paths.state, dump(self.state()))
        servers = [server for server in self.vault if server.node_id in node_ids]
        after = "auto-unsealed by the transit seal" if self.unsealer is not None else "sealed"
        try:
            for server in servers:
                log.info("restarting OpenBao %s on its data in %s", server.node_id, server.data_dir)
                server.restart()
                write_pid(self.paths.openbao_pid(server.node_id), server.pid or 0)
                log.info(
                    "OpenBao %s listens on %s again (pid %s, %s)",
                    server.node_id,
                    server.address,
                    server.pid,
                    after,
                )
        finally:
            write_json_atomically(self.paths.state, dump(self.state()))

    # ------------------------------------------------------------ stop

    def stop(self) -> None:
        if self.exporter is not None:  # before the clusters and Vault it reads
            self.exporter.stop()
            self.paths.monitoring_pid(self.exporter.name).unlink(missing_ok=True)
        if self.monitoring is not None:
            self.monitoring.stop()
            for process in self.monitoring.processes:
                self.paths.monitoring_pid(process.name).unlink(missing_ok=True)
        if self.services is not None:
            self.services.stop()  # controllers first: they write into the clusters and clouds
        if self.postgres is not None:
            self.postgres.stop()
            self.paths.run.joinpath(POSTGRES_PID).unlink(missing_ok=True)
        self.save(clouds=True)
        for cluster in self.clusters:
            cluster.stop()
        if self._moto is not None:
            self._moto.stop()
        for server in self.vault:
            server.stop()
            self.paths.openbao_pid(server.node_id).unlink(missing_ok=True)
        if self.unsealer is not None:  # last: a node stopping may still renew its seal token
            self.unsealer.stop()
            self.paths.openbao_pid(UNSEALER_ID).unlink(missing_ok=True)


def _node(server: OpenBaoServer) -> VaultNode:
    return VaultNode(
        node_id=server.node_id,
        address=server.address,
        # its cluster_addr: raft and request forwarding, mutual TLS with certificates the nodes generate
        cluster_address=f"https://127.0.0.1:{server.cluster_port}",
        pid=server.pid or 0,
        data_dir=str(server.data_dir),
    )


class _StartAborted(Exception):
    """``down`` or a timeout stopped the supervisor before it was ready."""


def _write_error(paths: layout.SandboxPaths, error: BaseException) -> None:
    kind = "input" if isinstance(error, InputError) else "operation"
    message = str(error) if isinstance(error, VaultflowError) else f"{error.__class__.__name__}: {error}"
    write_json_atomically(paths.supervisor_error, json.dumps({"kind": kind, "message": message}))


def _serve(
    supervisor: Supervisor,
    stop_requested: threading.Event,
    restart: threading.Event,
    exporter: threading.Event | None = None,
) -> None:
    """Until asked to stop: restart what is asked for, save what changed (a crash loses little)."""
    last_save = last_clouds = time.monotonic()
    while not stop_requested.wait(0.2):
        if restart.is_set():
            restart.clear()
            supervisor.restart_requested()
        if exporter is not None and exporter.is_set():
            exporter.clear()
            supervisor.exporter_requested()
        now = time.monotonic()
        if now - last_save >= SAVE_INTERVAL:
            clouds = now - last_clouds >= CLOUD_SAVE_INTERVAL
            supervisor.save(clouds=clouds)
            last_save, last_clouds = now, now if clouds else last_clouds


def run(directory: Path) -> int:
    paths = layout.SandboxPaths(directory)
    write_pid(paths.supervisor_pid, os.getpid())
    stop_requested = threading.Event()
    restart = threading.Event()
    ready = threading.Event()

    def request_stop(signum: int, _: Any) -> None:
        log.info("signal %s: stopping", signum)
        stop_requested.set()
        if not ready.is_set():
            raise _StartAborted(f"start aborted by signal {signum}")

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGHUP, lambda signum, _: restart.set())
    exporter = threading.Event()
    signal.signal(signal.SIGUSR1, lambda signum, _: exporter.set())  # vaultflow.sandbox.exporter
    supervisor: Supervisor | None = None
    try:
        supervisor = Supervisor(directory, read_spec(directory))
        state = supervisor.start()
        write_json_atomically(paths.state, dump(state))
        ready.set()
        log.info("sandbox ready in %s", directory)
        _serve(supervisor, stop_requested, restart, exporter)
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


def configure_logging() -> None:
    """INFO for the sandbox's own loggers; WARNING for SDKs that log each request's headers at INFO."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vaultflow.sandbox.supervisor", description=__doc__)
    parser.add_argument("--dir", required=True, type=Path, help="the sandbox directory (holds spec.json)")
    args = parser.parse_args(argv)
    configure_logging()
    return run(args.dir.resolve())


if __name__ == "__main__":
    sys.exit(main())
