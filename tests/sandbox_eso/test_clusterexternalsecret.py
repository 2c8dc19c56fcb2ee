"""ClusterExternalSecrets fanning one secret out to namespaces, as ESO's controller does.

Observed through the real ``kubernetes`` client: the ClusterExternalSecret's
status, the ExternalSecrets it creates, the Secrets those sync from OpenBao.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from tests.sandbox_eso.conftest import STORE, EsoStack
from vaultflow.sandbox.observe import is_ready, wait_for

GROUP, VERSION = "external-secrets.io", "v1"
CES_FINALIZER = "externalsecrets.external-secrets.io/clusterexternalsecret-cleanup"
FORCE_SYNC = "external-secrets.io/force-sync"


def write(eso: EsoStack, path: str, **values: object) -> None:
    eso.vault.secrets.kv.v2.create_or_update_secret(path, secret=values, mount_point="secret")


@dataclass
class Fanout:
    """This test's namespaces and ClusterExternalSecrets, removed afterwards (the latter first)."""

    eso: EsoStack
    label: str = field(default_factory=lambda: f"ces-{uuid.uuid4().hex[:8]}")
    namespaces: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)

    def namespace(self, *, selected: bool = True) -> str:
        name = f"t-{uuid.uuid4().hex[:8]}"
        labels = {"fanout": self.label} if selected else {}
        self.eso.core.create_namespace({"metadata": {"name": name, "labels": labels}})
        self.namespaces.append(name)
        return name

    def create(self, spec: dict[str, Any], annotations: dict[str, str] | None = None) -> str:
        name = f"ces-{uuid.uuid4().hex[:8]}"
        metadata: dict[str, Any] = {"name": name}
        if annotations:
            metadata["annotations"] = annotations
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ClusterExternalSecret",
            "metadata": metadata,
            "spec": spec,
        }
        self.eso.custom.create_cluster_custom_object(GROUP, VERSION, "clusterexternalsecrets", body)
        self.names.append(name)
        return name

    def get(self, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.eso.custom.get_cluster_custom_object(
                GROUP, VERSION, "clusterexternalsecrets", name
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return found

    def patch(self, name: str, body: dict[str, Any]) -> None:
        self.eso.custom.patch_cluster_custom_object(GROUP, VERSION, "clusterexternalsecrets", name, body)

    def status_when(self, name: str, check: Any, what: str) -> dict[str, Any]:
        def settled() -> dict[str, Any] | None:
            status = (self.get(name) or {}).get("status") or {}
            return status if check(status) else None

        found: dict[str, Any] = wait_for(settled, what=what)
        return found

    def external_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self.eso.get(namespace, "ExternalSecret", name)
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def wait_ready(self, namespace: str, name: str) -> dict[str, Any]:
        """The generated ExternalSecret once it exists (the ClusterExternalSecret creates it) and is Ready."""

        def ready_one() -> dict[str, Any] | None:
            es = self.external_secret(namespace, name)
            return es if es is not None and is_ready(es) else None

        found: dict[str, Any] = wait_for(ready_one, what=f"ExternalSecret {namespace}/{name} Ready")
        return found

    def finalizers(self, namespace: str) -> list[str]:
        return list(self.eso.core.read_namespace(namespace).metadata.finalizers or [])

    def cleanup(self) -> None:
        for name in self.names:
            if self.get(name) is not None:
                self.eso.custom.delete_cluster_custom_object(GROUP, VERSION, "clusterexternalsecrets", name)
        for name in self.names:
            wait_for(lambda: self.get(name) is None, what=f"ClusterExternalSecret {name} to go")  # noqa: B023
        for namespace in self.namespaces:
            try:
                self.eso.core.patch_namespace(namespace, {"metadata": {"finalizers": None}})
                self.eso.core.delete_namespace(namespace)
            except ApiException as error:
                if error.status != 404:
                    raise


@pytest.fixture
def fanout(eso: EsoStack) -> Iterator[Fanout]:
    state = Fanout(eso)
    yield state
    state.cleanup()


def es_spec(vault_path: str, **extra: Any) -> dict[str, Any]:
    return {
        "secretStoreRef": {"name": STORE, "kind": "ClusterSecretStore"},
        "target": {"name": "db-credentials"},
        "data": [{"secretKey": "password", "remoteRef": {"key": vault_path, "property": "password"}}],
        **extra,
    }


def ready(status: dict[str, Any]) -> dict[str, Any] | None:
    return next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)


def test_one_spec_is_fanned_out_to_selected_and_listed_namespaces(
    eso: EsoStack, fanout: Fanout, vault_path: str
) -> None:
    write(eso, vault_path, password="s3cret")
    first, second = fanout.namespace(), fanout.namespace()
    listed, other = fanout.namespace(selected=False), fanout.namespace(selected=False)
    name = fanout.create(
        {
            "externalSecretSpec": es_spec(vault_path),
            "externalSecretMetadata": {"labels": {"app": "db"}, "annotations": {"team": "payments"}},
            "namespaceSelectors": [{"matchLabels": {"fanout": fanout.label}}],
            "namespaces": [listed],
        }
    )
    expected = sorted([first, second, listed])
    status = fanout.status_when(
        name, lambda s: s.get("provisionedNamespaces") == expected, "every namespace provisioned"
    )
    assert ready(status) == {"type": "Ready", "status": "True"}
    assert status["externalSecretName"] == name and "failedNamespaces" not in status

    ces = fanout.get(name)
    assert ces is not None and CES_FINALIZER in ces["metadata"]["finalizers"]
    assert ces["spec"]["externalSecretSpec"]["refreshInterval"] == "1h0m0s"  # the API server's default
    for namespace in expected:
        es = fanout.external_secret(namespace, name)
        assert es is not None
        assert es["metadata"]["labels"] == {"app": "db"}
        assert es["metadata"]["annotations"] == {"team": "payments"}
        assert es["spec"] == ces["spec"]["externalSecretSpec"]
        [owner] = es["metadata"]["ownerReferences"]
        assert owner == {
            "apiVersion": "external-secrets.io/v1",
            "kind": "ClusterExternalSecret",
            "name": name,
            "uid": ces["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        assert f"externalsecrets.external-secrets.io/ces-{name}" in fanout.finalizers(namespace)
        fanout.wait_ready(namespace, name)
        assert eso.secret_data(namespace, "db-credentials") == {"password": b"s3cret"}
    assert fanout.external_secret(other, name) is None


def test_namespaces_joining_and_leaving_the_selection(eso: EsoStack, fanout: Fanout, vault_path: str) -> None:
    write(eso, vault_path, password="a")
    leaving = fanout.namespace()
    name = fanout.create(
        {
            "externalSecretSpec": es_spec(vault_path),
            "namespaceSelectors": [{"matchLabels": {"fanout": fanout.label}}],
        }
    )
    fanout.status_when(name, lambda s: s.get("provisionedNamespaces") == [leaving], "the first namespace")

    joining = fanout.namespace()  # a new namespace that matches: provisioned on its creation
    fanout.status_when(
        name, lambda s: s.get("provisionedNamespaces") == sorted([leaving, joining]), "the new namespace"
    )
    eso.core.patch_namespace(leaving, {"metadata": {"labels": {"fanout": "elsewhere"}}})
    fanout.status_when(name, lambda s: s.get("provisionedNamespaces") == [joining], "the namespace to leave")
    wait_for(lambda: fanout.external_secret(leaving, name) is None, what="its ExternalSecret deleted")
    # As upstream: a namespace that stops matching keeps the finalizer it was given.
    assert f"externalsecrets.external-secrets.io/ces-{name}" in fanout.finalizers(leaving)


def test_an_external_secret_it_does_not_control_is_a_failed_namespace(
    eso: EsoStack, fanout: Fanout, vault_path: str
) -> None:
    write(eso, vault_path, password="a")
    taken, free = fanout.namespace(), fanout.namespace()
    foreign = {
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": "shared", "labels": {"mine": "yes"}},
        "spec": es_spec(vault_path, target={"name": "someone-elses"}),
    }
    eso.create(taken, foreign)
    name = fanout.create(
        {
            "externalSecretName": "shared",
            "externalSecretSpec": es_spec(vault_path),
            "namespaceSelectors": [{"matchLabels": {"fanout": fanout.label}}],
        }
    )
    status = fanout.status_when(name, lambda s: "failedNamespaces" in s, "the failed namespace")
    assert status["failedNamespaces"] == [
        {"namespace": taken, "reason": "external secret already exists in namespace"}
    ]
    assert status["provisionedNamespaces"] == [free]
    assert ready(status) == {"type": "Ready", "status": "False", "message": "one or more namespaces failed"}
    untouched = fanout.external_secret(taken, "shared")
    assert untouched is not None and untouched["metadata"]["labels"] == {"mine": "yes"}
    assert "ownerReferences" not in untouched["metadata"]


def test_force_sync_is_mirrored_onto_its_external_secrets_and_forces_a_refresh(
    eso: EsoStack, fanout: Fanout, vault_path: str
) -> None:
    write(eso, vault_path, password="before")
    namespace = fanout.namespace()
    name = fanout.create(
        {
            "externalSecretSpec": es_spec(vault_path),
            "externalSecretMetadata": {"annotations": {"team": "payments"}},
            "namespaceSelectors": [{"matchLabels": {"fanout": fanout.label}}],
        },
        annotations={FORCE_SYNC: "1", "example.com/not-copied": "x"},
    )
    fanout.wait_ready(namespace, name)
    es = fanout.external_secret(namespace, name)
    assert es is not None and es["metadata"]["annotations"] == {"team": "payments", FORCE_SYNC: "1"}
    assert eso.secret_data(namespace, "db-credentials") == {"password": b"before"}

    write(eso, vault_path, password="after")  # refreshInterval is an hour: only a forced sync reads it now
    fanout.patch(name, {"metadata": {"annotations": {FORCE_SYNC: "2"}}})
    wait_for(
        lambda: eso.secret_data(namespace, "db-credentials") == {"password": b"after"},
        what="the forced refresh",
    )
    es = fanout.external_secret(namespace, name)
    assert es is not None and es["metadata"]["annotations"][FORCE_SYNC] == "2"

    fanout.patch(name, {"metadata": {"annotations": {FORCE_SYNC: None}}})
    wait_for(
        lambda: (
            (fanout.external_secret(namespace, name) or {})["metadata"].get("annotations")
            == {"team": "payments"}
        ),
        what="force-sync removed from the ExternalSecret",
    )


def test_a_force_sync_put_on_one_of_its_external_secrets_is_removed_again(
    eso: EsoStack, fanout: Fanout, vault_path: str
) -> None:
    """What a rotation meets when it annotates a generated ExternalSecret instead of its owner: the
    ClusterExternalSecret replaces the annotations at once. Whether the ExternalSecret refreshed in
    between is a race (it reads the object when its turn comes), in ESO as here; only the
    ClusterExternalSecret's ``external-secrets.io/force-sync`` is a reliable way to refresh them."""
    write(eso, vault_path, password="a")
    namespace = fanout.namespace()
    name = fanout.create(
        {
            "externalSecretSpec": es_spec(vault_path),
            "namespaceSelectors": [{"matchLabels": {"fanout": fanout.label}}],
        }
    )
    fanout.wait_ready(namespace, name)
    eso.force_sync(namespace, "ExternalSecret", name)  # the plain ``force-sync`` annotation, as ESO's docs
    wait_for(
        lambda: (
            "annotations" not in (fanout.external_secret(namespace, name) or {"annotations": 1})["metadata"]
        ),
        what="the annotation removed by the ClusterExternalSecret",
    )


def test_its_external_secrets_are_kept_as_it_says(eso: EsoStack, fanout: Fanout, vault_path: str) -> None:
    """An edit of a generated ExternalSecret (spec, labels) is reverted: being owned, it wakes the owner."""
    write(eso, vault_path, password="a")
    namespace = fanout.namespace()
    name = fanout.create(
        {
            "externalSecretSpec": es_spec(vault_path),
            "namespaceSelectors": [{"matchLabels": {"fanout": fanout.label}}],
        }
    )
    fanout.wait_ready(namespace, name)
    eso.custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        "externalsecrets",
        name,
        {"metadata": {"labels": {"edited": "yes"}}, "spec": {"refreshInterval": "1m"}},
    )
    reverted = wait_for(
        lambda: (
            (es := fanout.external_secret(namespace, name))
            and es["spec"]["refreshInterval"] == "1h0m0s"
            and "labels" not in es["metadata"]
            and es
        ),
        what="the edit reverted",
    )
    assert reverted["metadata"]["generation"] == 3


def test_renaming_its_external_secrets_deletes_the_old_ones(
    eso: EsoStack, fanout: Fanout, vault_path: str
) -> None:
    write(eso, vault_path, password="a")
    namespace = fanout.namespace()
    name = fanout.create(
        {
            "externalSecretSpec": es_spec(vault_path),
            "namespaceSelectors": [{"matchLabels": {"fanout": fanout.label}}],
        }
    )
    fanout.status_when(name, lambda s: s.get("provisionedNamespaces") == [namespace], "provisioned")
    fanout.patch(name, {"spec": {"externalSecretName": "renamed"}})
    fanout.status_when(name, lambda s: s.get("externalSecretName") == "renamed", "the new name")
    wait_for(lambda: fanout.external_secret(namespace, "renamed"), what="the renamed ExternalSecret")
    wait_for(lambda: fanout.external_secret(namespace, name) is None, what="the old one deleted")


def test_deleting_it_or_a_namespace_cleans_up(eso: EsoStack, fanout: Fanout, vault_path: str) -> None:
    write(eso, vault_path, password="a")
    kept, doomed = fanout.namespace(), fanout.namespace()
    name = fanout.create(
        {
            "externalSecretSpec": es_spec(vault_path),
            "namespaceSelectors": [{"matchLabels": {"fanout": fanout.label}}],
        }
    )
    fanout.status_when(
        name, lambda s: s.get("provisionedNamespaces") == sorted([kept, doomed]), "provisioned"
    )

    eso.core.delete_namespace(doomed)  # terminating: its content goes, then the controller lets it go
    wait_for(
        lambda: doomed not in {n.metadata.name for n in eso.core.list_namespace().items}, what="its removal"
    )
    fanout.status_when(name, lambda s: s.get("provisionedNamespaces") == [kept], "the namespace gone")

    eso.custom.delete_cluster_custom_object(GROUP, VERSION, "clusterexternalsecrets", name)
    wait_for(lambda: fanout.get(name) is None, what="the ClusterExternalSecret to go")
    wait_for(lambda: fanout.external_secret(kept, name) is None, what="its ExternalSecret deleted")
    assert fanout.finalizers(kept) == []


def test_a_selector_that_does_not_convert_fails_namespace_unknown(eso: EsoStack, fanout: Fanout) -> None:
    name = fanout.create(
        {
            "externalSecretSpec": es_spec("prod/unused"),
            "namespaceSelectors": [
                {"matchExpressions": [{"key": "tier", "operator": "Near", "values": ["a"]}]}
            ],
        }
    )
    status = fanout.status_when(name, lambda s: "failedNamespaces" in s, "the failure")
    assert status["failedNamespaces"] == [
        {
            "namespace": "unknown",
            "reason": "failed to convert label selector &LabelSelector{MatchLabels:map[string]string{},"
            "MatchExpressions:[]LabelSelectorRequirement{LabelSelectorRequirement{Key:tier,Operator:Near,"
            'Values:[a],},},}: "Near" is not a valid label selector operator',
        }
    ]
    assert ready(status) == {"type": "Ready", "status": "False", "message": "one or more namespaces failed"}
