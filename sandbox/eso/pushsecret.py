"""The PushSecret reconciler: ESO's ``pushsecret_controller.go`` for ``external-secrets.io/v1alpha1``.

* The source is ``spec.selector.secret.name`` (or a label ``selector``);
  each ``spec.data[].match`` pushes one key (or the whole Secret as JSON when
  ``secretKey`` is empty) to ``remoteRef.remoteKey`` (``property`` merges into
  a JSON value) in every store of ``secretStoreRefs`` (by ``name``, or every
  store matching a ``labelSelector``; stores being deleted or of another
  ``controller`` class are left out). A store need not be Ready: PushSecrets
  have no flood gate.
* ``updatePolicy: Replace`` (default) writes when the value differs;
  ``IfNotExists`` leaves an existing remote secret alone.
* ``deletionPolicy: Delete`` keeps a finalizer
  (``pushsecret.externalsecrets.io/finalizer``; adding it ends the reconcile
  with ``Requeue``, so the first push waits for ESO's 1 s backoff) and
  deletes from the providers what it pushed when an entry goes away, when the
  PushSecret is deleted, or when the source Secret is gone (then
  ``syncedPushSecrets`` is cleared and ``Ready=False`` says ``SourceDeleted``,
  "source secret deleted; provider secrets cleaned up"); ``None`` (default)
  never deletes remotely.
* As in ESO, a PushSecret does **not** watch its source Secret: a changed
  Secret is pushed at the next ``refreshInterval`` (default ``1h``) or when
  the PushSecret changes (generation, labels or annotations: a ``force-sync``
  annotation, say; that holds with ``refreshInterval: 0`` too). Otherwise it
  is requeued ``refreshInterval`` after its last refresh, plus 5 s.
* Status: ``Ready`` condition with reason ``Synced`` ("PushSecret synced
  successfully") or ``Errored`` (the error; also a Warning event),
  ``syncedPushSecrets`` (``"<Kind>/<store>" -> {remoteKey[/property] -> data}``),
  ``refreshTime``, ``syncedResourceVersion``.

Not emulated (refused with a message): ``dataTo``, ``template``,
``selector.generatorRef``, conversion strategies.
"""

from __future__ import annotations

import base64
import copy
import time
from typing import Any

from vaultflow.sandbox.eso import gohash
from vaultflow.sandbox.eso.conditions import interval, new_condition, parse_time, rfc3339, set_condition
from vaultflow.sandbox.eso.externalsecret import ReconcileError
from vaultflow.sandbox.eso.kube import ESO_ALPHA_API, KubeAccess
from vaultflow.sandbox.eso.providers.base import ProviderError, PushData
from vaultflow.sandbox.eso.stores import CLUSTER_STORE, STORE, ClientManager, StoreRef, StoreResolver
from vaultflow.sandbox.kube.errors import ApiError
from vaultflow.sandbox.kube.selectors import parse_label_selector
from vaultflow.sandbox.workqueue import DONE, Result

JsonObject = dict[str, Any]
SyncedMap = dict[str, dict[str, JsonObject]]

FINALIZER = "pushsecret.externalsecrets.io/finalizer"
SYNCED = "PushSecret synced successfully"
SOURCE_DELETED = "source secret deleted; provider secrets cleaned up"


def _merge_state(new: SyncedMap, old: SyncedMap) -> SyncedMap:
    """ESO's ``mergeSecretState``: ``new`` with every entry of ``old`` inserted (``old`` wins a clash)."""
    out = copy.deepcopy(new)
    for store, entries in old.items():
        out.setdefault(store, {}).update(copy.deepcopy(entries))
    return out


def _set_synced(status: JsonObject, state: SyncedMap) -> None:
    """``syncedPushSecrets`` is ``omitempty``: an empty map leaves the status."""
    if state:
        status["syncedPushSecrets"] = state
    else:
        status.pop("syncedPushSecrets", None)


