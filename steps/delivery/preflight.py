"""Preflight: what a pull request's CI runs, so that a broken reference fails before merge.

Today a typo in a Vault path shows up after merge, as ESO's ``SecretSyncedError``.
Preflight reads what ESO will read, *as ESO*: in each cluster it logs into Vault
with that cluster's ESO service account (Kubernetes auth, the cluster's mount
and ESO's role), so a path the policy does not grant fails here exactly as it
would in ESO. It checks:

* **vault-path / vault-property**: every rendered ExternalSecret's path exists
  and holds every property it asks for (push sources included: they feed the
  PushSecrets). One read per distinct path per cluster, a bounded number at once;
* **ownership**: each target Secret that exists is not controlled by another
  ExternalSecret or by something else (ESO would refuse to write it), and a
  ``Merge`` target exists (ESO only merges into an existing Secret); each target
  is read by name, a bounded number at once;
* **refresh**: a consumer found in a cluster (written by hand) of a rotated path
  that ESO never refreshes: a rotation could never reach it;
* **policy**: the live Vault policy of each cluster's ESO role is the rendered
  one (ESO's policy lets it read its own text, and nothing else of ``sys/``).

Findings carry the catalog's ``file:line``; nothing here reads a value into a
message, and the report holds none.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from vaultflow.base.errors import OperationError
from vaultflow.gitops.catalog import LoadedCatalog
from vaultflow.gitops.catalog.errors import FieldPath
from vaultflow.gitops.catalog.placement import PlannedExternalSecret
from vaultflow.gitops.catalog.yaml_source import load_positioned_yaml
from vaultflow.gitops.policies import eso_policies, eso_policy_name
from vaultflow.steps.kube.errors import kube_errors
from vaultflow.steps.vault.api import VaultApi

Check = Literal["vault-path", "vault-property", "ownership", "refresh", "policy"]
READERS = 8  # Vault reads at once: enough to hide latency, few enough not to load Vault


class Finding(BaseModel):
    """One problem, where it is declared, and what to do about it (never a value)."""

    check: Check
    cluster: str | None
    subject: str  # "ExternalSecret production/db-secret", "policy eso-prod-eu"
    message: str
    location: str | None  # catalog file:line


class PreflightReport(BaseModel):
    catalog: str
    references: int  # Vault paths checked (distinct per cluster)
    findings: list[Finding]

    def to_markdown(self) -> str:
        """One table, a line per finding: meant for a pull request comment."""
        if not self.findings:
            return f"**vaultflow preflight**: {self.references} Vault references checked, no finding.\n"
        lines = [
            f"**vaultflow preflight**: {len(self.findings)} finding(s), "
            f"{self.references} Vault references checked.",
            "",
            "| check | cluster | what | finding | catalog |",
            "| --- | --- | --- | --- | --- |",
        ]
        lines += [
            f"| {f.check} | {f.cluster or '-'} | {_cell(f.subject)} | {_cell(f.message)} | "
            f"{f'`{f.location}`' if f.location else '-'} |"
            for f in self.findings
        ]
        return "\n".join(lines) + "\n"

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2) + "\n"


@dataclass(frozen=True)
class ClusterAccess:
    """What preflight needs of one cluster: its Kubernetes client and Vault as its ESO role."""

    api_client: Any
    vault: VaultApi


def eso_access(loaded: LoadedCatalog, addresses: str, ca_cert: str = "") -> dict[str, ClusterAccess]:
    """Each catalog cluster's Kubernetes client, and Vault logged in as that cluster's ESO role
    (a token of ESO's service account from the cluster's TokenRequest API, on the cluster's mount)."""
    from vaultflow.steps.kube.clusters import cluster_clients, kube_context
    from vaultflow.steps.vault.active import active_node
    from vaultflow.steps.vault.login import kubernetes_login, service_account_token

    auth = loaded.catalog.vault.kubernetes_auth
    node = active_node(addresses or loaded.catalog.vault.address, ca_cert=ca_cert)
    clients = cluster_clients(loaded)
    access = {}
    for cluster in loaded.catalog.clusters:
        jwt = service_account_token(
            namespace=auth.eso_service_account.namespace,
            name=auth.eso_service_account.name,
            context=kube_context(loaded, cluster),
        )
        vault = kubernetes_login(node, mount=cluster.auth_mount(auth), role=auth.eso_role, jwt=jwt)
        access[cluster.name] = ClusterAccess(clients[cluster.name], vault)
    return access


def preflight(loaded: LoadedCatalog, access: Mapping[str, ClusterAccess]) -> PreflightReport:
    """Every check, for every cluster of ``access`` (catalog cluster name -> how to reach it)."""
    locate = _locator(loaded)
    findings: list[Finding] = []
    references = 0
    for cluster in sorted(access):
        planned = [es for es in loaded.plan.external_secrets if es.cluster == cluster]
        checked, found = _vault_references(loaded, cluster, planned, access[cluster].vault, locate)
        references += checked
        findings += found
        findings += _ownership(cluster, planned, access[cluster].api_client, locate)
        findings += _policy(loaded, cluster, access[cluster].vault)
    findings += _refresh(loaded, {name: a.api_client for name, a in access.items()})
    return PreflightReport(catalog=str(loaded.source), references=references, findings=_sorted(findings))


def _vault_references(
    loaded: LoadedCatalog,
    cluster: str,
    planned: list[PlannedExternalSecret],
    vault: VaultApi,
    locate: Callable[[FieldPath], str],
) -> tuple[int, list[Finding]]:
    """Read each distinct path once (as ESO of ``cluster``), then check each ExternalSecret against it."""
    kv = loaded.catalog.vault.kv_mount
    paths = sorted({es.secret.path for es in planned})

    def keys_of(path: str) -> set[str] | str:
        try:
            return _read_keys(vault, kv, path)
        except OperationError as error:
            return str(error)

    with ThreadPoolExecutor(max_workers=min(READERS, max(1, len(paths)))) as pool:
        read = dict(zip(paths, pool.map(keys_of, paths), strict=True))
    findings = []
    for es in planned:
        subject = f"ExternalSecret {es.namespace}/{es.name}"
        keys = read[es.secret.path]
        if isinstance(keys, str):
            findings.append(
                Finding(
                    check="vault-path",
                    cluster=cluster,
                    subject=subject,
                    message=keys,
                    location=locate(es.path),
                )
            )
            continue
        wanted = [k.property for k in es.keys] if es.keys is not None else []
        missing = [p for p in wanted if p not in keys]
        if es.keys is None and not keys:
            missing_text = (
                f"{kv}/{es.secret.path} holds no property: dataFrom.extract would write an empty Secret"
            )
            findings.append(
                Finding(
                    check="vault-property",
                    cluster=cluster,
                    subject=subject,
                    message=missing_text,
                    location=locate(es.path),
                )
            )
        if missing:
            findings.append(
                Finding(
                    check="vault-property",
                    cluster=cluster,
                    subject=subject,
                    message=f"{kv}/{es.secret.path} has no property {', '.join(repr(p) for p in missing)} "
                    f"(it has {', '.join(sorted(keys)) or 'none'})",
                    location=locate(es.path),
                )
            )
    return len(paths), findings


def _read_keys(vault: VaultApi, kv: str, path: str) -> set[str]:
    """The property names of the latest version of ``path`` (the values are dropped here)."""
    import hvac.exceptions

    with vault.errors(f"read {kv}/{path} as ESO"):
        try:
            response = vault.client.secrets.kv.v2.read_secret_version(
                path, mount_point=kv, raise_on_deleted_version=True
            )
        except hvac.exceptions.InvalidPath:
            raise OperationError(f"{kv}/{path} does not exist in Vault (a typo in the path?)") from None
        except hvac.exceptions.Forbidden:
            raise OperationError(
                f"ESO's Vault role may not read {kv}/{path}: its live policy does not grant it "
                "(a typo in the path, or a new path whose policy is not applied yet)"
            ) from None
    return set((response.get("data") or {}).get("data") or {})


def _ownership(
    cluster: str, planned: list[PlannedExternalSecret], api_client: Any, locate: Callable[[FieldPath], str]
) -> list[Finding]:
    """Targets another controller owns, and Merge targets that do not exist.

    Each target Secret is read by name (a bounded number at once), not listed per namespace: the
    delivery's RBAC may then get exactly the catalog's target Secrets (``resourceNames``), never
    list a namespace's others (Argo CD's repository credentials, a keeper) (gitops/delivery_rbac.py).
    """
    targets = sorted({(es.namespace, es.target) for es in planned})

    def owner_of(target: tuple[str, str]) -> tuple[str, str] | _Missing | None:
        return _secret_owner(api_client, cluster, *target)

    with ThreadPoolExecutor(max_workers=min(READERS, max(1, len(targets)))) as pool:
        owners = dict(zip(targets, pool.map(owner_of, targets), strict=True))
    findings = []
    for es in planned:
        subject = f"ExternalSecret {es.namespace}/{es.name}"
        owner = owners[(es.namespace, es.target)]
        if isinstance(owner, _Missing):
            if es.creation_policy == "Merge":
                findings.append(
                    Finding(
                        check="ownership",
                        cluster=cluster,
                        subject=subject,
                        message=f"Secret {es.namespace}/{es.target} does not exist: creationPolicy Merge "
                        "only merges into an existing Secret",
                        location=locate(es.path),
                    )
                )
            continue
        if owner is not None and owner != ("ExternalSecret", es.name) and es.creation_policy == "Owner":
            findings.append(
                Finding(
                    check="ownership",
                    cluster=cluster,
                    subject=subject,
                    message=f"Secret {es.namespace}/{es.target} is already controlled by {owner[0]} "
                    f"{owner[1]}: ESO would not take it over",
                    location=locate(es.path),
                )
            )
    return findings


class _Missing:
    """A target Secret that does not exist (yet)."""


def _secret_owner(
    api_client: Any, cluster: str, namespace: str, name: str
) -> tuple[str, str] | _Missing | None:
    """The Secret's controller (kind, name), None when it has none, ``_Missing`` when it does not exist."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    with kube_errors(f"cluster {cluster}", f"read Secret {namespace}/{name}"):
        try:
            # Only the metadata is parsed: the values never become Python objects here.
            response = client.CoreV1Api(api_client).read_namespaced_secret(
                name, namespace, _preload_content=False
            )
        except ApiException as error:
            if error.status == 404:
                return _Missing()
            raise
    metadata = json.loads(response.data).get("metadata") or {}
    controller = next((r for r in metadata.get("ownerReferences") or [] if r.get("controller")), None)
    return (controller["kind"], controller["name"]) if controller else None


def _policy(loaded: LoadedCatalog, cluster: str, vault: VaultApi) -> list[Finding]:
    """The live policy of the cluster's ESO role, compared with the rendered one."""
    name = eso_policy_name(cluster)
    rendered = {p.name: p.hcl for p in eso_policies(loaded.catalog, loaded.plan)}[name]
    subject = f"policy {name}"
    try:
        with vault.errors(f"read policy {name} as ESO"):
            live = vault.client.sys.read_acl_policy(name)["data"]["policy"]
    except OperationError as error:
        return [
            Finding(
                check="policy",
                cluster=cluster,
                subject=subject,
                message=f"cannot read the live policy ({error}); the bootstrap pipeline applies it",
                location=None,
            )
        ]
    if live.strip() != rendered.strip():
        return [
            Finding(
                check="policy",
                cluster=cluster,
                subject=subject,
                message="the live policy differs from the rendered one: run the bootstrap (configure)",
                location=None,
            )
        ]
    return []


def _refresh(loaded: LoadedCatalog, clients: Mapping[str, Any]) -> list[Finding]:
    """Consumers found in the clusters (written by hand) of rotated paths that ESO never refreshes."""
    from vaultflow.steps.rotation.discover import discover_consumers

    rotated = [s.path for s in loaded.catalog.secrets if s.rotation is not None]
    if not rotated:
        return []
    found = discover_consumers(loaded.catalog, loaded.plan, rotated, clients)
    return [
        Finding(check="refresh", cluster=None, subject=f"consumers of {path}", message=reason, location=None)
        for path, consumers in found.items()
        for reason in consumers.refusals
    ]


def _locator(loaded: LoadedCatalog) -> Callable[[FieldPath], str]:
    """``file:line`` of a field of the catalog, from its own text (the model keeps no positions)."""
    source = Path(loaded.source)
    try:
        document, _ = load_positioned_yaml(source.read_text(encoding="utf-8"))
    except OSError:
        document = None

    def locate(path: FieldPath) -> str:
        line = document.position(path)[0] if document is not None else 1
        return f"{source}:{line}"

    return locate


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _sorted(findings: Iterable[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (f.check, f.cluster or "", f.subject))
