"""Least-privilege Vault policies, derived from the catalog.

* ``eso-<cluster>``: what ESO in one cluster may do: read exactly the KV v2
  data paths that cluster's ExternalSecrets name, nothing else (no list, no
  metadata, no write). A cluster cannot read another cluster's secrets.
  The extra paths are the cluster's own smoke-test canary
  (``vaultflow/smoke-test/<cluster>``), which holds no secret and exists only
  while the bootstrap pipeline's smoke test runs, and the text of this very
  policy (``sys/policies/acl/eso-<cluster>``), which preflight compares with
  the rendered one as ESO itself.
* ``vaultflow-rotation``: what the rotation workflow may do: read and write
  (check-and-set) the data of rotated secrets, read their metadata to learn
  the current version, and patch their custom metadata to record the run.
  Nothing else.
* ``vaultflow-bootstrap``: what the bootstrap workflow's own identity may do
  without a root token: start and advance a root token generation, which
  also needs a quorum of unseal shares. Nothing else.

The output is deterministic: paths sorted, no timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass

from vaultflow.gitops.catalog.model import Catalog
from vaultflow.gitops.catalog.placement import Plan

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


def rotation_policy(catalog: Catalog) -> VaultPolicy:
    """Write access to the rotated secrets only.

    Data: read a version and write the next one (check-and-set). Metadata: read
    the current version, and patch the custom metadata where a run records
    itself (run id, state, versions, time: never a value).
    """
    mount = catalog.vault.kv_mount
    stanzas = []
    for path in sorted(s.path for s in catalog.secrets if s.rotation is not None):
        stanzas.append(_stanza(kv_data_path(mount, path), ["create", "read", "update"]))
        stanzas.append(_stanza(kv_metadata_path(mount, path), ["read", "patch"]))
    return _policy(
        ROTATION_POLICY, "Rotation workflow: write (check-and-set) only the secrets that rotate.", stanzas
    )


def observer_policy(catalog: Catalog) -> VaultPolicy:
    """What the exporter and the audit read: every secret's metadata (never its data), the policies
    vaultflow renders (to compare them) and each cluster's ESO role (its token TTLs)."""
    mount = catalog.vault.kv_mount
    auth = catalog.vault.kubernetes_auth
    names = [
        *(eso_policy_name(c.name) for c in sorted(catalog.clusters, key=lambda c: c.name)),
        ROTATION_POLICY,
        BOOTSTRAP_POLICY,
        OBSERVER_POLICY,
    ]
    stanzas = [_stanza(f"{mount}/metadata/*", ["read", "list"])]
    stanzas += [_stanza(acl_policy_path(name), ["read"]) for name in names]
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
    policies = [*eso_policies(catalog, plan), rotation_policy(catalog), bootstrap_policy()]
    return [*policies, observer_policy(catalog)]
