"""Restart the workloads a rotated secret names, as ``kubectl rollout restart`` does, and wait for them.

A pod reads a Secret mounted as environment variables only when it starts, so
the catalog's ``rotation.restart`` names the workloads to restart once every
target is verified. The restart is kubectl's (pkg/polymorphichelpers
objectrestarter.go): the pod template gets the annotation
``kubectl.kubernetes.io/restartedAt`` (RFC 3339, now), a spec change that makes
the controller roll every pod. The step then waits until the rollout is done
by the rule of ``kubectl rollout status`` (pkg/polymorphichelpers
rollout_status.go), which ``rollout_status`` follows field for field.

The same merge patch sets ``vaultflow.io/restart-run=<run id>`` next to it:
two runs within one second (kubectl's timestamp has no fraction) still change
the template, and a retried step that finds its own run id there only waits
for the rollout it already started instead of rolling the pods twice. As
kubectl does, a paused Deployment is not restarted; a StatefulSet or DaemonSet
whose pods are replaced only when deleted (``OnDelete``) is not either: its
rollout would never finish.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel

from vaultflow.base.errors import OperationError
from vaultflow.base.retry import poll_until
from vaultflow.gitops.catalog.model import WorkloadRef
from vaultflow.steps.kube.errors import kube_errors

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
RESTART_RUN = "vaultflow.io/restart-run"
WorkloadKind = Literal["Deployment", "StatefulSet", "DaemonSet"]
_METHOD = {"Deployment": "deployment", "StatefulSet": "stateful_set", "DaemonSet": "daemon_set"}
_ROLLING = "RollingUpdate"


class WorkloadResult(BaseModel):
    """One workload's outcome: restarted and rolled out, or why not (what was last seen)."""

    cluster: str
    namespace: str
    kind: WorkloadKind
    name: str
    phase: Literal["Restarted", "Failed", "TimedOut"]
    message: str


@dataclass(frozen=True)
class RolloutStatus:
    """What ``kubectl rollout status`` would say: done, still waiting, or failed (and its words)."""

    state: Literal["done", "waiting", "failed"]
    message: str


def _count(status: Mapping[str, Any], field: str) -> int:
    return int(status.get(field) or 0)  # the API leaves zero counts out


def _deployment_status(obj: Mapping[str, Any]) -> RolloutStatus:
    name, spec, status = obj["metadata"]["name"], obj.get("spec") or {}, obj.get("status") or {}
    if int(obj["metadata"].get("generation") or 0) > _count(status, "observedGeneration"):
        return RolloutStatus("waiting", "Waiting for deployment spec update to be observed...")
    progressing = [c for c in status.get("conditions") or [] if c.get("type") == "Progressing"]
    if progressing and progressing[0].get("reason") == "ProgressDeadlineExceeded":
        return RolloutStatus("failed", f'deployment "{name}" exceeded its progress deadline')
    updated, replicas = _count(status, "updatedReplicas"), _count(status, "replicas")
    if spec.get("replicas") is not None and updated < int(spec["replicas"]):
        return RolloutStatus(
            "waiting", f"{updated} out of {spec['replicas']} new replicas have been updated..."
        )
    if replicas > updated:
        return RolloutStatus("waiting", f"{replicas - updated} old replicas are pending termination...")
    available = _count(status, "availableReplicas")
    if available < updated:
        return RolloutStatus("waiting", f"{available} of {updated} updated replicas are available...")
    return RolloutStatus("done", f'deployment "{name}" successfully rolled out')


def _stateful_set_status(obj: Mapping[str, Any]) -> RolloutStatus:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    strategy = spec.get("updateStrategy") or {}
    if strategy.get("type") != _ROLLING:
        return RolloutStatus("failed", "rollout status is only available for RollingUpdate strategy type")
    observed = _count(status, "observedGeneration")
    if observed == 0 or int(obj["metadata"].get("generation") or 0) > observed:
        return RolloutStatus("waiting", "Waiting for statefulset spec update to be observed...")
    ready = _count(status, "readyReplicas")
    if spec.get("replicas") is not None and ready < int(spec["replicas"]):
        return RolloutStatus("waiting", f"Waiting for {int(spec['replicas']) - ready} pods to be ready...")
    return _stateful_set_update(spec, status, strategy.get("rollingUpdate"))


