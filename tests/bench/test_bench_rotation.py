"""The rotation benchmark's own logic: how it names the requests it counts, and the catalog it rotates.

The benchmark itself (a sandbox, 1,000 secrets, minutes) runs with ``task bench -- rotation``; these
tests check only what its report relies on.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from bench.bench_rotation import CLUSTERS, NAMESPACES, call_key, catalog_text, cpu_seconds, path_of
from vaultflow.gitops.catalog import parse_catalog
from vaultflow.steps.rotation.tasks import DEFAULT_BATCH_SIZE


@pytest.mark.parametrize(
    ("method", "url", "key"),
    [
        ("GET", "https://127.0.0.1:6443/api/v1/namespaces/team-1/secrets", "LIST secrets"),
        (
            "GET",
            "https://h/apis/external-secrets.io/v1/namespaces/team-1/externalsecrets",
            "LIST externalsecrets",
        ),
        (
            "GET",
            "https://h/apis/external-secrets.io/v1/externalsecrets?limit=500",
            "LIST externalsecrets (cluster-wide)",
        ),
        (
            "GET",
            "https://h/apis/external-secrets.io/v1/clustersecretstores",
            "LIST clustersecretstores (cluster-wide)",
        ),
        ("GET", "https://h/api/v1/namespaces/team-1/secrets/s-0001", "GET secrets"),
        (
            "GET",
            "https://h/apis/external-secrets.io/v1/externalsecrets?labelSelector=vaultflow.io%2Fsecret+in+%28a%29",
            "LIST externalsecrets (cluster-wide, by label)",
        ),
        ("GET", "https://h/api/v1/namespaces/team-1/secrets?labelSelector=a%3Db", "LIST secrets (by label)"),
        (
            "GET",
            "https://h/apis/external-secrets.io/v1/externalsecrets?labelSelector=a%3Db&watch=true",
            "WATCH externalsecrets (cluster-wide, by label)",
        ),
        (
            "PATCH",
            "https://h/apis/external-secrets.io/v1alpha1/namespaces/team-1/pushsecrets/p",
            "PATCH pushsecrets",
        ),
        (
            "POST",
            "https://h/api/v1/namespaces/argo/serviceaccounts/vaultflow-rotation/token",
            "POST serviceaccounts/token",
        ),
        ("get", "https://h/api/v1/namespaces", "LIST namespaces (cluster-wide)"),
        ("GET", "https://h/api/v1/namespaces/team-1", "GET namespaces"),
    ],
)
def test_requests_are_counted_by_verb_and_resource(method: str, url: str, key: str) -> None:
    assert call_key(method, url) == key


def test_the_catalog_consumes_each_secret_in_both_clusters_and_pushes_it_next_to_its_first_consumer() -> None:
    count = 2 * DEFAULT_BATCH_SIZE
    loaded = parse_catalog(catalog_text(count), Path("catalog.yaml"))
    plan = loaded.plan
    assert [s.path for s in loaded.catalog.secrets] == [path_of(i) for i in range(count)]
    assert all(s.rotation is not None for s in loaded.catalog.secrets)
    assert len(plan.external_secrets) == 2 * count  # no push-source ExternalSecret: a consumer holds the key
    assert {(es.cluster, es.namespace) for es in plan.external_secrets} == {
        (cluster, f"team-{n}") for cluster in CLUSTERS for n in range(NAMESPACES)
    }
    assert len(plan.push_secrets) == count
    targets = {(es.cluster, es.namespace, es.target) for es in plan.external_secrets}
    assert all(
        ps.cluster == CLUSTERS[0] and (ps.cluster, ps.namespace, ps.source_secret) in targets
        for ps in plan.push_secrets
    )
    # Every batch the pipeline makes spans every namespace of both clusters: the case the
    # verification's one LIST per namespace is meant for.
    first_batch = {path_of(i) for i in range(DEFAULT_BATCH_SIZE)}
    spanned = {(es.cluster, es.namespace) for es in plan.external_secrets if es.secret.path in first_batch}
    assert len(spanned) == len(CLUSTERS) * NAMESPACES


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads Linux /proc")
def test_cpu_seconds_reads_what_the_process_used() -> None:
    before, own = cpu_seconds(os.getpid()), time.process_time()
    while time.process_time() - own < 0.3:  # burn 0.3 s of CPU in this process
        sum(range(1000))
    after = cpu_seconds(os.getpid())
    assert before is not None and after is not None
    assert 0.2 <= after - before <= 0.6  # clock ticks are coarse (10 ms); other threads may add a little
    assert cpu_seconds(2**22 + 12345) is None  # above the kernel's pid limit: no such process
