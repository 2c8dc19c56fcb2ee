"""After a fault is lifted: ask ESO and Argo CD to try again now, as an operator would, without waiting.

Neither controller is stuck for ever, but neither tries again soon on its own:

* ESO retries a store, an ExternalSecret or a PushSecret whose reconcile failed
  with a backoff that doubles up to 7 minutes. Its SecretStore and
  ClusterSecretStore controllers have no event filter (``For`` the store
  without predicates, pkg/controllers/secretstore/*_controller.go), so any
  change to a store reconciles it, which validates it again: ``revalidate_stores``
  annotates the stores whose ``Ready`` is ``False`` with ``InvalidProviderConfig``.
  An ExternalSecret or PushSecret is reconciled when its annotations change
  (``force-sync``): ``force_sync_failed`` annotates those whose ``Ready`` is
  ``False``.
* Argo CD does not sync again a revision whose automated sync failed
  (``Skipping auto-sync: failed previous sync attempt``, controller/appcontroller.go
  ``autoSync``), and a failed sync waiting for its next retry may wait minutes
  (the backoff doubles up to ``maxDuration``). ``resync_failed_applications``
  does what ``argocd app terminate-op`` and ``argocd app sync`` do: it sets
  ``operationState.phase: Terminating`` on a sync waiting to retry a failed
  attempt, then ``operation.sync.revision`` on an app whose last sync of
  that revision failed.

Each acts only on failures recorded ``before`` a moment (when the demo run
began: what fails during the run is the fault still in force, which the wait
names) and returns one line per thing it asked for (names and ESO's or Argo
CD's messages, never a value).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any, Literal

from vaultflow.base.errors import OperationError
from vaultflow.base.retry import poll_until
from vaultflow.sandbox.observe import JsonObject, ready_condition
from vaultflow.steps.kube.errors import kube_errors
from vaultflow.steps.rotation.force_sync import force_sync

ESO_GROUP = "external-secrets.io"
REVALIDATE_ANNOTATION = "vaultflow.io/revalidate"  # any change makes ESO validate a store again
INITIATOR = "vaultflow-demo"
_STORES = (("SecretStore", "secretstores"), ("ClusterSecretStore", "clustersecretstores"))
_RECONCILED: tuple[tuple[Literal["ExternalSecret", "PushSecret"], str, str], ...] = (
    ("ExternalSecret", "v1", "externalsecrets"),
    ("PushSecret", "v1alpha1", "pushsecrets"),
)


def request_token() -> str:
    """The value the annotations carry: when they were asked for (a new value is a new change)."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class StoreRef:
    kind: str
    namespace: str
    name: str

    def describe(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


def _recorded_before(timestamp: Any, moment: float) -> bool:
    """Whether an RFC 3339 time a controller wrote (``lastTransitionTime``, ``finishedAt``) is before
    ``moment`` (seconds since the epoch); a missing or unreadable one is not."""
    try:
        return datetime.datetime.fromisoformat(str(timestamp)).timestamp() < moment
    except ValueError:
        return False


def _failed_before(obj: JsonObject, moment: float) -> JsonObject | None:
    """The ``Ready`` condition of an ESO object when it is ``False`` since before ``moment``."""
    condition = ready_condition(obj) or {}
    failing = condition.get("status") == "False"
    return condition if failing and _recorded_before(condition.get("lastTransitionTime"), moment) else None


def _invalid(store: JsonObject, before: float) -> bool:
    condition = _failed_before(store, before) or {}
    return condition.get("reason") == "InvalidProviderConfig"


def _stores(api: Any) -> dict[StoreRef, JsonObject]:
    from kubernetes import client

    custom = client.CustomObjectsApi(api)
    found = {}
    for kind, plural in _STORES:
        for item in custom.list_cluster_custom_object(ESO_GROUP, "v1", plural).get("items", []):
            metadata = item["metadata"]
            found[StoreRef(kind, str(metadata.get("namespace") or ""), metadata["name"])] = item
    return found


def revalidate_stores(api: Any, token: str, *, before: float) -> list[tuple[StoreRef, str]]:
    """Annotate every store of the cluster that ESO found invalid, so that ESO validates it now; each
    with the message of its ``Ready`` condition."""
    from kubernetes import client

    custom = client.CustomObjectsApi(api)
    annotated = []
    for ref, store in sorted(_stores(api).items(), key=lambda item: item[0].describe()):
        if not _invalid(store, before):
            continue
        patch = {"metadata": {"annotations": {REVALIDATE_ANNOTATION: token}}}
        plural = dict(_STORES)[ref.kind]
        if ref.namespace:
            custom.patch_namespaced_custom_object(ESO_GROUP, "v1", ref.namespace, plural, ref.name, patch)
        else:
            custom.patch_cluster_custom_object(ESO_GROUP, "v1", plural, ref.name, patch)
        annotated.append((ref, str((ready_condition(store) or {}).get("message", ""))))
    return annotated


def wait_for_stores(api: Any, refs: list[StoreRef], *, timeout: float) -> list[str]:
    """Wait until ESO has validated ``refs`` again; the ones still not Ready, with ESO's reason and
    message, when ``timeout`` passes (the fault may not be lifted: the caller carries on)."""

    def still_invalid() -> list[str]:
        current = _stores(api)
        stuck = []
        for ref in refs:
            condition = ready_condition(current.get(ref) or {}) or {}
            if condition.get("status") != "True":
                reason = condition.get("reason", "no Ready condition")
                stuck.append(f"{ref.describe()} ({reason}: {condition.get('message', '')})")
        return stuck

    try:
        poll_until(still_invalid, lambda stuck: not stuck, what="stores", timeout=timeout, maximum=0.25)
    except OperationError:
        return still_invalid()
    return []


def force_sync_failed(api: Any, cluster: str, token: str, *, before: float) -> list[str]:
    """``force-sync`` every ExternalSecret and PushSecret whose ``Ready`` is ``False``.

    An ExternalSecret that a ClusterExternalSecret controls is left alone: ESO puts
    the ClusterExternalSecret's annotations back on it.
    """
    from kubernetes import client

    custom = client.CustomObjectsApi(api)
    done = []
    for kind, version, plural in _RECONCILED:
        for item in custom.list_cluster_custom_object(ESO_GROUP, version, plural).get("items", []):
            metadata, condition = item["metadata"], _failed_before(item, before)
            owners = {owner.get("kind") for owner in metadata.get("ownerReferences") or []}
            if condition is None or "ClusterExternalSecret" in owners:
                continue
            namespace, name = str(metadata.get("namespace", "")), str(metadata["name"])
            force_sync(api, cluster=cluster, kind=kind, namespace=namespace, name=name, run_id=token)
            done.append(f"{kind} {namespace}/{name} ({condition.get('message', '')})")
    return done


def _operation_state(app: JsonObject | None) -> JsonObject:
    return dict(((app or {}).get("status") or {}).get("operationState") or {})


def _phase(apps: dict[str, JsonObject], name: str) -> str:
    return str(_operation_state(apps.get(name)).get("phase", "-"))


def _waiting_to_retry(app: JsonObject, revision: str, before: float) -> bool:
    """A sync of ``revision`` whose attempt failed before ``before`` and that waits for its next one
    (Argo CD writes phase Running with ``finishedAt`` then)."""
    state = _operation_state(app)
    synced = (state.get("syncResult") or {}).get("revision")
    failed = _recorded_before(state.get("finishedAt"), before)
    return state.get("phase") == "Running" and failed and synced == revision


def _failed_at(app: JsonObject, revision: str) -> bool:
    """The last sync of ``revision`` failed and nothing else is requested: Argo CD will not retry it."""
    state = _operation_state(app)
    synced = (state.get("syncResult") or {}).get("revision")
    return state.get("phase") in ("Failed", "Error") and synced == revision and not app.get("operation")


def _sync_request(app: JsonObject, revision: str) -> JsonObject:
    """The ``operation`` Argo CD's API server sets for ``argocd app sync --revision R [--prune]``."""
    spec = app.get("spec") or {}
    policy = spec.get("syncPolicy") or {}
    sync: JsonObject = {"revision": revision, "prune": bool((policy.get("automated") or {}).get("prune"))}
    if spec.get("source"):
        sync["source"] = spec["source"]
    return {"sync": sync, "initiatedBy": {"username": INITIATOR}, "retry": policy.get("retry") or {}}


def resync_failed_applications(
    api: Any, names: list[str], revision: str, *, before: float, timeout: float
) -> list[str]:
    """Terminate the named Applications' syncs waiting to retry an attempt at ``revision`` that failed
    before ``before``, then request a sync of ``revision`` for those and for each whose last sync of
    it failed before then; one line per request."""
    from kubernetes import client

    custom = client.CustomObjectsApi(api)
    group = ("argoproj.io", "v1alpha1")

    def current() -> dict[str, JsonObject]:
        listed = custom.list_cluster_custom_object(*group, "applications").get("items", [])
        return {item["metadata"]["name"]: item for item in listed if item["metadata"]["name"] in names}

    def patch(app: JsonObject, body: JsonObject) -> None:
        metadata = app["metadata"]
        custom.patch_namespaced_custom_object(
            *group, metadata["namespace"], "applications", metadata["name"], body
        )

    done, terminated = [], []
    for name, app in sorted(current().items()):
        if _waiting_to_retry(app, revision, before):
            # argocd app terminate-op; the Application has no status subresource: the phase is set on it
            patch(app, {"status": {"operationState": {"phase": "Terminating"}}})
            terminated.append(name)
            done.append(
                f"terminated the sync of {name} waiting to retry: {_operation_state(app).get('message')}"
            )
    if terminated:
        poll_until(
            current,
            lambda apps: all(_phase(apps, name) not in ("Running", "Terminating") for name in terminated),
            what=f"Argo CD to end the syncs of {', '.join(terminated)}",
            timeout=timeout,
            maximum=0.25,
            describe=lambda apps: "; ".join(f"{name} {_phase(apps, name)}" for name in terminated),
        )
    for name, app in sorted(current().items()):
        failed_before = _recorded_before(_operation_state(app).get("finishedAt"), before)
        if _failed_at(app, revision) and (name in terminated or failed_before):
            patch(app, {"operation": _sync_request(app, revision)})
            message = _operation_state(app).get("message", "")
            done.append(
                f"asked Argo CD to sync {name} at {revision[:12]} again (its last sync failed: {message})"
            )
    return done


def recover(
    state: Any,
    clusters: list[str],
    applications: list[str],
    revision: str,
    *,
    before: float,
    timeout: float = 30.0,
) -> list[str]:
    """All of the above for the sandbox's clusters, for failures recorded before ``before``, in the
    order that lets each step succeed: the stores first (an ExternalSecret or a sync wave waits on
    them), then ESO's objects, then Argo CD."""
    from kubernetes import config

    token = request_token()
    lines = []
    for cluster in clusters:
        with (
            config.new_client_from_config(config_file=state.kubeconfig, context=cluster) as api,
            kube_errors(f"cluster {cluster}", "ask ESO to try again"),
        ):
            stores = revalidate_stores(api, token, before=before)
            lines += [
                f"asked ESO in {cluster} to validate {ref.describe()} again ({message})"
                for ref, message in stores
            ]
            lines += [
                f"{cluster}: {stuck} is still not Ready"
                for stuck in wait_for_stores(api, [ref for ref, _ in stores], timeout=timeout)
            ]
            lines += [
                f"asked ESO in {cluster} to reconcile {what} now (force-sync)"
                for what in force_sync_failed(api, cluster, token, before=before)
            ]
    management = state.management_cluster.name
    with (
        config.new_client_from_config(config_file=state.kubeconfig, context=management) as api,
        kube_errors(f"cluster {management}", "ask Argo CD to sync again"),
    ):
        lines += resync_failed_applications(api, applications, revision, before=before, timeout=timeout)
    return lines
