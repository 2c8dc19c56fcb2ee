"""Every keeper against a real backend: the emulated Kubernetes API (real client), moto (real boto3),
the GCP and Azure emulators (their real SDKs), a real filesystem.

The contract: empty reads as None, a reservation is written create-only before
init and is no material, ``fill`` and ``reserve`` never overwrite material, the
root token can be kept and forgotten, and no value ever reaches a message.
Then init itself, with a write failure injected through each real backend
just after Vault was initialised: the material lands in the fallback keeper,
and a re-run copies it back once the keeper is fixed.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from kubernetes import client

from vaultflow.base.errors import InputError, OperationError
from vaultflow.sandbox.kube.cluster import KubeCluster
from vaultflow.sandbox.openbao import OpenBaoServer, free_port
from vaultflow.steps.keeper import (
    Keeper,
    KeeperConflict,
    KeeperCorrupt,
    KeeperReserved,
    Reservation,
    UnsealMaterial,
    WritePolicy,
    open_keeper,
)
from vaultflow.steps.keeper.aws import AwsSecretsManagerKeeper
from vaultflow.steps.keeper.kubernetes import KubernetesSecretKeeper
from vaultflow.steps.vault.api import VaultApi
from vaultflow.steps.vault.init import initialise
from vaultflow.steps.vault.unseal import unseal_vault

REPO_ROOT = Path(__file__).resolve().parents[2]
MATERIAL = UnsealMaterial(
    shares=["c2hhcmUtb25l", "c2hhcmUtdHdv", "c2hhcmUtdGhyZWU="], threshold=2, root_token="s.root-xyz"
)
QUICK = WritePolicy(timeout=0, first_wait=0.01)  # two attempts, no waiting to speak of

StartServer = Callable[..., OpenBaoServer]


def kube_api(url: str, token: str) -> client.ApiClient:
    configuration = client.Configuration()
    configuration.host = url
    configuration.api_key = {"authorization": f"Bearer {token}"}
    configuration.retries = 1  # an unreachable test server fails fast
    return client.ApiClient(configuration)


@pytest.fixture(scope="module")
def kube_cluster() -> Iterator[KubeCluster]:
    cluster = KubeCluster("keeper-test").start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def kube_core(kube_cluster: KubeCluster) -> Iterator[Any]:
    api = kube_api(kube_cluster.url, kube_cluster.admin_token)
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": "argo"}})
    yield core
    api.close()


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def secretsmanager(moto_endpoint: str) -> Any:
    return boto3.client(
        "secretsmanager",
        endpoint_url=moto_endpoint,
        region_name="eu-west-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def gcp_client(url: str) -> Any:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import secretmanager

    return secretmanager.SecretManagerServiceClient(
        transport="rest",
        client_options={"api_endpoint": url},
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
    )


def exercise(keeper: Keeper) -> None:
    assert keeper.load() is None and keeper.content() is None
    reservation = keeper.reserve()
    assert keeper.content() == reservation
    with pytest.raises(KeeperReserved, match=r"is reserved .* holds no unseal material"):
        keeper.load()
    keeper.fill(MATERIAL)
    assert keeper.load() == MATERIAL
    with pytest.raises(KeeperConflict) as caught:
        keeper.fill(MATERIAL.with_root_token("s.other"))
    with pytest.raises(KeeperConflict):
        keeper.reserve()
    assert keeper.load() == MATERIAL
    keeper.set_root_token(None)
    forgotten = keeper.load()
    assert forgotten is not None and forgotten.root_token is None and forgotten.shares == MATERIAL.shares
    keeper.set_root_token("s.new-root")
    kept = keeper.load()
    assert kept is not None and kept.root_token == "s.new-root"
    for value in [*MATERIAL.shares, "s.root-xyz", "s.new-root"]:
        assert value not in str(caught.value) and value not in keeper.location and value not in repr(kept)


def test_kubernetes_secret_keeper(kube_core: Any) -> None:
    keeper = KubernetesSecretKeeper("argo", "vaultflow-vault-keeper", api=kube_core)
    exercise(keeper)
    secret = kube_core.read_namespaced_secret("vaultflow-vault-keeper", "argo")
    assert secret.metadata.labels == {"app.kubernetes.io/managed-by": "vaultflow"}


def test_a_kubernetes_secret_without_the_keeper_key_is_corrupt_and_left_alone(kube_core: Any) -> None:
    kube_core.create_namespaced_secret("argo", {"metadata": {"name": "someone-elses"}, "data": {"x": "eQ=="}})
    keeper = KubernetesSecretKeeper("argo", "someone-elses", api=kube_core)
    for attempt in (keeper.load, keeper.reserve, lambda: keeper.fill(MATERIAL)):
        with pytest.raises(
            KeeperCorrupt, match=r"someone-elses is corrupt: the Secret exists but has no 'unseal\.json'"
        ):
            attempt()
    assert kube_core.read_namespaced_secret("someone-elses", "argo").data == {"x": "eQ=="}


def test_kubernetes_keeper_in_a_missing_namespace_is_refused_before_anything(kube_core: Any) -> None:
    keeper = KubernetesSecretKeeper("nowhere", "k", api=kube_core)
    with pytest.raises(OperationError, match=r"Kubernetes Secret nowhere/k: cannot create it \(404"):
        keeper.reserve()


def test_kubernetes_keeper_update_loses_to_a_concurrent_writer(kube_core: Any) -> None:
    """Updates carry the resourceVersion read before: a write in between is a conflict, not overwritten."""
    keeper = KubernetesSecretKeeper("argo", "raced-keeper", api=kube_core)
    keeper.reserve()
    assert isinstance(keeper.content(), Reservation)
    other = KubernetesSecretKeeper("argo", "raced-keeper", api=kube_core)
    other.fill(MATERIAL)
    with pytest.raises(KeeperConflict, match="changed by someone else"):
        keeper._update(MATERIAL.with_root_token("s.mine").to_json())
    assert other.load() == MATERIAL


def bootstrap_rbac_client(cluster: KubeCluster, admin: Any) -> Any:
    """A CoreV1Api as argo/vaultflow-bootstrap, with exactly the RBAC that argocd-apps deploys."""
    api = admin.api_client
    rbac = client.RbacAuthorizationV1Api(api)
    for namespace in ("vault-system", "external-secrets-system"):
        admin.create_namespace({"metadata": {"name": namespace}})
    for document in yaml.safe_load_all((REPO_ROOT / "argocd-apps/workflows/rbac/bootstrap.yaml").read_text()):
        namespace = document["metadata"]["namespace"]
        if document["kind"] == "Role":
            rbac.create_namespaced_role(namespace, document)
        elif document["kind"] == "RoleBinding":
            rbac.create_namespaced_role_binding(namespace, document)
    admin.create_namespaced_service_account("argo", {"metadata": {"name": "vaultflow-bootstrap"}})
    token = admin.create_namespaced_service_account_token(
        "vaultflow-bootstrap", "argo", client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec())
    ).status.token
    return client.CoreV1Api(kube_api(cluster.url, token))


def test_kubernetes_keeper_asks_rbac_before_writing_and_the_bootstrap_role_suffices() -> None:
    """The keeper's SelfSubjectAccessReview against the Role in argocd-apps: the keeper it names may be
    created and updated; any other name is refused before anything is written."""
    with KubeCluster("keeper-rbac") as cluster:
        admin = client.CoreV1Api(kube_api(cluster.url, cluster.admin_token))
        admin.create_namespace({"metadata": {"name": "argo"}})
        bootstrap = bootstrap_rbac_client(cluster, admin)
        other = KubernetesSecretKeeper("argo", "someone-elses-keeper", api=bootstrap)
        with pytest.raises(OperationError) as denied:
            other.reserve()
        assert "may not get secrets/someone-elses-keeper, update secrets/someone-elses-keeper" in str(
            denied.value
        )
        assert "argocd-apps/workflows/rbac/bootstrap.yaml" in str(denied.value)
        assert admin.list_namespaced_secret("argo").items == []
        granted = KubernetesSecretKeeper("argo", "vaultflow-vault-keeper", api=bootstrap)
        granted.reserve()
        granted.fill(MATERIAL)
        assert granted.load() == MATERIAL


def test_kubernetes_keeper_without_any_grant_names_every_missing_permission() -> None:
    with KubeCluster("keeper-no-rbac") as cluster:
        admin = client.CoreV1Api(kube_api(cluster.url, cluster.admin_token))
        admin.create_namespace({"metadata": {"name": "argo"}})
        admin.create_namespaced_service_account("argo", {"metadata": {"name": "nobody"}})
        token = admin.create_namespaced_service_account_token(
            "nobody", "argo", client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec())
        ).status.token
        keeper = KubernetesSecretKeeper("argo", "k", api=client.CoreV1Api(kube_api(cluster.url, token)))
        with pytest.raises(OperationError, match="may not create secrets, get secrets/k, update secrets/k"):
            keeper.reserve()
        assert admin.list_namespaced_secret("argo").items == []


def test_kubernetes_keeper_with_the_api_server_unreachable_is_one_clear_error() -> None:
    port = free_port()
    keeper = KubernetesSecretKeeper(
        "argo", "k", api=client.CoreV1Api(kube_api(f"http://127.0.0.1:{port}", "token"))
    )
    unreachable = r"cannot read it: the Kubernetes API server is unreachable \(connection refused\)"
    with pytest.raises(OperationError, match=unreachable):
        keeper.load()
    with pytest.raises(OperationError, match="unreachable"):
        keeper.reserve()


def test_a_kubeconfig_that_is_a_directory_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path))
    with pytest.raises(OperationError, match="cannot reach Kubernetes"):
        open_keeper("kubernetes://argo/k?context=somewhere").load()


def test_aws_secrets_manager_keeper(secretsmanager: Any) -> None:
    exercise(AwsSecretsManagerKeeper("vaultflow/vault-keeper", client=secretsmanager))
    tags = secretsmanager.describe_secret(SecretId="vaultflow/vault-keeper")["Tags"]
    assert {"Key": "managed-by", "Value": "vaultflow"} in tags


def test_aws_secret_created_without_a_value_is_empty_and_filled(secretsmanager: Any) -> None:
    """A run that stopped between CreateSecret and PutSecretValue leaves a secret without a value."""
    secretsmanager.create_secret(Name="vaultflow/half-created")
    keeper = AwsSecretsManagerKeeper("vaultflow/half-created", client=secretsmanager)
    assert keeper.load() is None
    keeper.reserve()
    keeper.fill(MATERIAL)
    assert keeper.load() == MATERIAL


def test_gcp_secret_manager_keeper() -> None:
    from vaultflow.sandbox.gcp import GcpSecretManagerEmulator
    from vaultflow.steps.keeper.gcp import GcpSecretManagerKeeper

    with GcpSecretManagerEmulator() as emulator:
        gcp = gcp_client(emulator.url)
        exercise(GcpSecretManagerKeeper("vaultflow-test", "vault-keeper", client=gcp))
        versions = list(gcp.list_secret_versions(parent="projects/vaultflow-test/secrets/vault-keeper"))
        # every write is a version: reserve (create, prove the update), fill, forget root, keep root
        assert len(versions) == 5


def test_gcp_secret_without_versions_is_empty_and_filled_not_a_conflict_forever() -> None:
    """Create-then-add-version is two calls: a secret whose first version never landed must not block
    every later run with KeeperConflict."""
    from vaultflow.sandbox.gcp import GcpSecretManagerEmulator
    from vaultflow.steps.keeper.gcp import GcpSecretManagerKeeper

    with GcpSecretManagerEmulator() as emulator:
        gcp = gcp_client(emulator.url)
        gcp.create_secret(
            parent="projects/vaultflow-test",
            secret_id="half-written",
            secret={"replication": {"automatic": {}}},
        )
        keeper = GcpSecretManagerKeeper("vaultflow-test", "half-written", client=gcp)
        assert keeper.load() is None
        keeper.reserve()
        keeper.fill(MATERIAL)
        assert keeper.load() == MATERIAL


def test_gcp_keeper_with_secret_manager_unreachable_is_one_clear_error() -> None:
    from vaultflow.steps.keeper.gcp import GcpSecretManagerKeeper

    keeper = GcpSecretManagerKeeper("p", "s", client=gcp_client(f"http://127.0.0.1:{free_port()}"))
    with pytest.raises(OperationError, match=r"Secret Manager unreachable: connection refused"):
        keeper.reserve()


@dataclass
class AzureBackend:
    vault_url: str
    client: Any


@pytest.fixture
def azure(tmp_path: Path) -> Iterator[AzureBackend]:
    from azure.keyvault.secrets import SecretClient

    from vaultflow.sandbox.azure import AzureKeyVaultEmulator
    from vaultflow.sandbox.azure.credential import StaticTokenCredential
    from vaultflow.sandbox.pki import CertificateAuthority

    authority = CertificateAuthority("keeper test CA")
    ca_file = tmp_path / "ca.crt"
    ca_file.write_text(authority.certificate_pem)
    emulator = AzureKeyVaultEmulator(authority)
    vault = emulator.add_vault("keeper-test")
    try:
        with SecretClient(
            vault.url,
            StaticTokenCredential(),
            connection_verify=str(ca_file),
            verify_challenge_resource=False,
        ) as secrets:
            yield AzureBackend(vault.url, secrets)
    finally:
        emulator.stop()


def test_azure_key_vault_keeper(azure: AzureBackend) -> None:
    from vaultflow.steps.keeper.azure import AzureKeyVaultKeeper

    exercise(AzureKeyVaultKeeper(azure.vault_url, "vault-keeper", client=azure.client))
    assert azure.client.get_secret("vault-keeper").properties.tags == {"managed-by": "vaultflow"}


def test_file_keeper_refuses_a_file_others_can_read(tmp_path: Path) -> None:
    path = tmp_path / "unseal.json"
    keeper = open_keeper(path.as_uri())
    exercise(keeper)
    path.chmod(0o644)
    with pytest.raises(OperationError, match="readable by others"):
        keeper.load()


def test_file_keeper_path_problems_are_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "a-directory").mkdir()
    with pytest.raises(OperationError, match="cannot read it: the path is a directory"):
        open_keeper((tmp_path / "a-directory").as_uri()).reserve()
    with pytest.raises(OperationError, match=r"cannot create it \(No such file or directory\)"):
        open_keeper((tmp_path / "missing" / "unseal.json").as_uri()).reserve()
    (tmp_path / "a-file").write_text("")
    with pytest.raises(OperationError, match=r"cannot read it \(Not a directory\)"):
        open_keeper((tmp_path / "a-file" / "unseal.json").as_uri()).reserve()


def test_a_dangling_symlink_at_the_file_keeper_is_a_conflict_at_reservation(tmp_path: Path) -> None:
    path = tmp_path / "unseal.json"
    path.symlink_to(tmp_path / "gone" / "unseal.json")
    keeper = open_keeper(path.as_uri())
    assert keeper.load() is None  # reads as empty: only writing shows the problem
    with pytest.raises(KeeperConflict, match=r"is a symlink to .*gone/unseal\.json, which does not exist"):
        keeper.reserve()


def test_corrupt_content_is_reported_without_echoing_it(tmp_path: Path) -> None:
    path = tmp_path / "unseal.json"
    path.write_text('{"shares": ["only-half-a-secret"')
    path.chmod(0o600)
    with pytest.raises(OperationError) as caught:
        open_keeper(path.as_uri()).load()
    assert "is corrupt: it is not JSON (" in str(caught.value)
    assert "only-half-a-secret" not in str(caught.value)  # every other case: test_bootstrap_faults.py


@pytest.mark.parametrize(
    ("uri", "kind"),
    [
        ("kubernetes://argo/keeper", "KubernetesSecretKeeper"),
        ("aws-sm://vaultflow/keeper?region=eu-west-1", "AwsSecretsManagerKeeper"),
        ("gcp-sm://my-project/keeper", "GcpSecretManagerKeeper"),
        ("azure-kv://v.vault.azure.net/keeper", "AzureKeyVaultKeeper"),
    ],
)
def test_uris_name_their_keeper(uri: str, kind: str) -> None:
    assert type(open_keeper(uri)).__name__ == kind


@pytest.mark.parametrize(
    "uri", ["s3://bucket/key", "file://relative/path", "kubernetes://only-namespace", ""]
)
def test_bad_uris_are_input_errors(uri: str) -> None:
    with pytest.raises(InputError, match="keeper"):
        open_keeper(uri)


# --- a write failure injected through the real backend, just after init ---------------------------


class FaultAfterInit(VaultApi):
    """The real Vault client; once ``initialize`` has returned, ``fault`` breaks the keeper's backend."""

    def __init__(self, address: str, fault: Callable[[], None]) -> None:
        super().__init__(address)
        self._fault = fault

    def initialize(self, shares: int, threshold: int, pgp_keys: list[str] | None) -> tuple[list[str], str]:
        result = super().initialize(shares, threshold, pgp_keys)
        self._fault()
        return result


