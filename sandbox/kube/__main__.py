"""Serve one emulated cluster on its own: ``python -m vaultflow.sandbox.kube --kubeconfig PATH``.

For benchmarks and debugging (the sandbox itself runs its clusters inside the
supervisor). Writes a kubeconfig for the cluster, prints its URL, and serves
until interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from pathlib import Path

from vaultflow.sandbox.crd_sources import load_crds, resolve_crd_source
from vaultflow.sandbox.kube import KubeCluster
from vaultflow.sandbox.kubeconfig import ClusterAccess, write_kubeconfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vaultflow.sandbox.kube", description=__doc__)
    parser.add_argument("--name", default="standalone", help="cluster (and kubeconfig context) name")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--kubeconfig", type=Path, required=True, help="where to write the kubeconfig")
    parser.add_argument("--crds", action="store_true", help="register the sandbox's CRDs too")
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    cluster = KubeCluster(args.name, port=args.port).start()
    if args.crds:
        cluster.register_crds(load_crds(resolve_crd_source()))
    write_kubeconfig(args.kubeconfig, [ClusterAccess(cluster.name, cluster.url, cluster.admin_token)])
    print(cluster.url, flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
