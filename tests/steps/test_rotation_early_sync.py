"""Force-sync as each secret is written: ESO starts on the first secrets while Vault takes the others.

Against the Kubernetes emulator (the annotation is what ESO reacts to): a
written secret's ExternalSecrets are annotated at once, except one that also
reads another path, which must wait until every write it depends on is done
(annotated after the last write, it refreshes once, after all of them).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from vaultflow.sandbox.crd_sources import CrdSource, load_crds
from vaultflow.sandbox.kube import KubeCluster
from vaultflow.steps.rotation.discover import Consumers, ConsumingExternalSecret
from vaultflow.steps.rotation.force_sync import FORCE_SYNC
from vaultflow.steps.rotation.rotate import EarlySync
from vaultflow.steps.rotation.write import VaultWrite

ESO = "external-secrets.io"
NAMESPACE = "apps"


@pytest.fixture
def api(schemas_dir: Path) -> Iterator[client.ApiClient]:
    served = KubeCluster("early-sync").start()
    try:
        served.register_crds(load_crds(CrdSource(schemas_dir, upstream=True)))
        configuration = client.Configuration()
        configuration.host = served.url
        configuration.api_key = {"authorization": f"Bearer {served.admin_token}"}
        with client.ApiClient(configuration) as admin:
            client.CoreV1Api(admin).create_namespace({"metadata": {"name": NAMESPACE}})
            for name in ("alone", "also-reads-another-path"):
                client.CustomObjectsApi(admin).create_namespaced_custom_object(
                    ESO,
                    "v1",
                    NAMESPACE,
                    "externalsecrets",
                    {
                        "apiVersion": f"{ESO}/v1",
                        "kind": "ExternalSecret",
                        "metadata": {"name": name},
                        "spec": {"secretStoreRef": {"kind": "ClusterSecretStore", "name": "vault"}},
                    },
                )
            yield admin
    finally:
        served.stop()


def consumer(name: str, *, reads_other_paths: bool) -> ConsumingExternalSecret:
    return ConsumingExternalSecret(
        cluster="one",
        namespace=NAMESPACE,
        name=name,
        secret_name=name,
        source="catalog",
        creation_policy="Owner",
        immutable=False,
        templated=False,
        extract=True,
        keys=[],
        converted=False,
        reads_other_paths=reads_other_paths,
    )


def annotation(api: client.ApiClient, name: str) -> str | None:
    found = client.CustomObjectsApi(api).get_namespaced_custom_object(
        ESO, "v1", NAMESPACE, "externalsecrets", name
    )
    return (found["metadata"].get("annotations") or {}).get(FORCE_SYNC)


def test_only_a_consumer_of_the_written_path_alone_is_annotated_at_once(api: client.ApiClient) -> None:
    consumers = {
        "team/db": Consumers(
            path="team/db",
            external_secrets=[
                consumer("alone", reads_other_paths=False),
                consumer("also-reads-another-path", reads_other_paths=True),
            ],
            push_secrets=[],
            refusals=[],
        )
    }
    written = VaultWrite(
        path="team/db",
        previous_version=1,
        new_version=2,
        run_id="run-7",
        rotated_at="2026-12-01T03:00:00Z",
        written_now=True,
    )
    with EarlySync({"one": api}, consumers, "run-7") as early:
        early.written(written)
    assert annotation(api, "alone") == "run-7"
    assert annotation(api, "also-reads-another-path") is None  # left for after the last write
    assert early.synced == {f"one/{NAMESPACE}/alone"}


def test_a_write_a_retry_found_rolled_back_annotates_nothing(api: client.ApiClient) -> None:
    consumers = {
        "team/db": Consumers(
            path="team/db",
            external_secrets=[consumer("alone", reads_other_paths=False)],
            push_secrets=[],
            refusals=[],
        )
    }
    rolled_back = VaultWrite(
        path="team/db",
        previous_version=1,
        new_version=2,
        run_id="run-7",
        rotated_at="2026-12-01T03:00:00Z",
        written_now=False,
        rolled_back_version=3,
    )
    with EarlySync({"one": api}, consumers, "run-7") as early:
        early.written(rolled_back)
    assert annotation(api, "alone") is None and early.synced == set()


def test_a_patch_that_fails_fails_the_step_once_the_writes_are_done(api: client.ApiClient) -> None:
    from vaultflow.base.errors import OperationError

    consumers = {
        "team/db": Consumers(
            path="team/db",
            external_secrets=[consumer("no-such-external-secret", reads_other_paths=False)],
            push_secrets=[],
            refusals=[],
        )
    }
    written = VaultWrite(
        path="team/db",
        previous_version=1,
        new_version=2,
        run_id="run-7",
        rotated_at="2026-12-01T03:00:00Z",
        written_now=True,
    )
    with (
        pytest.raises(OperationError, match="no-such-external-secret"),
        EarlySync({"one": api}, consumers, "run-7") as early,
    ):
        early.written(written)
