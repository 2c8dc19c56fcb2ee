"""Where each ESO object of a catalog goes, and what it is called.

Both validation (name collisions, ownership conflicts) and rendering need the
same answers, so they are computed here once: one ``ExternalSecret`` per
consumer, one ``PushSecret`` per (secret, cloud, cluster, namespace), and a
dedicated *push source* ExternalSecret where a push has no consumer in its
namespace whose Secret already holds what is pushed.

Callers must have checked references first (clusters, clouds and keys exist).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vaultflow.gitops.catalog.errors import FieldPath
from vaultflow.gitops.catalog.model import (
    Catalog,
    Consumer,
    ConsumerKey,
    CreationPolicy,
    DeletionPolicy,
    Push,
    RefreshPolicy,
    Secret,
)
from vaultflow.gitops.names import k8s_name

PUSH_SOURCE_SUFFIX = "push-source"


@dataclass(frozen=True)
class PlannedExternalSecret:
    """One ExternalSecret: a consumer of the catalog, or the source Secret of pushes."""

    secret: Secret
    cluster: str
    namespace: str
    name: str
    target: str
    creation_policy: CreationPolicy
    deletion_policy: DeletionPolicy
    refresh_interval: str
    keys: tuple[ConsumerKey, ...] | None  # None: every key, through dataFrom.extract
    path: FieldPath  # where it is declared, for error messages
    for_pushes: bool = False  # a push source, not a consumer of the catalog
    refresh_policy: RefreshPolicy | None = None  # None: ESO's default (Periodic)


@dataclass(frozen=True)
class PlannedPushSecret:
    """One PushSecret: one push of a secret (or one key of it) to one cloud."""

    secret: Secret
    push: Push
    cluster: str
    namespace: str
    name: str
    source_secret: str
    source_key: str | None  # None: the whole Secret, pushed as a JSON object
    path: FieldPath


@dataclass
class Plan:
    external_secrets: list[PlannedExternalSecret] = field(default_factory=list)
    push_secrets: list[PlannedPushSecret] = field(default_factory=list)


def push_location(secret: Secret, push: Push) -> tuple[str, str] | None:
    """The (cluster, namespace) a push runs in: its own, else its secret's first consumer's."""
    first = secret.consumers[0] if secret.consumers else None
    cluster = push.cluster or (first.cluster if first else None)
    namespace = push.namespace or (first.namespace if first else None)
    if cluster is None or namespace is None:
        return None
    return cluster, namespace


def consumer_name(secret: Secret, consumer: Consumer) -> str:
    return consumer.name or k8s_name(secret.path)


def _source_key(consumer: Consumer, push: Push) -> tuple[bool, str | None]:
    """Can ``consumer``'s Secret feed ``push``, and under which key?"""
    if push.key is None:
        # The whole Secret is pushed: it must hold exactly the Vault secret.
        return (consumer.keys is None and consumer.creation_policy in ("Owner", "Orphan"), None)
    if consumer.keys is None:
        return True, push.key
    for key in consumer.keys:
        if key.property == push.key:
            return True, key.target_key()
    return False, None


def plan_catalog(catalog: Catalog) -> Plan:
    plan = Plan()
    for s_index, secret in enumerate(catalog.secrets):
        for c_index, consumer in enumerate(secret.consumers):
            plan.external_secrets.append(
                PlannedExternalSecret(
                    secret=secret,
                    cluster=consumer.cluster,
                    namespace=consumer.namespace,
                    name=consumer_name(secret, consumer),
                    target=consumer.secret_name,
                    creation_policy=consumer.creation_policy,
                    deletion_policy=consumer.deletion_policy,
                    refresh_interval=consumer.refresh_interval,
                    refresh_policy=consumer.refresh_policy,
                    keys=tuple(consumer.keys) if consumer.keys is not None else None,
                    path=("secrets", s_index, "consumers", c_index),
                )
            )
        _plan_pushes(plan, secret, s_index)
    return plan


def _plan_pushes(plan: Plan, secret: Secret, s_index: int) -> None:
    source_name = k8s_name(secret.path, PUSH_SOURCE_SUFFIX)
    per_cloud: dict[str, int] = {}
    for p_index, push in enumerate(secret.pushes):
        location = push_location(secret, push)
        if location is None:
            continue  # reported by the reference checks
        cluster, namespace = location
        feeding = [
            (consumer, key)
            for consumer in secret.consumers
            if consumer.cluster == cluster and consumer.namespace == namespace
            for ok, key in [_source_key(consumer, push)]
            if ok
        ]
        if feeding:
            source_consumer, source_key = feeding[0]
            source_secret = source_consumer.secret_name
        else:
            source_secret, source_key = source_name, push.key
            _ensure_push_source(
                plan, secret, cluster=cluster, namespace=namespace, name=source_name, s_index=s_index
            )
        per_cloud[push.cloud] = per_cloud.get(push.cloud, 0) + 1
        ordinal = per_cloud[push.cloud]
        plan.push_secrets.append(
            PlannedPushSecret(
                secret=secret,
                push=push,
                cluster=cluster,
                namespace=namespace,
                name=k8s_name(secret.path, "to", push.cloud, *([str(ordinal)] if ordinal > 1 else [])),
                source_secret=source_secret,
                source_key=source_key,
                path=("secrets", s_index, "pushes", p_index),
            )
        )


def _ensure_push_source(
    plan: Plan, secret: Secret, *, cluster: str, namespace: str, name: str, s_index: int
) -> None:
    for existing in plan.external_secrets:
        if (existing.cluster, existing.namespace, existing.name) == (cluster, namespace, name):
            return
    plan.external_secrets.append(
        PlannedExternalSecret(
            secret=secret,
            cluster=cluster,
            namespace=namespace,
            name=name,
            target=name,
            creation_policy="Owner",
            deletion_policy="Delete",
            refresh_interval="1h",
            keys=None,
            path=("secrets", s_index, "pushes"),
            for_pushes=True,
        )
    )
