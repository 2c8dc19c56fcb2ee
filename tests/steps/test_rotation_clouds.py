"""Cloud secrets verified as their sources are verified, not after the whole batch: against moto.

``CloudVerification`` polls, in a thread of its own, each pushed secret from
the moment it is added; a secret added while others are still open is
verified as soon as its current version holds the new value, and one whose
value never comes is named when the verification's time is up.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from vaultflow.steps.rotation.clouds import CloudReaders, CloudTarget, CloudVerification, verify_cloud_targets
from vaultflow.steps.rotation.discover import CloudStore, ConsumingPushSecret, PushedKey

REGION = "eu-west-1"


@pytest.fixture(scope="module")
def aws() -> Iterator[Any]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield boto3.client(
            "secretsmanager",
            region_name=REGION,
            endpoint_url=f"http://{host}:{port}",
            aws_access_key_id="test",
            aws_secret_access_key="test",  # moto accepts any credentials
        )
    finally:
        server.stop()


def pushed(aws: Any, value: str) -> tuple[ConsumingPushSecret, str]:
    """A PushSecret of key ``password`` to a new AWS secret that holds ``value`` now."""
    name = f"rot/{uuid.uuid4().hex[:10]}"
    aws.create_secret(Name=name, SecretString=value)
    push = ConsumingPushSecret(
        cluster="one",
        namespace="apps",
        name=f"push-{name[4:]}",
        source_secret="db",
        source="catalog",
        keys=[PushedKey(secret_key="password", remote_key=name, property=None)],
        stores=[
            CloudStore(store_kind="ClusterSecretStore", store_name="aws", provider="aws", location=REGION)
        ],
    )
    return push, name


def test_a_secret_added_while_others_wait_is_verified_once_it_holds_the_value(aws: Any) -> None:
    readers = CloudReaders(aws=lambda region: aws)
    early, early_name = pushed(aws, "new-early")
    late, late_name = pushed(aws, "old-late")
    never, _ = pushed(aws, "old-never")
    written = datetime.now(UTC)
    with CloudVerification(readers, timeout=60) as cloud:
        first = cloud.add(CloudTarget(early, {"password": b"new-early"}, written))
        second = cloud.add(CloudTarget(late, {"password": b"new-late"}, written))
        aws.put_secret_value(SecretId=late_name, SecretString="new-late")  # ESO pushes it, later
    [verified], [followed] = cloud.results(first), cloud.results(second)
    assert (verified.phase, verified.name, verified.cloud) == ("Verified", early_name, f"aws:{REGION}")
    assert followed.phase == "Verified" and followed.name == late_name
    assert all(r.seconds is not None and r.seconds >= 0 for r in (verified, followed))
    with CloudVerification(readers, timeout=1) as cloud:
        third = cloud.add(CloudTarget(never, {"password": b"new-never"}, written))
    [missed] = cloud.results(third)
    assert missed.phase == "TimedOut" and "current version holds another value" in missed.message
    assert "new-" not in " ".join(r.message for r in (verified, followed, missed))


def test_verify_cloud_targets_keeps_one_result_per_push_store_and_key_in_order(aws: Any) -> None:
    readers = CloudReaders(aws=lambda region: aws)
    pushes = [pushed(aws, f"value-{index}") for index in range(3)]
    results = verify_cloud_targets(
        [
            CloudTarget(push, {"password": f"value-{i}".encode()}, datetime.now(UTC))
            for i, (push, _) in enumerate(pushes)
        ],
        readers,
        timeout=5,
    )
    assert [(r.name, r.phase) for r in results] == [(name, "Verified") for _, name in pushes]


def test_a_source_without_the_pushed_key_fails_at_once(aws: Any) -> None:
    push, _ = pushed(aws, "whatever")
    [result] = verify_cloud_targets(
        [CloudTarget(push, {"other": b"x"}, datetime.now(UTC))],
        CloudReaders(aws=lambda region: aws),
        timeout=30,
    )
    assert result.phase == "Failed" and "no key 'password'" in result.message


class Counting:
    """The moto client, counting the reads the verification makes (``GetSecretValue``)."""

    def __init__(self, aws: Any) -> None:
        self._aws, self.reads = aws, 0

    def get_secret_value(self, **kwargs: Any) -> Any:
        self.reads += 1
        return self._aws.get_secret_value(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._aws, name)


def on_cues_alone(counting: Counting) -> CloudVerification:
    """A verification whose schedule reads nothing before its 20 s deadline: every read is a cue's."""
    return CloudVerification(
        CloudReaders(aws=lambda region: counting), timeout=20, maximum=3600, first_read=3600
    )


def test_a_cue_reads_at_once_where_the_schedule_would_wait(aws: Any) -> None:
    """ESO's PushSecret status said it pushed: the secret is read then, not at the next scheduled read
    (here after the verification's time is up), and only once."""
    counting = Counting(aws)
    push, name = pushed(aws, "old")
    written = datetime.now(UTC)
    with on_cues_alone(counting) as cloud:
        index = cloud.add(CloudTarget(push, {"password": b"new"}, written))
        aws.put_secret_value(SecretId=name, SecretString="new")  # ESO pushes, then reports it
        cloud.cue(index)
    [result] = cloud.results(index)
    assert result.phase == "Verified"
    assert result.seconds is not None and result.seconds < 15  # not the read made at the 20 s deadline
    assert counting.reads == 1


def test_after_a_cue_that_finds_the_old_value_the_reads_back_off_from_the_start(aws: Any) -> None:
    """A cloud may serve the previous version for a moment after a write: a cued read that finds it is
    followed by reads backing off from ``initial``, not by the long schedule."""
    counting = Counting(aws)
    push, name = pushed(aws, "old")
    written = datetime.now(UTC)
    with on_cues_alone(counting) as cloud:
        index = cloud.add(CloudTarget(push, {"password": b"new"}, written))
        cloud.cue(index)  # before the new version is there
        until = time.monotonic() + 10
        while counting.reads < 1:
            assert time.monotonic() < until, "the cue was never followed by a read"
            time.sleep(0.01)
        aws.put_secret_value(SecretId=name, SecretString="new")
    [result] = cloud.results(index)
    assert result.phase == "Verified"
    assert result.seconds is not None and result.seconds < 15
    assert counting.reads >= 2
