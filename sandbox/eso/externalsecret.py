"""The ExternalSecret reconciler: ESO's ``externalsecret_controller.go``, step for step.

For ``external-secrets.io/v1`` ExternalSecrets targeting a Secret:

1. a finalizer (``externalsecrets.external-secrets.io/externalsecret-cleanup``)
   is added; on deletion, ``deletionPolicy: Delete`` removes the Secret it
   controls, then the finalizer goes;
2. nothing is fetched while the object is unchanged (``syncedResourceVersion``:
   generation + hash of labels and annotations, so a ``force-sync`` annotation
   change forces a refresh), the ``refreshInterval`` has not passed and the
   Secret is intact (managed label, data hash matching its data);
3. otherwise ``data[]`` (``remoteRef`` with ``property``/``version``,
   ``decodingStrategy``) and ``dataFrom[].extract`` (keys converted with
   ``conversionStrategy``, empty ones dropped, then decoded: see
   ``vaultflow.sandbox.eso.transform``) are read from the store's provider
   through one client manager, closed at the end; an error is ``Ready=False``
   / ``SecretSyncedError`` ("could not get secret data from provider", the
   error itself in a Warning event) and a retry with backoff;
4. the Secret is written per ``creationPolicy``: ``Owner`` (created, a
   controller owner reference, the ``created-by`` label, orphans of a renamed
   target deleted: ``could not delete orphaned secrets`` when that fails),
   ``Orphan`` (created, not owned), ``Merge`` (only into an existing Secret,
   else ``SecretMissing``), ``None`` (nothing written); what this
   ExternalSecret's field manager wrote before (``FieldOwners``) is removed,
   then, without a ``target.template``, its labels and annotations are copied
   onto it with the data, and with one the template renders it
   (``vaultflow.sandbox.eso.templating``; a template error is
   ``SecretSyncedError`` "could not update secret", retried with backoff);
   then the ``reconcile.external-secrets.io/managed`` label and the
   ``data-hash`` annotation of the data as written (after templating); an
   existing Secret of an ``immutable`` target is left as it is; a Secret owned
   by another ExternalSecret is refused;
5. with no data at all, ``deletionPolicy`` decides: ``Delete`` removes the
   Secret (``SecretDeleted``), ``Retain`` keeps it, ``Merge`` writes as usual;
6. ``Ready=True`` / ``SecretSynced``, ``refreshTime``,
   ``syncedResourceVersion``, ``binding``; requeued when the interval ends.

Not emulated (refused with a message naming the field):
``dataFrom.find``/``rewrite``, generators (``sourceRef``), ``syncWindows``;
Secrets only (no generic targets); in templates, what
``vaultflow.sandbox.eso.gotemplate`` lists.
"""

from __future__ import annotations

import base64
import copy
import time
from typing import Any

from vaultflow.sandbox.eso import gohash, gotemplate, templating, transform
from vaultflow.sandbox.eso.conditions import (
    interval,
    new_condition,
    parse_time,
    rfc3339,
    set_condition,
    should_refresh,
)
from vaultflow.sandbox.eso.kube import ESO_API, Field, FieldOwners, KubeAccess, OwnerIndex
from vaultflow.sandbox.eso.metrics import ExternalSecretMetrics
from vaultflow.sandbox.eso.providers.base import NoSecretError, ProviderError, RemoteRef, SecretsClient
from vaultflow.sandbox.eso.stores import ClientManager, StoreRef, StoreResolver
from vaultflow.sandbox.kube.errors import ApiError
from vaultflow.sandbox.workqueue import DONE, Result

JsonObject = dict[str, Any]

FINALIZER = "externalsecrets.external-secrets.io/externalsecret-cleanup"
FIELD_MANAGER = "externalsecrets.external-secrets.io/"  # fqdnFor: + the ExternalSecret's name
LABEL_MANAGED = "reconcile.external-secrets.io/managed"
LABEL_OWNER = "reconcile.external-secrets.io/created-by"
ANNOTATION_DATA_HASH = "reconcile.external-secrets.io/data-hash"

