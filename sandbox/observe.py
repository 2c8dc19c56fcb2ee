"""Waiting on the sandbox's controllers, and reading what they did, without reading secret values.

The controller emulators are asynchronous, as the real ones are: the demo and
the tests wait for a state (``wait_for``) rather than sleeping. The readers
here return what a pipeline observes: Application sync and health (and, when
it is not Healthy, the resources behind it, as Argo CD records them), each
ExternalSecret's ``Ready`` condition, and a keyed fingerprint of each pushed
cloud value (never the value, nor an unkeyed digest of it).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from vaultflow.base.retry import poll_until

T = TypeVar("T")
JsonObject = dict[str, Any]


def wait_for(condition: Callable[[], T | None], *, timeout: float = 30.0, what: str = "a condition") -> T:
    """Poll ``condition`` until it returns something truthy; ``OperationError`` naming ``what`` on timeout."""
    # The last observation was falsy (None, False, []): nothing worth repeating in the message.
    found = poll_until(
        condition, bool, what=what, timeout=timeout, initial=0.02, maximum=0.25, describe=lambda _: ""
    )
    return cast(T, found)  # truthy, so not None


def wait_for_all(
    observe: Callable[[], list[T]], attribute: str, describe: Callable[[T], str], *, what: str, timeout: float
) -> list[T]:
    """``observe()`` once every item has a truthy ``attribute``; on timeout the error names the items
    that have not (as ``describe`` words each)."""

    def missing(items: list[T]) -> str:
        return "; ".join(describe(item) for item in items if not getattr(item, attribute)) or "none found"

    return poll_until(
        observe,
        lambda items: bool(items) and all(getattr(item, attribute) for item in items),
        what=what,
        timeout=timeout,
        initial=0.02,
        maximum=0.25,
        describe=missing,
    )


def ready_condition(obj: JsonObject) -> JsonObject | None:
    """The ``Ready`` condition of an ESO object (ExternalSecret, PushSecret, store), if it has one."""
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return dict(condition)
    return None


def is_ready(obj: JsonObject) -> bool:
    condition = ready_condition(obj)
    return condition is not None and condition.get("status") == "True"


@dataclass(frozen=True)
class ResourceState:
    """One resource of an Application as Argo CD reports it: its health, or how its sync went."""

    kind: str
    namespace: str
    name: str
    status: str  # a health status (Degraded, Missing, ...) or a sync result (SyncFailed)
    message: str

    def describe(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {where}" + (f" ({self.message})" if self.message else "")


_CAUSES_SHOWN = 3  # as Argo CD words an app's health causes (controller/health.go formatHealthCauses)


@dataclass(frozen=True)
class ApplicationState:
    name: str
    sync_status: str
    revision: str
    health: str
    operation_phase: str
    operation_message: str
    # The resources whose health is the app's own when that is not Healthy (Argo CD's "causes"), and
    # the resources the last sync failed to apply.
    causes: tuple[ResourceState, ...] = ()
    failed: tuple[ResourceState, ...] = ()

    def synced_at(self, revision: str) -> bool:
        return (
            self.sync_status == "Synced" and self.revision == revision and self.operation_phase == "Succeeded"
        )

    def describe(self) -> str:
        """What is stuck, in one line: sync, health and the resources behind them, the last sync."""
        words = f"{self.name} {self.sync_status} at {self.revision[:12] or '-'}, {self.health}"
        if self.causes:
            words += f" ({_listed(self.causes)})"
        if self.operation_phase:
            words += f", last sync {self.operation_phase}: {self.operation_message}"
        if self.failed:
            words += f" (SyncFailed: {_listed(self.failed)})"
        return words


def _listed(resources: tuple[ResourceState, ...]) -> str:
    shown = "; ".join(r.describe() for r in resources[:_CAUSES_SHOWN])
    more = len(resources) - _CAUSES_SHOWN
    return shown + (f"; and {more} more" if more > 0 else "")


def _resource(entry: JsonObject, status: str, message: str) -> ResourceState:
    group = str(entry.get("group") or "")
    kind = f"{group}/{entry.get('kind', '')}" if group else str(entry.get("kind", ""))
    return ResourceState(kind, str(entry.get("namespace") or ""), str(entry.get("name", "")), status, message)


def application_state(application: JsonObject) -> ApplicationState:
    """An Application's state as Argo CD records it in its status.

    The resources behind an unhealthy app come from ``status.resources[].health``:
    Argo CD writes them there when the controller persists resource health
    (``--persist-resource-health``; Argo CD 3 defaults to keeping them in its
    resource tree, ``status.resourceHealthSource: appTree``, which only its API
    server serves); the sandbox's Argo CD persists them.
    """
    status = application.get("status") or {}
    operation = status.get("operationState") or {}
    health = str((status.get("health") or {}).get("status", "Unknown"))
    causes = tuple(
        _resource(entry, health, str((entry.get("health") or {}).get("message", "")))
        for entry in status.get("resources") or []
        if health != "Healthy" and (entry.get("health") or {}).get("status") == health
    )
    failed = tuple(
        _resource(result, "SyncFailed", str(result.get("message", "")))
        for result in (operation.get("syncResult") or {}).get("resources") or []
        if result.get("status") == "SyncFailed"
    )
    return ApplicationState(
        name=application["metadata"]["name"],
        sync_status=str((status.get("sync") or {}).get("status", "Unknown")),
        revision=str((status.get("sync") or {}).get("revision", "")),
        health=health,
        operation_phase=str(operation.get("phase", "")),
        operation_message=str(operation.get("message", "")),
        causes=causes,
        failed=failed,
    )


class Fingerprints:
    """How the demo shows that values are equal without showing them: HMAC-SHA256 under a key made
    for this run (or this test) and never written anywhere.

    An unkeyed digest of a secret is as good as the secret for anyone who can guess it (hash the
    candidates and compare); a keyed one says only "these two are the same" within one run.
    """

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)

    def of(self, data: bytes | str) -> str:
        message = data.encode() if isinstance(data, str) else data
        return "hmac:" + hmac.new(self._key, message, hashlib.sha256).hexdigest()[:16]


# ---------------------------------------------------------------- what the demo shows


@dataclass(frozen=True)
class ExternalSecretState:
    cluster: str
    namespace: str
    name: str
    ready: bool
    reason: str
    message: str
    data_hash: str  # the managed Secret's reconcile.external-secrets.io/data-hash, "" when it has none


@dataclass(frozen=True)
class PushedValue:
    cloud: str
    provider: str
    remote_key: str
    fingerprint: str | None  # the keyed fingerprint of the remote value; None when it does not exist


def applications(state: Any) -> list[ApplicationState]:
    """Every Argo CD Application in the sandbox's management cluster."""
    from kubernetes import client, config

    with config.new_client_from_config(
        config_file=state.kubeconfig, context=state.management_cluster.name
    ) as api:
        listed = client.CustomObjectsApi(api).list_cluster_custom_object(
            "argoproj.io", "v1alpha1", "applications"
        )
    return [application_state(item) for item in listed.get("items", [])]


