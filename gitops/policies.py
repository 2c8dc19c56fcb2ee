"""Least-privilege Vault policies, derived from the catalog.

* ``eso-<cluster>``: what ESO in one cluster may do: read exactly the KV v2
  data paths that cluster's ExternalSecrets name, nothing else (no list, no
  metadata, no write). A cluster cannot read another cluster's secrets.
  The extra paths are the cluster's own smoke-test canary
  (``vaultflow/smoke-test/<cluster>``), which holds no secret and exists only
  while the bootstrap pipeline's smoke test runs, and the text of this very
  policy (``sys/policies/acl/eso-<cluster>``), which preflight compares with
  the rendered one as ESO itself.
* ``vaultflow-rotation-<k>``, the shards of what the rotation workflow may do
  (``vaultflow.gitops.rotation_shards``): read and write (check-and-set) the
  data of rotated secrets, read their metadata to learn the current version,
  and patch their custom metadata to record the run. Nothing else. Each shard
  covers a stable subset of the rotated secrets, so that a token holding only
  the shards a batch needs costs Vault little per request.
* ``vaultflow-rotation``: beside every shard on the rotation role's token:
  create a child token (of a subset of its own policies, as Vault allows no
  other) for one batch. Nothing else.
* ``vaultflow-bootstrap``: what the bootstrap workflow's own identity may do
  without a root token: start and advance a root token generation, which
  also needs a quorum of unseal shares. Nothing else.

The output is deterministic: paths sorted, no timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass

from vaultflow.gitops.catalog.model import Catalog
from vaultflow.gitops.catalog.placement import Plan
from vaultflow.gitops.rotation_shards import ROTATION_SHARD_PREFIX, RotationShards

ROTATION_POLICY = "vaultflow-rotation"
BOOTSTRAP_POLICY = "vaultflow-bootstrap"
OBSERVER_POLICY = "vaultflow-observer"
# Paths vaultflow keeps for itself under the KV mount (canaries, records; never a catalog secret).
INTERNAL_PREFIX = "vaultflow"
CANARY_PREFIX = f"{INTERNAL_PREFIX}/smoke-test"
REVIEWER_RECORD_PREFIX = f"{INTERNAL_PREFIX}/kubernetes-auth"
# The record's custom metadata key: the reviewer JWT's expiry, RFC 3339 (or "never").
REVIEWER_EXPIRY = "vaultflow.io/reviewer-token-expires-at"
_HEADER = "# Rendered by `vaultflow render` from the secrets catalog. Do not edit by hand.\n"


@dataclass(frozen=True)
class VaultPolicy:
    name: str
    hcl: str


def eso_policy_name(cluster: str) -> str:
    return f"eso-{cluster}"


def kv_data_path(mount: str, path: str) -> str:
    return f"{mount}/data/{path}"


def acl_policy_path(name: str) -> str:
    """Where Vault serves an ACL policy's text (``sys/policies/acl/<name>``)."""
    return f"sys/policies/acl/{name}"


def kv_metadata_path(mount: str, path: str) -> str:
    return f"{mount}/metadata/{path}"


def _stanza(path: str, capabilities: list[str]) -> str:
    quoted = ", ".join(f'"{capability}"' for capability in capabilities)
    return f'path "{path}" {{\n  capabilities = [{quoted}]\n}}\n'


def _policy(name: str, purpose: str, stanzas: list[str]) -> VaultPolicy:
    body = "\n".join(stanzas) if stanzas else "# No paths: this role may do nothing.\n"
    return VaultPolicy(name=name, hcl=f"{_HEADER}# {purpose}\n\n{body}")


def eso_policies(catalog: Catalog, plan: Plan) -> list[VaultPolicy]:
    """One read-only policy per cluster, covering the paths its ExternalSecrets read."""
    mount = catalog.vault.kv_mount
    policies = []
    for cluster in sorted(c.name for c in catalog.clusters):
        paths = sorted({es.secret.path for es in plan.external_secrets if es.cluster == cluster})
        paths.append(canary_path(cluster))
        stanzas = [_stanza(kv_data_path(mount, path), ["read"]) for path in paths]
        stanzas.append(_stanza(acl_policy_path(eso_policy_name(cluster)), ["read"]))
        policies.append(
            _policy(
                eso_policy_name(cluster),
                f"External Secrets Operator in cluster {cluster}: read-only, exactly these paths.",
                stanzas,
            )
        )
    return policies


def rotation_shard_policies(catalog: Catalog) -> list[VaultPolicy]:
    """Write access to the rotated secrets only, one policy per shard (an empty shard may do nothing).

    Data: read a version and write the next one (check-and-set). Metadata: read
    the current version, and patch the custom metadata where a run records
    itself (run id, state, versions, time: never a value).
    """
    mount = catalog.vault.kv_mount
    shards = RotationShards(catalog)
    policies = []
    for shard, paths in shards.members().items():
        stanzas = []
        for path in paths:
            stanzas.append(_stanza(kv_data_path(mount, path), ["create", "read", "update"]))
            stanzas.append(_stanza(kv_metadata_path(mount, path), ["read", "patch"]))
        purpose = (
            f"Rotation workflow, shard {shard} of {shards.count}: "
            "write (check-and-set) only these secrets that rotate."
        )
        policies.append(_policy(shards.names()[shard], purpose, stanzas))
    return policies


# What a rotate step may send to auth/token/create, nothing else (no orphan, period, role or use
# limit): its child token holds a subset of the parent's policies, as Vault allows no other.
_CHILD_TOKEN_PARAMETERS = ("display_name", "no_default_policy", "policies", "renewable", "ttl")