MSG_SYNCED = "secret synced"
MSG_SYNCED_RETAIN = "secret retained due to DeletionPolicy=Retain"
MSG_DELETED = "secret deleted due to DeletionPolicy=Delete"
MSG_MISSING = "secret will not be created due to CreationPolicy=Merge"
MSG_GET_DATA = "could not get secret data from provider"
MSG_DELETE = "could not delete secret"
MSG_DELETE_ORPHANED = "could not delete orphaned secrets"
MSG_UPDATE = "could not update secret"
MSG_IMMUTABLE = "could not update secret, target is immutable"
MSG_OWNED = "target is owned by another ExternalSecret"
MSG_BECOME_OWNER = "failed to take ownership of target secret"


class ReconcileError(Exception):
    """A failed reconcile that ESO retries with backoff (it returned ``err``)."""


class _Final(Exception):
    """A failure that retrying cannot fix: ESO marks it and does not requeue."""

    def __init__(self, condition_message: str, detail: str) -> None:
        super().__init__(detail)
        self.condition_message = condition_message


class _SyncFailed(Exception):
    """A failed step that ESO marks with its own condition message and retries (it returns ``err``)."""

    def __init__(self, condition_message: str, detail: str) -> None:
        super().__init__(detail)
        self.condition_message = condition_message


def _check_supported(spec: JsonObject) -> None:
    target = spec.get("target") or {}
    unsupported = []
    if spec.get("syncWindows"):
        unsupported.append("spec.syncWindows")
    if target.get("manifest"):
        unsupported.append("spec.target.manifest (generic targets)")
    for index, entry in enumerate(spec.get("dataFrom") or []):
        for field in ("find", "rewrite", "sourceRef"):
            if entry.get(field):
                unsupported.append(f"spec.dataFrom[{index}].{field}")
    for index, entry in enumerate(spec.get("data") or []):
        if entry.get("sourceRef"):
            unsupported.append(f"spec.data[{index}].sourceRef")
    if unsupported:
        raise _Final(MSG_UPDATE, f"{', '.join(unsupported)}: not emulated by the sandbox's ESO")


