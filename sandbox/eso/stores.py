"""SecretStores and ClusterSecretStores: finding them, building their provider clients, marking them Ready.

This is ESO's client manager and SecretStore controller in one place
(``pkg/controllers/secretstore/client_manager.go``, ``common.go``):

* a reconcile opens a ``ClientManager`` (``manager()``) and closes it when it
  is done; ``get`` resolves an ExternalSecret's or PushSecret's store
  reference (``could not get SecretStore "x", ...`` when it is missing),
  refuses a ClusterSecretStore whose ``spec.conditions`` exclude the
  namespace and, for ExternalSecrets only (ESO's flood gate; PushSecrets and
  the store controller pass ``floodgate=False``), a store that is not Ready
  (``ClusterSecretStore "x" is not ready``), and returns the provider client;
  one client per provider type per reconcile, closed with the manager;
* ``validate`` validates a store the way ESO's store controller does (build
  the client, ``Validate()``) and returns the ``Ready`` condition
  (``Valid``/``InvalidProviderConfig``); a ClusterSecretStore whose
  credentials are referent (``vaultflow.sandbox.eso.referent``: a reference
  without a namespace, ``tokenSecretRef`` too) is built without credentials
  and is ``Valid`` (its ``Validate`` says ``ValidationResultUnknown`` without
  an error, which ESO's ``validateStore`` takes as success);
* ``spec.conditions`` of a ClusterSecretStore (``shouldProcessSecret``): the
  consumer's namespace must exist, and a condition matches by
  ``namespaceSelector`` (a full label selector), by ``namespaces`` (matched
  through the ``kubernetes.io/metadata.name`` label) or by
  ``namespaceRegexes`` (Go's ``regexp.MatchString``: unanchored).

Credentials are read from the referenced Secrets whenever a client is built,
as ESO reads them. A Vault client is built (and logs in) for every reconcile,
unless the token cache is on (see ``vaultflow.sandbox.eso.providers.vault``);
a cloud client is reused while the store and its credentials are unchanged
(ESO builds a new SDK client, which no pipeline can tell apart).
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import urllib3

from vaultflow.sandbox.eso.environment import EsoEnvironment
from vaultflow.sandbox.eso.kube import ESO_API, KubeAccess
from vaultflow.sandbox.eso.providers.aws import AwsCredentials, AwsSecretsManagerProvider, DeleteOptions
from vaultflow.sandbox.eso.providers.azure import AzureKeyVaultProvider
from vaultflow.sandbox.eso.providers.base import ClientError, JsonObject, ProviderError, SecretsClient
from vaultflow.sandbox.eso.providers.gcp import GcpSecretManagerProvider
from vaultflow.sandbox.eso.providers.vault import VaultProvider, check_ca, decode_ca_bundle
from vaultflow.sandbox.eso.referent import is_referent
from vaultflow.sandbox.kube.selectors import label_selector_predicate, label_selector_string
from vaultflow.sandbox.kube.strategies import now_rfc3339
from vaultflow.sandbox.routes import RouteMissing

log = logging.getLogger(__name__)

CLUSTER_STORE = "ClusterSecretStore"
STORE = "SecretStore"
DEFAULT_STORE_REQUEUE = 300.0
MSG_STORE_VALIDATED = "store validated"


@dataclass(frozen=True)
class StoreRef:
    kind: str
    name: str

    @classmethod
    def from_spec(cls, spec: JsonObject | None) -> StoreRef:
        spec = spec or {}
        return cls(str(spec.get("kind") or STORE), str(spec.get("name", "")))


class _Referent:
    """Where a store's references point: the namespace a ref without one means."""

    def __init__(self, kube: KubeAccess, store_kind: str, store_namespace: str, use_namespace: str) -> None:
        self.kube = kube
        self.cluster_store = store_kind == CLUSTER_STORE
        self.default_namespace = use_namespace if self.cluster_store else store_namespace

    def namespace_of(self, ref: JsonObject) -> str:
        if self.cluster_store and ref.get("namespace"):
            return str(ref["namespace"])
        return self.default_namespace

    def secret(self, ref: JsonObject | None, what: str) -> bytes:
        if not ref or not ref.get("name"):
            raise ProviderError(f"{what}: a secret reference needs a name")
        return self.kube.secret_key(self.namespace_of(ref), str(ref["name"]), str(ref.get("key", "")))


def _fingerprint(*values: bytes | str) -> str:
    digest = hashlib.sha256()
    for value in values:
        digest.update(value if isinstance(value, bytes) else value.encode())
        digest.update(b"\0")
    return digest.hexdigest()


