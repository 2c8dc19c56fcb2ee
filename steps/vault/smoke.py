"""Step *smoke-test*: prove, with ESO's own login in every cluster, that least privilege holds.

For each cluster: root writes a canary (a random marker, not a secret) at the
cluster's canary path; ESO's service account logs in through the cluster's
Kubernetes auth mount (TokenRequest, then Vault asks the cluster's
TokenReview); the canary must be readable, writing it must be denied, and a
path outside the policy must be denied (a "not found" there means the policy
let ESO through). The canary is written with check-and-set, as every KV write
of the pipelines is, and deleted afterwards, whatever happened.
"""

import contextlib
import secrets
from collections.abc import Callable

import hvac.exceptions
from pydantic import BaseModel

from vaultflow.base.errors import OperationError
from vaultflow.gitops.policies import canary_path
from vaultflow.steps.catalog_source import load_catalog_source
from vaultflow.steps.kube.clusters import cluster_context
from vaultflow.steps.vault.api import VaultApi
from vaultflow.steps.vault.login import kubernetes_login, service_account_token
from vaultflow.steps.vault.root_token import root_client


class ClusterSmoke(BaseModel):
    cluster: str
    auth_mount: str
    canary_read: bool
    write_denied: bool
    outside_denied: bool

    @property
    def passed(self) -> bool:
        return self.canary_read and self.write_denied and self.outside_denied


class SmokeResult(BaseModel):
    clusters: list[ClusterSmoke]


def _denied(vault: VaultApi, action: str, call: Callable[[], object]) -> bool:
    """Does Vault refuse ``call`` (403)? A 404 means the policy let it through to a path that holds
    nothing: not denied. Any other failure (sealed, unreachable, a 500) fails the smoke test clearly.
    """
    with vault.errors(action):
        try:
            call()
        except hvac.exceptions.Forbidden:
            return True
        except hvac.exceptions.InvalidPath:
            return False
    return False


def _current_version(vault: VaultApi, kv: str, path: str) -> int:
    """The current version of ``kv/path`` (0 when there is none): the check-and-set of the next write."""
    with vault.errors(f"read the metadata of {kv}/{path}"):
        try:
            metadata = vault.client.secrets.kv.v2.read_secret_metadata(path, mount_point=kv)
        except hvac.exceptions.InvalidPath:
            return 0
    return int(metadata["data"]["current_version"])


def _check_cluster(root: VaultApi, eso: VaultApi, kv: str, cluster: str, mount: str) -> ClusterSmoke:
    canary = canary_path(cluster)
    marker = secrets.token_hex(8)
    # Check-and-set against what is there: a canary left by an interrupted run is replaced, a
    # canary written meanwhile by a concurrent run is not.
    version = _current_version(root, kv, canary)
    with root.errors(f"write the smoke-test canary {kv}/{canary}"):
        written = root.client.secrets.kv.v2.create_or_update_secret(
            canary, secret={"canary": marker}, cas=version, mount_point=kv
        )
    try:
        with eso.errors(f"read the canary {kv}/{canary} as ESO of cluster {cluster}"):
            read = eso.client.secrets.kv.v2.read_secret_version(
                canary, mount_point=kv, raise_on_deleted_version=True
            )
        kv_v2 = eso.client.secrets.kv.v2
        outside = f"vaultflow/smoke-test-outside/{marker}"
        return ClusterSmoke(
            cluster=cluster,
            auth_mount=mount,
            canary_read=read["data"]["data"].get("canary") == marker,
            write_denied=_denied(
                eso,
                f"try to write the canary {kv}/{canary} as ESO of cluster {cluster}",
                lambda: kv_v2.create_or_update_secret(
                    canary, secret={"canary": "x"}, cas=int(written["data"]["version"]), mount_point=kv
                ),
            ),
            outside_denied=_denied(
                eso,
                f"try to read {kv}/{outside} as ESO of cluster {cluster}",
                lambda: kv_v2.read_secret_version(outside, mount_point=kv, raise_on_deleted_version=True),
            ),
        )
    finally:
        with contextlib.suppress(OperationError), root.errors("delete the canary"):
            root.client.secrets.kv.v2.delete_metadata_and_all_versions(canary, mount_point=kv)


def smoke_test(addresses: str, keeper: str, catalog: str, *, ca_cert: str = "") -> SmokeResult:
    """Run the smoke test for every cluster of the catalog; fail naming each broken expectation."""
    model = load_catalog_source(catalog).catalog
    auth = model.vault.kubernetes_auth
    root = root_client(addresses, keeper, ca_cert)
    results = []
    for cluster in model.clusters:
        mount = cluster.auth_mount(auth)
        jwt = service_account_token(
            namespace=auth.eso_service_account.namespace,
            name=auth.eso_service_account.name,
            context=cluster_context(model, cluster),  # in a pod, its own cluster in-cluster
        )
        eso = kubernetes_login(
            VaultApi(root.address, ca_cert=ca_cert or None), mount=mount, role=auth.eso_role, jwt=jwt
        )
        results.append(_check_cluster(root, eso, model.vault.kv_mount, cluster.name, mount))
    failures = [
        f"{r.cluster}: "
        + ", ".join(
            text
            for ok, text in (
                (r.canary_read, "canary not readable"),
                (r.write_denied, "ESO may WRITE"),
                (r.outside_denied, "ESO may read outside its paths"),
            )
            if not ok
        )
        for r in results
        if not r.passed
    ]
    if failures:
        raise OperationError("smoke test failed: " + "; ".join(failures))
    return SmokeResult(clusters=results)