def rotation_policy(catalog: Catalog) -> VaultPolicy:
    """What the rotation role's token holds beside every shard: creating a child token for one batch.

    Vault gives a child token (``auth/token/create``, no ``sudo``) only policies its parent holds,
    and revokes it with its parent; the parameters it may set are listed, so it cannot ask for an
    orphan, a periodic token or a role's.
    """
    del catalog  # the same for every catalog: the paths are in the shards
    allowed = "".join(f'    "{name}" = []\n' for name in _CHILD_TOKEN_PARAMETERS)
    stanza = (
        'path "auth/token/create" {\n  capabilities = ["update"]\n'
        f"  allowed_parameters = {{\n{allowed}  }}\n}}\n"
    )
    # What the rotate steps used from Vault's ``default`` policy, which the rotation role hands out
    # no longer (each request with it cost Vault about twice the CPU): the parent's look-up of its own
    # policies and TTL (steps/rotation/batch_token.py), and each token's revocation of itself.
    own = [_stanza("auth/token/lookup-self", ["read"]), _stanza("auth/token/revoke-self", ["update"])]
    return _policy(
        ROTATION_POLICY,
        "Rotation workflow: a child token for one batch, holding only that batch's shards.",
        [stanza, *own],
    )


def rotation_policies(catalog: Catalog) -> list[VaultPolicy]:
    """The rotation role's policies: ``vaultflow-rotation``, every shard, and the credential staging one."""
    return [rotation_policy(catalog), *rotation_shard_policies(catalog), *credential_staging_policy(catalog)]


CREDENTIAL_POLICY = "vaultflow-rotation-credentials"
# Where a credential rotation stages a new value before it is set, tested and promoted
# (steps/rotation/credential.py). No ESO policy ever grants a path under it: no consumer reads it.
CREDENTIAL_STAGING_PREFIX = f"{INTERNAL_PREFIX}/credential-staging"


def credential_staging_policy(catalog: Catalog) -> list[VaultPolicy]:
    """``vaultflow-rotation-credentials`` (none when no secret's rotation names a ``credential``):
    read and write (check-and-set) each such secret's staging entry and record the run in its
    metadata, delete it once promoted, and read the admin login its ``credential.admin`` names."""
    mount = catalog.vault.kv_mount
    checked = sorted(
        (s for s in catalog.secrets if s.rotation is not None and s.rotation.credential is not None),
        key=lambda s: s.path,
    )
    if not checked:
        return []
    stanzas, admins = [], set()
    for secret in checked:
        staging = f"{CREDENTIAL_STAGING_PREFIX}/{secret.path}"
        stanzas.append(_stanza(kv_data_path(mount, staging), ["create", "read", "update"]))
        stanzas.append(_stanza(kv_metadata_path(mount, staging), ["read", "patch", "delete"]))
        credential = secret.rotation.credential if secret.rotation else None
        if credential is not None and credential.admin is not None:
            admins.add(credential.admin.path)
    stanzas += [_stanza(kv_data_path(mount, path), ["read"]) for path in sorted(admins)]
    purpose = "Rotation workflow: stage credentials before they are set and tested, read the admin logins."
    return [_policy(CREDENTIAL_POLICY, purpose, stanzas)]


def observer_policy(catalog: Catalog) -> VaultPolicy:
    """What the exporter and the audit read: every secret's metadata (never its data), the policies
    vaultflow renders (to compare them), each cluster's ESO role (its token TTLs), and the revocation
    of its own token (its role hands out no ``default`` policy, which would otherwise grant that).

    Its size does not grow with the catalog: Vault builds the token's ACL from its policies on every
    request, and the exporter sends one per catalog path per scrape. The rotation's shards and its
    credential staging policy (``vaultflow-rotation-<k>``, ``vaultflow-rotation-credentials``) are
    one glob, not a stanza each."""
    mount = catalog.vault.kv_mount
    auth = catalog.vault.kubernetes_auth
    names = [
        *(eso_policy_name(c.name) for c in sorted(catalog.clusters, key=lambda c: c.name)),
        ROTATION_POLICY,
        f"{ROTATION_SHARD_PREFIX}*",  # the shards and CREDENTIAL_POLICY
        BOOTSTRAP_POLICY,
        OBSERVER_POLICY,
    ]
    stanzas = [_stanza(f"{mount}/metadata/*", ["read", "list"])]
    stanzas += [_stanza(acl_policy_path(name), ["read"]) for name in names]
    stanzas += [_stanza("auth/token/revoke-self", ["update"])]
    stanzas += [
        _stanza(f"auth/{cluster.auth_mount(auth)}/role/{auth.eso_role}", ["read"])
        for cluster in sorted(catalog.clusters, key=lambda c: c.name)
    ]
    return _policy(
        OBSERVER_POLICY,
        "The exporter and the audit: read-only; metadata of every secret, never a value.",
        stanzas,
    )


def canary_path(cluster: str) -> str:
    """The smoke-test canary of ``cluster``'s ESO role, relative to the KV mount."""
    return f"{CANARY_PREFIX}/{cluster}"


def reviewer_record_path(cluster: str) -> str:
    """Where configure records the expiry of ``cluster``'s token reviewer JWT (KV metadata only, no data)."""
    return f"{REVIEWER_RECORD_PREFIX}/{cluster}"


def bootstrap_policy() -> VaultPolicy:
    return _policy(
        BOOTSTRAP_POLICY,
        "Bootstrap workflow without root: generate a root token, which also takes a quorum of unseal shares.",
        [_stanza("sys/generate-root-token/*", ["create", "read", "update", "delete"])],
    )


def all_policies(catalog: Catalog, plan: Plan) -> list[VaultPolicy]:
    policies = [*eso_policies(catalog, plan), *rotation_policies(catalog), bootstrap_policy()]
    return [*policies, observer_policy(catalog)]
