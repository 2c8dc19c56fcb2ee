"""The exporter's and the audit's metadata reads (``steps/observe/metadata_reads.py``) against a real
OpenBao over TLS: they read what hvac reads, fail with the sentences hvac's reads fail with, verify
the server with the client's CA; the observer's token, which carries no ``default`` policy, can still
revoke itself."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import mount_kv
from vaultflow.base.errors import OperationError
from vaultflow.gitops.catalog import load_catalog
from vaultflow.gitops.policies import OBSERVER_POLICY, observer_policy
from vaultflow.sandbox.openbao import OpenBaoServer, free_port
from vaultflow.sandbox.pki import CertificateAuthority
from vaultflow.steps.observe.metadata_reads import MetadataReads
from vaultflow.steps.rotation.write import read_metadata
from vaultflow.steps.vault.api import VaultApi
from vaultflow.steps.vault.configure import desired_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml"
KV = "secret"  # the example catalog's mount


@dataclass(frozen=True)
class TlsVault:
    address: str
    ca_file: str
    root_token: str

    def api(self, token: str, ca_file: str | None = None) -> VaultApi:
        return VaultApi(self.address, token=token, ca_cert=ca_file or self.ca_file)

    def token(self, *policies: str) -> str:
        root = self.api(self.root_token).client
        created = root.auth.token.create(policies=list(policies), no_default_policy=True, ttl="10m")
        return str(created["auth"]["client_token"])


@pytest.fixture(scope="module")
def vault(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsVault]:
    directory = tmp_path_factory.mktemp("openbao-tls")
    authority = CertificateAuthority("metadata-reads test CA")
    ca_file = directory / "ca.crt"
    ca_file.write_text(authority.certificate_pem)
    server = OpenBaoServer(directory / "node", authority=authority, ca_file=ca_file)
    server.start()
    try:
        root = VaultApi(server.address, ca_cert=str(ca_file)).client
        init = root.sys.initialize(secret_shares=1, secret_threshold=1)
        root.sys.submit_unseal_key(init["keys"][0])
        root.token = init["root_token"]
        VaultApi(server.address, ca_cert=str(ca_file)).wait_until_active()
        mount_kv(root, KV)
        for path in ("app/one", "app/two"):  # test data, never a real secret
            root.secrets.kv.v2.create_or_update_secret(path, secret={"k": "test-value"}, mount_point=KV)
        root.secrets.kv.v2.update_metadata(
            "app/two", custom_metadata={"vaultflow.io/rotated-at": "2026-01-01T00:00:00Z"}, mount_point=KV
        )
        root.sys.create_or_update_policy(
            "metadata-reader", f'path "{KV}/metadata/*" {{ capabilities = ["read"] }}'
        )
        root.sys.create_or_update_policy("data-reader", f'path "{KV}/data/*" {{ capabilities = ["read"] }}')
        yield TlsVault(server.address, str(ca_file), str(init["root_token"]))
    finally:
        server.stop()


def _failure(action: object) -> str:
    with pytest.raises(OperationError) as raised:
        action()  # type: ignore[operator]
    return str(raised.value)


def test_they_read_what_hvac_reads(vault: TlsVault) -> None:
    api = vault.api(vault.token("metadata-reader"))
    timings: list[float] = []
    with MetadataReads(api, KV, connections=2, timed=timings.append) as reads:
        read = reads.read_all(["app/one", "app/two", "app/missing", "app/one"])
    assert read == {path: read_metadata(api, KV, path) for path in ("app/one", "app/two", "app/missing")}
    assert read["app/missing"] is None and read["app/two"] is not None
    assert read["app/two"].custom == {"vaultflow.io/rotated-at": "2026-01-01T00:00:00Z"}
    assert len(timings) == 3  # one read per path, the repeated one too


def test_a_denied_read_fails_as_hvac_fails(vault: TlsVault) -> None:
    api = vault.api(vault.token("data-reader"))
    with MetadataReads(api, KV, connections=2) as reads:
        pooled = _failure(lambda: reads.read_all(["app/one", "app/two"]))
    assert pooled == _failure(lambda: read_metadata(api, KV, "app/one"))
    assert "denied permission to read the metadata of secret/app/one" in pooled


def test_a_server_the_ca_did_not_sign_is_refused_as_hvac_refuses_it(vault: TlsVault, tmp_path: Path) -> None:
    wrong = tmp_path / "other-ca.crt"
    wrong.write_text(CertificateAuthority("not the server's CA").certificate_pem)
    api = vault.api(vault.token("metadata-reader"), ca_file=str(wrong))
    with MetadataReads(api, KV, connections=1) as reads:
        pooled = _failure(lambda: reads.read("app/one"))
    assert pooled == _failure(lambda: read_metadata(api, KV, "app/one"))
    assert "TLS verification failed" in pooled


def test_an_unreachable_vault_fails_every_read_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAULTFLOW_VAULT_CONNECT_RETRIES", "0")  # hvac's reads: no backoff either
    api = VaultApi(f"http://127.0.0.1:{free_port()}", token="unused")  # nothing listens there
    with MetadataReads(api, KV, connections=4) as reads:
        pooled = _failure(lambda: reads.read_all([f"app/{n}" for n in range(40)]))
    assert pooled == _failure(lambda: read_metadata(api, KV, "app/0"))
    assert "unreachable (connection refused)" in pooled


def test_the_observer_role_hands_out_no_default_policy_and_its_token_revokes_itself(vault: TlsVault) -> None:
    loaded = load_catalog(EXAMPLE)
    roles = {
        name: role
        for mount in desired_config(loaded, lambda cluster: None).auth_mounts  # type: ignore[arg-type,return-value]
        for name, role in mount.roles.items()
    }
    observer = roles[loaded.catalog.vault.kubernetes_auth.observer_role]
    assert observer.policies == (OBSERVER_POLICY,) and observer.no_default_policy
    rotation = roles[loaded.catalog.vault.kubernetes_auth.rotation_role]
    assert not any(role.no_default_policy for role in roles.values() if role not in (observer, rotation))
    root = vault.api(vault.root_token).client
    root.sys.create_or_update_policy(OBSERVER_POLICY, observer_policy(loaded.catalog).hcl)
    api = vault.api(vault.token(OBSERVER_POLICY))  # what the role hands out: that policy alone
    with MetadataReads(api, KV, connections=1) as reads:
        assert reads.read("app/one") is not None
    api.revoke_self()  # the exporter's relogin and the audit's end
    assert not api.token_works()