def _check_supported(spec: JsonObject) -> None:
    unsupported = [f"spec.{name}" for name in ("dataTo", "template") if spec.get(name)]
    if (spec.get("selector") or {}).get("generatorRef"):
        unsupported.append("spec.selector.generatorRef")
    for index, entry in enumerate(spec.get("data") or []):
        if entry.get("conversionStrategy", "None") != "None":
            unsupported.append(f"spec.data[{index}].conversionStrategy")
    if unsupported:
        raise ProviderError(f"{', '.join(unsupported)}: not emulated by the sandbox's ESO")


def _selector_text(selector: JsonObject) -> str:
    """A ``metav1.LabelSelector`` in the string form the store's selector parser reads."""
    parts = [f"{key}={value}" for key, value in (selector.get("matchLabels") or {}).items()]
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key", ""), expression.get("operator", "")
        values = ",".join(expression.get("values") or [])
        parts.append(
            {"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})", "Exists": key}.get(
                operator, f"!{key}"
            )
        )
    return ",".join(parts)


def _should_refresh(ps: JsonObject, refresh: float, now: float) -> bool:
    """The PushSecret's own ``shouldRefresh``: a changed object first, then ``refreshInterval: 0``."""
    status = ps.get("status") or {}
    if (status.get("syncedResourceVersion") or "") != gohash.resource_version(ps["metadata"]):
        return True
    if refresh == 0 and status.get("syncedResourceVersion"):
        return False
    refreshed = parse_time(status.get("refreshTime"))
    return refreshed is None or refreshed + refresh < now


class _Failed(Exception):
    """A reconcile that marked the PushSecret failed (status and event done); ESO returns the error."""


class _SourceMissing(Exception):
    """The named source Secret does not exist (``apierrors.IsNotFound``)."""


