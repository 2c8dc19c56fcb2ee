"""The ESO emulator's controllers as ESO runs them: one worker each, ESO's rate limiter, ESO's requeues.

Upstream: ``cmd/controller/root.go`` (``--concurrent`` 1), ``pkg/controllers/common/common.go``
(``BuildRateLimiter``), ``pkg/controllers/externalsecret/externalsecret_controller.go``
(``getRequeueResult``), ``pkg/controllers/pushsecret/pushsecret_controller.go`` (the skip-refresh
requeue ``refreshInterval - sinceLastRefresh + 5s``).
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.sandbox_eso.conftest import EsoStack, external_secret
from tests.sandbox_eso.test_pushsecret import push_secret, source, stores
from vaultflow.base.errors import InputError
from vaultflow.sandbox.eso import EsoController
from vaultflow.sandbox.observe import wait_for

ES, PS = "ExternalSecret", "PushSecret"


def write(eso: EsoStack, path: str, **values: object) -> None:
    eso.vault.secrets.kv.v2.create_or_update_secret(path, secret=values, mount_point="secret")


def test_one_worker_per_controller_by_default(eso: EsoStack) -> None:
    assert eso.controller.concurrent == 1
    names = [thread.name for thread in threading.enumerate()]
    for kind in ("externalsecret", "pushsecret", "secretstore", "clustersecretstore"):
        assert len([n for n in names if n.startswith(f"eso-eso-{kind}-")]) == 1, kind
    with pytest.raises(ValueError, match="concurrent must be at least 1"):
        EsoController(eso.cluster, eso.controller.environment, concurrent=0)


def test_a_failed_refresh_waits_for_esos_backoff_while_new_objects_sync_first(
    eso: EsoStack, namespace: str, vault_path: str
) -> None:
    """Ordering only: the failed ExternalSecret is retried after ESO's 1 s; a new one is synced before."""
    remote = {"extract": {"key": vault_path}}
    eso.create(namespace, external_secret("failed-first", dataFrom=[remote]))  # Retain: a missing path fails
    queue, key = eso.controller.queue_of(ES), (ES, namespace, "failed-first")
    # the first attempt fails; adding the finalizer woke it once more, and that failed too
    failures = wait_for(
        lambda: queue.failures(key) if queue.failures(key) >= 2 else None, what="two failures"
    )
    assert failures == 2  # its next retry is 2 s away (1 s, then doubling), not milliseconds
    assert eso.condition(namespace, ES, "failed-first")["reason"] == "SecretSyncedError"

    write(eso, vault_path, password="now-there")
    eso.create(namespace, external_secret("newcomer", dataFrom=[remote]))
    eso.wait_ready(namespace, ES, "newcomer")
    eso.wait_ready(namespace, ES, "failed-first")  # at its backoff, without a force-sync
    newcomer, failed = eso.get(namespace, ES, "newcomer"), eso.get(namespace, ES, "failed-first")
    assert int(newcomer["metadata"]["resourceVersion"]) < int(failed["metadata"]["resourceVersion"])
    assert eso.secret_data(namespace, "failed-first") == {"password": b"now-there"}
    assert queue.failures(key) == 0  # the success forgot the failures


def test_an_external_secret_is_requeued_for_the_rest_of_its_interval(
    eso: EsoStack, namespace: str, vault_path: str
) -> None:
    write(eso, vault_path, password="x")
    eso.create(namespace, external_secret("hourly", dataFrom=[{"extract": {"key": vault_path}}]))
    eso.wait_ready(namespace, ES, "hourly")
    result = eso.controller.external_secrets.reconcile(namespace, "hourly")  # nothing to refresh
    assert result.requeue_after is not None and 3600 - 60 < result.requeue_after <= 3600
    assert not result.requeue


def test_a_push_secret_is_requeued_five_seconds_after_its_interval(eso: EsoStack, namespace: str) -> None:
    stores(eso, namespace)
    source(eso, namespace, "src", password="p")
    eso.create(namespace, push_secret("hourly", "src", "aws", f"/{namespace}/hourly"))
    eso.wait_ready(namespace, PS, "hourly")
    result = eso.controller.push_secrets.reconcile(namespace, "hourly")  # nothing to refresh
    assert result.requeue_after is not None and 3605 - 60 < result.requeue_after <= 3605


def test_sandbox_up_refuses_fewer_than_one_eso_worker(tmp_path: Path) -> None:
    from vaultflow.sandbox import lifecycle

    with pytest.raises(InputError, match=r"--eso-concurrent must be at least 1 \(got 0\)"):
        lifecycle.up(tmp_path / "sandbox", eso_concurrent=0)
    assert not (tmp_path / "sandbox").exists()  # nothing half-written
