"""Rotate a batch of secrets end to end: discover, write, force-sync, verify, restart or roll back.

One call does every stage for a batch of secrets, in one process, because
values never leave a step (the expected data is read back from Vault by
version, here) and because verification is cheap only when it is shared: one
watch of the batch's ExternalSecrets per cluster, and a LIST of a consuming
namespace's Secrets when ESO reports a refresh there, whatever the number of
secrets in the batch. The pipeline fans batches out
(``vaultflow.workflows.pipelines.rotate_secrets``).

Order, and why:

1. *discover* before writing: a consumer written by hand that could never pick
   up a new value (``CreatedOnce``, ``refreshInterval: 0``) refuses the batch
   before anything is written, and the data-hash of each indirectly verified
   target is read while it still is the one from before the write;
2. *write* every secret (check-and-set, idempotent per run id), a few at a
   time;
3. *force-sync* every consuming ExternalSecret (through its
   ClusterExternalSecret when one controls it) as soon as its secret is
   written, while the others are (one that reads other paths too: after the
   last write);
4. *verify* every Kubernetes target; as each is verified, annotate the
   PushSecrets that read its Secret (they do not watch it) and verify each
   pushed cloud secret's current version from then on, read as the
   PushSecret's status reports a push (``push_status.py``), while the other
   Secrets are still being verified;
5. *restart* the workloads of each secret whose targets are all verified;
6. *roll back* (``onFailure: rollback``) each secret with a target that was
   not verified: the previous data as a new version, force-sync, verify again.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from vaultflow.base.durations import parse_go_duration
from vaultflow.base.errors import InputError, OperationError
from vaultflow.base.times import parse_time
from vaultflow.gitops.catalog import LoadedCatalog
from vaultflow.gitops.catalog.model import Secret, WorkloadRef
from vaultflow.steps.rotation.clouds import CloudReaders, CloudTarget, CloudVerification, unverified_pushes
from vaultflow.steps.rotation.credential import CredentialRotation, restore_after_rollback
from vaultflow.steps.rotation.discover import (
    Consumers,
    ConsumingExternalSecret,
    ConsumingPushSecret,
    discover_consumers,
)
from vaultflow.steps.rotation.force_sync import force_sync, force_sync_consumer
from vaultflow.steps.rotation.push_status import PushSecretCues
from vaultflow.steps.rotation.report import Outcome, ReportRestart, ReportSecret, ReportStep, ReportTarget
from vaultflow.steps.rotation.restart import WorkloadResult, restart_workloads
from vaultflow.steps.rotation.verify import (
    KubeTarget,
    TargetResult,
    data_hashes,
    expected_data,
    target_key,
    verify_kubernetes_targets,
)
from vaultflow.steps.rotation.write import (
    VaultWrite,
    read_version,
    write_rollback,
    write_rotation_keeping_data,
)
from vaultflow.steps.vault.api import VaultApi

log = logging.getLogger(__name__)
DEFAULT_WRITERS = 8  # concurrent Vault writes per batch: Vault's raft commits are the floor, not the client
FORCE_SYNCERS = 8  # concurrent force-sync PATCHes per batch (ExternalSecrets, then each PushSecret)
UNCUED_READS = 5.0  # seconds between reads of a cloud secret while its PushSecret reports nothing


@dataclass
class Rotator:
    """What one rotation step needs: the catalog, Vault as the rotation role, each cluster, the clouds."""

    loaded: LoadedCatalog
    vault: VaultApi
    clients: Mapping[str, Any]  # catalog cluster name -> kubernetes ApiClient
    readers: CloudReaders
    run_id: str
    writers: int = DEFAULT_WRITERS
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # (path, version) -> the data this step wrote: values, so never shown (repr) nor returned.
    _known: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict, repr=False)
    _at: dict[str, datetime] = field(default_factory=dict, repr=False)
    _steps: dict[str, list[ReportStep]] = field(default_factory=dict, repr=False)  # credential rotations

    @property
    def kv(self) -> str:
        return self.loaded.catalog.vault.kv_mount

    def secret(self, path: str) -> Secret:
        for secret in self.loaded.catalog.secrets:
            if secret.path == path:
                return secret
        raise InputError(f"{path}: not in the catalog")

    def discover(self, paths: Sequence[str]) -> dict[str, Consumers]:
        """Every consumer of each path; InputError naming each that could never pick up a new value."""
        found = discover_consumers(self.loaded.catalog, self.loaded.plan, paths, self.clients)
        refusals = [reason for consumers in found.values() for reason in consumers.refusals]
        if refusals:
            raise InputError("nothing was rotated:\n" + "\n".join(refusals))
        return found

    def rotate(self, planned: Mapping[str, int]) -> list[ReportSecret]:
        """Rotate the planned secrets (path -> version the plan saw); one report entry per path, in order."""
        paths = list(planned)
        consumers = self.discover(paths)
        log.info("discovered %s", _count_targets(consumers.values()))
        indirect = [c for cs in consumers.values() for c in cs.external_secrets if c.templated or c.converted]
        hashes = data_hashes(self.clients, indirect) if indirect else {}
        with EarlySync(self.clients, consumers, self.run_id) as early:
            writes = self._write_all(planned, on_written=early.written)
        forward = {
            path: w
            for path, w in writes.items()
            if isinstance(w, VaultWrite) and w.rolled_back_version is None
        }
        results = self._propagate(
            {path: (w.new_version, self._at[path]) for path, w in forward.items()},
            consumers,
            hashes,
            sync_token=self.run_id,
            synced=early.synced,
        )
        verified = [path for path in forward if _all_verified(results[path])]
        restarts = self._restart(verified)
        report: dict[str, ReportSecret] = {}
        for path, written in writes.items():
            if isinstance(written, str):
                report[path] = _entry(path, None, "Failed", [], message=written, planned=planned[path])
                continue
            if path in verified:
                failed_restarts = [r for r in restarts.get(path, []) if r.phase != "Restarted"]
                report[path] = _entry(
                    path,
                    written,
                    "Failed" if failed_restarts else "Rotated",
                    results[path],
                    restarts=restarts.get(path, []),
                    message="a workload did not restart" if failed_restarts else "",
                )
        to_roll_back = [
            path for path, w in writes.items() if isinstance(w, VaultWrite) and path not in verified
        ]
        report.update(self._fail(to_roll_back, writes, results, consumers))
        return [report[path].model_copy(update={"steps": self._steps.get(path, [])}) for path in paths]

    # --- stages ------------------------------------------------------------------------------

    def _write_all(
        self, planned: Mapping[str, int], on_written: Callable[[VaultWrite], None] = lambda _: None
    ) -> dict[str, VaultWrite | str]:
        """Each path's write, or why it failed (a concurrent writer, a denied path: that secret only).

        What each write wrote, and when, is kept for the verification in this step (``_known``,
        ``_at``): Vault is not asked for data it was just given, and each target's latency is
        counted from its own secret's write. ``on_written`` is called with each write as it is
        done (the step force-syncs its consumers meanwhile).
        """
        paths = list(planned)

        def write(path: str) -> VaultWrite | str:
            secret = self.secret(path)
            try:
                if secret.rotation is not None and secret.rotation.credential is not None:
                    # stage, set where it is checked, test, then promote (steps/rotation/credential.py)
                    credential = CredentialRotation(
                        self.vault,
                        self.kv,
                        secret,
                        self.run_id,
                        self.now,
                        planned_version=planned[path],
                        base_dir=self.loaded.base_dir,
                    )
                    self._steps[path] = credential.steps
                    written, data = credential.run()
                else:
                    written, data = write_rotation_keeping_data(
                        self.vault, self.kv, secret, self.run_id, self.now(), planned_version=planned[path]
                    )
            except OperationError as error:
                log.error("%s", error)
                return str(error)
            self._at[path] = self.now() if written.written_now else parse_time(written.rotated_at)
            if data is not None:
                self._known[(path, written.new_version)] = data
            on_written(written)
            return written

        with ThreadPoolExecutor(max_workers=max(1, min(self.writers, len(paths)))) as pool:
            done = dict(zip(paths, pool.map(write, paths), strict=True))
        written = sum(1 for w in done.values() if isinstance(w, VaultWrite) and w.written_now)
        log.info("wrote %d new versions (%d already written by this run)", written, len(paths) - written)
        return done

    def _propagate(
        self,
        versions: Mapping[str, tuple[int, datetime]],
        consumers: Mapping[str, Consumers],
        hashes: Mapping[str, str | None],
        *,
        sync_token: str,
        synced: Collection[str] = (),
    ) -> dict[str, list[TargetResult]]:
        """Force-sync every consumer of ``versions`` (path -> version expected, written at), verify each.

        ``sync_token`` is the force-sync annotation's value: ESO reconciles only when it changes, so the
        rotation and its rollback each have their own, and a retry of either sets the same one again.
        ``synced`` names (``target_key``) the consumers already annotated with it.
        """
        if not versions:
            return {}
        data = self._read_versions({path: version for path, (version, _) in versions.items()})
        self._force_sync_all(
            [c for path in versions for c in consumers[path].external_secrets if target_key(c) not in synced],
            sync_token=sync_token,
        )
        timeout = max(self._timeout(path) for path in versions)
        pushes = _PushIndex({path: consumers[path] for path in versions})
        targets = [
            (path, KubeTarget(c, expected_data(c, data[path]), hashes.get(target_key(c)), versions[path][1]))
            for path in versions
            for c in consumers[path].external_secrets
        ]
        expected = {target_key(t.consumer): t for _, t in targets}
        # PushSecret -> its cloud results once known: an index into the cloud verification, or why it failed.
        followed: dict[str, Future[int | list[TargetResult]]] = {}
        with (
            ThreadPoolExecutor(max_workers=FORCE_SYNCERS) as annotator,
            PushSecretCues(self.clients, pushes.all()) as cues,
            # read when ESO's PushSecret status says it pushed; the schedule only covers a missed cue
            CloudVerification(
                self.readers, timeout=timeout, maximum=UNCUED_READS, first_read=UNCUED_READS
            ) as cloud,
        ):

            def follow(push: ConsumingPushSecret, source: KubeTarget) -> int | list[TargetResult]:
                """Annotate a PushSecret whose source is verified, then verify its cloud secrets."""
                before = cues.status(push)  # what ESO reports from now on is the cue to read the cloud
                try:
                    force_sync(
                        self.clients[push.cluster],
                        cluster=push.cluster,
                        kind="PushSecret",
                        namespace=push.namespace,
                        name=push.name,
                        run_id=sync_token,
                    )
                except OperationError as error:
                    return unverified_pushes(push, f"its PushSecret could not be annotated: {error}")
                index = cloud.add(CloudTarget(push, source.expected, source.written_at))
                cues.follow(push, before, functools.partial(cloud.cue, index))
                return index

            def annotate(consumer: ConsumingExternalSecret) -> None:
                """Called by the verification as each Secret is verified: it does not wait for the PATCH."""
                for push in pushes.reading(consumer):
                    if _push_key(push) not in followed:
                        followed[_push_key(push)] = annotator.submit(
                            follow, push, expected[target_key(consumer)]
                        )

            kube = verify_kubernetes_targets(
                self.clients, [t for _, t in targets], timeout=timeout, on_verified=annotate
            )
            outcomes = {key: future.result() for key, future in followed.items()}
        by_path: dict[str, list[TargetResult]] = {path: [] for path in versions}
        pushed: dict[str, list[TargetResult]] = {path: [] for path in versions}
        seen_pushes: set[str] = set()
        for (path, target), result in zip(targets, kube, strict=True):
            by_path[path].append(result)
            for push in pushes.reading(target.consumer):
                if _push_key(push) in seen_pushes:
                    continue
                seen_pushes.add(_push_key(push))
                outcome = outcomes.get(_push_key(push))
                if outcome is None:  # its source was not verified: never annotated
                    by_path[path].extend(
                        unverified_pushes(push, f"its source Secret was not verified ({result.phase})")
                    )
                else:
                    pushed[path].extend(cloud.results(outcome) if isinstance(outcome, int) else outcome)
        return {
            path: [self._within_timeout(path, r) for r in [*results, *pushed[path]]]
            for path, results in by_path.items()
        }

    def _force_sync_all(self, consumers: Sequence[ConsumingExternalSecret], *, sync_token: str) -> None:
        """Annotate every consuming ExternalSecret (or its ClusterExternalSecret), a few at a time; the first
        failure is raised once every PATCH was tried."""
        if not consumers:
            return
        with ThreadPoolExecutor(max_workers=min(FORCE_SYNCERS, len(consumers))) as pool:
            futures = [
                pool.submit(force_sync_consumer, self.clients[c.cluster], c, sync_token) for c in consumers
            ]
        for future in futures:
            future.result()

    def _read_versions(self, versions: Mapping[str, int]) -> dict[str, dict[str, Any]]:
        """Each path's data at its version: what this step wrote, else read back from Vault in parallel."""
        unknown = [path for path in versions if (path, versions[path]) not in self._known]

        def read(path: str) -> dict[str, Any]:
            return read_version(self.vault, self.kv, path, versions[path])

        with ThreadPoolExecutor(max_workers=max(1, min(self.writers, len(unknown) or 1))) as pool:
            read_back = dict(zip(unknown, pool.map(read, unknown), strict=True))
        return {
            path: read_back[path] if path in read_back else self._known[(path, versions[path])]
            for path in versions
        }

    def _restart(self, paths: Sequence[str]) -> dict[str, list[ReportRestart]]:
        """Restart the workloads each fully verified secret names; one wait for all of them."""
        wanted = [(path, ref) for path in paths for ref in _restarts(self.secret(path))]
        if not wanted:
            return {}
        timeout = max(self._timeout(path) for path, _ in wanted)
        results = restart_workloads(
            self.clients, [ref for _, ref in wanted], run_id=self.run_id, timeout=timeout
        )
        by_ref = {_ref_key(r): r for r in results}
        restarted: dict[str, list[ReportRestart]] = {}
        for path, ref in wanted:
            restarted.setdefault(path, []).append(ReportRestart.of(by_ref[_ref_key(ref)]))
        return restarted

    def _fail(
        self,
        paths: Sequence[str],
        writes: Mapping[str, VaultWrite | str],
        forward: Mapping[str, list[TargetResult]],
        consumers: Mapping[str, Consumers],
    ) -> dict[str, ReportSecret]:
        """``onFailure``: roll back (the previous data as a new version, propagated and verified) or alert."""
        entries: dict[str, ReportSecret] = {}
        rollbacks: dict[str, int] = {}
        # The indirect targets' hashes now, before the rollback's write: the rotation may have changed them.
        indirect = [
            c for path in paths for c in consumers[path].external_secrets if c.templated or c.converted
        ]
        hashes_before_rollback = data_hashes(self.clients, indirect) if indirect else {}
        for path in paths:
            written = writes[path]
            assert isinstance(written, VaultWrite)
            rotation = self.secret(path).rotation
            if rotation is None or rotation.on_failure != "rollback":
                entries[path] = _entry(
                    path,
                    written,
                    "Failed",
                    forward.get(path, []),
                    message="not every target got the new value (onFailure: alert)",
                )
                continue
            try:
                # single-user: the database gets the old password back before Vault does
                restore_after_rollback(self.vault, self.kv, self.secret(path), written, self.loaded.base_dir)
                rollbacks[path] = write_rollback(self.vault, self.kv, written)
            except OperationError as error:
                entries[path] = _entry(
                    path, written, "Failed", forward.get(path, []), message=f"rollback not written: {error}"
                )
        if rollbacks:
            log.info("rolling back %d secrets", len(rollbacks))
        back = self._propagate(
            {p: (v, self.now()) for p, v in rollbacks.items()},
            consumers,
            hashes_before_rollback,
            sync_token=f"{self.run_id}-rollback",
        )
        for path, version in rollbacks.items():
            written = writes[path]
            assert isinstance(written, VaultWrite)
            restored = _all_verified(back[path])
            entries[path] = _entry(
                path,
                written,
                "RolledBack" if restored else "Failed",
                forward.get(path, []),
                rollback_version=version,
                rollback_targets=back[path],
                message="the previous value is back everywhere"
                if restored
                else "the rollback did not reach every target",
            )
        return entries

    def _timeout(self, path: str) -> float:
        rotation = self.secret(path).rotation
        return parse_go_duration(rotation.verify_timeout if rotation else "10m")

    def _within_timeout(self, path: str, result: TargetResult) -> TargetResult:
        """Verified only after its own secret's verifyTimeout: timed out (a batch waits for its longest)."""
        limit = self._timeout(path)
        if result.phase == "Verified" and result.seconds is not None and result.seconds > limit:
            return result.model_copy(
                update={
                    "phase": "TimedOut",
                    "message": f"verified only after {result.seconds:.1f}s (verifyTimeout {limit:g}s)",
                }
            )
        return result


