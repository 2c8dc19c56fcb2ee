"""Find every consumer of a rotated secret: the catalog's, and whatever a team wrote by hand.

A rotation is proven only when every copy of the secret holds the new value, so
the consumers are read from the clusters, not only from the catalog: every
ExternalSecret in every catalog cluster whose remote key resolves to the
secret's KV v2 path through its store, by ESO's own path rules, and every
PushSecret whose source Secret is one of those ExternalSecrets' targets.

Each cluster is asked once per kind (one LIST of ExternalSecrets, PushSecrets,
SecretStores and ClusterSecretStores across namespaces), whatever the number of
secrets rotated: discovery cost does not grow with the catalog.

ESO's path rule is written here again, on purpose, rather than shared with the
sandbox's ESO emulator: the emulator stands for ESO and must not agree with the
product merely because both call the same function.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel

from vaultflow.gitops.catalog.checks import unrefreshable
from vaultflow.gitops.catalog.model import Catalog
from vaultflow.gitops.catalog.placement import Plan
from vaultflow.steps.kube.errors import kube_errors

ESO_GROUP = "external-secrets.io"
# The label render puts on every ExternalSecret it writes (gitops.render.SECRET_LABEL): verification
# narrows its LISTs with it when every ExternalSecret it waits for in a namespace carries it.
SECRET_LABEL = "vaultflow.io/secret"
StoreKey = tuple[str, str, str]  # (kind, namespace or "" for a ClusterSecretStore, name)
ObjectKey = tuple[str, str, str]  # (cluster, namespace, name)


class KeyMapping(BaseModel):
    """A key of the target Secret and the Vault property it is read from (None: the whole secret as JSON)."""

    secret_key: str
    property: str | None


class ConsumingExternalSecret(BaseModel):
    """An ExternalSecret that reads the rotated path, and how its Secret is built from it."""

    cluster: str
    namespace: str
    name: str
    secret_name: str
    source: Literal["catalog", "discovered"]
    creation_policy: str
    immutable: bool
    templated: bool  # target.template: the Secret is not the Vault value; verified indirectly
    extract: bool  # dataFrom.extract of the path: every property becomes a key
    keys: list[KeyMapping]  # data[] items reading the path
    converted: bool  # a non-default conversion or decoding strategy, or a rewrite: verified indirectly
    reads_other_paths: bool  # the Secret also holds keys from elsewhere: ESO's data-hash covers them too
    # The ClusterExternalSecret that controls it: ESO reverts annotations put on such an ExternalSecret,
    # so force-sync goes to the ClusterExternalSecret, which mirrors it onto its ExternalSecrets.
    cluster_external_secret: str | None = None
    # Its ``vaultflow.io/secret`` label when discovered (rendered from the catalog), else None.
    secret_label: str | None = None


class PushedKey(BaseModel):
    """One ``data[]`` entry of a PushSecret: a key of its source Secret (None: all) to one remote key."""

    secret_key: str | None
    remote_key: str
    property: str | None


class CloudStore(BaseModel):
    """The provider side of a PushSecret's store: enough to read the pushed secret back."""

    store_kind: str
    store_name: str
    provider: Literal["aws", "gcp", "azure", "other"]
    location: str  # AWS region, GCP project, Azure vault URL ("" when unknown)


class ConsumingPushSecret(BaseModel):
    cluster: str
    namespace: str
    name: str
    source_secret: str
    source: Literal["catalog", "discovered"]
    keys: list[PushedKey]
    stores: list[CloudStore]
    # Its ``vaultflow.io/secret`` label when discovered (rendered from the catalog), else None.
    secret_label: str | None = None


class Consumers(BaseModel):
    """Everything that holds a copy of one Vault path."""

    path: str
    external_secrets: list[ConsumingExternalSecret]
    push_secrets: list[ConsumingPushSecret]
    refusals: list[str]  # consumers that would never pick up a new value: the rotation must not start


def eso_build_path(key: str, mount: str | None, version: str) -> str:
    """The Vault API path (without ``/v1/``) that ESO's Vault provider reads for a remote key.

    ESO's ``buildPath`` (providers/v1/vault/client_get.go): with the store's
    ``path`` (the mount) set, a leading ``<mount>/`` and, for KV v2, a leading
    ``data/`` are dropped, then ``<mount>/data/`` is put in front; without it,
    KV v2 keys get ``data`` after their first segment unless they hold it.
    """
    out = key
    if mount is not None:
        if out.startswith(mount + "/"):
            out = out[len(mount) + 1 :]
            if version == "v2" and out.startswith("data/"):
                out = out[len("data/") :]
        return "/".join([mount, *(["data"] if version == "v2" else []), out])
    if version == "v2" and "/data/" not in out:
        first, _, rest = out.partition("/")
        return f"{first}/data/{rest}"
    return out