class ClientManager:
    """ESO's ``secretstore.Manager``: the provider clients of one reconcile, closed when it ends.

    It keeps one client per provider type; a request for another store of the
    same type closes the one it has and builds the other, as ESO's does.
    """

    def __init__(self, resolver: StoreResolver, *, floodgate: bool) -> None:
        self._resolver = resolver
        self._floodgate = floodgate
        self._clients: dict[str, tuple[tuple[Any, ...], SecretsClient]] = {}

    def get(self, ref: StoreRef, namespace: str) -> SecretsClient:
        """``Manager.Get``: the client an ExternalSecret or PushSecret in ``namespace`` uses via ``ref``."""
        store = self._resolver.get_store(ref, namespace)
        if (store.get("spec") or {}).get("controller"):
            raise ProviderError("can not reference unmanaged store")
        if ref.kind == CLUSTER_STORE:
            _check_conditions(store, namespace, self._resolver.kube)
        if self._floodgate:
            _assert_usable(store)
        return self.get_from_store(store, namespace)

    def get_from_store(self, store: JsonObject, namespace: str) -> SecretsClient:
        """``Manager.GetFromStore``: the client built for ``store`` in this reconcile, else a new one."""
        provider = next(iter((store.get("spec") or {}).get("provider") or {}), "")
        metadata = store["metadata"]
        identity = (
            store.get("kind"),
            metadata.get("namespace", ""),
            metadata["name"],
            metadata.get("generation"),
        )
        held = self._clients.pop(provider, None)
        if held is not None:
            if held[0] == identity:
                self._clients[provider] = held
                return held[1]
            _close(held[1])
        client = self._resolver.new_client(store, namespace)
        self._clients[provider] = (identity, client)
        return client

    def close(self) -> None:
        while self._clients:
            _, (_, client) = self._clients.popitem()
            _close(client)


def _close(client: SecretsClient) -> None:
    try:
        client.close()
    except ProviderError as error:  # ESO ignores what closing a client returns
        log.debug("closing a provider client: %s", error)