def _stateful_set_update(
    spec: Mapping[str, Any], status: Mapping[str, Any], rolling: Mapping[str, Any] | None
) -> RolloutStatus:
    """The end of kubectl's StatefulSet rule: a partitioned roll out, or the revisions compared."""
    updated = _count(status, "updatedReplicas")
    if rolling is not None:
        if spec.get("replicas") is not None and rolling.get("partition") is not None:
            wanted = int(spec["replicas"]) - int(rolling["partition"])
            if updated < wanted:
                return RolloutStatus(
                    "waiting",
                    f"Waiting for partitioned roll out to finish: {updated} out of {wanted} "
                    "new pods have been updated...",
                )
        return RolloutStatus(
            "done", f"partitioned roll out complete: {updated} new pods have been updated..."
        )
    if status.get("updateRevision") != status.get("currentRevision"):
        return RolloutStatus(
            "waiting",
            f"waiting for statefulset rolling update to complete {updated} pods at revision "
            f"{status.get('updateRevision')}...",
        )
    return RolloutStatus(
        "done",
        f"statefulset rolling update complete {_count(status, 'currentReplicas')} pods at revision "
        f"{status.get('currentRevision')}...",
    )


def _daemon_set_status(obj: Mapping[str, Any]) -> RolloutStatus:
    name, spec, status = obj["metadata"]["name"], obj.get("spec") or {}, obj.get("status") or {}
    if (spec.get("updateStrategy") or {}).get("type") != _ROLLING:
        return RolloutStatus("failed", "rollout status is only available for RollingUpdate strategy type")
    if int(obj["metadata"].get("generation") or 0) > _count(status, "observedGeneration"):
        return RolloutStatus("waiting", "Waiting for daemon set spec update to be observed...")
    desired = _count(status, "desiredNumberScheduled")
    updated, available = _count(status, "updatedNumberScheduled"), _count(status, "numberAvailable")
    waiting = f'Waiting for daemon set "{name}" rollout to finish: '
    if updated < desired:
        return RolloutStatus("waiting", f"{waiting}{updated} out of {desired} new pods have been updated...")
    if available < desired:
        return RolloutStatus("waiting", f"{waiting}{available} of {desired} updated pods are available...")
    return RolloutStatus("done", f'daemon set "{name}" successfully rolled out')


def rollout_status(kind: WorkloadKind, obj: Mapping[str, Any]) -> RolloutStatus:
    """``kubectl rollout status``'s verdict on one workload (its JSON, as the API serves it)."""
    if kind == "Deployment":
        return _deployment_status(obj)
    if kind == "StatefulSet":
        return _stateful_set_status(obj)
    return _daemon_set_status(obj)


def restart_refusal(kind: WorkloadKind, obj: Mapping[str, Any]) -> str | None:
    """Why this workload is not restarted, or ``None``: paused, or its pods are never rolled."""
    spec = obj.get("spec") or {}
    if kind == "Deployment":
        return (
            "is paused (kubectl cannot restart it either until it is resumed)" if spec.get("paused") else None
        )
    strategy = (spec.get("updateStrategy") or {}).get("type")
    return (
        None
        if strategy == _ROLLING
        else f"has updateStrategy {strategy}: its pods are replaced only when deleted"
    )


def _where(ref: WorkloadRef) -> str:
    return f"{ref.kind} {ref.namespace}/{ref.name} in cluster {ref.cluster}"


def _result(
    ref: WorkloadRef, phase: Literal["Restarted", "Failed", "TimedOut"], message: str
) -> WorkloadResult:
    return WorkloadResult(
        cluster=ref.cluster,
        namespace=ref.namespace,
        kind=ref.kind,
        name=ref.name,
        phase=phase,
        message=message,
    )


class _Workloads:
    """Reads and patches workloads through the typed apps/v1 client; what it returns is the JSON."""

    def __init__(self, clients: Mapping[str, Any]) -> None:
        self._clients = clients

    def read(self, ref: WorkloadRef) -> dict[str, Any] | None:
        """The workload as the API serves it, or ``None`` if it does not exist."""
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        api = self._clients[ref.cluster]
        with kube_errors(_where(ref), "read it"):
            try:
                model = getattr(client.AppsV1Api(api), f"read_namespaced_{_METHOD[ref.kind]}")(
                    ref.name, ref.namespace
                )
            except ApiException as error:
                if error.status == 404:
                    return None
                raise
        result: dict[str, Any] = api.sanitize_for_serialization(model)
        return result

    def patch(self, ref: WorkloadRef, body: dict[str, Any]) -> dict[str, Any]:
        from kubernetes import client

        api = self._clients[ref.cluster]
        with kube_errors(_where(ref), "restart it"):
            model = getattr(client.AppsV1Api(api), f"patch_namespaced_{_METHOD[ref.kind]}")(
                ref.name, ref.namespace, body
            )
        result: dict[str, Any] = api.sanitize_for_serialization(model)
        return result