@dataclass
class Backend:
    """A keeper, how to break its backend (the fault) and how to mend it again (the repair)."""

    keeper: Keeper
    fault: Callable[[], None]
    repair: Callable[[], None]


def file_backend(tmp_path: Path, **_: Any) -> Backend:
    directory = tmp_path / "keeper-volume"
    directory.mkdir()
    # The volume holding the keeper goes away: the reservation with it, and the fill cannot create it.
    return Backend(
        open_keeper((directory / "unseal.json").as_uri()),
        fault=lambda: shutil.rmtree(directory),
        repair=directory.mkdir,
    )


def aws_backend(tmp_path: Path, *, secretsmanager: Any, **_: Any) -> Backend:
    name = f"vaultflow/fault-{tmp_path.name}"
    # Someone schedules the secret's deletion: Secrets Manager refuses to read or write it.
    return Backend(
        AwsSecretsManagerKeeper(name, client=secretsmanager),
        fault=lambda: secretsmanager.delete_secret(SecretId=name, RecoveryWindowInDays=7),
        repair=lambda: secretsmanager.restore_secret(SecretId=name),
    )


def gcp_backend(tmp_path: Path, *, stack: list[Callable[[], None]], **_: Any) -> Backend:
    from vaultflow.sandbox.gcp import GcpSecretManagerEmulator
    from vaultflow.steps.keeper.gcp import GcpSecretManagerKeeper

    emulator = GcpSecretManagerEmulator(port=free_port()).start()
    stack.append(emulator.stop)

    def restart() -> None:
        emulator.start()

    # Secret Manager becomes unreachable (the same store comes back on the same port).
    return Backend(
        GcpSecretManagerKeeper("vaultflow-test", "vault-keeper", client=gcp_client(emulator.url)),
        fault=emulator.stop,
        repair=restart,
    )