def list_cluster_objects(
    api_client: Any, cluster: str, plural: str, version: str = "v1"
) -> list[dict[str, Any]]:
    """Every object of one ESO kind in one cluster, in one LIST (cluster-scoped or across namespaces)."""
    from kubernetes import client

    custom = client.CustomObjectsApi(api_client)
    with kube_errors(f"cluster {cluster}", f"list {plural}.{ESO_GROUP}"):
        listed = custom.list_cluster_custom_object(ESO_GROUP, version, plural)
    return list(listed.get("items", []))


def discover_consumers(
    catalog: Catalog, plan: Plan, paths: Iterable[str], clients: Mapping[str, Any]
) -> dict[str, Consumers]:
    """The consumers of each path in every cluster of ``clients`` (cluster name to ``ApiClient``)."""
    wanted = {f"{catalog.vault.kv_mount}/data/{path}": path for path in paths}
    found = {
        path: Consumers(path=path, external_secrets=[], push_secrets=[], refusals=[])
        for path in wanted.values()
    }
    rendered = {(es.cluster, es.namespace, es.name) for es in plan.external_secrets}
    rendered_pushes = {(ps.cluster, ps.namespace, ps.name) for ps in plan.push_secrets}
    for cluster, api_client in clients.items():
        listed = list_stores(api_client, cluster)
        stores = vault_stores(catalog, listed)
        cloud_stores = {key: _cloud_store(key[0], key[2], provider) for key, provider in listed.items()}
        targets: dict[tuple[str, str], str] = {}  # (namespace, Secret name) -> path
        for obj in list_cluster_objects(api_client, cluster, "externalsecrets"):
            consumer = _consumer(obj, cluster, stores, wanted, rendered)
            if consumer is None:
                continue
            path, external_secret = consumer
            found[path].external_secrets.append(external_secret)
            targets[(external_secret.namespace, external_secret.secret_name)] = path
            reason = unrefreshable(
                obj["spec"].get("refreshPolicy"), str(obj["spec"].get("refreshInterval", "1h"))
            )
            if reason is not None:
                found[path].refusals.append(
                    f"{path}: ExternalSecret {external_secret.namespace}/{external_secret.name} in cluster "
                    f"{cluster} cannot pick up a new value: {reason}"
                )
        for obj in list_cluster_objects(api_client, cluster, "pushsecrets", "v1alpha1"):
            source = ((obj.get("spec") or {}).get("selector") or {}).get("secret") or {}
            pushed_path = targets.get((obj["metadata"].get("namespace", ""), source.get("name", "")))
            if pushed_path is not None:
                found[pushed_path].push_secrets.append(
                    _push_consumer(obj, cluster, cloud_stores, rendered_pushes)
                )
    return found


def list_stores(api_client: Any, cluster: str) -> dict[StoreKey, dict[str, Any]]:
    """Every SecretStore and ClusterSecretStore of a cluster (one LIST each) -> its ``spec.provider``."""
    stores: dict[StoreKey, dict[str, Any]] = {}
    for plural, kind in (("clustersecretstores", "ClusterSecretStore"), ("secretstores", "SecretStore")):
        for obj in list_cluster_objects(api_client, cluster, plural):
            namespace = obj["metadata"].get("namespace", "") if kind == "SecretStore" else ""
            stores[(kind, namespace, obj["metadata"]["name"])] = (obj.get("spec") or {}).get("provider") or {}
    return stores


def vault_stores(
    catalog: Catalog, stores: Mapping[StoreKey, Mapping[str, Any]]
) -> dict[StoreKey, tuple[str | None, str]]:
    """The stores that read the catalog's Vault -> (mount path, KV version)."""
    server = catalog.vault.address.rstrip("/")
    return {
        key: (provider["vault"].get("path"), provider["vault"].get("version", "v2"))
        for key, provider in stores.items()
        if "vault" in provider and str(provider["vault"].get("server", "")).rstrip("/") == server
    }


def _cloud_store(kind: str, name: str, provider: Mapping[str, Any]) -> CloudStore:
    if "aws" in provider:
        return CloudStore(
            store_kind=kind, store_name=name, provider="aws", location=provider["aws"].get("region", "")
        )
    if "gcpsm" in provider:
        return CloudStore(
            store_kind=kind, store_name=name, provider="gcp", location=provider["gcpsm"].get("projectID", "")
        )
    if "azurekv" in provider:
        return CloudStore(
            store_kind=kind,
            store_name=name,
            provider="azure",
            location=provider["azurekv"].get("vaultUrl", ""),
        )
    return CloudStore(store_kind=kind, store_name=name, provider="other", location="")


