"""The ClusterExternalSecret controller: ESO's ``pkg/controllers/clusterexternalsecret``, step for step.

A ClusterExternalSecret (cluster-scoped) fans one ``externalSecretSpec`` out to
namespaces; each copy is an ordinary ExternalSecret the ExternalSecret
controller then syncs. What ``clusterexternalsecret_controller.go`` does:

1. a finalizer (``externalsecrets.external-secrets.io/clusterexternalsecret-cleanup``)
   is added first, and the reconcile ends there (the update brings it back);
2. the target namespaces are ``spec.namespaces`` (by their
   ``kubernetes.io/metadata.name`` label), then those of ``namespaceSelector``
   (deprecated) and every ``namespaceSelectors`` entry, ORed, without duplicates
   (``esutils.GetTargetNamespaces``); a selector that does not convert fails
   the reconcile with a ``failedNamespaces`` entry for namespace ``unknown``;
3. the ExternalSecret is named ``spec.externalSecretName``, else after the
   ClusterExternalSecret; a rename deletes the old ones (``status.externalSecretName``);
4. ExternalSecrets this ClusterExternalSecret controls in namespaces that no
   longer match are deleted; the namespace keeps the finalizer it was given
   (as upstream: only a matching namespace that is terminating has it removed);
5. in each matching namespace: a terminating one has its
   ``externalsecrets.external-secrets.io/ces-<name>`` finalizer removed and is
   skipped; an ExternalSecret of that name controlled by anything else is a
   failure ("external secret already exists in namespace"); otherwise the
   namespace gets the finalizer and the ExternalSecret is created or updated
   (``CreateOrUpdate``): labels and annotations *replaced* by
   ``externalSecretMetadata``'s, the ClusterExternalSecret's own
   ``external-secrets.io/force-sync`` annotation mirrored (copied with its
   value, removed when the ClusterExternalSecret has none; no other
   annotation of the ClusterExternalSecret is copied), the spec replaced by
   ``externalSecretSpec``, and the ClusterExternalSecret as controller owner;
6. status (written at the end, errors included): ``externalSecretName``,
   ``provisionedNamespaces`` and ``failedNamespaces`` (sorted,
   ``{namespace, reason}``), condition ``Ready`` ``True`` (no message), or
   ``False`` with "one or more namespaces failed"; a conflict among the
   failures is retried with backoff, otherwise the reconcile comes back after
   ``spec.refreshTime`` (ESO's default ``RequeueInterval``: one hour; ``0``: never);
7. on deletion: for each provisioned namespace the namespace finalizer is
   removed and the ExternalSecret deleted, then the finalizer goes.

What wakes it (``SetupWithManager``): any change of a ClusterExternalSecret
(``For``, no predicate), any change of an ExternalSecret it controls
(``Owns``), and a namespace created, deleted or relabelled (``NamespacePredicate``)
that one of its selectors or ``namespaces`` names, before or after the change.
No Events are recorded, as upstream records none.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vaultflow.base.durations import parse_go_duration
from vaultflow.sandbox.eso.kube import ESO_API, KubeAccess
from vaultflow.sandbox.kube.errors import ApiError
from vaultflow.sandbox.kube.selectors import label_selector_predicate, label_selector_string
from vaultflow.sandbox.kube.store import Event
from vaultflow.sandbox.workqueue import DONE, Result

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]

KIND = "ClusterExternalSecret"
FINALIZER = "externalsecrets.external-secrets.io/clusterexternalsecret-cleanup"
NAMESPACE_FINALIZER = "externalsecrets.external-secrets.io/ces-"  # + the ClusterExternalSecret's name
ANNOTATION_FORCE_SYNC = "external-secrets.io/force-sync"
NAME_LABEL = "kubernetes.io/metadata.name"
REQUEUE_INTERVAL = 3600.0  # cmd/controller/root.go: RequeueInterval: time.Hour

MSG_NAMESPACES_FAILED = "one or more namespaces failed"
MSG_EXISTS = "external secret already exists in namespace"


class ReconcileError(Exception):
    """A reconcile that returned an error: ESO retries it with backoff."""


@dataclass(frozen=True)
class _Failure:
    reason: str
    conflict: bool = False


def _failure(prefix: str, error: ApiError) -> _Failure:
    """A wrapped API error; ``apierrors.IsConflict`` still sees through the wrapping (not AlreadyExists)."""
    return _Failure(f"{prefix}{error}", error.reason == "Conflict")


def _selectors(spec: JsonObject) -> list[JsonObject | None]:
    """``namespaceSelector`` (deprecated), then ``namespaceSelectors``; a ``null`` entry selects nothing."""
    selectors: list[JsonObject | None] = []
    if spec.get("namespaceSelector") is not None:
        selectors.append(spec["namespaceSelector"])
    selectors.extend(spec.get("namespaceSelectors") or [])
    return selectors


def controlled_by(obj: JsonObject, ces_name: str) -> bool:
    """``isExternalSecretOwnedBy``: its controller is a ClusterExternalSecret of that name (any uid)."""
    return _controller_ces(obj) == ces_name


def _controller_ces(obj: JsonObject | None) -> str | None:
    for reference in ((obj or {}).get("metadata") or {}).get("ownerReferences") or []:
        if reference.get("controller"):
            group = str(reference.get("apiVersion", "")).partition("/")[0]
            if group == "external-secrets.io" and reference.get("kind") == KIND:
                return str(reference.get("name", ""))
            return None
    return None


class ClusterExternalSecretController:
    """Reconciles ClusterExternalSecrets; ``on_event`` maps watch events to keys for ``enqueue``."""

    def __init__(
        self, kube: KubeAccess, enqueue: Callable[[str], None], *, requeue: float = REQUEUE_INTERVAL
    ) -> None:
        self.kube = kube
        self.enqueue = enqueue
        self.requeue = requeue
        self.rtype = kube.type_of(ESO_API, KIND)
        self.external_secrets = kube.type_of(ESO_API, "ExternalSecret")
        self.namespaces = kube.type_of("v1", "Namespace")

    # ------------------------------------------------------------ what wakes it (under the store's lock)

    def resync(self) -> None:
        """Every existing ClusterExternalSecret, as the informer's initial list adds them."""
        for entry in self.kube.store.list(self.rtype, None).entries:
            self.enqueue(entry.obj["metadata"]["name"])

    def on_event(self, event: Event) -> None:
        key = event.rtype.storage_key
        current = None if event.type == "DELETED" else event.entry.obj
        if key == self.rtype.storage_key:
            self.enqueue(event.entry.obj["metadata"]["name"])
        elif key == self.external_secrets.storage_key:
            owners = {_controller_ces(event.previous), _controller_ces(event.entry.obj)}
            for owner in sorted(o for o in owners if o):
                self.enqueue(owner)
        elif key == self.namespaces.storage_key:
            relabelled = (
                event.type != "MODIFIED"
                or event.previous is None
                or current is None
                or event.previous["metadata"].get("labels") != current["metadata"].get("labels")
            )
            if not relabelled:
                return  # NamespacePredicate: an update matters only when the labels change
            for namespace in (event.previous, event.entry.obj):
                if namespace is not None:
                    for name in self._selecting(namespace):
                        self.enqueue(name)

    def _selecting(self, namespace: JsonObject) -> list[str]:
        """``findObjectsForNamespace``: the ClusterExternalSecrets whose selectors or list name it."""
        names = []
        for entry in self.kube.store.list(self.rtype, None).entries:
            spec = entry.obj.get("spec") or {}
            selected = False
            for selector in _selectors(spec):
                try:
                    selected = label_selector_predicate(selector)(namespace)
                except ValueError:
                    continue
                if selected:
                    break
            if selected or namespace["metadata"]["name"] in (spec.get("namespaces") or []):
                names.append(entry.obj["metadata"]["name"])
        return names

    # ------------------------------------------------------------ reconciling

    def reconcile(self, name: str) -> Result:
        ces = self.kube.get(self.rtype, "", name)
        if ces is None:
            return DONE
        refresh = self._refresh_interval(ces.get("spec") or {})  # decoding the object: before anything
        finalizers = ces["metadata"].get("finalizers") or []
        if ces["metadata"].get("deletionTimestamp"):
            self._cleanup(ces)
            if FINALIZER in finalizers:
                self._set_finalizers(name, [f for f in finalizers if f != FINALIZER])
            return DONE
        if FINALIZER not in finalizers:
            self._set_finalizers(name, [*finalizers, FINALIZER])
            return DONE  # the update comes back as an event
        status: JsonObject = copy.deepcopy(ces.get("status") or {})
        try:
            return self._reconcile(ces, status, refresh)
        finally:
            self._write_status(ces, status)

    def _reconcile(self, ces: JsonObject, status: JsonObject, refresh: float) -> Result:
        spec = ces.get("spec") or {}
        name = ces["metadata"]["name"]
        es_name = str(spec.get("externalSecretName") or name)
        previous = status.get("externalSecretName")
        if previous and previous != es_name:
            self._remove_old(ces, status, str(previous))
        status["externalSecretName"] = es_name
        try:
            namespaces = self._target_namespaces(spec)
        except ValueError as error:
            failed = {"unknown": _Failure(str(error))}
            _set_outcome(status, failed)
            raise ReconcileError(str(error)) from None
        provisioned_before = [str(n) for n in status.get("provisionedNamespaces") or []]
        failed = self._delete_outdated(namespaces, es_name, name, provisioned_before)
        provisioned = self._provision(ces, namespaces, es_name, failed)
        _set_outcome(status, failed)
        if provisioned:
            status["provisionedNamespaces"] = sorted(provisioned)
        else:
            status.pop("provisionedNamespaces", None)
        conflicts = [f.reason for f in failed.values() if f.conflict]
        if conflicts:
            raise ReconcileError(f"conflict detected, will retry: {conflicts[0]}")
        return Result(requeue_after=refresh) if refresh > 0 else DONE

    def _refresh_interval(self, spec: JsonObject) -> float:
        """``spec.refreshTime`` (a ``metav1.Duration``); one that does not decode fails the read, as in Go."""
        text = spec.get("refreshTime")
        if text is None:
            return self.requeue
        try:
            return parse_go_duration(str(text))
        except ValueError:
            raise ReconcileError(
                f'could not get ClusterExternalSecret: time: invalid duration "{text}"'
            ) from None

    def _target_namespaces(self, spec: JsonObject) -> list[JsonObject]:
        """``esutils.GetTargetNamespaces``: by name first, then each selector, without duplicates."""
        selectors: list[JsonObject | None] = [
            {"matchLabels": {NAME_LABEL: str(n)}} for n in spec.get("namespaces") or []
        ]
        selectors.extend(_selectors(spec))
        found: dict[str, JsonObject] = {}
        for selector in selectors:
            try:
                matches = label_selector_predicate(selector)
            except ValueError as error:
                raise ValueError(
                    f"failed to convert label selector {label_selector_string(selector)}: {error}"
                ) from None
            for entry in self.kube.store.list(self.namespaces, None, matches).entries:
                found.setdefault(entry.obj["metadata"]["name"], entry.obj)
        return list(found.values())

    def _remove_old(self, ces: JsonObject, status: JsonObject, previous: str) -> None:
        """``removeOldSecrets``: the ExternalSecrets of the former name, in every provisioned namespace."""
        failed: dict[str, _Failure] = {}
        for namespace in status.get("provisionedNamespaces") or []:
            problem = self._delete_external_secret(previous, ces["metadata"]["name"], str(namespace))
            if problem is not None:
                failed[str(namespace)] = problem
        if failed:
            _set_outcome(status, failed)
            raise ReconcileError(next(iter(failed.values())).reason)

    def _delete_outdated(
        self, namespaces: list[JsonObject], es_name: str, ces_name: str, provisioned: list[str]
    ) -> dict[str, _Failure]:
        current = {n["metadata"]["name"] for n in namespaces}
        failed: dict[str, _Failure] = {}
        for namespace in provisioned:
            if namespace not in current:
                problem = self._delete_external_secret(es_name, ces_name, namespace)
                if problem is not None:
                    failed[namespace] = problem
        return failed

    def _delete_external_secret(self, es_name: str, ces_name: str, namespace: str) -> _Failure | None:
        existing = self.kube.get(self.external_secrets, namespace, es_name)
        if existing is None or not controlled_by(existing, ces_name):
            return None
        try:
            self.kube.store.delete(self.external_secrets, namespace, es_name)
        except ApiError as error:
            if error.code == 404:
                return None
            return _failure("external secret in non matching namespace could not be deleted: ", error)
        return None

    def _provision(
        self, ces: JsonObject, namespaces: list[JsonObject], es_name: str, failed: dict[str, _Failure]
    ) -> list[str]:
        """``gatherProvisionedNamespaces``."""
        ces_name = ces["metadata"]["name"]
        provisioned = []
        for namespace in namespaces:
            namespace_name = namespace["metadata"]["name"]
            if namespace["metadata"].get("deletionTimestamp"):
                try:
                    self._remove_namespace_finalizer(namespace_name, ces_name)
                except ApiError as error:
                    log.info(
                        "ClusterExternalSecret %s: finalizer of namespace %s: %s",
                        ces_name,
                        namespace_name,
                        error,
                    )
                continue
            existing = self.kube.get(self.external_secrets, namespace_name, es_name)
            if existing is not None and not controlled_by(existing, ces_name):
                failed[namespace_name] = _Failure(MSG_EXISTS)
                continue
            problem = self._create_or_update(ces, namespace, es_name)
            if problem is not None:
                failed[namespace_name] = problem
                continue
            provisioned.append(namespace_name)
        return provisioned

    def _create_or_update(self, ces: JsonObject, namespace: JsonObject, es_name: str) -> _Failure | None:
        namespace_name = namespace["metadata"]["name"]
        finalizer = NAMESPACE_FINALIZER + ces["metadata"]["name"]
        if finalizer not in (namespace["metadata"].get("finalizers") or []):
            problem = self._add_namespace_finalizer(namespace_name, finalizer)
            if problem is not None:
                return problem
        existing = self.kube.get(self.external_secrets, namespace_name, es_name)
        desired = _mutated(ces, existing, namespace_name, es_name)
        try:
            if existing is None:
                self.kube.store.create(self.external_secrets, namespace_name, desired)
            elif desired != existing:
                self.kube.store.update(self.external_secrets, namespace_name, es_name, desired)
        except ApiError as error:
            return _failure("could not create or update ExternalSecret: ", error)
        return None

    def _add_namespace_finalizer(self, namespace_name: str, finalizer: str) -> _Failure | None:
        latest = self.kube.get(self.namespaces, "", namespace_name)
        if latest is None:
            return _Failure(f'could not get latest namespace: namespaces "{namespace_name}" not found')
        finalizers = latest["metadata"].get("finalizers") or []
        if finalizer in finalizers:
            return None
        latest["metadata"]["finalizers"] = [*finalizers, finalizer]
        try:
            self.kube.store.update(self.namespaces, "", namespace_name, latest)
        except ApiError as error:
            if error.reason == "Conflict":
                return _Failure(str(error), conflict=True)
            return _failure("could not add namespace finalizer: ", error)
        return None

    def _remove_namespace_finalizer(self, namespace_name: str, ces_name: str) -> None:
        """``updateNamespaceRemoveFinalizer``: a namespace that is gone needs nothing."""
        finalizer = NAMESPACE_FINALIZER + ces_name
        latest = self.kube.get(self.namespaces, "", namespace_name)
        if latest is None or finalizer not in (latest["metadata"].get("finalizers") or []):
            return
        latest["metadata"]["finalizers"] = [f for f in latest["metadata"]["finalizers"] if f != finalizer]
        try:
            self.kube.store.update(self.namespaces, "", namespace_name, latest)
        except ApiError as error:
            if error.code != 404:
                raise

    def _cleanup(self, ces: JsonObject) -> None:
        """``cleanupExternalSecrets``: every provisioned namespace, errors joined."""
        status = ces.get("status") or {}
        ces_name = ces["metadata"]["name"]
        es_name = str(status.get("externalSecretName") or ces_name)
        problems = []
        for namespace in status.get("provisionedNamespaces") or []:
            try:
                self._remove_namespace_finalizer(str(namespace), ces_name)
            except ApiError as error:
                problems.append(f"failed to remove finalizer from namespace {namespace}: {error}")
                continue
            problem = self._delete_external_secret(es_name, ces_name, str(namespace))
            if problem is not None:
                problems.append(f"failed to delete ExternalSecret in namespace {namespace}: {problem.reason}")
        if problems:
            raise ReconcileError("\n".join(problems))

    # ------------------------------------------------------------ writes of its own

    def _set_finalizers(self, name: str, finalizers: list[str]) -> None:
        def change(document: JsonObject) -> JsonObject:
            document["metadata"]["finalizers"] = finalizers
            return document

        try:
            self.kube.store.patch(self.rtype, "", name, change)
        except ApiError as error:
            if error.code != 404:
                raise

    def _write_status(self, ces: JsonObject, status: JsonObject) -> None:
        if status == (ces.get("status") or {}):
            return

        def replace(document: JsonObject) -> JsonObject:
            document["status"] = status
            return document

        try:
            self.kube.store.patch(self.rtype, "", ces["metadata"]["name"], replace, subresource="status")
        except ApiError as error:
            if error.code != 404:
                raise


