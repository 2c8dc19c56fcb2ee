"""Checks that span more than one field: references, uniqueness and ownership.

Pydantic validates each field in isolation; these checks see the whole
catalog. Each finding is ``(field path, message)``; the loader turns the path
into a line and column.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator

from vaultflow.gitops.catalog.errors import FieldPath, format_field_path
from vaultflow.gitops.catalog.model import Catalog, Secret
from vaultflow.gitops.catalog.placement import Plan, PlannedExternalSecret, plan_catalog, push_location
from vaultflow.gitops.catalog.types import duration_seconds

Finding = tuple[FieldPath, str]

# What each cloud accepts as a secret name (the remote key of a push).
_REMOTE_KEY_RULES: dict[str, tuple[re.Pattern[str], str]] = {
    "aws": (re.compile(r"^[A-Za-z0-9/_+=.@!-]{1,512}$"), "letters, digits and /_+=.@!- (at most 512)"),
    "gcp": (re.compile(r"^[A-Za-z0-9_-]{1,255}$"), "letters, digits, '_' and '-' (at most 255)"),
    "azure": (re.compile(r"^[0-9a-zA-Z-]{1,127}$"), "letters, digits and '-' (at most 127)"),
}
_CREATING_POLICIES = ("Owner", "Orphan")


def check_catalog(catalog: Catalog) -> tuple[list[Finding], Plan | None]:
    """Every cross-field problem of ``catalog`` (empty when it is usable), and its placement plan.

    The plan is returned so that it is computed once per load: it is what
    rendering needs next. It is None when references are broken.
    """
    findings = [*_unique_names(catalog), *_references(catalog)]
    if findings:
        return findings, None  # placement assumes valid references
    plan = plan_catalog(catalog)
    return [*_name_collisions(plan), *_ownership(plan), *_remote_key_collisions(catalog)], plan


def _duplicates(values: list[str]) -> Iterator[tuple[int, str, int]]:
    """(index, value, index of first occurrence) for every repeated value."""
    first: dict[str, int] = {}
    for index, value in enumerate(values):
        if value in first:
            yield index, value, first[value]
        else:
            first[value] = index


def _unique_names(catalog: Catalog) -> Iterator[Finding]:
    for index, name, first in _duplicates([c.name for c in catalog.clusters]):
        yield ("clusters", index, "name"), f"cluster {name!r} is already defined at clusters[{first}]"
    auth = catalog.vault.kubernetes_auth
    mounts = [c.auth_mount(auth) for c in catalog.clusters]
    for index, mount, first in _duplicates(mounts):
        yield (
            ("clusters", index, "vaultAuthMount"),
            f"Vault auth mount {mount!r} is also used by clusters[{first}]: each cluster needs its own",
        )
    for index, name, first in _duplicates([c.name for c in catalog.clouds]):
        yield ("clouds", index, "name"), f"cloud {name!r} is already defined at clouds[{first}]"
    for index, path, first in _duplicates([s.path for s in catalog.secrets]):
        yield ("secrets", index, "path"), f"secret path {path!r} is already defined at secrets[{first}]"
    for s_index, secret in enumerate(catalog.secrets):
        for k_index, key, first in _duplicates(secret.key_names()):
            yield (
                ("secrets", s_index, "keys", k_index, "name"),
                f"key {key!r} is already defined at keys[{first}]",
            )


def _references(catalog: Catalog) -> Iterator[Finding]:
    clusters = {c.name for c in catalog.clusters}
    clouds = {c.name: c.provider for c in catalog.clouds}
    known_clusters = ", ".join(sorted(clusters))
    known_clouds = ", ".join(sorted(clouds)) or "none defined"
    by_path = {s.path: s for s in catalog.secrets}
    workflows = catalog.vault.kubernetes_auth.workflows_cluster
    if workflows is not None and workflows not in clusters:
        yield (
            ("vault", "kubernetesAuth", "workflowsCluster"),
            f"unknown cluster {workflows!r} (defined: {known_clusters})",
        )
    for s_index, secret in enumerate(catalog.secrets):
        base: FieldPath = ("secrets", s_index)
        keys = set(secret.key_names())
        for c_index, consumer in enumerate(secret.consumers):
            here = (*base, "consumers", c_index)
            if consumer.cluster not in clusters:
                yield (*here, "cluster"), f"unknown cluster {consumer.cluster!r} (defined: {known_clusters})"
            for k_index, key in enumerate(consumer.keys or []):
                if key.property not in keys:
                    yield (
                        (*here, "keys", k_index, "property"),
                        f"{key.property!r} is not a key of secret {secret.path!r} "
                        f"(keys: {', '.join(secret.key_names())})",
                    )
        for p_index, push in enumerate(secret.pushes):
            here = (*base, "pushes", p_index)
            if push.cloud not in clouds:
                yield (*here, "cloud"), f"unknown cloud {push.cloud!r} (defined: {known_clouds})"
            else:
                yield from _remote_key_format(here, push.remote_key, clouds[push.cloud])
            if push.cluster is not None and push.cluster not in clusters:
                yield (*here, "cluster"), f"unknown cluster {push.cluster!r} (defined: {known_clusters})"
            if push.key is not None and push.key not in keys:
                yield (
                    (*here, "key"),
                    f"{push.key!r} is not a key of secret {secret.path!r} "
                    f"(keys: {', '.join(secret.key_names())})",
                )
            if push_location(secret, push) is None:
                yield (
                    here,
                    "a push needs 'cluster' and 'namespace' (where its PushSecret runs) "
                    "when the secret has no consumers to take them from",
                )
        yield from _rotation(base, secret, clusters, by_path)


def _remote_key_format(here: FieldPath, remote_key: str, provider: str) -> Iterator[Finding]:
    pattern, allowed = _REMOTE_KEY_RULES[provider]
    if not pattern.match(remote_key):
        yield (*here, "remoteKey"), f"{remote_key!r} is not a valid {provider} secret name: use {allowed}"


def _rotation(
    base: FieldPath, secret: Secret, clusters: set[str], by_path: dict[str, Secret]
) -> Iterator[Finding]:
    if secret.rotation is None:
        return
    if not secret.generated_keys():
        yield (
            (*base, "rotation"),
            "every key is 'static': a rotation needs at least one generated key (password, random, uuid)",
        )
    for c_index, consumer in enumerate(secret.consumers):
        reason = unrefreshable(consumer.refresh_policy, consumer.refresh_interval)
        if reason is not None:
            field = "refreshPolicy" if consumer.refresh_policy == "CreatedOnce" else "refreshInterval"
            yield (
                (*base, "consumers", c_index, field),
                f"a rotated secret's consumer must pick up new values, but {reason}",
            )
    yield from _credential(base, secret, by_path)
    consumed = {(c.cluster, c.namespace) for c in secret.consumers}
    for w_index, workload in enumerate(secret.rotation.restart):
        here = (*base, "rotation", "restart", w_index)
        if workload.cluster not in clusters:
            yield (*here, "cluster"), f"unknown cluster {workload.cluster!r}"
        elif (workload.cluster, workload.namespace) not in consumed:
            yield (
                here,
                f"{workload.kind} {workload.namespace}/{workload.name} in cluster {workload.cluster!r} "
                f"does not consume {secret.path!r}: no consumer in that namespace",
            )


def _key_of(secret: Secret, here: FieldPath, key: str, what: str) -> Iterator[Finding]:
    if key not in secret.key_names():
        yield (
            here,
            f"{key!r} ({what}) is not a key of secret {secret.path!r} "
            f"(keys: {', '.join(secret.key_names())})",
        )


def _credential(base: FieldPath, secret: Secret, by_path: dict[str, Secret]) -> Iterator[Finding]:
    """The credential block names keys the secret has, and what its strategy needs."""
    assert secret.rotation is not None
    credential = secret.rotation.credential
    if credential is None:
        return
    here: FieldPath = (*base, "rotation", "credential")
    generators = {field.name: field.generator.type for field in secret.keys}
    yield from _key_of(secret, (*here, "usernameKey"), credential.username_key, "the username")
    yield from _key_of(secret, (*here, "passwordKey"), credential.password_key, "the password")
    if credential.username_key == credential.password_key:
        yield (*here, "passwordKey"), "the password and the username must be different keys"
    elif generators.get(credential.password_key) == "static":
        yield (
            (*here, "passwordKey"),
            f"key {credential.password_key!r} is static: the rotation generates the password, "
            "give it a password or random generator",
        )
    if generators.get(credential.username_key, "static") != "static":  # a missing key is reported above
        yield (
            (*here, "usernameKey"),
            f"key {credential.username_key!r} is generated: a username is what the database knows, "
            "make it static (alternating-users switches it between <user> and <user>_clone itself)",
        )
    if not isinstance(credential.host, str):
        yield from _key_of(secret, (*here, "host", "key"), credential.host.key, "the host")
    if credential.strategy == "alternating-users" and credential.admin is None:
        yield (
            (*here, "strategy"),
            "alternating-users needs 'admin': the Vault path of a user that may CREATE and ALTER ROLE "
            "(the pipeline sets the other user's password as that user)",
        )
    if credential.admin is not None:
        if credential.admin.path == secret.path:
            yield (*here, "admin", "path"), "the admin credential must be another secret than the rotated one"
        elif credential.admin.path in by_path:
            admin = by_path[credential.admin.path]
            yield from _key_of(
                admin, (*here, "admin", "usernameKey"), credential.admin.username_key, "username"
            )
            yield from _key_of(
                admin, (*here, "admin", "passwordKey"), credential.admin.password_key, "password"
            )
    if credential.sslmode == "disable" and not credential.host_is_loopback_literal():
        yield (
            (*here, "sslmode"),
            "sslmode 'disable' sends the password unencrypted: it is accepted only for a loopback host "
            "(127.0.0.1, ::1, localhost) written literally",
        )
    elif credential.ca_file is not None and credential.sslmode == "disable":
        yield (*here, "caFile"), "'caFile' has no effect with sslmode 'disable'"


def unrefreshable(refresh_policy: str | None, refresh_interval: str) -> str | None:
    """Why ESO would never refresh such an ExternalSecret after a rotation, or None when it would.

    ESO ignores the force-sync annotation for CreatedOnce, and for Periodic with a
    refreshInterval of 0 (pkg/controllers/externalsecret, shouldRefresh); OnChange
    refreshes on any change of the object's metadata, the annotation included.
    """
    if refresh_policy == "CreatedOnce":
        return "refreshPolicy CreatedOnce never refreshes (ESO ignores force-sync for it)"
    if refresh_policy in (None, "Periodic") and duration_seconds(refresh_interval) == 0:
        return "refreshInterval 0 with the Periodic policy never refreshes (ESO ignores force-sync for it)"
    return None


def _name_collisions(plan: Plan) -> Iterator[Finding]:
    seen: dict[tuple[str, str, str, str], FieldPath] = {}
    objects: list[tuple[str, str, str, str, FieldPath]] = [
        ("ExternalSecret", es.cluster, es.namespace, es.name, es.path) for es in plan.external_secrets
    ] + [("PushSecret", ps.cluster, ps.namespace, ps.name, ps.path) for ps in plan.push_secrets]
    for kind, cluster, namespace, name, path in objects:
        key = (kind, cluster, namespace, name)
        if key in seen:
            yield (
                (*path, "name") if path[-2] == "consumers" else path,
                f"{kind} {namespace}/{name} in cluster {cluster!r} would also be rendered for "
                f"{format_field_path(seen[key])}: set a distinct 'name'",
            )
        else:
            seen[key] = path


def _ownership(plan: Plan) -> Iterator[Finding]:
    """Two ExternalSecrets must not both own a Secret, nor write the same key of it."""
    writers: dict[tuple[str, str, str], list[int]] = defaultdict(list)
    for index, es in enumerate(plan.external_secrets):
        writers[(es.cluster, es.namespace, es.target)].append(index)
    for (cluster, namespace, target), indexes in writers.items():
        if len(indexes) < 2:
            continue
        first = plan.external_secrets[indexes[0]]
        for index in indexes[1:]:
            other = plan.external_secrets[index]
            where = f"Secret {namespace}/{target} in cluster {cluster!r}"
            if other.creation_policy in _CREATING_POLICIES or first.creation_policy in _CREATING_POLICIES:
                yield (
                    (*other.path, "secretName"),
                    f"{where} is already managed by {format_field_path(first.path)}; only one ExternalSecret "
                    "may own (creationPolicy Owner/Orphan) a Secret, others must use Merge",
                )
            else:
                overlap = _keys_written(first) & _keys_written(other)
                if overlap or None in (first.keys, other.keys):
                    shown = ", ".join(sorted(k for k in overlap if k)) or "every key"
                    yield (
                        (*other.path, "keys"),
                        f"{where}: {shown} also written by {format_field_path(first.path)}; "
                        "two ExternalSecrets would overwrite each other",
                    )


def _keys_written(es: PlannedExternalSecret) -> set[str]:
    return {key.target_key() for key in es.keys} if es.keys is not None else set()


def _remote_key_collisions(catalog: Catalog) -> Iterator[Finding]:
    seen: dict[tuple[str, str, str | None], FieldPath] = {}
    for s_index, secret in enumerate(catalog.secrets):
        for p_index, push in enumerate(secret.pushes):
            key = (push.cloud, push.remote_key, push.property)
            path: FieldPath = ("secrets", s_index, "pushes", p_index)
            if key in seen:
                yield (
                    (*path, "remoteKey"),
                    f"{push.remote_key!r} in cloud {push.cloud!r} is already pushed by "
                    f"{format_field_path(seen[key])}",
                )
            else:
                seen[key] = path
