"""configure against real OpenBao: check-and-set required on the KV mount, and reads that fail say so."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import hvac
import hvac.exceptions
import pytest

from vaultflow.base.errors import OperationError
from vaultflow.gitops.policies import REVIEWER_EXPIRY, reviewer_record_path
from vaultflow.sandbox.openbao import OpenBaoServer, audit_stanza
from vaultflow.sandbox.pki import CertificateAuthority
from vaultflow.steps.kube.review import ClusterReview
from vaultflow.steps.vault.api import VaultApi
from vaultflow.steps.vault.configure import AuthMountSpec, DesiredConfig, RoleSpec, apply_config

POLICY = 'path "secret/data/app/*" { capabilities = ["read"] }\n'
# What configure reads and writes besides policies and roles (audit, mounts, the KV configuration).
BASE_GRANTS = """
path "sys/audit" { capabilities = ["read", "sudo"] }
path "sys/mounts" { capabilities = ["read"] }
path "sys/auth" { capabilities = ["read", "sudo"] }
path "secret/config" { capabilities = ["read", "update"] }
path "secret/metadata/vaultflow/kubernetes-auth/*" { capabilities = ["read", "create", "update"] }
"""


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VaultApi]:
    """A fresh OpenBao (with the audit device OpenBao needs declared), unsealed, without any mount."""
    directory = tmp_path_factory.mktemp("configure")
    server = OpenBaoServer(directory / "node", extra_hcl=audit_stanza(directory / "audit.log"))
    server.start()
    try:
        client = hvac.Client(url=server.address)
        init = client.sys.initialize(secret_shares=1, secret_threshold=1)
        client.sys.submit_unseal_key(init["keys"][0])
        VaultApi(server.address).wait_until_active()
        yield VaultApi(server.address, token=init["root_token"])
    finally:
        server.stop()


def limited(root: VaultApi, name: str, hcl: str) -> VaultApi:
    root.client.sys.create_or_update_acl_policy(name, BASE_GRANTS + hcl)
    return root.with_token(root.client.auth.token.create(policies=[name], ttl="5m")["auth"]["client_token"])


def review() -> ClusterReview:
    return ClusterReview(
        host="https://kubernetes.c1.example:6443",
        ca_pem=CertificateAuthority("c1").certificate_pem,
        reviewer_jwt=lambda: "reviewer.jwt.of-c1",
    )


def test_the_kv_mount_requires_check_and_set_and_a_rerun_changes_nothing(root: VaultApi) -> None:
    desired = DesiredConfig(kv_mount="fresh", policies={"app-read": POLICY}, auth_mounts=[])
    changes = apply_config(root, desired)
    assert changes[:2] == ["mounted KV v2 at fresh/", "required check-and-set on every write to fresh/"]
    kv = root.client.secrets.kv.v2
    assert kv.read_configuration(mount_point="fresh")["data"]["cas_required"] is True
    with pytest.raises(hvac.exceptions.InvalidRequest, match="check-and-set parameter required"):
        kv.create_or_update_secret("app/db", secret={"password": "p"}, mount_point="fresh")
    kv.create_or_update_secret("app/db", secret={"password": "p"}, cas=0, mount_point="fresh")
    assert apply_config(root, desired) == []


def test_an_existing_kv_mount_without_check_and_set_gets_it(root: VaultApi) -> None:
    root.client.sys.enable_secrets_engine("kv", path="legacy", options={"version": "2"})
    desired = DesiredConfig(kv_mount="legacy", policies={}, auth_mounts=[])
    assert apply_config(root, desired) == ["required check-and-set on every write to legacy/"]
    assert root.client.secrets.kv.v2.read_configuration(mount_point="legacy")["data"]["cas_required"] is True


def test_a_policy_that_cannot_be_read_is_not_taken_as_absent(root: VaultApi) -> None:
    apply_config(root, DesiredConfig(kv_mount="secret", policies={"app-read": POLICY}, auth_mounts=[]))
    writer = limited(
        root, "configure-blind", 'path "sys/policies/acl/*" { capabilities = ["create", "update"] }'
    )
    desired = DesiredConfig(kv_mount="secret", policies={"app-read": POLICY}, auth_mounts=[])
    with pytest.raises(OperationError) as caught:
        apply_config(writer, desired, product="openbao")
    assert str(caught.value) == f"Vault at {root.address} denied permission to read policy app-read"


def test_a_role_that_cannot_be_read_fails_clearly(root: VaultApi) -> None:
    role = RoleSpec(("external-secrets",), ("external-secrets",), ("eso-c1",), 600, 3600)
    mount = AuthMountSpec(
        path="kubernetes-c1", cluster="c1", review=review(), roles={"external-secrets": role}
    )
    desired = DesiredConfig(kv_mount="secret", policies={}, auth_mounts=[mount])
    apply_config(root, desired)
    writer = limited(
        root,
        "configure-roles-blind",
        'path "auth/kubernetes-c1/config" { capabilities = ["read"] }\n'
        'path "auth/kubernetes-c1/role/*" { capabilities = ["create", "update"] }\n',
    )
    with pytest.raises(OperationError) as caught:
        apply_config(writer, desired, product="openbao")
    assert str(caught.value) == (
        f"Vault at {root.address} denied permission to read role external-secrets on auth/kubernetes-c1"
    )


def _jwt(expires: datetime) -> str:
    """A JWT-shaped token with an ``exp`` claim (Vault stores the reviewer token as given)."""
    payload = base64.urlsafe_b64encode(json.dumps({"exp": int(expires.timestamp())}).encode()).decode()
    return f"eyJhbGciOiJub25lIn0.{payload.rstrip('=')}.sig"


def test_the_reviewer_jwt_is_renewed_within_the_window_and_its_expiry_recorded(root: VaultApi) -> None:
    start = datetime(2026, 12, 1, tzinfo=UTC)
    issued: list[datetime] = []

    def reviewer_jwt() -> str:  # a year from the clock of the run that asks, as TokenRequest would
        issued.append(clock[0] + timedelta(days=365))
        return _jwt(issued[-1])

    clock = [start]
    review = ClusterReview(
        host="https://kubernetes.c2.example:6443",
        ca_pem=CertificateAuthority("c2").certificate_pem,
        reviewer_jwt=reviewer_jwt,
    )
    desired = DesiredConfig(
        kv_mount="secret",
        policies={},
        auth_mounts=[AuthMountSpec(path="kubernetes-c2", cluster="c2", review=review)],
        reviewer_renew_before=30 * 24 * 3600,
    )

    def recorded() -> str:
        metadata = root.client.secrets.kv.v2.read_secret_metadata(
            reviewer_record_path("c2"), mount_point="secret"
        )
        return str(metadata["data"]["custom_metadata"][REVIEWER_EXPIRY])

    apply_config(root, desired, now=start)
    assert recorded() == "2027-12-01T00:00:00Z" and len(issued) == 1
    clock[0] = start + timedelta(days=300)  # 65 days left: outside the window
    assert apply_config(root, desired, now=clock[0]) == []
    clock[0] = start + timedelta(days=340)  # 25 days left: renewed
    (change,) = apply_config(root, desired, now=clock[0])
    assert change == (
        "renewed the token reviewer JWT of auth/kubernetes-c2 (it expires at 2027-12-01T00:00:00Z; "
        "the new one expires at 2028-11-05T00:00:00Z)"
    )
    assert recorded() == "2028-11-05T00:00:00Z" and len(issued) == 2
    assert apply_config(root, desired, now=clock[0]) == []  # renewed once, then nothing
    config = root.client.auth.kubernetes.read_config(mount_point="kubernetes-c2")
    assert config["token_reviewer_jwt_set"] is True
    # A mount configured before expiries were recorded is renewed once, then recorded.
    root.client.secrets.kv.v2.delete_metadata_and_all_versions(
        reviewer_record_path("c2"), mount_point="secret"
    )
    (change,) = apply_config(root, desired, now=clock[0])
    assert "its expiry was not recorded" in change and len(issued) == 3
    assert apply_config(root, desired, now=clock[0]) == []
