"""Waiting on the sandbox's controllers, and reading what they did, without reading secret values.

The controller emulators are asynchronous, as the real ones are: the demo and
the tests wait for a state (``wait_for``) rather than sleeping. The readers
here return what a pipeline observes: Application sync and health, each
ExternalSecret's ``Ready`` condition, and the SHA-256 of each pushed cloud
value (a digest, never the value).
"""

from __future__ import annotations

import hashlib
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
class ApplicationState:
    name: str
    sync_status: str
    revision: str
    health: str
    operation_phase: str
    operation_message: str

    def synced_at(self, revision: str) -> bool:
        return (
            self.sync_status == "Synced" and self.revision == revision and self.operation_phase == "Succeeded"
        )


def application_state(application: JsonObject) -> ApplicationState:
    status = application.get("status") or {}
    operation = status.get("operationState") or {}
    return ApplicationState(
        name=application["metadata"]["name"],
        sync_status=str((status.get("sync") or {}).get("status", "Unknown")),
        revision=str((status.get("sync") or {}).get("revision", "")),
        health=str((status.get("health") or {}).get("status", "Unknown")),
        operation_phase=str(operation.get("phase", "")),
        operation_message=str(operation.get("message", "")),
    )


def digest(value: bytes | str) -> str:
    """How the demo shows a secret value: ``sha256:<first 16 hex digits>``."""
    data = value.encode() if isinstance(value, str) else value
    return "sha256:" + hashlib.sha256(data).hexdigest()[:16]


# ---------------------------------------------------------------- what the demo shows


@dataclass(frozen=True)
class ExternalSecretState:
    cluster: str
    namespace: str
    name: str
    ready: bool
    reason: str
    data_hash: str  # the managed Secret's reconcile.external-secrets.io/data-hash, "" when it has none


@dataclass(frozen=True)
class PushedValue:
    cloud: str
    provider: str
    remote_key: str
    digest: str | None  # sha256 of the remote value; None when the remote secret does not exist


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
    """Wait until every named Application is Synced at ``revision``, its sync Succeeded, and Healthy."""

    def named() -> list[ApplicationState]:
        current = {a.name: a for a in applications(state)}
        return [current[name] for name in names if name in current]

    def settled(found: list[ApplicationState]) -> bool:
        return len(found) == len(names) and all(
            a.synced_at(revision) and a.health == "Healthy" for a in found
        )

    def words(found: list[ApplicationState]) -> str:
        seen = {a.name: f"{a.name} {a.sync_status} at {a.revision[:12] or '-'}, {a.health}" for a in found}
        return "; ".join(seen.get(name, f"{name} missing") for name in names)

    return poll_until(
        named,
        settled,
        what=f"Applications {', '.join(names)} Synced at {revision[:12]}",
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
                    data_hash=annotations.get("reconcile.external-secrets.io/data-hash", ""),
                )
            )
    return found


def pushed_values(state: Any, loaded: Any) -> list[PushedValue]:
    """The digest of every catalog push as it is in its cloud now, read with the cloud's real SDK."""
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
            values.append(
                PushedValue(
                    cloud.name, cloud.provider, push.remote_key, digest(raw) if raw is not None else None
                )
            )
    return values


def _aws_value(state: Any, region: str, name: str) -> bytes | None:
    import boto3

    secrets = boto3.client(
        "secretsmanager",
        region_name=region,
        endpoint_url=state.aws_endpoint,
        aws_access_key_id="sandbox",
        aws_secret_access_key="sandbox",  # noqa: S106 (moto accepts any credentials)
    )
    try:
        found = secrets.get_secret_value(SecretId=name)
    except secrets.exceptions.ResourceNotFoundException:
        return None
    return bytes(found["SecretBinary"]) if "SecretBinary" in found else str(found["SecretString"]).encode()


def _gcp_value(state: Any, project: str, key: str) -> bytes | None:
    from google.api_core import exceptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import secretmanager

    manager = secretmanager.SecretManagerServiceClient(
        transport="rest",
        client_options={"api_endpoint": state.gcp_endpoint},
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
    )
    try:
        response = manager.access_secret_version(name=f"projects/{project}/secrets/{key}/versions/latest")
    except exceptions.NotFound:
        return None
    return bytes(response.payload.data)


def _azure_value(state: Any, vault_url: str, name: str) -> bytes | None:
    from urllib.parse import urlsplit

    from azure.core.exceptions import ResourceNotFoundError
    from azure.keyvault.secrets import SecretClient

    from vaultflow.sandbox.azure.credential import StaticTokenCredential

    vault_name = (urlsplit(vault_url).hostname or "").removesuffix(".vault.azure.net")
    with SecretClient(
        state.azure_vault_url(vault_name),
        StaticTokenCredential(),
        connection_verify=state.ca_file,
        verify_challenge_resource=False,
    ) as secrets:
        try:
            value = secrets.get_secret(name.removeprefix("secret/")).value
        except ResourceNotFoundError:
            return None
    return value.encode() if value is not None else None