class ExternalSecretReconciler:
    def __init__(
        self,
        kube: KubeAccess,
        stores: StoreResolver,
        owned: OwnerIndex,
        field_owners: FieldOwners,
        metrics: ExternalSecretMetrics | None = None,
    ) -> None:
        self.kube = kube
        self.stores = stores
        self.owned = owned
        self.field_owners = field_owners
        self.metrics = metrics or ExternalSecretMetrics()
        self.rtype = kube.type_of(ESO_API, "ExternalSecret")
        self._template_sources = templating.Sources(self._configmap_data, self._secret_data)

    def reconcile(self, namespace: str, name: str) -> Result:
        with self.metrics.reconcile(namespace, name):  # counted and timed however it ends, as ESO defers
            return self._reconcile(namespace, name)

    def _reconcile(self, namespace: str, name: str) -> Result:
        es = self.kube.get(self.rtype, namespace, name)
        if es is None:
            self.metrics.forget(namespace, name)  # ESO's "Deleted" condition: the series go
            return DONE
        if es["metadata"].get("deletionTimestamp"):
            self._cleanup(es)
            return DONE
        if FINALIZER not in (es["metadata"].get("finalizers") or []):
            es = self._patch(
                namespace, name, lambda doc: doc["metadata"].setdefault("finalizers", []).append(FINALIZER)
            )
        spec = es.get("spec") or {}
        target = spec.get("target") or {}
        secret_name = str(target.get("name") or name)
        existing = self.kube.get(self.kube.secrets, namespace, secret_name)
        refresh = interval(spec)
        now = time.time()
        if not should_refresh(
            es, refresh, now, str(spec.get("refreshPolicy") or "Periodic")
        ) and _secret_valid(existing, es):
            return self._requeue(es, refresh, now)
        status: JsonObject = copy.deepcopy(es.get("status") or {})
        try:
            result = self._sync(es, secret_name, existing, status, now)
        except _Final as error:
            self._mark_failed(es, status, error.condition_message, str(error))
            self._write_status(es, status)
            return DONE
        except ApiError as error:
            if error.code == 409:  # the Secret changed under us: ESO requeues at once, without an error
                return Result(requeue=True)
            self._mark_failed(es, status, MSG_UPDATE, str(error))
            self._write_status(es, status)
            raise ReconcileError(str(error)) from None
        except ProviderError as error:
            self._mark_failed(es, status, MSG_GET_DATA, str(error))
            self._write_status(es, status)
            raise ReconcileError(str(error)) from None
        except templating.TemplateFailure as error:
            self._mark_failed(es, status, MSG_UPDATE, str(error))
            self._write_status(es, status)
            raise ReconcileError(str(error)) from None
        except _SyncFailed as error:
            self._mark_failed(es, status, error.condition_message, str(error))
            self._write_status(es, status)
            raise ReconcileError(str(error)) from None
        self._write_status(es, status)
        return result

    # ------------------------------------------------------------ the sync

    def _sync(
        self, es: JsonObject, secret_name: str, existing: JsonObject | None, status: JsonObject, now: float
    ) -> Result:
        spec = es.get("spec") or {}
        target = spec.get("target") or {}
        creation = str(target.get("creationPolicy") or "Owner")
        deletion = str(target.get("deletionPolicy") or "Retain")
        _check_supported(spec)
        data = self._provider_data(es, deletion)
        refresh = interval(spec)
        if not data:
            if deletion == "Delete":
                if creation != "Owner":
                    raise _Final(
                        MSG_DELETE,
                        f"unable to delete secret {secret_name}: creationPolicy={creation} is not Owner",
                    )
                if existing is not None:
                    self._delete_secret(es["metadata"]["namespace"], secret_name, MSG_DELETE)
                    self.kube.record_event(es, "Normal", "Deleted", MSG_DELETED)
                self._mark_done(es, status, "SecretDeleted", MSG_DELETED, now)
                return self._requeue_after_refresh(refresh)
            if deletion == "Retain":
                self._mark_done(es, status, "SecretSynced", MSG_SYNCED_RETAIN, now)
                return self._requeue_after_refresh(refresh)
        if creation == "Merge" and existing is None:
            self._mark_done(es, status, "SecretMissing", MSG_MISSING, now)
            return self._requeue_after_refresh(refresh)
        if creation == "Owner":
            self._delete_orphans(es, secret_name)
        if creation != "None":
            if existing is not None:
                status["binding"] = {"name": secret_name}  # updateSecret binds before it mutates
            self._write_secret(es, secret_name, existing, data, creation)
            status["binding"] = {"name": secret_name}
        self._mark_done(es, status, "SecretSynced", MSG_SYNCED, now)
        return self._requeue_after_refresh(refresh)

    def _provider_data(self, es: JsonObject, deletion: str) -> dict[str, bytes]:
        """ESO's ``GetProviderSecretData``: one client manager, closed (Vault: token revoked) at the end."""
        with self.stores.manager(floodgate=True) as manager:
            return self._read_provider(es, deletion, manager)

    def _read_provider(self, es: JsonObject, deletion: str, manager: ClientManager) -> dict[str, bytes]:
        spec = es.get("spec") or {}
        namespace = es["metadata"]["namespace"]
        store_ref = StoreRef.from_spec(spec.get("secretStoreRef"))

        def client_of() -> SecretsClient:
            return manager.get(store_ref, namespace)

        data: dict[str, bytes] = {}
        for index, entry in enumerate(spec.get("dataFrom") or []):
            extract = entry.get("extract")
            if not extract:
                continue
            try:
                values = _extracted(extract, client_of().get_secret_map(RemoteRef.from_spec(extract)))
            except NoSecretError as error:
                if deletion != "Retain":
                    self.kube.record_event(
                        es,
                        "Normal",
                        "MissingProviderSecret",
                        f"secret does not exist at provider using spec.dataFrom[{index}]",
                    )
                    continue
                raise ProviderError(
                    f"error processing spec.dataFrom[{index}].extract, err: {error}"
                ) from None
            except ProviderError as error:
                raise ProviderError(
                    f"error processing spec.dataFrom[{index}].extract, err: {error}"
                ) from None
            data.update(values)
        for index, entry in enumerate(spec.get("data") or []):
            remote = entry.get("remoteRef") or {}
            try:
                value = client_of().get_secret(RemoteRef.from_spec(remote))
                strategy = str(remote.get("decodingStrategy") or "None")
                try:
                    value = transform.decode(strategy, value)
                except transform.DecodeError as error:
                    raise ProviderError(
                        f"error applying decoding strategy {strategy} to data: {error}"
                    ) from None
                _check_null_bytes(remote, {str(entry.get("secretKey", "")): value})
            except NoSecretError as error:
                if deletion != "Retain":
                    self.kube.record_event(
                        es,
                        "Normal",
                        "MissingProviderSecret",
                        # ESO's eventMissingProviderSecretKey says dataFrom for data[] entries too
                        f"secret does not exist at provider using spec.dataFrom[{index}] "
                        f"(key={remote.get('key')})",
                    )
                    continue
                raise ProviderError(
                    f"error processing spec.data[{index}] (key: {remote.get('key')}), err: {error}"
                ) from None
            except ProviderError as error:
                raise ProviderError(
                    f"error processing spec.data[{index}] (key: {remote.get('key')}), err: {error}"
                ) from None
            data[str(entry.get("secretKey", ""))] = value
        return data

    # ------------------------------------------------------------ the Secret

    def _mutate(
        self, es: JsonObject, secret: JsonObject, data: dict[str, bytes], creation: str, owned: set[Field]
    ) -> None:
        """ESO's ``mutationFunc``: an existing Secret of an ``immutable`` target keeps its data and metadata.

        Otherwise what this ExternalSecret's field manager owns (``owned``: labels,
        annotations, data keys it wrote) is removed first, so what it no longer
        produces goes; then ``ApplyTemplate``: without a template the
        ExternalSecret's labels and annotations and the data, with one what the
        template renders (Merge and CreateOrMerge keep the other keys). The data
        hash is taken of the data as written.
        """
        metadata = secret["metadata"]
        labels = metadata.setdefault("labels", {})
        annotations = metadata.setdefault("annotations", {})
        target = (es.get("spec") or {}).get("target") or {}
        immutable = bool(target.get("immutable"))
        if immutable:
            secret["immutable"] = True
        current = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
        if not metadata.get("uid") or not immutable:
            for kind, key in owned:
                {"labels": labels, "annotations": annotations, "data": current}[kind].pop(key, None)
            current = current if creation in ("Merge", "CreateOrMerge") else {}
            template = target.get("template")
            if template is None:
                labels.update(es["metadata"].get("labels") or {})
                annotations.update(es["metadata"].get("annotations") or {})
                current.update(data)
            else:
                self._render(es, secret, template, current, data)
            secret["data"] = {key: base64.b64encode(value).decode() for key, value in current.items()}
        self._ownership(es, secret, creation)
        labels[LABEL_MANAGED] = "true"
        annotations[ANNOTATION_DATA_HASH] = gohash.data_hash(current)

    def _render(
        self,
        es: JsonObject,
        secret: JsonObject,
        template: JsonObject,
        current: dict[str, bytes],
        data: dict[str, bytes],
    ) -> None:
        """``ApplyTemplate`` with a template, on ``secret`` (``current``: its data, updated in place)."""
        metadata = secret["metadata"]
        rendered = templating.RenderedSecret(
            type=str(secret.get("type") or "Opaque"),
            labels=metadata["labels"],
            annotations=metadata["annotations"],
            finalizers=list(metadata.get("finalizers") or []),
            data=current,
            deleting=bool(metadata.get("deletionTimestamp")),
        )
        templating.apply_template(
            template, rendered, data, sources=self._template_sources, namespace=es["metadata"]["namespace"]
        )
        secret["type"] = rendered.type
        if rendered.finalizers:
            metadata["finalizers"] = rendered.finalizers

    def _configmap_data(self, namespace: str, name: str) -> dict[str, str] | None:
        configmap = self.kube.get(self.kube.type_of("v1", "ConfigMap"), namespace, name)
        return (
            None if configmap is None else {str(k): str(v) for k, v in (configmap.get("data") or {}).items()}
        )

    def _secret_data(self, namespace: str, name: str) -> dict[str, bytes] | None:
        secret = self.kube.get(self.kube.secrets, namespace, name)
        if secret is None:
            return None
        return {str(k): base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}

    def _ownership(self, es: JsonObject, secret: JsonObject, creation: str) -> None:
        metadata = secret["metadata"]
        references = list(metadata.get("ownerReferences") or [])
        controller = next((r for r in references if r.get("controller")), None)
        owned_by_es = (
            controller is not None
            and str(controller.get("apiVersion", "")).startswith("external-secrets.io/")
            and controller.get("kind") == "ExternalSecret"
        )
        if owned_by_es and controller is not None and controller.get("name") != es["metadata"]["name"]:
            raise _Final(MSG_OWNED, f"secret is owned by another ExternalSecret: {controller.get('name')}")
        if creation == "Owner":
            if controller is not None and not owned_by_es:
                raise _Final(
                    MSG_BECOME_OWNER,
                    f"could not set controller reference on secret: Object {metadata.get('namespace')}/"
                    f"{metadata['name']} is already owned by another {controller.get('kind')} controller "
                    f"{controller.get('name')}",
                )
            reference = {
                "apiVersion": ESO_API,
                "kind": "ExternalSecret",
                "name": es["metadata"]["name"],
                "uid": es["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
            references = [r for r in references if not r.get("controller")] + [reference]
            metadata["ownerReferences"] = references
            metadata.setdefault("labels", {})[LABEL_OWNER] = gohash.owner_label(
                es["metadata"]["namespace"], es["metadata"]["name"]
            )
            return
        if owned_by_es:
            references = [r for r in references if not r.get("controller")]
            if references:
                metadata["ownerReferences"] = references
            else:
                metadata.pop("ownerReferences", None)
        metadata.setdefault("labels", {}).pop(LABEL_OWNER, None)

    def _write_secret(
        self,
        es: JsonObject,
        secret_name: str,
        existing: JsonObject | None,
        data: dict[str, bytes],
        creation: str,
    ) -> None:
        """ESO's ``createSecret``/``updateSecret``, written as this ExternalSecret's field manager."""
        namespace = es["metadata"]["namespace"]
        manager = FIELD_MANAGER + es["metadata"]["name"]
        if existing is None:
            secret: JsonObject = {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": secret_name, "namespace": namespace, "labels": {}, "annotations": {}},
                "type": "Opaque",
                "data": {},
            }
            self._mutate(es, secret, data, creation, set())
            with self.field_owners.writing(manager):
                self.kube.store.create(self.kube.secrets, namespace, secret)
            self.kube.record_event(es, "Normal", "Created", "secret created")
            return
        updated = copy.deepcopy(existing)
        owned = self.field_owners.owned(str(existing["metadata"].get("uid", "")), manager)
        try:
            self._mutate(es, updated, data, creation, owned)
        except templating.TemplateFailure as error:
            raise templating.TemplateFailure(f"unable to mutate secret {secret_name}: {error}") from None
        if updated == existing:
            return
        with self.field_owners.writing(manager):
            if existing.get("immutable"):
                self._update_immutable(es, secret_name, existing, updated)
            self.kube.store.update(self.kube.secrets, namespace, secret_name, updated)
        self.kube.record_event(es, "Normal", "Updated", "secret updated")

    def _update_immutable(self, es: JsonObject, name: str, existing: JsonObject, updated: JsonObject) -> None:
        """An immutable Secret: its metadata is updated; any other change is ``ErrSecretImmutable``.

        As in ESO, the Secret is then written again with the resourceVersion it
        was read with, which conflicts after a metadata update: the reconcile
        ends with ``Requeue`` and the next one finds nothing to change.
        """
        with_metadata = {**copy.deepcopy(existing), "metadata": copy.deepcopy(updated["metadata"])}
        if with_metadata != existing:
            self.kube.store.update(
                self.kube.secrets, es["metadata"]["namespace"], name, copy.deepcopy(with_metadata)
            )
        if with_metadata != updated:
            raise _Final(MSG_IMMUTABLE, f"unable to update secret {name}: secret is immutable")

    def _delete_orphans(self, es: JsonObject, secret_name: str) -> None:
        """Secrets this ExternalSecret created under an earlier target name."""
        namespace, name = es["metadata"]["namespace"], es["metadata"]["name"]
        for orphan in sorted(self.owned.names(namespace, gohash.owner_label(namespace, name))):
            if orphan != secret_name:
                self._delete_secret(namespace, orphan, MSG_DELETE_ORPHANED)
                self.kube.record_event(es, "Normal", "Deleted", "secret deleted because it was orphaned")

    def _delete_secret(self, namespace: str, name: str, condition_message: str) -> None:
        """A delete that ESO tolerates when the Secret is already gone; any other error fails the sync."""
        try:
            self.kube.store.delete(self.kube.secrets, namespace, name)
        except ApiError as error:
            if error.code != 404:
                raise _SyncFailed(condition_message, str(error)) from None

    def _cleanup(self, es: JsonObject) -> None:
        metadata = es["metadata"]
        target = (es.get("spec") or {}).get("target") or {}
        if str(target.get("deletionPolicy") or "Retain") == "Delete":
            secret_name = str(target.get("name") or metadata["name"])
            secret = self.kube.get(self.kube.secrets, metadata["namespace"], secret_name)
            references = (secret or {}).get("metadata", {}).get("ownerReferences") or []
            if any(r.get("controller") and r.get("uid") == metadata["uid"] for r in references):
                self.kube.store.delete(self.kube.secrets, metadata["namespace"], secret_name)
        if FINALIZER in (metadata.get("finalizers") or []):
            self._patch(
                metadata["namespace"],
                metadata["name"],
                lambda doc: doc["metadata"].__setitem__(
                    "finalizers", [f for f in doc["metadata"].get("finalizers") or [] if f != FINALIZER]
                ),
            )

    # ------------------------------------------------------------ status

    def _mark_done(self, es: JsonObject, status: JsonObject, reason: str, message: str, now: float) -> None:
        self._ready_metric(es, status, "True")
        set_condition(status, new_condition("Ready", "True", reason, message, now))
        status["refreshTime"] = rfc3339(now)
        status["syncedResourceVersion"] = gohash.resource_version(es["metadata"])

    def _mark_failed(self, es: JsonObject, status: JsonObject, message: str, detail: str) -> None:
        self.kube.record_event(es, "Warning", "UpdateFailed", detail)
        self.metrics.sync_error(es["metadata"]["namespace"], es["metadata"]["name"])
        self._ready_metric(es, status, "False")
        set_condition(status, new_condition("Ready", "False", "SecretSyncedError", message, time.time()))

    def _ready_metric(self, es: JsonObject, status: JsonObject, value: str) -> None:
        current = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
        previous = ("Ready", str(current.get("status"))) if current is not None else None
        metadata = es["metadata"]
        self.metrics.condition(metadata["namespace"], metadata["name"], "Ready", value, previous)

    def _write_status(self, es: JsonObject, status: JsonObject) -> None:
        if status == (es.get("status") or {}):
            return

        def replace(document: JsonObject) -> JsonObject:
            document["status"] = status
            return document

        try:
            self.kube.store.patch(
                self.rtype, es["metadata"]["namespace"], es["metadata"]["name"], replace, subresource="status"
            )
        except ApiError as error:
            if error.code != 404:
                raise

    def _patch(self, namespace: str, name: str, change: Any) -> JsonObject:
        def apply(document: JsonObject) -> JsonObject:
            change(document)
            return document

        return self.kube.store.patch(self.rtype, namespace, name, apply).copy()

    # ------------------------------------------------------------ requeueing

    @staticmethod
    def _requeue_after_refresh(refresh: float) -> Result:
        return Result(requeue_after=refresh) if refresh > 0 else DONE

    @staticmethod
    def _requeue(es: JsonObject, refresh: float, now: float) -> Result:
        """ESO's ``getRequeueResult`` for an ExternalSecret that needed no refresh."""
        if refresh <= 0:
            return DONE
        refreshed = parse_time((es.get("status") or {}).get("refreshTime"))
        if refreshed is None:
            return Result(requeue_after=refresh)
        elapsed = now - refreshed
        if elapsed < 0:
            return Result(requeue=True)
        return Result(requeue_after=refresh - elapsed) if elapsed < refresh else Result(requeue=True)


def _extracted(extract: JsonObject, values: dict[str, bytes]) -> dict[str, bytes]:
    """``handleExtractSecrets`` after the read: convert the keys, validate them, then decode the values."""
    conversion = str(extract.get("conversionStrategy") or "Default")
    decoding = str(extract.get("decodingStrategy") or "None")
    try:
        values = transform.convert_keys(conversion, values)
    except transform.DecodeError as error:
        raise ProviderError(f"error applying conversion strategy {conversion} to keys: {error}") from None
    try:
        transform.validate_keys(values)
    except transform.DecodeError as error:
        raise ProviderError(
            f"invalid secret keys (TIP: use rewrite or conversionStrategy to change keys): {error}"
        ) from None
    try:
        decoded = transform.decode_map(decoding, values)
    except transform.DecodeError as error:
        raise ProviderError(f"error applying decoding strategy {decoding} to data: {error}") from None
    _check_null_bytes(extract, decoded)
    return decoded


def _check_null_bytes(remote: JsonObject, values: dict[str, bytes]) -> None:
    """``validateFetchedSecretMap``: with ``nullBytePolicy: Fail`` a value holding NUL is an error."""
    if remote.get("nullBytePolicy") != "Fail":
        return
    for key in sorted(values):
        if b"\0" in values[key]:
            quoted = gotemplate.go_quote(key)
            raise ProviderError(
                f"fetched secret value for key {quoted} contains null bytes; use a text-safe format such as "
                "PEM/base64 or leave nullBytePolicy unset for intentional binary data"
            )


def _secret_valid(secret: JsonObject | None, es: JsonObject) -> bool:
    """ESO's ``isSecretValid``: it exists, is labelled managed and its data matches the data hash."""
    target = (es.get("spec") or {}).get("target") or {}
    if str(target.get("creationPolicy") or "Owner") == "Orphan":
        return True
    if secret is None:
        return False
    metadata = secret["metadata"]
    if (metadata.get("labels") or {}).get(LABEL_MANAGED) != "true":
        return False
    data = {key: base64.b64decode(value) for key, value in (secret.get("data") or {}).items()}
    return (metadata.get("annotations") or {}).get(ANNOTATION_DATA_HASH) == gohash.data_hash(data)