class PushSecretReconciler:
    def __init__(self, kube: KubeAccess, stores: StoreResolver) -> None:
        self.kube = kube
        self.stores = stores
        self.rtype = kube.type_of(ESO_ALPHA_API, "PushSecret")

    def reconcile(self, namespace: str, name: str) -> Result:
        """ESO's ``Reconcile``: one client manager for the whole reconcile, without the flood gate."""
        ps = self.kube.get(self.rtype, namespace, name)
        if ps is None:
            return DONE
        status: JsonObject = copy.deepcopy(ps.get("status") or {})
        with self.stores.manager(floodgate=False) as manager:
            try:
                return self._reconcile(ps, status, manager)
            except _Failed as error:
                raise ReconcileError(str(error)) from None
            finally:
                self._write_status(ps, status)  # ESO patches the status when the reconcile returns

    def _reconcile(self, ps: JsonObject, status: JsonObject, manager: ClientManager) -> Result:
        spec = ps.get("spec") or {}
        deleting = bool(ps["metadata"].get("deletionTimestamp"))  # without our finalizer ESO goes on
        finalizers = ps["metadata"].get("finalizers") or []
        policy = str(spec.get("deletionPolicy") or "None")
        if policy == "Delete" and not deleting and FINALIZER not in finalizers:
            self._set_finalizer(ps, present=True)
            return Result(requeue=True)  # rate-limited: the first push waits for the 1 s backoff
        if policy == "Delete" and deleting and FINALIZER in finalizers:
            self._delete_or_fail(ps, status, {}, manager, "Failed to Delete Secrets from Provider")
            self._set_finalizer(ps, present=False)
            return DONE
        if policy == "None" and FINALIZER in finalizers:
            ps = self._set_finalizer(ps, present=False)
        refresh = interval(spec)
        now = time.time()
        if not _should_refresh(ps, refresh, now):
            refreshed = parse_time(status.get("refreshTime"))
            since = now - refreshed if refreshed is not None else 0.0
            return Result(requeue_after=refresh - since + 5)  # not positive: no requeue
        try:
            _check_supported(spec)
        except ProviderError as error:
            raise self._fail(ps, status, str(error)) from None
        try:
            sources = self._sources(ps)
        except _SourceMissing:
            if policy == "Delete" and status.get("syncedPushSecrets"):
                self._source_deleted(ps, status, manager)
                return DONE
            raise self._fail(ps, status, "could not get source secret") from None
        except ProviderError:
            raise self._fail(ps, status, "could not get source secret") from None
        try:
            refs = self._store_refs(ps)
        except ProviderError as error:
            raise self._fail(ps, status, str(error)) from None
        if not refs:
            return DONE
        synced = self._push(ps, status, sources, refs, manager)
        message = SYNCED + (
            ". Existing secrets in providers unchanged." if spec.get("updatePolicy") == "IfNotExists" else ""
        )
        set_condition(status, new_condition("Ready", "True", "Synced", message, now))
        _set_synced(status, synced)
        status["refreshTime"] = rfc3339(now)
        status["syncedResourceVersion"] = gohash.resource_version(ps["metadata"])
        self.kube.record_event(ps, "Normal", "Synced", message)
        return Result(requeue_after=refresh) if refresh > 0 else DONE

    def _fail(
        self, ps: JsonObject, status: JsonObject, message: str, state: SyncedMap | None = None
    ) -> _Failed:
        """ESO's ``markAsFailed``: ``Ready=False``/``Errored``, the state when given, a Warning event."""
        set_condition(status, new_condition("Ready", "False", "Errored", message, time.time()))
        if state is not None:
            _set_synced(status, state)
        self.kube.record_event(ps, "Warning", "Errored", message)
        return _Failed(message)

    def _source_deleted(self, ps: JsonObject, status: JsonObject, manager: ClientManager) -> None:
        """``handleSourceSecretDeleted``: everything pushed is deleted, the state cleared, and it says so."""
        self._delete_or_fail(ps, status, {}, manager, "failed to cleanup provider secrets")
        _set_synced(status, {})
        set_condition(status, new_condition("Ready", "False", "SourceDeleted", SOURCE_DELETED, time.time()))
        self.kube.record_event(ps, "Normal", "SourceDeleted", SOURCE_DELETED)

    def _sources(self, ps: JsonObject) -> list[dict[str, bytes]]:
        namespace = ps["metadata"]["namespace"]
        selector = ((ps.get("spec") or {}).get("selector") or {}).get("secret") or {}
        if selector.get("name"):
            secret = self.kube.get(self.kube.secrets, namespace, str(selector["name"]))
            if secret is None:
                raise _SourceMissing(selector["name"])
            secrets = [secret]
        elif selector.get("selector"):
            listed = self.kube.store.list(
                self.kube.secrets, namespace, parse_label_selector(_selector_text(selector["selector"]))
            )
            secrets = [entry.obj for entry in listed.entries]
        else:
            raise ProviderError("no secret selector provided")
        return [{k: base64.b64decode(v) for k, v in (s.get("data") or {}).items()} for s in secrets]

    def _store_refs(self, ps: JsonObject) -> list[StoreRef]:
        """``GetSecretStores`` (names, label selectors) less stores being deleted or of another class."""
        namespace = ps["metadata"]["namespace"]
        found: dict[StoreRef, JsonObject] = {}
        for spec in (ps.get("spec") or {}).get("secretStoreRefs") or []:
            ref = StoreRef.from_spec(spec)
            selector = spec.get("labelSelector")
            if selector is None:
                if not ref.name:
                    raise ProviderError("refStore Name must be provided")
                found[ref] = self.stores.get_store(ref, namespace)
                continue
            cluster = ref.kind == CLUSTER_STORE
            rtype = self.stores.cluster_store_type if cluster else self.stores.store_type
            listed = self.kube.store.list(
                rtype, None if cluster else namespace, parse_label_selector(_selector_text(selector))
            )
            for entry in listed.entries:
                found[StoreRef(CLUSTER_STORE if cluster else STORE, entry.obj["metadata"]["name"])] = (
                    entry.obj
                )
        return [
            ref
            for ref, store in found.items()
            if not store["metadata"].get("deletionTimestamp")
            and not (store.get("spec") or {}).get("controller")
        ]

    def _push(
        self,
        ps: JsonObject,
        status: JsonObject,
        sources: list[dict[str, bytes]],
        refs: list[StoreRef],
        manager: ClientManager,
    ) -> SyncedMap:
        spec = ps.get("spec") or {}
        previous: SyncedMap = copy.deepcopy(status.get("syncedPushSecrets") or {})
        entries = [PushData.from_spec(entry) for entry in spec.get("data") or []]
        all_synced: SyncedMap = {}
        for data in sources:
            synced: SyncedMap = {}
            try:
                for ref in refs:
                    self._push_to_store(ps, ref, data, entries=entries, synced=synced, manager=manager)
            except ProviderError as error:
                raise self._fail(
                    ps, status, f"set secret failed: {error}", _merge_state(synced, previous)
                ) from None
            if str(spec.get("deletionPolicy") or "None") == "Delete":
                self._delete_or_fail(ps, status, synced, manager, "Failed to Delete Secrets from Provider")
            all_synced = _merge_state(all_synced, synced)
        return all_synced

    def _push_to_store(
        self,
        ps: JsonObject,
        ref: StoreRef,
        data: dict[str, bytes],
        *,
        entries: list[PushData],
        synced: SyncedMap,
        manager: ClientManager,
    ) -> None:
        namespace = ps["metadata"]["namespace"]
        store_key = f"{ref.kind}/{ref.name}"
        synced[store_key] = {}
        try:
            client = manager.get(ref, namespace)
        except ProviderError as error:
            raise ProviderError(f"could not get secrets client for store {ref.name}: {error}") from None
        if_not_exists = (ps.get("spec") or {}).get("updatePolicy") == "IfNotExists"
        for entry in entries:
            if entry.secret_key and entry.secret_key not in data:
                raise ProviderError(f"secret key {entry.secret_key} does not exist")
            if if_not_exists:
                try:
                    exists = client.secret_exists(entry)
                except ProviderError as error:
                    raise ProviderError(f"could not verify if secret exists in store: {error}") from None
                if exists:
                    synced[store_key][entry.status_key] = entry.raw
                    continue
            try:
                client.push_secret(data, entry)
            except ProviderError as error:
                raise ProviderError(
                    f"could not write remote ref {entry.secret_key} to target secretstore {ref.name}: {error}"
                ) from None
            synced[store_key][entry.status_key] = entry.raw

    def _delete_or_fail(
        self, ps: JsonObject, status: JsonObject, keep: SyncedMap, manager: ClientManager, what: str
    ) -> None:
        state, error = self._delete_remote(ps, keep, manager)
        if error is not None:
            raise self._fail(ps, status, f"{what}: {error}", state)

    def _delete_remote(
        self, ps: JsonObject, keep: SyncedMap, manager: ClientManager
    ) -> tuple[SyncedMap, ProviderError | None]:
        """``DeleteSecretFromProviders``: delete what the status says was pushed and ``keep`` lacks.

        Returns the state left (what could not be deleted is still in it) and the error, if any.
        """
        namespace = ps["metadata"]["namespace"]
        old: SyncedMap = (ps.get("status") or {}).get("syncedPushSecrets") or {}
        out = _merge_state(keep, old)
        for store_key, entries in old.items():
            kind, _, name = store_key.partition("/")
            try:
                client = manager.get(StoreRef(kind, name), namespace)
            except ProviderError as error:
                return out, ProviderError(f"could not get secrets client for store {store_key}: {error}")
            for status_key, raw in entries.items():
                if store_key in keep and status_key in keep[store_key]:
                    continue
                try:
                    client.delete_secret(PushData.from_spec(raw))
                except ProviderError as error:
                    return out, error
                if store_key in keep:
                    out[store_key].pop(status_key, None)
            if store_key not in keep:
                out.pop(store_key, None)
        return out, None

    def _set_finalizer(self, ps: JsonObject, *, present: bool) -> JsonObject:
        def change(document: JsonObject) -> JsonObject:
            finalizers = [f for f in document["metadata"].get("finalizers") or [] if f != FINALIZER]
            document["metadata"]["finalizers"] = [*finalizers, FINALIZER] if present else finalizers
            return document

        return self.kube.store.patch(
            self.rtype, ps["metadata"]["namespace"], ps["metadata"]["name"], change
        ).copy()

    def _write_status(self, ps: JsonObject, status: JsonObject) -> None:
        def replace(document: JsonObject) -> JsonObject:
            document["status"] = status
            return document

        try:
            self.kube.store.patch(
                self.rtype, ps["metadata"]["namespace"], ps["metadata"]["name"], replace, subresource="status"
            )
        except ApiError as error:
            if error.code != 404:
                raise
