"""A rotation's Kubernetes targets through the ESO emulator: written, force-synced, verified by content.

This is the rotation's proof end to end at the level of one cluster: the real
OpenBao holds the versions, the ESO emulator (ESO's semantics) refreshes the
ExternalSecrets when annotated, and the verify step reads the Secrets back
with the real client, one LIST per namespace per round.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.sandbox_eso.conftest import STORE, VAULT_ADDRESS, EsoStack, external_secret
from tests.sandbox_eso.test_clusterexternalsecret import Fanout
from tests.sandbox_eso.test_pushsecret import push_secret, stores
from vaultflow.base.times import parse_time
from vaultflow.gitops.catalog import parse_catalog
from vaultflow.gitops.catalog.model import Catalog
from vaultflow.gitops.catalog.placement import plan_catalog
from vaultflow.sandbox.faults import Fault
from vaultflow.steps.rotation.clouds import CloudReaders, CloudTarget, verify_cloud_targets
from vaultflow.steps.rotation.discover import discover_consumers
from vaultflow.steps.rotation.force_sync import force_sync, force_sync_consumer
from vaultflow.steps.rotation.verify import KubeTarget, expected_data, verify_kubernetes_targets
from vaultflow.steps.rotation.write import read_version, write_rotation
from vaultflow.steps.vault.api import VaultApi

CATALOG = """\
apiVersion: vaultflow.io/v1alpha1
kind: SecretsCatalog
vault: {{address: "{address}", storeName: {store}}}
gitops: {{repoUrl: https://git.example.com/gitops.git}}
clusters: [{{name: test, kubeContext: test, argocd: {{server: https://kubernetes.default.svc}}}}]
secrets:
  - path: {path}
    keys:
      - {{name: username, generator: {{type: static}}}}
      - {{name: password, generator: {{type: password, length: 24}}}}
    rotation: {{schedule: "@daily", verifyTimeout: 30s}}
"""


def catalog_for(path: str) -> Catalog:
    text = CATALOG.format(address=VAULT_ADDRESS, store=STORE, path=path)
    return parse_catalog(text, Path("catalog.yaml")).catalog


def test_a_rotation_reaches_every_secret_and_says_how_long_each_took(
    eso: EsoStack, namespace: str, vault_path: str
) -> None:
    old = f"old-{uuid.uuid4().hex}"
    eso.vault.secrets.kv.v2.create_or_update_secret(
        vault_path, secret={"username": "app", "password": old}, mount_point="secret"
    )
    eso.create(namespace, external_secret("whole", dataFrom=[{"extract": {"key": vault_path}}]))
    eso.create(
        namespace,
        external_secret(
            "one-key",
            target={"name": "password-only"},
            data=[
                {"secretKey": "pw", "remoteRef": {"key": f"secret/data/{vault_path}", "property": "password"}}
            ],
        ),
    )
    eso.create(namespace, external_secret("not-annotated", dataFrom=[{"extract": {"key": vault_path}}]))
    for name in ("whole", "one-key", "not-annotated"):
        eso.wait_ready(namespace, "ExternalSecret", name)

    catalog = catalog_for(vault_path)
    consumers = discover_consumers(catalog, plan_catalog(catalog), [vault_path], {"test": eso.api})[
        vault_path
    ]
    assert {c.name for c in consumers.external_secrets} == {"whole", "one-key", "not-annotated"}
    assert all(c.source == "discovered" for c in consumers.external_secrets)

    # refreshTime has whole seconds: write in a later second than the last refresh, so that
    # "refreshed since the write" can only mean a refresh that followed it.
    refreshed = parse_time(eso.get(namespace, "ExternalSecret", "not-annotated")["status"]["refreshTime"])
    while datetime.now(UTC) < refreshed + timedelta(seconds=1):
        time.sleep(0.05)
    root = VaultApi(eso.vault.url, token=eso.vault.token)
    written = write_rotation(root, "secret", catalog.secrets[0], "run-1")
    written_at = datetime.strptime(written.rotated_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    new = read_version(root, "secret", vault_path, written.new_version)
    for consumer in consumers.external_secrets:
        if consumer.name != "not-annotated":
            force_sync(
                eso.api,
                cluster="test",
                kind="ExternalSecret",
                namespace=namespace,
                name=consumer.name,
                run_id="run-1",
            )
    results = verify_kubernetes_targets(
        {"test": eso.api},
        [KubeTarget(c, expected_data(c, new), None, written_at) for c in consumers.external_secrets],
        timeout=8,
    )
    by_name = {r.name: r for r in results}
    assert by_name["whole"].phase == "Verified" and by_name["password-only"].phase == "Verified"
    assert all(r.seconds is not None and r.seconds >= 0 for r in results if r.phase == "Verified")
    assert eso.secret_data(namespace, "password-only") == {"pw": new["password"].encode()}
    # Its refreshInterval is 1h and nobody annotated it: it still holds the old value, and says why.
    stale = by_name["not-annotated"]
    assert stale.phase == "TimedOut" and "has not refreshed since the write" in stale.message
    report = json.dumps([r.model_dump() for r in results])
    assert old not in report and new["password"] not in report


def test_a_secret_that_never_gets_the_new_value_is_named_with_esos_reason(
    eso: EsoStack, namespace: str, vault_path: str
) -> None:
    eso.vault.secrets.kv.v2.create_or_update_secret(
        vault_path, secret={"username": "app", "password": "p"}, mount_point="secret"
    )
    eso.create(namespace, external_secret("db", dataFrom=[{"extract": {"key": vault_path}}]))
    eso.wait_ready(namespace, "ExternalSecret", "db")
    catalog = catalog_for(vault_path)
    [consumer] = discover_consumers(catalog, plan_catalog(catalog), [vault_path], {"test": eso.api})[
        vault_path
    ].external_secrets
    root = VaultApi(eso.vault.url, token=eso.vault.token)
    written = write_rotation(root, "secret", catalog.secrets[0], "run-1")
    new = read_version(root, "secret", vault_path, written.new_version)
    # ESO cannot read Vault any more: the policy of its role no longer grants the path.
    eso.vault.secrets.kv.v2.delete_metadata_and_all_versions(vault_path, mount_point="secret")
    force_sync(eso.api, cluster="test", kind="ExternalSecret", namespace=namespace, name="db", run_id="run-1")
    [result] = verify_kubernetes_targets(
        {"test": eso.api},
        [KubeTarget(consumer, expected_data(consumer, new), None, datetime.now(UTC))],
        timeout=4,
    )
    assert result.phase == "TimedOut"
    assert "is not Ready (SecretSyncedError" in result.message


@pytest.fixture(scope="module")
def readers(aws: Any, gcp: Any, azure: Any) -> CloudReaders:
    """The verify step's cloud readers, with the real SDK clients pointed at moto and the emulators."""
    return CloudReaders(aws=lambda region: aws, gcp=lambda project: gcp, azure=lambda url: azure)


def test_pushed_cloud_secrets_follow_once_their_source_is_verified(
    eso: EsoStack, namespace: str, vault_path: str, readers: CloudReaders
) -> None:
    """PushSecrets are annotated only once their source holds the new value; then each cloud is checked."""
    stores(eso, namespace)
    old = f"old-{uuid.uuid4().hex}"
    eso.vault.secrets.kv.v2.create_or_update_secret(
        vault_path, secret={"username": "app", "password": old}, mount_point="secret"
    )
    eso.create(namespace, external_secret("db", dataFrom=[{"extract": {"key": vault_path}}]))
    eso.wait_ready(namespace, "ExternalSecret", "db")
    remote = vault_path.replace("/", "-")
    eso.create(namespace, push_secret("to-aws", "db", "aws", f"rot/{remote}"))
    whole = push_secret("to-gcp", "db", "gcp", remote)
    del whole["spec"]["data"][0]["match"]["secretKey"]  # the whole Secret, as JSON
    eso.create(namespace, whole)
    eso.create(namespace, push_secret("to-azure", "db", "azure", remote))
    for name in ("to-aws", "to-gcp", "to-azure"):
        eso.wait_ready(namespace, "PushSecret", name)

    catalog = catalog_for(vault_path)
    consumers = discover_consumers(catalog, plan_catalog(catalog), [vault_path], {"test": eso.api})[
        vault_path
    ]
    assert {p.name for p in consumers.push_secrets} == {"to-aws", "to-gcp", "to-azure"}
    root = VaultApi(eso.vault.url, token=eso.vault.token)
    written = write_rotation(root, "secret", catalog.secrets[0], "run-1")
    written_at = datetime.now(UTC) - timedelta(seconds=1)
    new = read_version(root, "secret", vault_path, written.new_version)
    [target] = consumers.external_secrets
    annotated: list[str] = []

    def annotate_pushes(verified: object) -> None:
        for push in consumers.push_secrets:
            force_sync(
                eso.api,
                cluster="test",
                kind="PushSecret",
                namespace=namespace,
                name=push.name,
                run_id="run-1",
            )
            annotated.append(push.name)

    # Nothing is annotated before the source holds the new value: a PushSecret does not watch it.
    force_sync(eso.api, cluster="test", kind="ExternalSecret", namespace=namespace, name="db", run_id="run-1")
    [k8s] = verify_kubernetes_targets(
        {"test": eso.api},
        [KubeTarget(target, expected_data(target, new), None, written_at)],
        timeout=10,
        on_verified=annotate_pushes,
    )
    assert k8s.phase == "Verified" and sorted(annotated) == ["to-aws", "to-azure", "to-gcp"]
    source_data = expected_data(target, new)
    results = verify_cloud_targets(
        [CloudTarget(push, source_data, written_at) for push in consumers.push_secrets], readers, timeout=10
    )
    assert {(r.kind, r.phase) for r in results} == {
        ("AwsSecretsManager", "Verified"),
        ("GcpSecretManager", "Verified"),
        ("AzureKeyVault", "Verified"),
    }
    report = json.dumps([r.model_dump() for r in [k8s, *results]])
    assert new["password"] not in report and old not in report


def test_a_cloud_that_is_down_times_out_named(
    eso: EsoStack, namespace: str, vault_path: str, readers: CloudReaders
) -> None:
    stores(eso, namespace)
    eso.vault.secrets.kv.v2.create_or_update_secret(
        vault_path, secret={"username": "app", "password": "old"}, mount_point="secret"
    )
    eso.create(namespace, external_secret("db", dataFrom=[{"extract": {"key": vault_path}}]))
    eso.wait_ready(namespace, "ExternalSecret", "db")
    eso.create(namespace, push_secret("to-aws", "db", "aws", f"rot/{vault_path.replace('/', '-')}"))
    eso.wait_ready(namespace, "PushSecret", "to-aws")
    catalog = catalog_for(vault_path)
    consumers = discover_consumers(catalog, plan_catalog(catalog), [vault_path], {"test": eso.api})[
        vault_path
    ]
    root = VaultApi(eso.vault.url, token=eso.vault.token)
    written = write_rotation(root, "secret", catalog.secrets[0], "run-1")
    new = read_version(root, "secret", vault_path, written.new_version)
    eso.faults.set("aws", Fault(down=True))
    [push] = consumers.push_secrets
    force_sync(eso.api, cluster="test", kind="PushSecret", namespace=namespace, name="to-aws", run_id="run-1")
    [result] = verify_cloud_targets(
        [CloudTarget(push, expected_data(consumers.external_secrets[0], new), datetime.now(UTC))],
        readers,
        timeout=3,
    )
    assert result.phase == "TimedOut" and "current version holds another value" in result.message
    assert result.name.startswith("rot/") and result.cloud == "aws:eu-west-1"


@pytest.fixture
def fanned_out(eso: EsoStack) -> Iterator[Fanout]:
    state = Fanout(eso)
    yield state
    state.cleanup()


def test_external_secrets_of_a_cluster_external_secret_are_forced_through_it(
    eso: EsoStack, fanned_out: Fanout, vault_path: str
) -> None:
    """ESO reverts annotations on the ExternalSecrets a ClusterExternalSecret owns: force-sync goes to it."""
    eso.vault.secrets.kv.v2.create_or_update_secret(
        vault_path, secret={"username": "app", "password": "before"}, mount_point="secret"
    )
    namespaces = [fanned_out.namespace(), fanned_out.namespace()]
    name = fanned_out.create(
        {
            "externalSecretSpec": {
                "secretStoreRef": {"name": STORE, "kind": "ClusterSecretStore"},
                "dataFrom": [{"extract": {"key": vault_path}}],
            },
            "namespaceSelectors": [{"matchLabels": {"fanout": fanned_out.label}}],
        }
    )
    for namespace in namespaces:
        fanned_out.wait_ready(namespace, name)
    catalog = catalog_for(vault_path)
    consumers = discover_consumers(catalog, plan_catalog(catalog), [vault_path], {"test": eso.api})[
        vault_path
    ]
    assert sorted(c.namespace for c in consumers.external_secrets) == sorted(namespaces)
    assert {c.cluster_external_secret for c in consumers.external_secrets} == {name}
    root = VaultApi(eso.vault.url, token=eso.vault.token)
    written = write_rotation(root, "secret", catalog.secrets[0], "run-1")
    new = read_version(root, "secret", vault_path, written.new_version)
    for consumer in consumers.external_secrets:
        force_sync_consumer(eso.api, consumer, "run-1")
    results = verify_kubernetes_targets(
        {"test": eso.api},
        [
            KubeTarget(c, expected_data(c, new), None, datetime.now(UTC) - timedelta(seconds=1))
            for c in consumers.external_secrets
        ],
        timeout=10,
    )
    assert [r.phase for r in results] == ["Verified", "Verified"]