def azure_backend(tmp_path: Path, *, azure: AzureBackend, **_: Any) -> Backend:
    from vaultflow.steps.keeper.azure import AzureKeyVaultKeeper

    # Someone deletes the secret: soft-deleted, its name stays blocked until it is recovered.
    def recover() -> None:
        azure.client.begin_recover_deleted_secret("vault-keeper").wait()

    return Backend(
        AzureKeyVaultKeeper(azure.vault_url, "vault-keeper", client=azure.client),
        fault=lambda: azure.client.begin_delete_secret("vault-keeper").wait(),
        repair=recover,
    )


def kubernetes_backend(tmp_path: Path, *, stack: list[Callable[[], None]], **_: Any) -> Backend:
    cluster = KubeCluster("keeper-fault", port=free_port()).start()
    stack.append(cluster.stop)
    core = client.CoreV1Api(kube_api(cluster.url, cluster.admin_token))
    core.create_namespace({"metadata": {"name": "argo"}})

    def restart() -> None:
        cluster.start()

    # The API server goes down (urllib3 gives up: MaxRetryError), then comes back with its objects.
    return Backend(
        KubernetesSecretKeeper("argo", "vaultflow-vault-keeper", api=core), fault=cluster.stop, repair=restart
    )


BACKENDS = {
    "file": file_backend,
    "aws": aws_backend,
    "gcp": gcp_backend,
    "azure": azure_backend,
    "kubernetes": kubernetes_backend,
}


