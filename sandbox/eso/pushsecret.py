"""The PushSecret reconciler: ESO's ``pushsecret_controller.go`` for ``external-secrets.io/v1alpha1``.

* The source is ``spec.selector.secret.name`` (or a label ``selector``);
  each ``spec.data[].match`` pushes one key (or the whole Secret as JSON when
  ``secretKey`` is empty) to ``remoteRef.remoteKey`` (``property`` merges into
  a JSON value) in every store of ``secretStoreRefs``.
* ``updatePolicy: Replace`` (default) writes when the value differs;
  ``IfNotExists`` leaves an existing remote secret alone.
* ``deletionPolicy: Delete`` keeps a finalizer
  (``pushsecret.externalsecrets.io/finalizer``) and deletes from the providers
  what it pushed when an entry goes away or the PushSecret is deleted;
  ``None`` (default) never deletes remotely.
* As in ESO, a PushSecret does **not** watch its source Secret: a changed
  Secret is pushed at the next ``refreshInterval`` (default ``1h``) or when
  the PushSecret changes (a ``force-sync`` annotation, say).
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
from vaultflow.sandbox.eso.conditions import (
    interval,
    new_condition,
    parse_time,
    rfc3339,
    set_condition,
    should_refresh,
)
from vaultflow.sandbox.eso.externalsecret import ReconcileError
from vaultflow.sandbox.eso.kube import ESO_ALPHA_API, KubeAccess
from vaultflow.sandbox.eso.providers.base import ProviderError, PushData
from vaultflow.sandbox.eso.stores import StoreRef, StoreResolver
from vaultflow.sandbox.kube.errors import ApiError
from vaultflow.sandbox.kube.selectors import parse_label_selector
from vaultflow.sandbox.workqueue import DONE, Result

JsonObject = dict[str, Any]
SyncedMap = dict[str, dict[str, JsonObject]]

FINALIZER = "pushsecret.externalsecrets.io/finalizer"
SYNCED = "PushSecret synced successfully"


def _merge_state(new: SyncedMap, old: SyncedMap) -> SyncedMap:
    out = copy.deepcopy(new)
    for store, entries in old.items():
        out.setdefault(store, {}).update({k: v for k, v in entries.items() if k not in out[store]})
    return out


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


class PushSecretReconciler:
    def __init__(self, kube: KubeAccess, stores: StoreResolver) -> None:
        self.kube = kube
        self.stores = stores
        self.rtype = kube.type_of(ESO_ALPHA_API, "PushSecret")

    def reconcile(self, namespace: str, name: str) -> Result:
        ps = self.kube.get(self.rtype, namespace, name)
        if ps is None:
            return DONE
        spec = ps.get("spec") or {}
        deleting = bool(ps["metadata"].get("deletionTimestamp"))
        finalizers = ps["metadata"].get("finalizers") or []
        if str(spec.get("deletionPolicy") or "None") == "Delete":
            if deleting:
                if FINALIZER in finalizers:
                    self._delete_remote(ps, {})
                    self._set_finalizer(ps, present=False)
                return DONE
            if FINALIZER not in finalizers:
                ps = self._set_finalizer(ps, present=True)
        elif FINALIZER in finalizers:
            ps = self._set_finalizer(ps, present=False)
        if deleting:
            return DONE
        refresh = interval(spec)
        now = time.time()
        if not should_refresh(ps, refresh, now):
            refreshed = parse_time((ps.get("status") or {}).get("refreshTime")) or now
            return Result(requeue_after=max(refresh - (now - refreshed), 0) + 5)
        status: JsonObject = copy.deepcopy(ps.get("status") or {})
        try:
            synced = self._push(ps, status)
        except (ProviderError, ApiError) as error:
            self._write_status(ps, status)
            raise ReconcileError(str(error)) from None
        message = SYNCED + (
            ". Existing secrets in providers unchanged." if spec.get("updatePolicy") == "IfNotExists" else ""
        )
        set_condition(status, new_condition("Ready", "True", "Synced", message, now))
        status["syncedPushSecrets"] = synced
        status["refreshTime"] = rfc3339(now)
        status["syncedResourceVersion"] = gohash.resource_version(ps["metadata"])
        self.kube.record_event(ps, "Normal", "Synced", message)
        self._write_status(ps, status)
        return Result(requeue_after=refresh) if refresh > 0 else DONE

    def _fail(
        self, ps: JsonObject, status: JsonObject, message: str, state: SyncedMap | None = None
    ) -> ProviderError:
        set_condition(status, new_condition("Ready", "False", "Errored", message, time.time()))
        if state is not None:
            status["syncedPushSecrets"] = state
        self.kube.record_event(ps, "Warning", "Errored", message)
        return ProviderError(message)

    def _sources(self, ps: JsonObject) -> list[dict[str, bytes]]:
        namespace = ps["metadata"]["namespace"]
        selector = ((ps.get("spec") or {}).get("selector") or {}).get("secret") or {}
        if selector.get("name"):
            secret = self.kube.get(self.kube.secrets, namespace, str(selector["name"]))
            if secret is None:
                raise ProviderError(f'secrets "{selector["name"]}" not found')
            secrets = [secret]
        elif selector.get("selector"):
            listed = self.kube.store.list(
                self.kube.secrets, namespace, parse_label_selector(_selector_text(selector["selector"]))
            )
            secrets = [entry.obj for entry in listed.entries]
        else:
            raise ProviderError("no secret selector provided")
        return [{k: base64.b64decode(v) for k, v in (s.get("data") or {}).items()} for s in secrets]

    def _push(self, ps: JsonObject, status: JsonObject) -> SyncedMap:
        spec = ps.get("spec") or {}
        namespace = ps["metadata"]["namespace"]
        previous: SyncedMap = copy.deepcopy(status.get("syncedPushSecrets") or {})
        try:
            _check_supported(spec)
        except ProviderError as error:
            raise self._fail(ps, status, str(error)) from None
        try:
            sources = self._sources(ps)
        except ProviderError as error:
            self.kube.record_event(ps, "Warning", "Errored", str(error))
            raise self._fail(ps, status, "could not get source secret") from None
        refs = [StoreRef.from_spec(ref) for ref in spec.get("secretStoreRefs") or []]
        for ref in refs:
            try:
                self.stores.get_store(ref, namespace)
            except ProviderError as error:
                raise self._fail(ps, status, str(error)) from None
        entries = [PushData.from_spec(entry) for entry in spec.get("data") or []]
        all_synced: SyncedMap = {}
        for data in sources:
            synced: SyncedMap = {}
            try:
                for ref in refs:
                    self._push_to_store(ps, ref, data, entries, synced)
            except ProviderError as error:
                raise self._fail(
                    ps, status, f"set secret failed: {error}", _merge_state(synced, previous)
                ) from None
            if str(spec.get("deletionPolicy") or "None") == "Delete":
                try:
                    self._delete_remote(ps, synced)
                except ProviderError as error:
                    raise self._fail(ps, status, f"Failed to Delete Secrets from Provider: {error}") from None
            all_synced = _merge_state(all_synced, synced)
        return all_synced

    def _push_to_store(
        self,
        ps: JsonObject,
        ref: StoreRef,
        data: dict[str, bytes],
        entries: list[PushData],
        synced: SyncedMap,
    ) -> None:
        namespace = ps["metadata"]["namespace"]
        store_key = f"{ref.kind}/{ref.name}"
        synced[store_key] = {}
        try:
            client = self.stores.client_for(ref, namespace)
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

    def _delete_remote(self, ps: JsonObject, keep: SyncedMap) -> None:
        """Delete what the status says was pushed and ``keep`` no longer has."""
        namespace = ps["metadata"]["namespace"]
        for store_key, entries in ((ps.get("status") or {}).get("syncedPushSecrets") or {}).items():
            kind, _, name = store_key.partition("/")
            client = self.stores.client_for(StoreRef(kind, name), namespace)
            for status_key, raw in entries.items():
                if status_key not in keep.get(store_key, {}):
                    client.delete_secret(PushData.from_spec(raw))

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