class EarlySync:
    """Force-syncs each written secret's consumers while the other secrets of the batch are being written.

    ESO starts on the first secret while Vault takes the others. Only a consumer that reads nothing but
    its one path is annotated here: one that also reads another path (maybe rotated later in this batch)
    must refresh after every write, so it waits for ``_propagate``, after the last one. Leaving the
    ``with`` block waits for the PATCHes and raises the first failure, as ``_force_sync_all`` does.
    """

    def __init__(
        self, clients: Mapping[str, Any], consumers: Mapping[str, Consumers], sync_token: str
    ) -> None:
        self._clients, self._consumers, self._token = clients, consumers, sync_token
        self._pool = ThreadPoolExecutor(max_workers=FORCE_SYNCERS)
        self._futures: dict[str, Future[None]] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> EarlySync:
        return self

    def __exit__(self, error_type: type[BaseException] | None, *_: object) -> None:
        self._pool.shutdown(wait=True)
        if error_type is None:  # else that error is the one to see
            for future in self._futures.values():
                future.result()

    def written(self, write: VaultWrite) -> None:
        """Called by each writer thread after its write: annotate that path's consumers (not waiting)."""
        if write.rolled_back_version is not None:  # a retry of a run that already rolled it back
            return
        for consumer in self._consumers[write.path].external_secrets:
            if consumer.reads_other_paths:
                continue
            with self._lock:
                self._futures[target_key(consumer)] = self._pool.submit(
                    force_sync_consumer, self._clients[consumer.cluster], consumer, self._token
                )

    @property
    def synced(self) -> set[str]:
        """The consumers annotated (``target_key``), once the ``with`` block is left."""
        return set(self._futures)