@pytest.fixture
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    kind = request.param
    stack: list[Callable[[], None]] = []
    extra: dict[str, Any] = {"stack": stack}
    if kind == "aws":
        extra["secretsmanager"] = request.getfixturevalue("secretsmanager")
    if kind == "azure":
        extra["azure"] = request.getfixturevalue("azure")
    try:
        yield BACKENDS[kind](tmp_path, **extra)
    finally:
        for stop in reversed(stack):
            stop()


@pytest.mark.parametrize("backend", sorted(BACKENDS), indirect=True)
def test_keeper_failing_after_init_puts_the_material_in_the_fallback_and_a_rerun_copies_it(
    backend: Backend, fresh_openbao: StartServer, tmp_path: Path
) -> None:
    server = fresh_openbao()
    fallback = open_keeper((tmp_path / "fallback.json").as_uri())
    with pytest.raises(OperationError) as caught:
        initialise(
            FaultAfterInit(server.address, backend.fault),
            backend.keeper,
            fallback,
            shares=3,
            threshold=2,
            pgp_keys=[],
            policy=QUICK,
        )
    message = str(caught.value)
    assert "was initialised just now" in message and "gave up after 2 attempts" in message
    assert f"the unseal material is safe in the fallback, {fallback.location}" in message
    rescued = fallback.load()
    assert rescued is not None and rescued.root_token and len(rescued.shares) == 3
    for value in [*rescued.shares, rescued.root_token]:
        assert value not in message

    backend.repair()
    again = initialise(
        VaultApi(server.address), backend.keeper, fallback, shares=3, threshold=2, pgp_keys=[], policy=QUICK
    )
    assert not again.initialized_now and again.copied_from == fallback.location
    assert backend.keeper.load() == rescued
    # The material is the real one: it unseals this Vault, and its root token works.
    assert unseal_vault(server.address, (tmp_path / "fallback.json").as_uri()).unsealed_now == 1
    VaultApi(server.address).wait_until_active()
    assert VaultApi(server.address, token=rescued.root_token).token_works()


