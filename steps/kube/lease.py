"""A lock that outlives a crashed pod: a Kubernetes Lease (``coordination.k8s.io/v1``).

The record is client-go's leader-election record (``tools/leaderelection/resourcelock/leaselock.go``):
``holderIdentity``, ``leaseDurationSeconds``, ``acquireTime``, ``renewTime`` and
``leaseTransitions``. As in ``tools/leaderelection/leaderelection.go``:

* the holder renews by rewriting ``renewTime``; anyone else may take the lease
  over once ``renewTime + leaseDurationSeconds`` has passed (or the holder
  released it), counting a transition;
* every write carries the resourceVersion of the read just before, so of two
  contenders exactly one wins; the loser (a 409) reads again;
* release empties ``holderIdentity`` and shortens the duration to one second.

A holder that works longer than the duration keeps the lease by renewing it
(``renew``), and while it works, every third of the duration (``kept``: the
ratio of client-go's RetryPeriod to LeaseDuration, in its spirit). Renewing needs
no knowledge of the duration: the one stored by whoever took the lease is kept.

One difference: client-go times expiry from when *it* first observed the
record (immune to clock skew, but a newcomer always waits a full duration);
here expiry is ``renewTime + leaseDurationSeconds`` on the local clock, so the
lease of a run that crashed long ago is free at once. Node clocks are assumed
synchronised (NTP), as Kubernetes itself assumes for certificates and tokens.
"""

from __future__ import annotations

import contextlib
import datetime
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from vaultflow.base.errors import OperationError
from vaultflow.base.retry import poll_until
from vaultflow.steps.kube.errors import kube_errors

POLL_SECONDS = 2.0  # client-go's RetryPeriod for its own components
JOIN_SECONDS = 10.0  # how long the end of a ``kept`` block waits for a renewal in flight


class LeaseHeld(OperationError):
    """Someone else holds the lease (the message names them and when it expires)."""


class LeaseLost(OperationError):
    """The lease no longer names this holder: released, or taken over after it expired."""


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass(frozen=True)
class LeaseRecord:
    """Who holds a lease, and until when."""

    holder: str
    renewed: datetime.datetime | None
    duration_seconds: int

    @property
    def expires(self) -> datetime.datetime | None:
        if self.renewed is None:
            return None
        return self.renewed + datetime.timedelta(seconds=self.duration_seconds)

    def held_at(self, moment: datetime.datetime) -> bool:
        expires = self.expires
        return bool(self.holder) and expires is not None and expires > moment