class _PushIndex:
    """The PushSecrets of each path, by the Secret they read (cluster, namespace, name)."""

    def __init__(self, consumers: Mapping[str, Consumers]) -> None:
        self._by_source: dict[tuple[str, str, str], list[ConsumingPushSecret]] = {}
        for found in consumers.values():
            for push in found.push_secrets:
                self._by_source.setdefault((push.cluster, push.namespace, push.source_secret), []).append(
                    push
                )

    def reading(self, consumer: ConsumingExternalSecret) -> list[ConsumingPushSecret]:
        return self._by_source.get((consumer.cluster, consumer.namespace, consumer.secret_name), [])

    def all(self) -> list[ConsumingPushSecret]:
        return [push for pushes in self._by_source.values() for push in pushes]


def _push_key(push: ConsumingPushSecret) -> str:
    return f"{push.cluster}/{push.namespace}/{push.name}"


def _restarts(secret: Secret) -> list[WorkloadRef]:
    return secret.rotation.restart if secret.rotation is not None else []


def _ref_key(ref: WorkloadRef | WorkloadResult) -> tuple[str, str, str, str]:
    return (ref.cluster, ref.namespace, ref.kind, ref.name)


def _all_verified(results: Iterable[TargetResult]) -> bool:
    return all(result.phase == "Verified" for result in results)


def _count_targets(found: Iterable[Consumers]) -> str:
    listed = list(found)
    external = sum(len(c.external_secrets) for c in listed)
    pushes = sum(len(c.push_secrets) for c in listed)
    hand = sum(1 for c in listed for e in c.external_secrets if e.source == "discovered")
    return (
        f"{external} ExternalSecrets ({hand} not in the catalog) and {pushes} PushSecrets "
        f"for {len(listed)} secrets"
    )


def _entry(
    path: str,
    written: VaultWrite | None,
    outcome: Outcome,
    targets: Sequence[TargetResult],
    *,
    message: str = "",
    restarts: Sequence[ReportRestart] = (),
    rollback_version: int | None = None,
    rollback_targets: Sequence[TargetResult] = (),
    planned: int = 0,
) -> ReportSecret:
    """One secret's report entry; ``planned`` is its version when nothing was written."""
    return ReportSecret(
        path=path,
        previous_version=written.previous_version if written else planned,
        new_version=written.new_version if written else None,
        outcome=outcome,
        targets=[ReportTarget.of(t) for t in targets],
        message=message,
        restarts=list(restarts),
        rollback_version=rollback_version,
        rollback_targets=[ReportTarget.of(t) for t in rollback_targets],
    )