def wait_for_applications(
    state: Any, revision: str, names: list[str], *, timeout: float = 120.0
) -> list[ApplicationState]:
    """Wait until every named Application is Synced at ``revision``, its sync Succeeded, and Healthy.

    On timeout the error names, for each Application, its sync state, health, the resources behind
    an unhealthy one with their health message (ESO's condition message for ESO's kinds) and how its
    last sync went.
    """

    def named() -> list[ApplicationState]:
        current = {a.name: a for a in applications(state)}
        return [current[name] for name in names if name in current]

    def settled(found: list[ApplicationState]) -> bool:
        return len(found) == len(names) and all(
            a.synced_at(revision) and a.health == "Healthy" for a in found
        )

    def words(found: list[ApplicationState]) -> str:
        seen = {a.name: a.describe() for a in found}
        return " | ".join(seen.get(name, f"{name} missing") for name in names)

    return poll_until(
        named,
        settled,
        what=f"Applications {', '.join(names)} Synced and Healthy at {revision[:12]}, their sync Succeeded",
        timeout=timeout,
        initial=0.02,
        maximum=0.25,
        describe=words,
    )


def external_secrets(state: Any, clusters: list[str]) -> list[ExternalSecretState]:
    """Every ExternalSecret of ``clusters`` with its Ready condition and its Secret's data hash."""
    from kubernetes import client, config

    found = []
    for cluster in clusters:
        with config.new_client_from_config(config_file=state.kubeconfig, context=cluster) as api:
            custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
            listed = custom.list_cluster_custom_object("external-secrets.io", "v1", "externalsecrets")
            secrets = {
                (s.metadata.namespace, s.metadata.name): (s.metadata.annotations or {})
                for s in core.list_secret_for_all_namespaces().items
            }
        for item in listed.get("items", []):
            metadata = item["metadata"]
            condition = ready_condition(item) or {}
            target = ((item.get("spec") or {}).get("target") or {}).get("name") or metadata["name"]
            annotations = secrets.get((metadata["namespace"], target), {})
            found.append(
                ExternalSecretState(
                    cluster=cluster,
                    namespace=metadata["namespace"],
                    name=metadata["name"],
                    ready=condition.get("status") == "True",
                    reason=str(condition.get("reason", "")),
                    message=str(condition.get("message", "")),
                    data_hash=annotations.get("reconcile.external-secrets.io/data-hash", ""),
                )
            )
    return found