def _store_of(ref: Mapping[str, Any] | None, namespace: str) -> StoreKey:
    ref = ref or {}
    kind = ref.get("kind") or "SecretStore"  # ESO's default kind
    return (kind, namespace if kind == "SecretStore" else "", ref.get("name", ""))


def _consumer(
    obj: Mapping[str, Any],
    cluster: str,
    stores: Mapping[StoreKey, tuple[str | None, str]],
    wanted: Mapping[str, str],
    rendered: set[ObjectKey],
) -> tuple[str, ConsumingExternalSecret] | None:
    """The path ``obj`` reads among ``wanted`` and how, or None when it reads none of them."""
    spec = obj.get("spec") or {}
    namespace, name = obj["metadata"].get("namespace", ""), obj["metadata"]["name"]
    default_store = _store_of(spec.get("secretStoreRef"), namespace)
    paths_read: set[str] = set()
    hit: str | None = None
    keys: list[KeyMapping] = []
    extract = converted = False

    def resolve(remote: Mapping[str, Any], source_ref: Mapping[str, Any] | None) -> str | None:
        store = (
            _store_of(source_ref.get("storeRef"), namespace)
            if source_ref and "storeRef" in source_ref
            else default_store
        )
        if store not in stores:
            return None
        mount, version = stores[store]
        return eso_build_path(str(remote.get("key", "")), mount, version)

    for item in spec.get("data") or []:
        remote = item.get("remoteRef") or {}
        api_path = resolve(remote, item.get("sourceRef"))
        paths_read.add(api_path or "?")
        if api_path is not None and api_path in wanted:
            hit = wanted[api_path]
            keys.append(KeyMapping(secret_key=item["secretKey"], property=remote.get("property")))
            converted |= _converted(remote)
    for item in spec.get("dataFrom") or []:
        if "extract" not in item:
            paths_read.add("?")  # find / generators: other keys in the Secret
            continue
        api_path = resolve(item["extract"], item.get("sourceRef"))
        paths_read.add(api_path or "?")
        if api_path is not None and api_path in wanted:
            hit, extract = wanted[api_path], True
            converted |= _converted(item["extract"]) or bool(item.get("rewrite"))
    if hit is None:
        return None
    target = spec.get("target") or {}
    owner = next(
        (
            ref["name"]
            for ref in obj["metadata"].get("ownerReferences") or []
            if ref.get("kind") == "ClusterExternalSecret" and ref.get("controller")
        ),
        None,
    )
    return hit, ConsumingExternalSecret(
        cluster=cluster,
        namespace=namespace,
        name=name,
        secret_name=target.get("name") or name,  # ESO's default: the ExternalSecret's name
        source="catalog" if (cluster, namespace, name) in rendered else "discovered",
        creation_policy=target.get("creationPolicy", "Owner"),
        immutable=bool(target.get("immutable", False)),
        templated=bool(target.get("template")),
        extract=extract,
        keys=keys,
        converted=converted,
        reads_other_paths=len(paths_read) > 1,
        cluster_external_secret=owner,
        secret_label=(obj["metadata"].get("labels") or {}).get(SECRET_LABEL) or None,
    )


def _converted(remote: Mapping[str, Any]) -> bool:
    return bool(
        remote.get("conversionStrategy", "Default") != "Default"
        or remote.get("decodingStrategy", "None") != "None"
    )


def _push_consumer(
    obj: Mapping[str, Any],
    cluster: str,
    cloud_stores: Mapping[StoreKey, CloudStore],
    rendered: set[ObjectKey],
) -> ConsumingPushSecret:
    spec = obj.get("spec") or {}
    namespace, name = obj["metadata"].get("namespace", ""), obj["metadata"]["name"]
    stores = [
        cloud_stores[key]
        for ref in spec.get("secretStoreRefs") or []
        if (key := _store_of(ref, namespace)) in cloud_stores and cloud_stores[key].provider != "other"
    ]
    keys = [
        PushedKey(
            secret_key=(item.get("match") or {}).get("secretKey"),
            remote_key=((item.get("match") or {}).get("remoteRef") or {}).get("remoteKey", ""),
            property=((item.get("match") or {}).get("remoteRef") or {}).get("property"),
        )
        for item in spec.get("data") or []
    ]
    return ConsumingPushSecret(
        cluster=cluster,
        namespace=namespace,
        name=name,
        source_secret=spec["selector"]["secret"]["name"],
        source="catalog" if (cluster, namespace, name) in rendered else "discovered",
        keys=keys,
        stores=stores,
        secret_label=(obj["metadata"].get("labels") or {}).get(SECRET_LABEL) or None,
    )
