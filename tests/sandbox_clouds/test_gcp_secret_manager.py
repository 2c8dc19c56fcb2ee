"""The GCP Secret Manager emulator through the real ``google-cloud-secret-manager`` REST client."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests
from google.api_core import exceptions

from vaultflow.sandbox.gcp import GcpSecretManagerEmulator, project_number
from vaultflow.sandbox.gcp.crc32c import crc32c

PROJECT = "vaultflow-test"


@pytest.fixture
def secret_id() -> str:
    return f"s-{uuid.uuid4().hex[:10]}"


def create(gcp: Any, secret_id: str, **fields: Any) -> Any:
    body = {"replication": {"automatic": {}}, **fields}
    return gcp.create_secret(parent=f"projects/{PROJECT}", secret_id=secret_id, secret=body)


def test_round_trip_with_versions(gcp: Any, secret_id: str) -> None:
    secret = create(gcp, secret_id, labels={"managed-by": "external-secrets"})
    assert secret.name == f"projects/{project_number(PROJECT)}/secrets/{secret_id}"  # names carry the number
    assert secret.labels == {"managed-by": "external-secrets"}
    assert secret.replication.automatic is not None

    first = gcp.add_secret_version(parent=secret.name, payload={"data": b"one"})
    second = gcp.add_secret_version(
        parent=f"projects/{PROJECT}/secrets/{secret_id}", payload={"data": b"two"}
    )
    assert (first.name.rsplit("/", 1)[1], second.name.rsplit("/", 1)[1]) == ("1", "2")
    assert first.state.name == "ENABLED"

    latest = gcp.access_secret_version(name=f"projects/{PROJECT}/secrets/{secret_id}/versions/latest")
    assert latest.name == second.name and latest.payload.data == b"two"
    assert latest.payload.data_crc32c == crc32c(b"two")
    assert gcp.access_secret_version(name=first.name).payload.data == b"one"
    assert gcp.get_secret_version(name=f"{secret.name}/versions/1").create_time is not None
    assert [v.name.rsplit("/", 1)[1] for v in gcp.list_secret_versions(parent=secret.name)] == ["2", "1"]
    assert secret.name in [s.name for s in gcp.list_secrets(parent=f"projects/{PROJECT}")]


def test_not_found_and_already_exists(gcp: Any, secret_id: str) -> None:
    with pytest.raises(
        exceptions.NotFound,
        match=f"Secret \\[projects/{project_number(PROJECT)}/secrets/{secret_id}\\] not found",
    ):
        gcp.get_secret(name=f"projects/{PROJECT}/secrets/{secret_id}")
    with pytest.raises(exceptions.NotFound, match="not found or has no versions"):
        gcp.access_secret_version(name=f"projects/{PROJECT}/secrets/{secret_id}/versions/latest")
    create(gcp, secret_id)
    with pytest.raises(exceptions.Conflict, match="already exists") as conflict:
        create(gcp, secret_id)
    assert conflict.value.code == 409
    with pytest.raises(exceptions.NotFound, match="versions/7\\] not found"):
        gcp.access_secret_version(name=f"projects/{PROJECT}/secrets/{secret_id}/versions/7")


def test_disabled_and_destroyed_versions(gcp: Any, secret_id: str) -> None:
    secret = create(gcp, secret_id)
    version = gcp.add_secret_version(parent=secret.name, payload={"data": b"v1"})
    disabled = gcp.disable_secret_version(name=version.name)
    assert disabled.state.name == "DISABLED"
    with pytest.raises(exceptions.BadRequest, match="is in DISABLED state") as refused:
        gcp.access_secret_version(name=version.name)
    assert refused.value.code == 400  # FAILED_PRECONDITION travels as HTTP 400
    with pytest.raises(exceptions.BadRequest, match="DISABLED"):
        gcp.access_secret_version(
            name=f"{secret.name}/versions/latest"
        )  # latest is the newest, whatever its state
    assert gcp.enable_secret_version(name=version.name).state.name == "ENABLED"
    assert gcp.access_secret_version(name=version.name).payload.data == b"v1"

    destroyed = gcp.destroy_secret_version(name=version.name)
    assert destroyed.state.name == "DESTROYED" and destroyed.destroy_time is not None
    with pytest.raises(exceptions.BadRequest, match="is in DESTROYED state"):
        gcp.access_secret_version(name=version.name)
    with pytest.raises(exceptions.BadRequest, match="DESTROYED"):
        gcp.enable_secret_version(name=version.name)


def test_update_labels_and_delete(gcp: Any, secret_id: str) -> None:
    secret = create(gcp, secret_id, labels={"a": "1"})
    updated = gcp.update_secret(
        secret={"name": secret.name, "labels": {"b": "2"}, "annotations": {"note": "x"}},
        update_mask={"paths": ["labels", "annotations"]},
    )
    assert updated.labels == {"b": "2"} and updated.annotations == {"note": "x"}
    assert updated.etag != secret.etag
    gcp.delete_secret(name=secret.name)
    with pytest.raises(exceptions.NotFound):
        gcp.get_secret(name=secret.name)


def test_listing_pages_and_filters(gcp: Any) -> None:
    project = f"paging-{uuid.uuid4().hex[:6]}"
    for index in range(5):
        gcp.create_secret(
            parent=f"projects/{project}",
            secret_id=f"item-{index}",
            secret={"replication": {"automatic": {}}, "labels": {"even": str(index % 2 == 0).lower()}},
        )
    pages = list(gcp.list_secrets(request={"parent": f"projects/{project}", "page_size": 2}).pages)
    assert [len(page.secrets) for page in pages] == [2, 2, 1]
    even = gcp.list_secrets(request={"parent": f"projects/{project}", "filter": "labels.even=true"})
    assert sorted(s.name.rsplit("/", 1)[1] for s in even) == ["item-0", "item-2", "item-4"]


def test_regional_secrets(gcp: Any, secret_id: str) -> None:
    parent = f"projects/{PROJECT}/locations/europe-west1"
    secret = gcp.create_secret(parent=parent, secret_id=secret_id, secret={})
    assert secret.name == f"projects/{project_number(PROJECT)}/locations/europe-west1/secrets/{secret_id}"
    gcp.add_secret_version(parent=f"{parent}/secrets/{secret_id}", payload={"data": b"regional"})
    assert (
        gcp.access_secret_version(name=f"{parent}/secrets/{secret_id}/versions/latest").payload.data
        == b"regional"
    )


def test_invalid_requests_get_invalid_argument(gcp: Any, gcp_emulator: GcpSecretManagerEmulator) -> None:
    with pytest.raises(exceptions.BadRequest, match="replication is required"):
        gcp.create_secret(parent=f"projects/{PROJECT}", secret_id=f"x-{uuid.uuid4().hex[:6]}", secret={})
    with pytest.raises(exceptions.BadRequest, match="Secret ID"):
        gcp.create_secret(
            parent=f"projects/{PROJECT}", secret_id="bad id!", secret={"replication": {"automatic": {}}}
        )
    with pytest.raises(exceptions.BadRequest, match="checksum"):
        secret = create(gcp, f"c-{uuid.uuid4().hex[:6]}")
        gcp.add_secret_version(parent=secret.name, payload={"data": b"x", "data_crc32c": 1})
    raw = requests.get(f"{gcp_emulator.url}/v1/projects/{PROJECT}/secrets/nope", timeout=5)
    assert raw.status_code == 404
    assert raw.json()["error"]["status"] == "NOT_FOUND"


def test_crc32c_known_answer() -> None:
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"") == 0
