"""The clouds' save: moto's state read in memory, only after a request that may have changed it, written
only when it differs, and put back by ``restore_aws`` with the same names, version ids, stages and values.

moto's backends are this process's (as in the supervisor): the secrets here have names of their own, and
what is compared is theirs.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from vaultflow.sandbox.azure.vault import KeyVaultStore
from vaultflow.sandbox.gcp.secrets import SecretManagerStore
from vaultflow.sandbox.persistence import CloudSaver, MotoServer, aws_state, restore_aws

REGION = "eu-west-3"


@pytest.fixture
def moto() -> Iterator[tuple[MotoServer, Any]]:
    server = MotoServer()
    endpoint = server.start()
    try:
        yield (
            server,
            boto3.client(
                "secretsmanager",
                region_name=REGION,
                endpoint_url=endpoint,
                aws_access_key_id="sandbox",
                aws_secret_access_key="sandbox",  # moto accepts any credentials
            ),
        )
    finally:
        server.stop()


def mine(regions: dict[str, list[dict[str, Any]]], prefix: str) -> list[dict[str, Any]]:
    return [s for s in regions.get(REGION, []) if s["name"].startswith(prefix)]


def saved(path: Path, prefix: str) -> list[dict[str, Any]]:
    return mine(json.loads(path.read_text())["aws"], prefix)


def test_the_clouds_are_saved_when_they_changed_and_come_back_the_same(
    moto: tuple[MotoServer, Any], tmp_path: Path
) -> None:
    server, aws = moto
    prefix = f"persist-{uuid.uuid4().hex[:8]}/"
    first, second = f"v1-{uuid.uuid4().hex}", f"v2-{uuid.uuid4().hex}"
    aws.create_secret(
        Name=f"{prefix}a", SecretString=first, Description="d", Tags=[{"Key": "k", "Value": "v"}]
    )
    aws.put_secret_value(SecretId=f"{prefix}a", SecretString=second)
    aws.create_secret(Name=f"{prefix}b", SecretBinary=b"\x00\x01binary")
    path = tmp_path / "clouds.json"
    saver = CloudSaver(server, path)
    gcp, azure = SecretManagerStore(), {"kv-one": KeyVaultStore()}

    assert saver.save_stores(gcp, azure) is True and saver.aws_reads == 1
    assert path.stat().st_mode & 0o777 == 0o600
    a, b = saved(path, prefix)
    assert (a["name"], a["description"], a["tags"]) == (f"{prefix}a", "d", [{"Key": "k", "Value": "v"}])
    assert [(v["string"], v["stages"]) for v in a["versions"]] == [
        (first, ["AWSPREVIOUS"]),
        (second, ["AWSCURRENT"]),
    ]
    assert base64.b64decode(b["versions"][0]["binary"]) == b"\x00\x01binary"

    # Reads change nothing: moto's state is not read again, the file not written again.
    written = path.stat()
    aws.get_secret_value(SecretId=f"{prefix}a")
    aws.describe_secret(SecretId=f"{prefix}b")
    aws.list_secrets()
    aws.list_secret_version_ids(SecretId=f"{prefix}a")
    assert saver.save_stores(gcp, azure) is False and saver.aws_reads == 1
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == (written.st_ino, written.st_mtime_ns)

    third = f"v3-{uuid.uuid4().hex}"
    aws.put_secret_value(SecretId=f"{prefix}a", SecretString=third)
    assert saver.save_stores(gcp, azure) is True and saver.aws_reads == 2
    kept = saved(path, prefix)
    assert [v["string"] for v in kept[0]["versions"]] == [second, third]  # the staged ones
    # A request that changes nothing moto keeps is read again, but written only if the file would differ.
    aws.tag_resource(SecretId=f"{prefix}b", Tags=[])
    assert saver.save_stores(gcp, azure) is False and saver.aws_reads == 3

    # After a restart (here: the secrets gone), restore_aws puts back the same ids, stages and values.
    ids = {s["name"]: staged(aws, s["name"]) for s in kept}
    for secret in kept:
        aws.delete_secret(SecretId=secret["name"], ForceDeleteWithoutRecovery=True)
    assert mine(aws_state(), prefix) == []
    restore_aws(server_endpoint(aws), {REGION: kept})
    assert mine(aws_state(), prefix) == kept
    assert aws.get_secret_value(SecretId=f"{prefix}a")["SecretString"] == third
    assert aws.get_secret_value(SecretId=f"{prefix}b")["SecretBinary"] == b"\x00\x01binary"
    assert {name: staged(aws, name) for name in ids} == ids
    for value in (first, second, third):
        assert value not in repr(saver)  # the saver keeps no value in its repr


def staged(aws: Any, name: str) -> list[tuple[str, list[str]]]:
    """The secret's versions that hold a stage (a version without one is not kept), by id."""
    versions = aws.list_secret_version_ids(SecretId=name)["Versions"]
    return sorted((v["VersionId"], v["VersionStages"]) for v in versions if v.get("VersionStages"))


def server_endpoint(aws: Any) -> str:
    return str(aws.meta.endpoint_url)