def test_without_a_fallback_the_failure_names_the_emergency_procedure_and_stays_visible(
    fresh_openbao: StartServer, tmp_path: Path
) -> None:
    server = fresh_openbao()
    stack: list[Callable[[], None]] = []
    backend = kubernetes_backend(tmp_path, stack=stack)
    try:
        with pytest.raises(OperationError) as caught:
            initialise(
                FaultAfterInit(server.address, backend.fault),
                backend.keeper,
                None,
                shares=1,
                threshold=1,
                pgp_keys=[],
                policy=QUICK,
            )
        message = str(caught.value)
        assert "No fallback keeper was given, so the material is lost; Vault holds no data yet" in message
        assert "docs/operations.md, 'Vault initialised, the keeper only reserved'" in message
        backend.repair()
        # A later run meets the reservation made before init, and says what it is.
        with pytest.raises(OperationError, match="holds only the reservation made before init"):
            initialise(
                VaultApi(server.address),
                backend.keeper,
                None,
                shares=1,
                threshold=1,
                pgp_keys=[],
                policy=QUICK,
            )
        with pytest.raises(KeeperReserved, match="is reserved"):
            backend.keeper.load()
    finally:
        for stop in reversed(stack):
            stop()


def test_an_api_server_back_within_the_retry_window_gets_the_material(
    fresh_openbao: StartServer, tmp_path: Path
) -> None:
    """The fill is retried with backoff: an API server that restarts meanwhile receives the material."""
    server = fresh_openbao()
    stack: list[Callable[[], None]] = []
    backend = kubernetes_backend(tmp_path, stack=stack)

    def outage() -> None:
        backend.fault()
        threading.Timer(0.5, backend.repair).start()  # far inside the 60 s the policy below allows

    try:
        result = initialise(
            FaultAfterInit(server.address, outage),
            backend.keeper,
            None,
            shares=1,
            threshold=1,
            pgp_keys=[],
            policy=WritePolicy(timeout=60, first_wait=0.2, max_wait=1),
        )
        assert result.initialized_now
        material = backend.keeper.load()
        assert material is not None and material.root_token
    finally:
        for stop in reversed(stack):
            stop()
