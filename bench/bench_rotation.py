"""Rotate and verify 1,000 secrets on the sandbox, beside what propagation alone costs (issue 12).

Setup (not timed), once per ESO ``--concurrent`` in
``VAULTFLOW_BENCH_ROTATION_ESO_CONCURRENT`` (default ``1,8``; 1 is ESO's
default): a sandbox (``vaultflow.sandbox.lifecycle.up``: the real OpenBao, the
kube emulator with two workload clusters, an ESO emulator per cluster, moto,
all in the supervisor's process, as ``vaultflow sandbox up`` runs them); OpenBao
initialised and configured from a generated catalog by the bootstrap's own
``desired_config``/``apply_config`` (KV v2 with check-and-set, one Kubernetes
auth mount per cluster, ESO's and the rotation's policies); 1,000 secrets
seeded, each consumed in both clusters (namespaces ``team-0`` .. ``team-9``,
round robin) and pushed to AWS (moto); the rendered ClusterSecretStores,
SecretStores, 2,000 ExternalSecrets and 1,000 PushSecrets applied through the
API and synced once. ``VAULTFLOW_BENCH_ROTATION_COUNT`` lowers the count for a
quick check.

Measured, in this order, on the same sandbox:

* (b) *propagation alone*: every Vault value rotated directly (not timed); then,
  timed, every ExternalSecret annotated ``force-sync`` through the API, each
  PushSecret annotated as soon as its source ExternalSecret reports the refresh
  (PushSecrets do not watch their Secret), until ESO's status reports every
  ExternalSecret and PushSecret synced (watched, not polled). The Secrets and
  the AWS secrets are then read back (not timed): each must hold the new value;
* *vaultflow*: the ``rotate-secrets`` pipeline's *plan* (timed apart), then its
  *rotate* steps: batches of ``DEFAULT_BATCH_SIZE`` (50), at most
  ``PARALLEL_BATCHES`` (4) at a time, each ``tasks.rotate`` in one of 4 worker
  processes (pods in the pipeline, their start-up left out), logging into Vault
  as the rotation role and running its own ``Rotator``: discover, write with
  check-and-set (force-syncing each secret's ExternalSecrets as it is
  written), verify every Secret, annotating each PushSecret as its source is
  verified and verifying its AWS secret from then on (read as the PushSecret's
  watched status reports a push). Every secret must come
  out ``Rotated``;
* (a) *the raw critical path*: 1,000 check-and-set writes to Vault (a token
  per rotation shard, as each rotate step holds), the 2,000 reads ESO makes (a token with the
  cluster's ESO policy), 1,000 ``PutSecretValue`` to moto, each phase in a pool
  of ``RAW_WORKERS`` threads, one phase after the other.

Target: vaultflow at most 1.5x (b). Also reported: the ratio to (a); the
Kubernetes API calls of a verification round, counted in the rotate steps on
the client side (every request the ``kubernetes`` client sends, by verb and
resource; the emulator runs in the supervisor, out of reach), against at most
one LIST of ExternalSecrets and one of Secrets per consuming namespace per
cluster, and the objects those LISTs return (narrowed by label); and
p50/p95 of each target's write-to-verified seconds (``TargetResult.seconds``)
per kind. Beside them, what explains the ratio: how busy ESO was (the sandbox
admin API's reconcile counters), the CPU the supervisor, OpenBao and the rotate
steps used, and each step's time by stage.

On 2 cores the whole benchmark takes about 14 minutes (docs/rotation.md, Performance).
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.common import Measurement, int_list_from_env, stopwatch
from bench.platform_setup import FORCE_SYNC, configure_from_catalog, refreshed_for

CLUSTERS = ("east", "west")
NAMESPACES = 10
CLOUD, REGION = "aws", "eu-west-1"
KV = "secret"
ESO_GROUP = "external-secrets.io"
RAW_WORKERS = 8  # threads per phase of (a), and annotating in (b)
SYNC_TIMEOUT = 900.0


def secret_count() -> int:
    text = os.environ.get("VAULTFLOW_BENCH_ROTATION_COUNT", "1000")
    if not text.isdigit() or int(text) < 1:
        raise SystemExit(f"error: VAULTFLOW_BENCH_ROTATION_COUNT={text!r}: a positive integer")
    return int(text)


def path_of(index: int) -> str:
    return f"bench/s-{index:04d}"


def catalog_text(count: int) -> str:
    """A catalog of ``count`` rotated secrets, each consumed in both clusters and pushed to AWS.

    Secret ``i`` is consumed in namespace ``team-(i % 10)`` of each cluster, so
    that every batch of 50 spans all 10 namespaces of both clusters (the case
    where sharing a LIST per namespace matters); its push (one key) runs next to
    its first consumer.
    """
    header = f"""\