class StoreResolver:
    """The stores of one cluster and the provider clients built from them.

    ``vault_token_cache`` is ESO's ``--enable-vault-token-cache``.
    """

    def __init__(
        self,
        kube: KubeAccess,
        environment: EsoEnvironment,
        http: urllib3.PoolManager,
        *,
        vault_token_cache: bool = False,
    ) -> None:
        self.kube = kube
        self.environment = environment
        self.vault_token_cache = vault_token_cache
        self._http = http
        self._clients: dict[Hashable, SecretsClient] = {}
        self._vault_clients: dict[tuple[str, str, str], tuple[str, VaultProvider]] = {}
        self._lock = threading.Lock()
        self.store_type = kube.type_of(ESO_API, STORE)
        self.cluster_store_type = kube.type_of(ESO_API, CLUSTER_STORE)

    # ------------------------------------------------------------ lookup

    def get_store(self, ref: StoreRef, namespace: str) -> JsonObject:
        if ref.kind == CLUSTER_STORE:
            store = self.kube.get(self.cluster_store_type, "", ref.name)
            if store is None:
                raise ProviderError(
                    f'could not get ClusterSecretStore "{ref.name}", '
                    f'clustersecretstores.external-secrets.io "{ref.name}" not found'
                )
            return store
        if ref.kind != STORE:
            raise ProviderError(f"unsupported secret store kind: {ref.kind}")
        store = self.kube.get(self.store_type, namespace, ref.name)
        if store is None:
            raise ProviderError(
                f'could not get SecretStore "{ref.name}", '
                f'secretstores.external-secrets.io "{ref.name}" not found'
            )
        return store

    @contextmanager
    def manager(self, *, floodgate: bool) -> Iterator[ClientManager]:
        """A ``ClientManager`` for one reconcile; its clients are closed when the block ends."""
        manager = ClientManager(self, floodgate=floodgate)
        try:
            yield manager
        finally:
            manager.close()

    def new_client(self, store: JsonObject, use_namespace: str) -> SecretsClient:
        """The provider's ``NewClient``: a client for ``store`` used from ``use_namespace``."""
        kind = str(store.get("kind", STORE))
        referent = _Referent(self.kube, kind, store["metadata"].get("namespace", ""), use_namespace)
        provider = (store.get("spec") or {}).get("provider") or {}
        if len(provider) != 1:
            raise ProviderError("a store must configure exactly one provider")
        ((provider_name, settings),) = provider.items()
        if provider_name == "vault":
            return self._vault_client(store, use_namespace, self._vault(settings or {}, referent))
        builders: dict[
            str, Callable[[JsonObject, _Referent], tuple[Hashable, Callable[[], SecretsClient]]]
        ] = {
            "aws": self._aws,
            "gcpsm": self._gcp,
            "azurekv": self._azure,
        }
        builder = builders.get(provider_name)
        if builder is None:
            raise ProviderError(
                f"provider {provider_name!r} is not emulated by the sandbox (vault, aws, gcpsm, azurekv are)"
            )
        key, build = builder(settings or {}, referent)
        with self._lock:
            client = self._clients.get(key)
        if client is None:
            client = build()
            with self._lock:
                client = self._clients.setdefault(key, client)
        return client

    def _vault_client(self, store: JsonObject, use_namespace: str, built: VaultProvider) -> VaultProvider:
        """ESO's ``getVaultClient`` and ``initClient``: a new client that logs in, or the cached one.

        The cache (``--enable-vault-token-cache``, never for ``tokenSecretRef``)
        is keyed by the store (per consumer namespace for a referent
        ClusterSecretStore) and valid for one store ``resourceVersion``; a
        changed store evicts the client, revoking its token.
        """
        metadata = store["metadata"]
        kind = str(store.get("kind", STORE))
        referent_store = is_referent(store)
        if referent_store and not use_namespace:
            return built  # ESO skips the login when a referent store is validated without a namespace
        client = built
        if self.vault_token_cache and not built.static_token:
            key = (metadata["name"], use_namespace if referent_store else metadata.get("namespace", ""), kind)
            version = str(metadata.get("resourceVersion", ""))
            evicted = None
            with self._lock:
                cached = self._vault_clients.get(key)
                if cached is not None and cached[0] == version:
                    client = cached[1]
                else:
                    evicted = cached[1] if cached is not None else None
                    self._vault_clients[key] = (version, built)
            if evicted is not None:
                try:
                    evicted.revoke_if_valid()
                except ProviderError as error:
                    log.info("unable to revoke cached token on eviction: %s", error)
        client.set_auth()
        return client

    # ------------------------------------------------------------ providers

    def _vault(self, spec: JsonObject, referent: _Referent) -> VaultProvider:
        """A new, not yet logged-in Vault client; the credentials are read when it logs in (``setAuth``)."""
        server = str(spec.get("server", ""))
        try:
            address = self.environment.routes.resolve_vault(server)
        except RouteMissing as error:
            raise ProviderError(str(error)) from None
        version = str(spec.get("version") or "v2")
        mount = spec.get("path")
        # ESO's configureClientTLS: caBundle and/or caProvider become the client's only roots.
        ca_pem = ""
        if spec.get("caBundle"):
            ca_pem = decode_ca_bundle(str(spec["caBundle"]))
            check_ca(ca_pem)
        ca_provider = spec.get("caProvider")
        if ca_provider:
            ca_pem += self._check_ca_provider(ca_provider, referent)
        auth = spec.get("auth") or {}
        kubernetes = auth.get("kubernetes")
        login: Callable[[VaultProvider], str]
        if kubernetes is not None:
            login = self._kubernetes_login(kubernetes, referent)
        elif auth.get("tokenSecretRef"):
            token_ref = auth["tokenSecretRef"]

            def login(_: VaultProvider) -> str:
                return referent.secret(token_ref, "auth.tokenSecretRef").decode().strip()

        else:
            raise ProviderError(
                "the sandbox's ESO logs into Vault with auth.kubernetes or auth.tokenSecretRef only"
            )
        return VaultProvider(
            address=address,
            mount=str(mount) if mount is not None else None,
            version=version,
            login=login,
            faults=self.environment.faults,
            http=self._http,
            vault_namespace=str(spec.get("namespace") or ""),
            static_token=kubernetes is None,
            token_cache=self.vault_token_cache,
            server=server,
            ca_pem=ca_pem,
        )

    def _kubernetes_login(
        self, kubernetes: JsonObject, referent: _Referent
    ) -> Callable[[VaultProvider], str]:
        """``setKubernetesAuthToken``: a TokenRequest (or the ``secretRef`` JWT), then the login."""
        mount_path = str(kubernetes.get("mountPath") or "kubernetes")
        role = str(kubernetes.get("role", ""))
        account = kubernetes.get("serviceAccountRef")
        token_secret = kubernetes.get("secretRef")
        if account:
            namespace = referent.namespace_of(account)
            audiences = [str(a) for a in account.get("audiences") or []]

            def jwt() -> str:
                return self.kube.token_request(namespace, str(account["name"]), audiences)

        elif token_secret:

            def jwt() -> str:
                return referent.secret({"key": "token", **token_secret}, "auth.kubernetes.secretRef").decode()

        else:
            raise ProviderError(
                "cannot read the in-cluster service account token: ESO does not run in a pod here"
            )

        def login(provider: VaultProvider) -> str:
            return provider.kubernetes_login(mount_path, role, jwt())

        return login

    def _check_ca_provider(self, ca_provider: JsonObject, referent: _Referent) -> str:
        name, key = str(ca_provider.get("name", "")), str(ca_provider.get("key", ""))
        namespace = referent.namespace_of(ca_provider)
        if ca_provider.get("type") == "Secret":
            pem = self.kube.secret_key(namespace, name, key).decode(errors="replace")
        else:
            pem = self.kube.configmap_key(namespace, name, key)
        check_ca(pem)
        return pem if pem.endswith("\n") else pem + "\n"

    def _aws(self, spec: JsonObject, referent: _Referent) -> tuple[Hashable, Callable[[], SecretsClient]]:
        service = spec.get("service", "SecretsManager")
        if service != "SecretsManager":
            raise ProviderError(f"AWS service {service} is not emulated by the sandbox (SecretsManager is)")
        secret_ref = (spec.get("auth") or {}).get("secretRef")
        if not secret_ref:
            raise ProviderError(
                "no AWS credentials: the sandbox's ESO has no ambient AWS identity (IRSA, instance profile); "
                "use auth.secretRef"
            )
        credentials = AwsCredentials(
            referent.secret(secret_ref.get("accessKeyIDSecretRef"), "accessKeyIDSecretRef").decode().strip(),
            referent.secret(secret_ref.get("secretAccessKeySecretRef"), "secretAccessKeySecretRef")
            .decode()
            .strip(),
            referent.secret(secret_ref["sessionTokenSecretRef"], "sessionTokenSecretRef").decode().strip()
            if secret_ref.get("sessionTokenSecretRef")
            else None,
        )
        endpoint = self.environment.clouds.require("AWS", self.environment.clouds.aws)
        region, role, prefix = (
            str(spec.get("region", "")),
            str(spec.get("role") or ""),
            str(spec.get("prefix") or ""),
        )
        delete_options = DeleteOptions.from_spec(spec.get("secretsManager"))
        credentials_digest = _fingerprint(*map(str, vars(credentials).values()))
        key = ("aws", endpoint, region, role, prefix, delete_options, credentials_digest)

        def build() -> SecretsClient:
            return AwsSecretsManagerProvider(
                endpoint=endpoint,
                region=region,
                credentials=credentials,
                role=role,
                prefix=prefix,
                delete_options=delete_options,
                faults=self.environment.faults,
                ca_file=self.environment.clouds.ca_file,
            )

        return key, build

    def _gcp(self, spec: JsonObject, referent: _Referent) -> tuple[Hashable, Callable[[], SecretsClient]]:
        auth = spec.get("auth") or {}
        if (auth.get("secretRef") or {}).get("secretAccessKeySecretRef"):
            credential = referent.secret(
                auth["secretRef"]["secretAccessKeySecretRef"], "secretAccessKeySecretRef"
            )
            identity = _fingerprint(credential)
        elif auth.get("workloadIdentity"):
            account = auth["workloadIdentity"].get("serviceAccountRef") or {}
            self.kube.token_request(
                referent.namespace_of(account), str(account.get("name", "")), []
            )  # it exists
            identity = f"workload:{account.get('name', '')}"
        else:
            raise ProviderError("no GCP credentials: use auth.secretRef or auth.workloadIdentity")
        endpoint = self.environment.clouds.require("GCP", self.environment.clouds.gcp)
        project, location = str(spec.get("projectID", "")), str(spec.get("location") or "")
        if not project:
            raise ProviderError("invalid gcp secrets manager provider: projectID is required")

        def build() -> SecretsClient:
            return GcpSecretManagerProvider(
                endpoint=endpoint, project=project, location=location, faults=self.environment.faults
            )

        return ("gcp", endpoint, project, location, identity), build

    def _azure(self, spec: JsonObject, referent: _Referent) -> tuple[Hashable, Callable[[], SecretsClient]]:
        auth_type = str(spec.get("authType") or "ServicePrincipal")
        if auth_type == "ServicePrincipal":
            refs = spec.get("authSecretRef") or {}
            client_id = referent.secret(refs.get("clientId"), "authSecretRef.clientId")
            secret = refs.get("clientSecret") or refs.get("clientCertificate")
            identity = _fingerprint(client_id, referent.secret(secret, "authSecretRef.clientSecret"))
        elif auth_type == "WorkloadIdentity":
            account = spec.get("serviceAccountRef") or {}
            self.kube.token_request(
                referent.namespace_of(account), str(account.get("name", "")), ["api://AzureADTokenExchange"]
            )
            identity = f"workload:{account.get('name', '')}"
        elif auth_type == "ManagedIdentity":
            identity = f"managed:{spec.get('identityId', '')}"
        else:
            raise ProviderError(
                f"cannot initialize Azure Client: no valid authType was specified ({auth_type})"
            )
        vault_url = self.environment.clouds.azure_vault_url(str(spec.get("vaultUrl", "")))
        ca_file = self.environment.clouds.ca_file

        def build() -> SecretsClient:
            return AzureKeyVaultProvider(vault_url=vault_url, ca_file=ca_file, faults=self.environment.faults)

        return ("azure", vault_url, identity), build

    # ------------------------------------------------------------ the store controller

    def validate(self, store: JsonObject) -> tuple[str, str, str]:
        """(status, reason, message) of the store's ``Ready`` condition (ESO's ``validateStore``)."""
        provider = next(iter((store.get("spec") or {}).get("provider") or {}), "")
        referent_store = is_referent(store)
        if referent_store and provider != "vault":
            return "True", "Valid", MSG_STORE_VALIDATED  # a client without credentials: nothing to check
        with self.manager(floodgate=False) as manager:
            try:
                client = manager.get_from_store(store, store["metadata"].get("namespace", ""))
            except ProviderError as error:
                self.kube.record_event(store, "Warning", "InvalidProviderConfig", str(error))
                return "False", "InvalidProviderConfig", "unable to create client"
            if referent_store:  # Vault built its client without logging in; Validate is Unknown, no error
                return "True", "Valid", MSG_STORE_VALIDATED
            try:
                client.validate()
            except ClientError as error:
                self.kube.record_event(store, "Warning", "InvalidProviderConfig", str(error))
                return "False", "InvalidProviderConfig", "unable to create client"
            except ProviderError as error:
                self.kube.record_event(store, "Warning", "InvalidProviderConfig", str(error))
                return "False", "InvalidProviderConfig", "unable to validate store"
        return "True", "Valid", MSG_STORE_VALIDATED