def _mutated(ces: JsonObject, existing: JsonObject | None, namespace: str, es_name: str) -> JsonObject:
    """``createOrUpdateExternalSecret``'s mutate function, on the existing ExternalSecret (or a new one)."""
    spec = ces.get("spec") or {}
    es_metadata = spec.get("externalSecretMetadata") or {}
    es: JsonObject = (
        copy.deepcopy(existing)
        if existing is not None
        else {
            "apiVersion": ESO_API,
            "kind": "ExternalSecret",
            "metadata": {"name": es_name, "namespace": namespace},
        }
    )
    metadata = es["metadata"]
    labels = dict(es_metadata.get("labels") or {})
    annotations = dict(es_metadata.get("annotations") or {})
    force_sync = (ces["metadata"].get("annotations") or {}).get(ANNOTATION_FORCE_SYNC)
    if force_sync is not None:
        annotations[ANNOTATION_FORCE_SYNC] = force_sync
    else:
        annotations.pop(ANNOTATION_FORCE_SYNC, None)
    for field, values in (("labels", labels), ("annotations", annotations)):
        if values:
            metadata[field] = values
        else:
            metadata.pop(field, None)  # a nil map: omitted
    es["spec"] = copy.deepcopy(spec.get("externalSecretSpec") or {})
    _set_controller(metadata, ces)
    return es