apiVersion: vaultflow.io/v1alpha1
kind: SecretsCatalog
vault:
  address: "https://vault.vault-system.svc:8200"
  kvMount: {KV}
  # OpenBao serves TLS only: the stores trust the sandbox CA (wire_catalog puts it in each cluster).
  tls: {{caProvider: {{type: ConfigMap, name: vault-ca, namespace: external-secrets-system, key: ca.crt}}}}
gitops: {{repoUrl: https://git.example.com/platform-gitops.git}}
clusters:
  - {{name: {CLUSTERS[0]}, kubeContext: {CLUSTERS[0]}, argocd: {{server: https://kubernetes.default.svc}}}}
  - {{name: {CLUSTERS[1]}, kubeContext: {CLUSTERS[1]}, argocd: {{name: {CLUSTERS[1]}}}}}
clouds:
  - {{name: {CLOUD}, provider: aws, region: {REGION}, auth: {{secretRef: {{secretName: aws-credentials}}}}}}
secrets:
"""
    entries = []
    for index in range(count):
        name, namespace = f"s-{index:04d}", f"team-{index % NAMESPACES}"
        consumers = "".join(
            f"      - {{cluster: {cluster}, namespace: {namespace}, secretName: {name}}}\n"
            for cluster in CLUSTERS
        )
        entries.append(
            f"  - path: {path_of(index)}\n"
            "    keys:\n"
            "      - {name: username, generator: {type: static}}\n"
            "      - {name: password, generator: {type: password, length: 32}}\n"
            '    rotation: {schedule: "@daily", verifyTimeout: 10m}\n'
            "    consumers:\n"
            f"{consumers}"
            "    pushes:\n"
            f"      - {{cloud: {CLOUD}, remoteKey: {path_of(index)}, key: password}}\n"
        )
    return header + "".join(entries)


def call_key(method: str, url: str) -> str:
    """``GET .../namespaces/team-1/secrets`` -> ``LIST secrets``: a request by verb and resource.

    A GET of a collection is a LIST, a WATCH with ``watch=true`` (``(cluster-wide)`` when not in
    one namespace, ``by label`` with a label selector); a request naming an object keeps its HTTP
    verb; a subresource is ``<resource>/<subresource>``.
    """
    split = urlsplit(url)
    parts = [part for part in split.path.split("/") if part]
    parts = parts[2:] if parts[:1] == ["api"] else parts[3:] if parts[:1] == ["apis"] else parts
    namespaced = len(parts) >= 3 and parts[0] == "namespaces"
    rest = parts[2:] if namespaced else parts
    verb = method.upper()
    if not rest:
        return f"{verb} /"
    resource = rest[0] + (f"/{rest[2]}" if len(rest) > 2 else "")
    if verb == "GET" and len(rest) == 1:
        scope = [] if namespaced else ["cluster-wide"]
        scope += ["by label"] if "labelSelector=" in split.query else []
        watching = any(part.lower() in ("watch=true", "watch=1") for part in split.query.split("&"))
        return ("WATCH " if watching else "LIST ") + resource + (f" ({', '.join(scope)})" if scope else "")
    return f"{verb} {resource}"


def percentiles(values: Sequence[float]) -> tuple[float, float]:
    """(p50, p95), interpolated between the closest ranks."""
    if len(values) == 1:
        return values[0], values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[94]


# --------------------------------------------------------------------------- the sandbox


@dataclass
class _Platform:
    """A sandbox configured for the generated catalog, with what the bench itself needs of it."""

    state: Any
    loaded: Any
    catalog_file: Path
    root: Any  # hvac.Client with the root token: setup and the bench's own writes only
    count: int
    versions: dict[str, int] = field(default_factory=dict)  # path -> current version
    values: dict[str, str] = field(default_factory=dict)  # path -> the password the bench wrote last
    apis: dict[str, Any] = field(default_factory=dict)  # cluster -> the bench's own admin ApiClient

    def api(self, cluster: str) -> Any:
        from kubernetes import config

        if cluster not in self.apis:
            self.apis[cluster] = config.new_client_from_config(
                config_file=self.state.kubeconfig, context=cluster
            )
        return self.apis[cluster]

    def aws(self) -> Any:
        import boto3

        return boto3.client(
            "secretsmanager",
            region_name=REGION,
            endpoint_url=self.state.aws_endpoint,
            verify=self.state.ca_file,  # moto serves HTTPS from the sandbox CA
            aws_access_key_id="sandbox",
            aws_secret_access_key="sandbox",  # moto accepts any credentials
        )

    def token(self, *policies: str) -> Any:
        """An ``hvac.Client`` holding a fresh token with exactly ``policies``."""
        import hvac

        created = self.root.auth.token.create(policies=list(policies), ttl="2h", no_default_policy=True)
        token = created["auth"]["client_token"]
        return hvac.Client(url=self.state.vault_addr, token=token, verify=self.state.ca_file)

    @property
    def paths(self) -> list[str]:
        return [path_of(index) for index in range(self.count)]


@contextlib.contextmanager
def _sandbox(directory: Path, count: int, concurrent: int) -> Iterator[_Platform]:
    """A sandbox with ESO's ``--concurrent`` set, configured and synced (see the module's docstring).

    Stopped when done; removed unless something failed: then its logs are kept, and named.
    """
    from vaultflow.gitops.catalog import parse_catalog
    from vaultflow.sandbox import lifecycle
    from vaultflow.sandbox.layout import SandboxPaths

    catalog_file = directory / "catalog.yaml"
    catalog_file.write_text(catalog_text(count))
    loaded = parse_catalog(catalog_file.read_text(), catalog_file)
    sandbox_dir = directory / "sandbox"
    state = lifecycle.up(sandbox_dir, cluster_names=list(CLUSTERS), eso_concurrent=concurrent).state
    platform = None
    try:
        platform = _Platform(state, loaded, catalog_file, _configure(state, loaded), count)
        _seed(platform)
        _apply(platform)
        yield platform
    except BaseException:
        lifecycle.down(sandbox_dir)
        print(f"the sandbox's logs are kept in {SandboxPaths(sandbox_dir).logs}", file=sys.stderr)
        raise
    else:
        lifecycle.down(sandbox_dir, purge=True)
        shutil.rmtree(directory, ignore_errors=True)
    finally:
        for api in platform.apis.values() if platform else ():
            api.close()


def _configure(state: Any, loaded: Any) -> Any:
    """OpenBao initialised, then configured from the catalog as the bootstrap pipeline does."""
    from vaultflow.sandbox.catalog_wiring import wire_catalog

    root = configure_from_catalog(state, loaded)
    wire_catalog(state, loaded)  # the Vault route, the AWS credentials Secrets the stores read
    return root


def _seed(platform: _Platform) -> None:
    def seed(path: str) -> None:
        value = uuid.uuid4().hex
        platform.root.secrets.kv.v2.create_or_update_secret(
            path, secret={"username": "bench", "password": value}, cas=0, mount_point=KV
        )
        platform.versions[path], platform.values[path] = 1, value

    with ThreadPoolExecutor(RAW_WORKERS) as pool:
        list(pool.map(seed, platform.paths))


def _apply(platform: _Platform) -> None:
    """The rendered ESO objects created through the API: stores, ExternalSecrets, then PushSecrets."""
    from kubernetes import client

    from vaultflow.gitops.render import render_catalog

    plural = {
        "ClusterSecretStore": ("v1", "clustersecretstores"),
        "SecretStore": ("v1", "secretstores"),
        "ExternalSecret": ("v1", "externalsecrets"),
        "PushSecret": ("v1alpha1", "pushsecrets"),
    }
    by_kind: dict[str, list[tuple[str, dict[str, Any]]]] = {kind: [] for kind in plural}
    for path, manifest in render_catalog(platform.loaded).manifests():
        if manifest["kind"] in plural:  # the rotation's RBAC is not needed: the steps use admin contexts
            by_kind[manifest["kind"]].append((path.split("/")[1], manifest))
    apis = {cluster: client.CustomObjectsApi(platform.api(cluster)) for cluster in CLUSTERS}

    def create(item: tuple[str, dict[str, Any]]) -> None:
        cluster, manifest = item
        version, resource = plural[manifest["kind"]]
        namespace = manifest["metadata"].get("namespace")
        if namespace is None:
            apis[cluster].create_cluster_custom_object(ESO_GROUP, version, resource, manifest)
        else:
            apis[cluster].create_namespaced_custom_object(ESO_GROUP, version, namespace, resource, manifest)

    with ThreadPoolExecutor(RAW_WORKERS) as pool:
        for kinds in (("ClusterSecretStore", "SecretStore"), ("ExternalSecret",), ("PushSecret",)):
            for kind in kinds:
                list(pool.map(create, by_kind[kind]))
            for kind in kinds:  # a PushSecret created before its Secret exists would back off
                _wait_synced(apis, kind, len(by_kind[kind]))


def _wait_synced(apis: Mapping[str, Any], kind: str, expected: int) -> None:
    from vaultflow.sandbox.observe import is_ready

    version = "v1alpha1" if kind == "PushSecret" else "v1"
    resource = kind.lower() + "s"
    deadline = time.monotonic() + SYNC_TIMEOUT
    ready = 0
    while time.monotonic() < deadline:
        ready = sum(
            is_ready(item)
            for custom in apis.values()
            for item in custom.list_cluster_custom_object(ESO_GROUP, version, resource)["items"]
        )
        if ready >= expected:
            return
        time.sleep(2.0)  # a LIST of every object: not too often, ESO shares the process
    raise RuntimeError(f"only {ready} of {expected} {kind}s became Ready")


class _Activity:
    """What the platform did meanwhile: how busy the ESO emulators were, and the CPU it spent.

    ``with _Activity(state) as activity: ...``: every ``INTERVAL`` seconds the ESO
    reconciles done so far are read from the sandbox admin API's controller
    counters; an interval in which no controller finished a reconcile counts as
    idle, and ``busy`` is the share of intervals that were not. ``cpu`` is the CPU
    seconds (user and system, from ``/proc``; empty elsewhere) of the supervisor
    (the kube API servers, the ESO emulators, moto) and of OpenBao over the block.
    """

    INTERVAL = 0.5

    def __init__(self, state: Any) -> None:
        from vaultflow.sandbox.admin import AdminClient

        self.admin = AdminClient.for_state(state)
        self.pids = {"supervisor": state.supervisor_pid, "OpenBao": state.vault[0].pid}
        self.samples: list[int] = []
        self.cpu: dict[str, float] = {}
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Activity:
        self.cpu = {name: -seconds for name, seconds in self._cpu().items()}
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopped.set()
        self.thread.join(timeout=10)
        for name, seconds in self._cpu().items():
            self.cpu[name] = self.cpu.get(name, 0.0) + seconds

    def _cpu(self) -> dict[str, float]:
        return {name: seconds for name, pid in self.pids.items() if (seconds := cpu_seconds(pid)) is not None}

    def _run(self) -> None:
        while True:
            controllers = self.admin.controllers()
            self.samples.append(
                sum(int(c["reconciles"]) for c in controllers if c["controller"] == "external-secrets")
            )
            if self.stopped.wait(self.INTERVAL):
                return

    @property
    def busy(self) -> float:
        steps = [after - before for before, after in zip(self.samples, self.samples[1:], strict=False)]
        return sum(1 for step in steps if step > 0) / len(steps) if steps else 0.0

    def describe(self) -> str:
        cpu = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in self.cpu.items())
        return f"ESO busy {self.busy:.0%}" + (f", CPU {cpu}" if cpu else "")


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds process ``pid`` has used (Linux ``/proc``), None when unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime: fields 14, 15


# --------------------------------------------------------------------------- (b) propagation alone


def _rotate_in_vault(platform: _Platform) -> None:
    """A new version of every path, written by the bench (check-and-set), not by vaultflow."""

    def write(path: str) -> None:
        value = uuid.uuid4().hex
        platform.root.secrets.kv.v2.create_or_update_secret(
            path,
            secret={"username": "bench", "password": value},
            cas=platform.versions[path],
            mount_point=KV,
        )
        platform.versions[path] += 1
        platform.values[path] = value

    with ThreadPoolExecutor(RAW_WORKERS) as pool:
        list(pool.map(write, platform.paths))


class _Watch:
    """Calls ``seen`` with every object of one ESO kind in one cluster, from a watch, until stopped."""

    def __init__(self, api: Any, version: str, resource: str, seen: Callable[[dict[str, Any]], None]) -> None:
        from kubernetes import client

        self.custom = client.CustomObjectsApi(api)
        self.version, self.resource, self.seen = version, resource, seen
        listed = self.custom.list_cluster_custom_object(ESO_GROUP, version, resource)
        self.resource_version = listed["metadata"]["resourceVersion"]
        self.stopped = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        from kubernetes import watch

        try:
            while not self.stopped.is_set():
                stream = watch.Watch()
                for event in stream.stream(
                    self.custom.list_cluster_custom_object,
                    ESO_GROUP,
                    self.version,
                    self.resource,
                    resource_version=self.resource_version,
                    timeout_seconds=2,  # short streams: a stop is noticed within 2 s
                ):
                    self.resource_version = event["object"]["metadata"]["resourceVersion"]
                    self.seen(event["object"])
                    if self.stopped.is_set():
                        stream.stop()
        except BaseException as error:  # reported by the bench's thread, which is waiting
            self.error = error

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=10)


def _propagation_alone(platform: _Platform) -> tuple[float, _Activity]:
    """Seconds from the first ``force-sync`` to ESO reporting every ExternalSecret and PushSecret synced,
    and how busy ESO was meanwhile."""
    from kubernetes import client

    plan = platform.loaded.plan
    pushes = {
        (ps.cluster, ps.namespace, ps.source_secret): (ps.namespace, ps.name) for ps in plan.push_secrets
    }
    # ExternalSecret -> the PushSecret reading its Secret
    push_of = {
        (es.cluster, es.namespace, es.name): pushes[(es.cluster, es.namespace, es.target)]
        for es in plan.external_secrets
        if (es.cluster, es.namespace, es.target) in pushes
    }
    apis = {cluster: platform.api(cluster) for cluster in CLUSTERS}
    customs = {cluster: client.CustomObjectsApi(api) for cluster, api in apis.items()}
    _rotate_in_vault(platform)
    stamp = uuid.uuid4().hex
    expected = len(plan.external_secrets) + len(plan.push_secrets)
    done: set[tuple[str, str, str, str]] = set()
    lock = threading.Lock()
    finished = threading.Event()
    annotator = ThreadPoolExecutor(RAW_WORKERS)
    body = {"metadata": {"annotations": {FORCE_SYNC: stamp}}}

    def annotate_push(cluster: str, namespace: str, name: str) -> None:
        customs[cluster].patch_namespaced_custom_object(
            ESO_GROUP, "v1alpha1", namespace, "pushsecrets", name, body
        )

    def seen(cluster: str, kind: str) -> Callable[[dict[str, Any]], None]:
        def record(obj: dict[str, Any]) -> None:
            if not refreshed_for(obj, stamp):
                return
            key = (cluster, kind, obj["metadata"]["namespace"], obj["metadata"]["name"])
            with lock:
                if key in done:
                    return
                done.add(key)
                if len(done) == expected:
                    finished.set()
            push = push_of.get((cluster, key[2], key[3])) if kind == "ExternalSecret" else None
            if push is not None:
                annotator.submit(annotate_push, cluster, *push)

        return record

    watches = [
        _Watch(apis[cluster], "v1", "externalsecrets", seen(cluster, "ExternalSecret"))
        for cluster in CLUSTERS
    ]
    watches += [
        _Watch(apis[cluster], "v1alpha1", "pushsecrets", seen(cluster, "PushSecret"))
        for cluster in sorted({ps.cluster for ps in plan.push_secrets})
    ]
    try:
        with _Activity(platform.state) as activity, stopwatch() as elapsed:
            for es in plan.external_secrets:
                annotator.submit(
                    customs[es.cluster].patch_namespaced_custom_object,
                    ESO_GROUP,
                    "v1",
                    es.namespace,
                    "externalsecrets",
                    es.name,
                    body,
                )
            while not finished.wait(timeout=1.0):
                errors = [w.error for w in watches if w.error is not None]
                if errors or elapsed() > SYNC_TIMEOUT:
                    raise RuntimeError(f"only {len(done)} of {expected} objects synced") from (
                        errors[0] if errors else None
                    )
    finally:
        for w in watches:
            w.stop()
        annotator.shutdown(wait=True)
    _check_propagated(platform)
    return elapsed(), activity


def _check_propagated(platform: _Platform) -> None:
    """Every Secret and every AWS secret holds the value the bench wrote last (values are not shown)."""
    import base64
    import json

    from kubernetes import client

    wrong = 0
    for cluster in CLUSTERS:
        listed = client.CoreV1Api(platform.api(cluster)).list_secret_for_all_namespaces(
            label_selector="reconcile.external-secrets.io/managed=true", _preload_content=False
        )
        held = {
            s["metadata"]["name"]: base64.b64decode((s.get("data") or {}).get("password", "")).decode()
            for s in json.loads(listed.data)["items"]
        }
        wrong += sum(held.get(path.split("/")[1]) != platform.values[path] for path in platform.paths)
    aws = platform.aws()

    def pushed(path: str) -> bool:
        found = aws.get_secret_value(SecretId=path)
        current = bytes(found["SecretBinary"]).decode() if "SecretBinary" in found else found["SecretString"]
        return bool(current == platform.values[path])

    with ThreadPoolExecutor(RAW_WORKERS) as pool:
        wrong += sum(not ok for ok in pool.map(pushed, platform.paths))
    if wrong:
        raise RuntimeError(f"{wrong} Secrets or AWS secrets do not hold the value last written to Vault")


# --------------------------------------------------------------------------- vaultflow, as the pipeline does


class _StepProbe:
    """In a rotate step's process: every Kubernetes request and cloud read counted, each verification
    round's LISTs and time, and the wall time of each stage of the step."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.rounds: list[tuple[float, dict[str, int], int]] = []  # (seconds, LISTs by resource, objects)
        self.listed = 0  # objects the verification's LISTs returned
        self.stages: dict[str, float] = defaultdict(float)  # stage -> seconds
        self.lock = threading.Lock()
        self.installed = False

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
            self.stages.clear()
            self.listed = 0
        self.rounds.clear()

    def install(self) -> None:
        """Wrap, in this process only, the client's request, the cloud reads, the verification's poll
        and each stage's function (the step looks them up by name when it runs)."""
        if self.installed:
            return
        self.installed = True
        from kubernetes.client import rest

        from vaultflow.steps.rotation import clouds, rotate, tasks, verify

        _wrap(rest.RESTClientObject, "request", self._counting_request)
        _wrap(clouds.CloudReaders, "current", self._counting_read)
        _wrap(verify, "watch_rounds", self._counting_rounds)
        _wrap(verify, "list_namespaced", self._counting_objects)
        for owner, name, stage in (
            (tasks, "load_catalog_source", "load the catalog"),
            (tasks, "rotation_vault", "Vault login"),
            (tasks, "batch_token", "the batch's child token"),
            (rotate.Rotator, "discover", "discover"),
            (rotate.Rotator, "_write_all", "write"),
            (rotate.Rotator, "_read_versions", "read the versions back"),
            (rotate.Rotator, "_force_sync_all", "force-sync"),
            (rotate, "verify_kubernetes_targets", "verify Secrets (cloud secrets meanwhile)"),
            (rotate, "force_sync", "PushSecret PATCHes (concurrent, summed)"),
            (clouds.CloudVerification, "__exit__", "cloud secrets left after the last Secret"),
        ):
            if hasattr(owner, name):  # a stage the step no longer has is left out of the breakdown
                _wrap(owner, name, functools.partial(self._timed, stage=stage))

    def _counting_request(self, send: Callable[..., Any]) -> Callable[..., Any]:
        def request(client: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            with self.lock:
                self.calls[call_key(method, url)] += 1
            return send(client, method, url, *args, **kwargs)

        return request

    def _counting_read(self, read: Callable[..., Any]) -> Callable[..., Any]:
        def current(readers: Any, store: Any, remote_key: str) -> Any:
            with self.lock:
                self.calls[f"cloud read ({store.provider})"] += 1
            return read(readers, store, remote_key)

        return current

    def _counting_objects(self, list_: Callable[..., Any]) -> Callable[..., Any]:
        def listed(*args: Any, **kwargs: Any) -> Any:
            items = list_(*args, **kwargs)
            with self.lock:
                self.listed += len(items)
            return items

        return listed

    def _counting_rounds(self, poll: Callable[..., Any]) -> Callable[..., Any]:
        def poll_rounds(observe: Callable[[], Any], **kwargs: Any) -> Any:
            def round_() -> Any:
                before, objects = self._lists(), self.listed
                start = time.perf_counter()
                seen = observe()
                self.rounds.append(
                    (time.perf_counter() - start, dict(self._lists() - before), self.listed - objects)
                )
                return seen

            return poll(round_, **kwargs)

        return poll_rounds

    def _timed(self, function: Callable[..., Any], stage: str) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                with self.lock:
                    self.stages[stage] += time.perf_counter() - start

        return timed

    def _lists(self) -> Counter[str]:
        with self.lock:
            return Counter({key: n for key, n in self.calls.items() if key.startswith("LIST ")})


def _wrap(owner: Any, name: str, wrapper: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
    setattr(owner, name, wrapper(getattr(owner, name)))


_PROBE = _StepProbe()


def _warm() -> int:
    """Import what a rotate step imports, so that no batch pays for it; the worker's pid."""
    import vaultflow.steps.rotation.tasks  # noqa: F401

    _PROBE.install()
    time.sleep(0.5)  # keep this worker busy, so that each warm-up lands on another one
    return os.getpid()


def rotate_batch(catalog: str, addresses: str, run_id: str, paths: str, versions: str) -> dict[str, Any]:
    """One *rotate* step (``tasks.rotate``), with its Kubernetes calls and verification rounds counted."""
    from vaultflow.steps.rotation import tasks

    _PROBE.install()
    _PROBE.reset()
    started, cpu = time.time(), time.process_time()
    # VAULT_CACERT: the sandbox CA, in the environment `_vaultflow` gives the step processes
    report = tasks.rotate(catalog, addresses, run_id, paths, versions, ca_cert=os.environ["VAULT_CACERT"])
    return {
        "report": report,
        "started": started,
        "ended": time.time(),
        "cpu": time.process_time() - cpu,
        "calls": dict(_PROBE.calls),
        "rounds": list(_PROBE.rounds),
        "stages": dict(_PROBE.stages),
    }


def plan_step(catalog: str, addresses: str, run_id: str, paths: str) -> list[dict[str, str]]:
    from vaultflow.steps.rotation import tasks

    return tasks.plan(catalog, addresses, run_id, paths=paths, ca_cert=os.environ["VAULT_CACERT"])


@dataclass
class _Run:
    """The rotate steps' wall time and what each step reported and counted."""

    seconds: float
    plan_seconds: float
    batches: list[dict[str, Any]]  # rotate_batch's results
    namespaces_per_batch: int  # (cluster, namespace) pairs the first batch consumes in
    eso: _Activity

    def targets(self) -> list[dict[str, Any]]:
        return [
            target
            for batch in self.batches
            for secret in batch["report"]["secrets"]
            for target in secret["targets"]
        ]


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _vaultflow(platform: _Platform) -> _Run:
    from vaultflow.sandbox import lifecycle
    from vaultflow.steps.rotation.tasks import DEFAULT_BATCH_SIZE
    from vaultflow.workflows.pipelines.rotate_secrets import PARALLEL_BATCHES

    environment = lifecycle.environment(platform.state)  # what `vaultflow rotate` on the sandbox sees
    addresses, run_id, catalog = (
        environment["VAULT_ADDRESSES"],
        f"bench-{uuid.uuid4().hex[:8]}",
        str(platform.catalog_file),
    )
    with _environment(environment):  # the step processes inherit it
        context = multiprocessing.get_context("spawn")  # a fresh interpreter, as a pod has
        with ProcessPoolExecutor(PARALLEL_BATCHES, mp_context=context) as pool:
            for warming in [pool.submit(_warm) for _ in range(PARALLEL_BATCHES)]:
                warming.result()
            with stopwatch() as planning:
                batches = pool.submit(
                    plan_step, catalog, addresses, run_id, ",".join(platform.paths)
                ).result()
            assert all(len(b["paths"].split(",")) <= DEFAULT_BATCH_SIZE for b in batches)
            with _Activity(platform.state) as activity, stopwatch() as rotating:
                futures = [
                    pool.submit(rotate_batch, catalog, addresses, run_id, b["paths"], b["versions"])
                    for b in batches
                ]
                results = [future.result() for future in futures]
    namespaces = _namespaces(platform, batches[0]["paths"].split(","))
    run = _Run(rotating(), planning(), results, namespaces, activity)
    outcomes = Counter(s["outcome"] for b in results for s in b["report"]["secrets"])
    if outcomes != Counter({"Rotated": platform.count}):
        raise RuntimeError(f"vaultflow did not rotate every secret: {dict(outcomes)}")
    for batch in results:
        for secret in batch["report"]["secrets"]:
            platform.versions[secret["path"]] = int(secret["newVersion"])
    return run


def _namespaces(platform: _Platform, paths: Sequence[str]) -> int:
    wanted = set(paths)
    return len(
        {
            (es.cluster, es.namespace)
            for es in platform.loaded.plan.external_secrets
            if es.secret.path in wanted
        }
    )


# --------------------------------------------------------------------------- (a) the raw critical path


def _raw_critical_path(platform: _Platform) -> tuple[float, dict[str, float]]:
    """Seconds for the writes, reads and cloud writes a rotation cannot avoid, each phase in parallel."""
    from vaultflow.gitops.rotation_shards import RotationShards

    shards = RotationShards(platform.loaded.catalog)  # a writer per shard, as each rotate step's token
    writers = {policy: platform.token(policy) for policy in shards.names()}
    readers = {cluster: platform.token(f"eso-{cluster}") for cluster in CLUSTERS}
    aws = platform.aws()
    values = {path: uuid.uuid4().hex for path in platform.paths}

    def write(path: str) -> None:
        writers[shards.policy_of(path)].secrets.kv.v2.create_or_update_secret(
            path,
            secret={"username": "bench", "password": values[path]},
            cas=platform.versions[path],
            mount_point=KV,
        )

    def read(item: tuple[str, str]) -> None:
        cluster, path = item
        readers[cluster].secrets.kv.v2.read_secret_version(
            path, mount_point=KV, raise_on_deleted_version=True
        )

    def push(path: str) -> None:
        aws.put_secret_value(SecretId=path, SecretBinary=values[path].encode())

    phases: dict[str, float] = {}
    with ThreadPoolExecutor(RAW_WORKERS) as pool:
        for name, action, items in (
            ("CAS writes", write, platform.paths),
            ("reads", read, [(cluster, path) for path in platform.paths for cluster in CLUSTERS]),
            ("cloud writes", push, platform.paths),
        ):
            with stopwatch() as elapsed:
                list(pool.map(action, items))
            phases[name] = elapsed()
    for path in platform.paths:
        platform.versions[path] += 1
        platform.values[path] = values[path]
    return sum(phases.values()), phases


# --------------------------------------------------------------------------- the report


@dataclass(frozen=True)
class _Results:
    """What one sandbox (one ESO ``--concurrent``) measured."""

    concurrent: int
    count: int
    run: _Run  # vaultflow
    alone: float  # (b), seconds
    alone_eso: _Activity  # (b), ESO meanwhile
    raw: float  # (a), seconds
    phases: Mapping[str, float]  # (a), seconds by phase


def _measurements(results: _Results) -> list[Measurement]:
    concurrent, count, run = results.concurrent, results.count, results.run
    rotating = (
        f"vaultflow rotate (ESO --concurrent {concurrent}): {count:,} secrets, {len(run.batches)} steps"
    )
    return [
        Measurement(
            name=rotating,
            seconds=run.seconds,
            baseline_name=f"(b) ESO alone: {2 * count:,} ExternalSecrets, {count:,} PushSecrets",
            baseline_seconds=results.alone,
            target_ratio=1.5,
            note=f"meanwhile {run.eso.describe()}, rotate steps "
            f"{sum(batch['cpu'] for batch in run.batches):.0f} s (alone: {results.alone_eso.describe()}); "
            f"the plan step took {run.plan_seconds:.1f} s before",
        ),
        Measurement(
            name=rotating,
            seconds=run.seconds,
            baseline_name=f"(a) raw: {count:,} CAS writes, {2 * count:,} reads, {count:,} cloud writes",
            baseline_seconds=results.raw,
            note=", ".join(f"{name} {seconds:.1f} s" for name, seconds in results.phases.items())
            + f" ({RAW_WORKERS} threads)",
        ),
        _step_row(concurrent, run),
        _round_row(concurrent, run),
        *_latency_rows(concurrent, run),
    ]


def _step_row(concurrent: int, run: _Run) -> Measurement:
    stages: Counter[str] = Counter()
    for batch in run.batches:
        stages.update(batch["stages"])
    steps = len(run.batches)
    return Measurement(
        name=f"one rotate step (--concurrent {concurrent}), mean of {steps}",
        seconds=statistics.fmean(batch["ended"] - batch["started"] for batch in run.batches),
        note=", ".join(f"{stage} {seconds / steps:.2f} s" for stage, seconds in stages.items()),
    )


def _round_row(concurrent: int, run: _Run) -> Measurement:
    """The verification rounds: their LISTs (per round, by resource) and every call a step made."""
    rounds = [(seconds, lists) for batch in run.batches for seconds, lists, _ in batch["rounds"]]
    most = max((sum(lists.values()) for _, lists in rounds), default=0)
    objects = [listed for batch in run.batches for _, _, listed in batch["rounds"]]
    first = Counter[str]()
    for batch in run.batches:
        if batch["rounds"]:
            first.update(batch["rounds"][0][1])
    steps = len(run.batches)
    calls: Counter[str] = Counter()
    for batch in run.batches:
        calls.update(batch["calls"])
    discovery = sum(n for key, n in calls.items() if key.endswith("(cluster-wide)"))
    others = ", ".join(
        f"{k} {n / steps:g}" for k, n in sorted(calls.items()) if not k.endswith("(cluster-wide)")
    )
    return Measurement(
        name=f"verification round (--concurrent {concurrent}), mean of {len(rounds)}",
        seconds=statistics.fmean(seconds for seconds, _ in rounds) if rounds else 0.0,
        note=f"first round of a step: {', '.join(f'{k} {n / steps:g}' for k, n in sorted(first.items()))} "
        f"for {run.namespaces_per_batch} consuming namespaces (10 per cluster), at most {most} LISTs "
        f"in any round, returning {statistics.fmean(objects) if objects else 0:.0f} objects in the mean "
        f"(at most {max(objects, default=0)}); per step: {len(rounds) / steps:g} rounds, {others}, "
        f"and {discovery / steps:g} cluster-wide LISTs (discovery)",
    )


def _latency_rows(concurrent: int, run: _Run) -> list[Measurement]:
    rows = []
    for kind in ("KubernetesSecret", "AwsSecretsManager"):
        seconds = [
            float(t["seconds"]) for t in run.targets() if t["kind"] == kind and t["seconds"] is not None
        ]
        if seconds:
            p50, p95 = percentiles(seconds)
            rows.append(
                Measurement(
                    name=f"write-to-verified p95, {kind} (--concurrent {concurrent})",
                    seconds=p95,
                    note=f"p50 {p50:.2f} s, max {max(seconds):.2f} s, {len(seconds):,} targets",
                )
            )
    return rows


def run() -> list[Measurement]:
    count = secret_count()
    measured: list[Measurement] = []
    for concurrent in int_list_from_env("VAULTFLOW_BENCH_ROTATION_ESO_CONCURRENT", "1,8"):
        directory = Path(tempfile.mkdtemp(prefix="vaultflow-bench-rotation-"))
        with _sandbox(directory, count, concurrent) as platform:
            alone, alone_eso = _propagation_alone(platform)
            rotated = _vaultflow(platform)
            raw, phases = _raw_critical_path(platform)
        measured += _measurements(_Results(concurrent, count, rotated, alone, alone_eso, raw, phases))
    return measured
