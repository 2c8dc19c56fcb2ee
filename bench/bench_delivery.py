"""GitOps delivery of a 10,000-secret catalog and its preflight, beside what Git and Vault alone cost.

Issue 13.

The catalog: ``VAULTFLOW_BENCH_DELIVERY_COUNT`` secrets (default 10,000), each
consumed in one of two clusters (``east``, ``west``, in turn) in namespace
``team-(i % 10)``; every tenth is consumed a second time in the same cluster
(namespace ``shared``), so that there are more ExternalSecrets (11,000) than
distinct paths (10,000), and rotates (1,000: preflight's refresh check runs;
the rotation policy of 10,000 rotated paths, 1.8 MB, is more than OpenBao's
raft storage takes in one entry, 1 MiB).

Apply (``apply_catalog`` in push mode, no wait), against a real bare Git
repository on disk as the remote:

* *first apply*: shallow clone of the empty repository, render, write, one
  commit listing every file, push. Baseline, in the same run: the same tree
  (rendered beforehand, not timed) written to a plain work tree and committed
  directly, ``git add -A && git commit``, then ``git push`` to a second bare
  repository: what delivery costs without vaultflow;
* *no-change re-run*: the same apply again (clone, render, compare, no commit).
  Baseline: the render alone (``render_catalog``), the floor of any run that
  must find out whether something changed.

Preflight (``eso_access`` + ``preflight``: logins as each cluster's ESO
through Kubernetes auth, then every check) on a sandbox (``lifecycle.up``: the
real OpenBao with its file audit device, the emulated clusters), OpenBao
configured from the catalog by the bootstrap's own code and every path seeded.
Counted: the Vault requests OpenBao's audit log records for the run (reads of
KV data as ESO, and everything else: logins, the policy reads), and the most
Vault requests in flight at once, at the client's transport (every request
``requests`` sends to Vault's address passes a counting ``HTTPAdapter.send``;
nothing of preflight is replaced). Expected: one read per distinct path per
cluster, at most ``READERS`` (8) at a time. Baseline: the same distinct reads
with ``hvac``, ESO's policy, in a pool of ``READERS`` threads: the first
cluster's before preflight, the other's after it (drift weighs on both sides). Shown beside it:
the same reads with a one-stanza policy (``secret/data/bench/*``): Vault builds
a token's ACL from its policies on every request, so a read as ESO costs more
the more paths the cluster's ESO policy names (one stanza per path: 5,000 here).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.common import Measurement, stopwatch
from bench.platform_setup import configure_from_catalog

CLUSTERS = ("east", "west")
NAMESPACES = 10
SHARED_EVERY = 10  # every tenth secret has a second consumer, in namespace "shared"
KV = "secret"
GITOPS_PATH = "eso-resources"
AUTHOR = ("-c", "user.name=bench", "-c", "user.email=bench@vaultflow.invalid")


def secret_count() -> int:
    text = os.environ.get("VAULTFLOW_BENCH_DELIVERY_COUNT", "10000")
    if not text.isdigit() or int(text) < 1:
        raise SystemExit(f"error: VAULTFLOW_BENCH_DELIVERY_COUNT={text!r}: a positive integer")
    return int(text)


def path_of(index: int) -> str:
    return f"bench/d-{index:05d}"


def catalog_text(count: int, repo_url: str = "https://git.example.com/platform-gitops.git") -> str:
    """``count`` secrets in two clusters; every ``SHARED_EVERY``-th consumed twice in its cluster, rotated."""
    header = f"""\