def _set_controller(metadata: JsonObject, ces: JsonObject) -> None:
    """``controllerutil.SetControllerReference``: an owner reference to the same object (group, kind,
    name) is replaced, so a recreated ClusterExternalSecret of the same name takes over."""
    reference = {
        "apiVersion": ESO_API,
        "kind": KIND,
        "name": ces["metadata"]["name"],
        "uid": ces["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    references = list(metadata.get("ownerReferences") or [])
    for index, existing in enumerate(references):
        same = (
            str(existing.get("apiVersion", "")).partition("/")[0] == "external-secrets.io"
            and existing.get("kind") == KIND
            and existing.get("name") == reference["name"]
        )
        if same:
            references[index] = reference
            break
    else:
        references.append(reference)
    metadata["ownerReferences"] = references


def _set_outcome(status: JsonObject, failed: dict[str, _Failure]) -> None:
    """The Ready condition and ``failedNamespaces`` (``NewClusterExternalSecretCondition``,
    ``SetClusterExternalSecretCondition``, ``toNamespaceFailures``)."""
    condition: JsonObject = {"type": "Ready", "status": "True"}
    if failed:
        condition = {"type": "Ready", "status": "False", "message": MSG_NAMESPACES_FAILED}
    others = [c for c in status.get("conditions") or [] if c.get("type") != "Ready"]
    status["conditions"] = [*others, condition]
    if failed:
        status["failedNamespaces"] = [
            {"namespace": namespace, "reason": failed[namespace].reason} for namespace in sorted(failed)
        ]
    else:
        status.pop("failedNamespaces", None)