def pushed_values(state: Any, loaded: Any, fingerprints: Fingerprints) -> list[PushedValue]:
    """Every catalog push as it is in its cloud now, read with the cloud's real SDK: its fingerprint
    under ``fingerprints`` (compare two with the same ``Fingerprints``), never the value."""
    from vaultflow.gitops.catalog.model import AwsCloud, GcpCloud

    values = []
    for secret in loaded.catalog.secrets:
        for push in secret.pushes:
            cloud = loaded.catalog.cloud(push.cloud)
            if isinstance(cloud, AwsCloud):
                raw = _aws_value(state, cloud.region, push.remote_key)
            elif isinstance(cloud, GcpCloud):
                raw = _gcp_value(state, cloud.project_id, push.remote_key)
            else:
                raw = _azure_value(state, cloud.vault_url, push.remote_key)
            shown = fingerprints.of(raw) if raw is not None else None
            values.append(PushedValue(cloud.name, cloud.provider, push.remote_key, shown))
    return values


def _aws_value(state: Any, region: str, name: str) -> bytes | None:
    import boto3

    secrets = boto3.client(
        "secretsmanager",
        region_name=region,
        endpoint_url=state.aws_endpoint,
        verify=state.ca_file or None,  # moto serves HTTPS from the sandbox CA
        aws_access_key_id="sandbox",
        aws_secret_access_key="sandbox",  # noqa: S106 (moto accepts any credentials)
    )
    try:
        found = secrets.get_secret_value(SecretId=name)
    except secrets.exceptions.ResourceNotFoundException:
        return None
    return bytes(found["SecretBinary"]) if "SecretBinary" in found else str(found["SecretString"]).encode()


def _emulators(state: Any) -> dict[str, str]:
    """The emulator variables ``vaultflow sandbox env`` exports, from ``state`` (all present, so the
    clients built from them can never be real-cloud ones)."""
    from vaultflow.steps.cloud_clients import AZURE_VAULTS, GCP_ENDPOINT, SANDBOX_CA

    return {
        GCP_ENDPOINT: state.gcp_endpoint,
        AZURE_VAULTS: ",".join(f"{vault.name}={vault.url}" for vault in state.azure_vaults),
        SANDBOX_CA: state.ca_file,
    }


def _gcp_value(state: Any, project: str, key: str) -> bytes | None:
    from google.api_core import exceptions

    from vaultflow.steps.cloud_clients import gcp_secret_manager

    manager = gcp_secret_manager(environ=_emulators(state))
    try:
        response = manager.access_secret_version(name=f"projects/{project}/secrets/{key}/versions/latest")
    except exceptions.NotFound:
        return None
    return bytes(response.payload.data)


def _azure_value(state: Any, vault_url: str, name: str) -> bytes | None:
    from azure.core.exceptions import ResourceNotFoundError

    from vaultflow.steps.cloud_clients import azure_secret_client

    with azure_secret_client(vault_url, environ=_emulators(state)) as secrets:
        try:
            value = secrets.get_secret(name.removeprefix("secret/")).value
        except ResourceNotFoundError:
            return None
    return value.encode() if value is not None else None