apiVersion: vaultflow.io/v1alpha1
kind: SecretsCatalog
vault: {{address: "https://vault.vault-system.svc:8200", kvMount: {KV}}}
gitops: {{repoUrl: "{repo_url}", path: {GITOPS_PATH}}}
clusters:
  - {{name: {CLUSTERS[0]}, kubeContext: {CLUSTERS[0]}, argocd: {{server: https://kubernetes.default.svc}}}}
  - {{name: {CLUSTERS[1]}, kubeContext: {CLUSTERS[1]}, argocd: {{name: {CLUSTERS[1]}}}}}
secrets:
"""
    entries = []
    for index in range(count):
        cluster, name = CLUSTERS[index % len(CLUSTERS)], f"d-{index:05d}"
        consumers = (
            f"      - {{cluster: {cluster}, namespace: team-{index % NAMESPACES}, secretName: {name}}}\n"
        )
        rotation = ""
        if index % SHARED_EVERY == 0:
            consumers += f"      - {{cluster: {cluster}, namespace: shared, secretName: {name}}}\n"
            rotation = '    rotation: {schedule: "@daily"}\n'
        entries.append(
            f"  - path: {path_of(index)}\n"
            "    keys:\n"
            "      - {name: username, generator: {type: static}}\n"
            "      - {name: password, generator: {type: password, length: 32}}\n"
            f"{rotation}"
            "    consumers:\n"
            f"{consumers}"
        )
    return header + "".join(entries)


# --------------------------------------------------------------------------- apply


@dataclass(frozen=True)
class ApplyTimings:
    files: int
    first_apply: float
    direct_commit: float  # write + git add -A && git commit + git push, of the same tree
    no_change: float
    render: float


def _git(*args: str, cwd: Path | None = None) -> None:
    subprocess.run(["git", *AUTHOR, *args], cwd=cwd, check=True, capture_output=True)


def _bare(path: Path) -> str:
    _git("init", "--bare", "--initial-branch=main", str(path))
    return path.resolve().as_uri()


def measure_apply(directory: Path, loaded: Any) -> ApplyTimings:
    from vaultflow.gitops.render import render_catalog
    from vaultflow.steps.delivery.apply import ApplyOptions, apply_catalog

    remote = _bare(directory / "gitops.git")
    options = ApplyOptions(repo_url=remote, branch="main", path=GITOPS_PATH, mode="push", wait=False)
    with stopwatch() as first:
        report = apply_catalog(loaded, options, environ={}, say=lambda _: None)
    if report.commit is None or len(report.files) == 0:
        raise RuntimeError("the first apply made no commit")

    tree = render_catalog(loaded, repo_url=remote)  # the same bytes, rendered outside the timing
    work, direct = directory / "direct", _bare(directory / "direct.git")
    _git("init", "--initial-branch=main", str(work))
    _git("remote", "add", "origin", direct, cwd=work)
    with stopwatch() as baseline:
        for rendered in tree.files:
            target = work / GITOPS_PATH / rendered.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(rendered.content, encoding="utf-8")
        _git("add", "-A", cwd=work)
        _git("commit", "-q", "-m", "render the catalog", cwd=work)
        _git("push", "-q", "origin", "HEAD:refs/heads/main", cwd=work)

    with stopwatch() as again:
        rerun = apply_catalog(loaded, options, environ={}, say=lambda _: None)
    if rerun.commit is not None or rerun.files:
        raise RuntimeError("a re-run with nothing to change made a commit")
    with stopwatch() as render:
        render_catalog(loaded, repo_url=remote)
    return ApplyTimings(len(report.files), first(), baseline(), again(), render())


# --------------------------------------------------------------------------- preflight


@dataclass(frozen=True)
class PreflightResult:
    references: int  # rendered ExternalSecrets checked
    distinct: int  # distinct (cluster, path) pairs: the reads expected
    checked: int  # what the report says it checked
    findings: int
    kv_reads: int  # reads of KV data as ESO, in OpenBao's audit log
    other_requests: dict[str, int]  # the rest of the run's Vault requests, by operation and path kind
    max_in_flight: int  # most Vault requests at once, at the client's transport
    seconds: float
    raw_reads: float  # the same distinct reads, hvac, READERS threads
    glob_reads: float  # the same, with a one-stanza policy instead of ESO's

    @property
    def per_second(self) -> float:
        return self.references / self.seconds if self.seconds > 0 else 0.0


class _InFlight:
    """Counts the requests ``requests`` sends to one host and the most in flight at once (a wrapper of
    ``HTTPAdapter.send``, the transport every ``hvac`` client uses; the request itself is unchanged)."""

    def __init__(self, address: str) -> None:
        self.netloc = urlsplit(address).netloc
        self.lock = threading.Lock()
        self.now = self.most = self.sent = 0

    @contextmanager
    def installed(self) -> Iterator[_InFlight]:
        from requests.adapters import HTTPAdapter

        original = HTTPAdapter.send
        counter = self

        def send(adapter: HTTPAdapter, request: Any, *args: Any, **kwargs: Any) -> Any:
            if urlsplit(request.url).netloc != counter.netloc:
                return original(adapter, request, *args, **kwargs)
            with counter.lock:
                counter.now += 1
                counter.sent += 1
                counter.most = max(counter.most, counter.now)
            try:
                return original(adapter, request, *args, **kwargs)
            finally:
                with counter.lock:
                    counter.now -= 1

        HTTPAdapter.send = send  # type: ignore[method-assign,assignment]
        try:
            yield self
        finally:
            HTTPAdapter.send = original  # type: ignore[method-assign]


def audit_requests(log: Path, offset: int) -> list[dict[str, Any]]:
    """The ``request`` entries OpenBao's file audit device wrote after byte ``offset``."""
    with log.open("rb") as handle:
        handle.seek(offset)
        lines = handle.read().decode("utf-8").splitlines()
    entries = [json.loads(line) for line in lines if line.strip()]
    return [entry for entry in entries if entry.get("type") == "request"]


def _kind_of(entry: dict[str, Any]) -> str:
    request = entry.get("request") or {}
    path = str(request.get("path") or "")
    if path.startswith(f"{KV}/data/"):
        where = f"{KV}/data/*"
    elif path.startswith("auth/") and path.endswith("/login"):
        where = "auth/*/login"
    elif path.startswith("sys/policies/acl/"):
        where = "sys/policies/acl/*"
    else:
        where = path
    return f"{request.get('operation', '?')} {where}"


@contextmanager
def _environment(variables: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _seed(root: Any, paths: list[str]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def seed(path: str) -> None:
        root.secrets.kv.v2.create_or_update_secret(  # bench data, never a real secret
            path, secret={"username": "bench", "password": "bench-value"}, cas=0, mount_point=KV
        )

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(seed, paths))


def _raw_reads(
    address: str, ca_file: str, root: Any, pairs: list[tuple[str, str]], workers: int, *, glob: bool
) -> float:
    """Seconds for reading every (cluster, path) with a token of that cluster's ESO policy (``glob``: of
    one policy with the single stanza ``secret/data/bench/*``), in a pool of ``workers`` threads, over
    OpenBao's TLS listener (verified with ``ca_file``), as preflight reads it."""
    from concurrent.futures import ThreadPoolExecutor

    import hvac

    from vaultflow.gitops.policies import eso_policy_name

    if glob:
        root.sys.create_or_update_policy(
            "bench-glob", f'path "{KV}/data/bench/*" {{\n  capabilities = ["read"]\n}}\n'
        )
    clients = {}
    for cluster in CLUSTERS:
        policy = "bench-glob" if glob else eso_policy_name(cluster)
        token = root.auth.token.create(policies=[policy], ttl="1h", no_default_policy=True)
        clients[cluster] = hvac.Client(url=address, token=token["auth"]["client_token"], verify=ca_file)

    def read(pair: tuple[str, str]) -> None:
        cluster, path = pair
        clients[cluster].secrets.kv.v2.read_secret_version(
            path, mount_point=KV, raise_on_deleted_version=True
        )

    with stopwatch() as elapsed, ThreadPoolExecutor(workers) as pool:
        list(pool.map(read, pairs))
    return elapsed()


def measure_preflight(directory: Path, loaded: Any) -> PreflightResult:
    from vaultflow.sandbox import lifecycle
    from vaultflow.steps.delivery.preflight import READERS, eso_access, preflight

    sandbox_dir = directory / "sandbox"
    state = lifecycle.up(sandbox_dir, cluster_names=list(CLUSTERS)).state
    try:
        root = configure_from_catalog(state, loaded)
        _seed(root, sorted({s.path for s in loaded.catalog.secrets}))
        pairs = sorted({(es.cluster, es.secret.path) for es in loaded.plan.external_secrets})
        # The baseline's reads of the first cluster before preflight and of the others after it, so that
        # a machine (or a Vault) getting busier or quieter during the run weighs on both sides alike.
        first = [pair for pair in pairs if pair[0] == CLUSTERS[0]]
        raw = _raw_reads(state.vault_addr, state.ca_file, root, first, READERS, glob=False)
        audit_log = Path(state.vault[0].data_dir) / "audit.log"
        offset = audit_log.stat().st_size  # what preflight sends is what the log holds after this
        counter = _InFlight(state.vault_addr)
        with _environment(lifecycle.environment(state)), counter.installed(), stopwatch() as elapsed:
            access = eso_access(loaded, state.vault_addr, state.ca_file)
            try:
                report = preflight(loaded, access)
            finally:
                for cluster in access.values():
                    cluster.api_client.close()
        seconds = elapsed()
        requests = audit_requests(audit_log, offset)  # read before the baseline's second half
        rest = [pair for pair in pairs if pair[0] != CLUSTERS[0]]
        raw += _raw_reads(state.vault_addr, state.ca_file, root, rest, READERS, glob=False)
        glob = _raw_reads(state.vault_addr, state.ca_file, root, pairs, READERS, glob=True)
    finally:
        lifecycle.down(sandbox_dir, purge=True)
    kinds = Counter(_kind_of(entry) for entry in requests)
    kv_reads = sum(
        1
        for entry in requests
        if _kind_of(entry) == f"read {KV}/data/*"
        and any(p.startswith("eso-") for p in (entry.get("auth") or {}).get("policies") or [])
    )
    kinds.pop(f"read {KV}/data/*", None)
    return PreflightResult(
        references=len(loaded.plan.external_secrets),
        distinct=len(pairs),
        checked=report.references,
        findings=len(report.findings),
        kv_reads=kv_reads,
        other_requests=dict(sorted(kinds.items())),
        max_in_flight=counter.most,
        seconds=seconds,
        raw_reads=raw,
        glob_reads=glob,
    )


# --------------------------------------------------------------------------- report


def measurements(count: int, apply: ApplyTimings, checked: PreflightResult) -> list[Measurement]:
    other = ", ".join(f"{n} {kind}" for kind, n in checked.other_requests.items()) or "none"
    return [
        Measurement(
            f"apply (push) of a {count:,}-secret catalog: first commit",
            apply.first_apply,
            baseline_name="write + git add -A && git commit + git push",
            baseline_seconds=apply.direct_commit,
            note=f"{apply.files:,} files; clone, render ({apply.render:.2f} s), write, commit, push",
        ),
        Measurement(
            "apply re-run, nothing to change (no commit)",
            apply.no_change,
            baseline_name="render alone",
            baseline_seconds=apply.render,
            note="shallow fetch, render, blob ids compared: nothing checked out",
        ),
        Measurement(
            f"preflight of {checked.references:,} references ({checked.distinct:,} distinct paths)",
            checked.seconds,
            baseline_name="the same reads, hvac, 8 threads",
            baseline_seconds=checked.raw_reads,
            note=f"{checked.per_second:,.0f} references/s; Vault KV reads as ESO {checked.kv_reads:,} "
            f"(audit log), other requests: {other}; at most {checked.max_in_flight} in flight; "
            f"{checked.findings} finding(s); the same reads with a one-stanza policy: "
            f"{checked.glob_reads:.2f} s",
        ),
    ]


def measure(count: int) -> tuple[ApplyTimings, PreflightResult]:
    """Both halves on a catalog of ``count`` secrets, in a scratch directory removed afterwards."""
    from vaultflow.gitops.catalog import parse_catalog

    with tempfile.TemporaryDirectory(prefix="vaultflow-bench-delivery-") as scratch:
        directory = Path(scratch)
        catalog = directory / "catalog.yaml"
        catalog.write_text(catalog_text(count))
        loaded = parse_catalog(catalog.read_text(), catalog)
        return measure_apply(directory, loaded), measure_preflight(directory, loaded)


def run() -> list[Measurement]:
    count = secret_count()
    return measurements(count, *measure(count))