def restart_patch(run_id: str, now: datetime) -> dict[str, Any]:
    """kubectl's restart annotation on the pod template, and this run's id next to it."""
    restarted_at = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # Go's time.RFC3339
    annotations = {RESTARTED_AT: restarted_at, RESTART_RUN: run_id}
    return {"spec": {"template": {"metadata": {"annotations": annotations}}}}


def _unique(workloads: Iterable[WorkloadRef]) -> list[WorkloadRef]:
    seen: dict[tuple[str, str, str, str], WorkloadRef] = {}
    for ref in workloads:
        seen.setdefault((ref.cluster, ref.namespace, ref.kind, ref.name), ref)
    return list(seen.values())


def _start(
    api: _Workloads, ref: WorkloadRef, clients: Mapping[str, Any], run_id: str
) -> WorkloadResult | None:
    """Restart one workload; a result if it cannot be (it ends there), ``None`` if it now rolls out."""
    if ref.cluster not in clients:
        return _result(ref, "Failed", f"{_where(ref)}: the cluster is not one this run reaches")
    current = api.read(ref)
    if current is None:
        return _result(ref, "Failed", f"{_where(ref)} does not exist")
    refusal = restart_refusal(ref.kind, current)
    if refusal is not None:
        return _result(ref, "Failed", f"{_where(ref)} {refusal}")
    template = (current.get("spec") or {}).get("template") or {}
    if ((template.get("metadata") or {}).get("annotations") or {}).get(RESTART_RUN) != run_id:
        api.patch(ref, restart_patch(run_id, datetime.now(UTC)))
    return None


class _Ended(Exception):
    """An API failure while waiting: it ends the step, not the wait of one workload."""

    def __init__(self, error: OperationError) -> None:
        super().__init__(str(error))
        self.error = error


def restart_workloads(
    clients: Mapping[str, Any], workloads: Iterable[WorkloadRef], *, run_id: str, timeout: float
) -> list[WorkloadResult]:
    """Restart exactly ``workloads`` (each once), then wait up to ``timeout`` seconds for their rollouts.

    One result per workload, in the order given: ``Restarted`` once ``kubectl rollout status``
    would say done; ``Failed`` for a workload that does not exist, cannot be restarted or whose
    rollout failed; ``TimedOut`` with the last status seen. An API failure other than a missing
    workload raises one ``OperationError`` naming the workload.
    """
    api = _Workloads(clients)
    refs = _unique(workloads)
    results: dict[int, WorkloadResult] = {}
    for index, ref in enumerate(refs):
        ended = _start(api, ref, clients, run_id)
        if ended is not None:
            results[index] = ended
    last: dict[int, str] = {index: "not read yet" for index in range(len(refs)) if index not in results}
    started = time.monotonic()

    def observe() -> dict[int, str]:
        try:
            for index in list(last):
                ref = refs[index]
                current = api.read(ref)
                if current is None:
                    results[index] = _result(ref, "Failed", f"{_where(ref)} was deleted during its rollout")
                    del last[index]
                    continue
                verdict = rollout_status(ref.kind, current)
                if verdict.state == "waiting":
                    last[index] = verdict.message
                    continue
                phase: Literal["Restarted", "Failed"] = "Restarted" if verdict.state == "done" else "Failed"
                seconds = time.monotonic() - started
                results[index] = _result(ref, phase, f"{verdict.message} ({seconds:.1f}s)")
                del last[index]
        except OperationError as error:
            raise _Ended(error) from None
        return last

    try:
        poll_until(
            observe, lambda waiting: not waiting, what="workload rollouts", timeout=timeout, describe=str
        )
    except _Ended as ended:
        raise ended.error from None
    except OperationError:  # the deadline: what is still waiting timed out
        for index, seen in last.items():
            results[index] = _result(
                refs[index],
                "TimedOut",
                f"{_where(refs[index])}: rollout not finished after {timeout:g}s ({seen})",
            )
    return [results[index] for index in range(len(refs))]