class LeaseLock:
    """Lease ``namespace/name`` held as ``holder`` for ``duration_seconds`` after each renewal.

    ``duration_seconds`` is what taking the lease writes; ``renew`` keeps the stored one.
    """

    def __init__(
        self,
        namespace: str,
        name: str,
        holder: str,
        *,
        duration_seconds: int,
        context: str | None = None,
        api: Any = None,
    ) -> None:
        if not holder:
            raise OperationError(f"Lease {namespace}/{name}: a holder identity is required")
        self.namespace = namespace
        self.name = name
        self.holder = holder
        self.duration_seconds = duration_seconds
        self.context = context
        self._api = api

    @property
    def location(self) -> str:
        where = f" (context {self.context})" if self.context else ""
        return f"Lease {self.namespace}/{self.name}{where}"

    def _coordination(self) -> Any:
        if self._api is None:
            from kubernetes import client

            from vaultflow.steps.kube import api_client

            self._api = client.CoordinationV1Api(api_client(self.context))
        return self._api

    @staticmethod
    def _record(lease: Any) -> LeaseRecord:
        spec = lease.spec
        return LeaseRecord(
            holder=spec.holder_identity or "",
            renewed=spec.renew_time,
            duration_seconds=int(spec.lease_duration_seconds or 0),
        )

    def _read(self) -> Any | None:
        from kubernetes.client.exceptions import ApiException

        with kube_errors(self.location, "read it"):
            try:
                return self._coordination().read_namespaced_lease(self.name, self.namespace)
            except ApiException as error:
                if error.status == 404:
                    return None
                raise

    def current(self) -> LeaseRecord | None:
        """The lease's record as stored (None when there is no Lease)."""
        lease = self._read()
        return None if lease is None else self._record(lease)

    def held_by_me(self) -> bool:
        record = self.current()
        return record is not None and record.holder == self.holder and record.held_at(_now())

    def _write(self, lease: Any | None, now: datetime.datetime, *, keep_duration: bool = False) -> bool:
        """Create or replace the record with ourselves as holder; False when another write won.
        ``keep_duration``: a renewal, which keeps the duration the lease was taken with."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        coordination = self._coordination()
        with kube_errors(self.location, "write it"):
            try:
                if lease is None:
                    spec = client.V1LeaseSpec(
                        holder_identity=self.holder,
                        lease_duration_seconds=self.duration_seconds,
                        acquire_time=now,
                        renew_time=now,
                        lease_transitions=0,
                    )
                    body = client.V1Lease(
                        metadata=client.V1ObjectMeta(
                            name=self.name,
                            namespace=self.namespace,
                            labels={"app.kubernetes.io/managed-by": "vaultflow"},
                        ),
                        spec=spec,
                    )
                    coordination.create_namespaced_lease(self.namespace, body)
                    return True
                spec = lease.spec
                if spec.holder_identity != self.holder:
                    spec.acquire_time = now
                    spec.lease_transitions = int(spec.lease_transitions or 0) + (
                        1 if spec.holder_identity else 0
                    )
                    spec.holder_identity = self.holder
                spec.renew_time = now
                if not keep_duration or not spec.lease_duration_seconds:
                    spec.lease_duration_seconds = self.duration_seconds
                coordination.replace_namespaced_lease(self.name, self.namespace, lease)
                return True
            except ApiException as error:
                if error.status == 409:  # someone else created or changed it since our read
                    return False
                raise

    def try_acquire(self) -> LeaseRecord | None:
        """Take (or, as its holder, renew) the lease: None on success, else the other holder's record."""
        while True:
            lease, now = self._read(), _now()
            if lease is not None:
                record = self._record(lease)
                if record.holder != self.holder and record.held_at(now):
                    return record
            if self._write(lease, now):
                return None

    def acquire(self, wait_seconds: float) -> None:
        """Take the lease, waiting up to ``wait_seconds`` for its holder to release it or let it expire."""
        seen: list[LeaseRecord] = []  # the holder last seen, for the message
        broke: list[OperationError] = []  # an API failure, which ends the wait as itself

        def attempt() -> LeaseRecord | None:
            try:
                other = self.try_acquire()
            except OperationError as error:
                broke.append(error)
                raise
            if other is not None:
                seen[:] = [other]
            return other

        try:
            poll_until(
                attempt,
                lambda other: other is None,
                what=f"{self.location}",
                timeout=wait_seconds,
                initial=0.05,
                maximum=POLL_SECONDS,
                describe=lambda _: "",
            )
        except OperationError:
            if broke or not seen:
                raise
            other = seen[0]
            expires = other.expires.isoformat(timespec="seconds") if other.expires else "never"
            raise LeaseHeld(
                f"{self.location} is held by {other.holder} until {expires} unless it renews it: "
                f"another run holds the lock (waited {wait_seconds:.0f}s). If {other.holder} no longer "
                "runs, the lease frees itself at that time, or delete it "
                f"(kubectl -n {self.namespace} delete lease {self.name})"
            ) from None

    def renew(self) -> LeaseRecord:
        """As its holder, move ``renewTime`` to now (one read, one write); ``LeaseLost`` when the lease
        no longer names us. A lease that expired without anyone taking it still names us and is
        renewed: nobody else can have acted under it."""
        while True:
            lease, now = self._read(), _now()
            record = None if lease is None else self._record(lease)
            if record is None or record.holder != self.holder:
                raise LeaseLost(self._lost_message(record))
            if self._write(lease, now, keep_duration=True):
                return LeaseRecord(self.holder, now, record.duration_seconds or self.duration_seconds)

    def _lost_message(self, record: LeaseRecord | None) -> str:
        if record is None:
            now = "it no longer exists"
        elif record.holder:
            expires = record.expires.isoformat(timespec="seconds") if record.expires else "never"
            now = f"{record.holder} holds it now (until {expires})"
        else:
            now = "it was released"
        return (
            f"{self.location} is no longer held by {self.holder}: {now}. Another run may be working on "
            "the same system: stopping here"
        )

    @contextlib.contextmanager
    def kept(self) -> Iterator[LeaseRecord]:
        """Renew now, then every third of the lease's duration until the block ends, so that a block
        longer than the lease keeps it. A renewal that finds the lease lost ends the renewing and, once
        the block is over, raises ``LeaseLost`` (a block cannot safely be interrupted half-way); one
        that fails for another reason (the API server unreachable) is tried again a third later, and
        said at the end. The renewing thread prints nothing itself: under the local runner only the
        step's own thread writes to the step's log."""
        record = self.renew()
        interval = max(record.duration_seconds / 3, 0.1)
        stop = threading.Event()
        lost: list[LeaseLost] = []
        failures: list[str] = []

        def renew_until_stopped() -> None:
            while not stop.wait(interval):
                try:
                    self.renew()
                except LeaseLost as error:
                    lost.append(error)
                    return
                except OperationError as error:
                    failures.append(str(error))

        renewer = threading.Thread(target=renew_until_stopped, name=f"renew {self.name}", daemon=True)
        renewer.start()
        try:
            yield record
        finally:
            stop.set()
            renewer.join(JOIN_SECONDS)
        for failure in failures:
            print(f"renewing {self.location} failed once: {failure}", file=sys.stderr)
        if lost:
            raise lost[0]

    def release(self) -> bool:
        """Give the lease up if we hold it (client-go's release); False when someone else does."""
        from kubernetes.client.exceptions import ApiException

        while True:
            lease = self._read()
            if lease is None or self._record(lease).holder != self.holder:
                return False
            lease.spec.holder_identity = None
            lease.spec.lease_duration_seconds = 1
            lease.spec.renew_time = _now()
            with kube_errors(self.location, "release it"):
                try:
                    self._coordination().replace_namespaced_lease(self.name, self.namespace, lease)
                    return True
                except ApiException as error:
                    if error.status != 409:
                        raise