def _assert_usable(store: JsonObject) -> None:
    for condition in (store.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            if condition.get("status") == "True":
                return
            break
    raise ProviderError(f'{store.get("kind")} "{store["metadata"]["name"]}" is not ready')


def _check_conditions(store: JsonObject, namespace: str, kube: KubeAccess) -> None:
    """ESO's ``shouldProcessSecret``: may an object in ``namespace`` use this ClusterSecretStore?"""
    conditions = (store.get("spec") or {}).get("conditions") or []
    if not conditions:
        return
    found = kube.get(kube.type_of("v1", "Namespace"), "", namespace)
    if found is None:
        raise ProviderError(f'failed to get a namespace "{namespace}": namespaces "{namespace}" not found')
    for condition in conditions:
        selectors: list[JsonObject] = []
        if condition.get("namespaceSelector") is not None:
            selectors.append(condition["namespaceSelector"])
        selectors += [
            {"matchLabels": {"kubernetes.io/metadata.name": name}}
            for name in condition.get("namespaces") or []
        ]
        for selector in selectors:
            try:
                matches = label_selector_predicate(selector)
            except ValueError as error:
                shown = label_selector_string(selector)
                raise ProviderError(
                    f"failed to convert label selector into selector {shown}: {error}"
                ) from None
            if matches(found):
                return
        for pattern in condition.get("namespaceRegexes") or []:
            try:
                if re.search(pattern, namespace):  # Go's regexp.MatchString: a match anywhere
                    return
            except re.error as error:
                raise ProviderError(f"failed to compile regex {pattern}: {error}") from None
    raise ProviderError(
        f'using cluster store "{store["metadata"]["name"]}" is not allowed from namespace "{namespace}": '
        "denied by spec.condition"
    )


def ready_condition(status: str, reason: str, message: str, previous: list[JsonObject]) -> JsonObject:
    """A ``Ready`` condition whose ``lastTransitionTime`` moves only when its status changes."""
    for condition in previous:
        if condition.get("type") == "Ready" and condition.get("status") == status:
            transition = condition.get("lastTransitionTime") or now_rfc3339()
            break
    else:
        transition = now_rfc3339()
    return {
        "type": "Ready",
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": transition,
    }
