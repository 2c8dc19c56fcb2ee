"""The Kubernetes API emulator under the real ``kubernetes`` client: 10,000 Secrets in one namespace.

Target (issue 3): listing them through the client takes under 2 s. The
emulator runs in its own process, as it does in the sandbox's supervisor, so
client and server do not share a GIL. Baselines, measured in the same run:

* creating: the same POSTs sent with ``http.client`` on one keep-alive
  connection (what the emulator itself costs, without the client's models);
* listing: the same GET read and decoded with ``urllib`` + ``json.loads``
  (the wire and the server, without building 10,000 ``V1Secret`` models).
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import yaml

from bench.common import Measurement, best_of, stopwatch

COUNT = 10_000
NAMESPACE = "default"


def _secret(name: str) -> dict[str, object]:
    return {
        "metadata": {"name": name, "labels": {"app": "bench", "tier": "db"}},
        "type": "Opaque",
        "data": {"username": "YXBw", "password": "cGFzc3dvcmQtMTIzNDU2Nzg5MA=="},
    }


def run() -> list[Measurement]:
    from kubernetes import client, config

    with tempfile.TemporaryDirectory() as directory:
        kubeconfig = Path(directory) / "kubeconfig"
        server = subprocess.Popen(
            [sys.executable, "-m", "vaultflow.sandbox.kube", "--kubeconfig", str(kubeconfig)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            url = server.stdout.readline().strip()
            token = yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]["token"]
            api = config.new_client_from_config(config_file=str(kubeconfig))
            core = client.CoreV1Api(api)

            with stopwatch() as create_time:
                for index in range(COUNT):
                    core.create_namespaced_secret(NAMESPACE, _secret(f"secret-{index:05d}"))
            core.create_namespace({"metadata": {"name": "raw"}})
            raw_create = _raw_creates(url, token)

            listed = core.list_namespaced_secret(NAMESPACE)
            assert len(listed.items) == COUNT
            list_time = best_of(3, lambda: core.list_namespaced_secret(NAMESPACE))
            raw_list = best_of(3, lambda: _raw_list(url, token))
            api.close()
        finally:
            server.terminate()
            server.wait(10)
    return [
        Measurement(
            f"create {COUNT:,} Secrets (kubernetes client)",
            create_time(),
            baseline_name="same POSTs via http.client",
            baseline_seconds=raw_create,
        ),
        Measurement(
            f"list {COUNT:,} Secrets (kubernetes client)",
            list_time,
            baseline_name="same GET via urllib + json.loads",
            baseline_seconds=raw_list,
            target_seconds=2.0,
        ),
    ]


def _raw_creates(url: str, token: str) -> float:
    host = url.removeprefix("http://")
    connection = http.client.HTTPConnection(host)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    with stopwatch() as elapsed:
        for index in range(COUNT):
            body = json.dumps(_secret(f"secret-{index:05d}"))
            connection.request("POST", "/api/v1/namespaces/raw/secrets", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            assert response.status == 201, response.status
    connection.close()
    return elapsed()


def _raw_list(url: str, token: str) -> None:
    request = urllib.request.Request(  # noqa: S310 (the emulator on loopback)
        f"{url}/api/v1/namespaces/{NAMESPACE}/secrets", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request) as response:  # noqa: S310
        items = json.load(response)["items"]
    assert len(items) == COUNT
