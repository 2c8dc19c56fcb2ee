"""The vault-bootstrap pipeline on a fresh three-node sandbox, and a re-run that changes nothing,
beside the raw HTTP calls the same work needs (issue 5).

Both sides start from a freshly started, sealed, uninitialised three-node
OpenBao and the same emulated clusters; the sandbox start itself is not timed.
The baseline makes the minimum calls with hvac and no checks: init, join and
unseal every node, mount KV, write the policies, enable and configure one
Kubernetes auth mount per cluster with its roles, log in as ESO once per
cluster, revoke root. The pipeline's extra time is its reading of the current
state (to change only the difference), the keeper and the smoke test.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import hvac

from bench.common import Measurement, stopwatch
from vaultflow.gitops.catalog import load_catalog
from vaultflow.gitops.policies import all_policies
from vaultflow.sandbox import lifecycle
from vaultflow.sandbox.platform import install_platform_accounts
from vaultflow.sandbox.state import SandboxState
from vaultflow.steps.kube.review import cluster_review
from vaultflow.steps.vault.api import VaultApi
from vaultflow.steps.vault.login import service_account_token
from vaultflow.workflows import runner
from vaultflow.workflows.registry import load_registry

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "catalog.yaml"


def _sandbox(directory: Path) -> SandboxState:
    catalog = load_catalog(EXAMPLE).catalog
    state = lifecycle.up(directory, cluster_names=[c.name for c in catalog.clusters], vault_replicas=3).state
    install_platform_accounts(state, catalog)
    os.environ["KUBECONFIG"] = state.kubeconfig
    return state


def _pipeline(state: SandboxState, keeper: str, run_root: Path) -> float:
    registry = load_registry()
    spec = runner.load(registry.document("vault-bootstrap"), lookup=registry.lookup)
    parameters = {
        "vault-addresses": ",".join(n.address for n in state.vault),
        "ca-cert": state.ca_file,  # OpenBao's certificate chains to the sandbox CA
        "keeper": keeper,
        "catalog": str(EXAMPLE),
    }
    with stopwatch() as elapsed:
        result = runner.run(spec, parameters, run_root=run_root)
    if not result.succeeded:
        raise RuntimeError(f"vault-bootstrap failed; logs in {run_root}")
    return elapsed()


def _raw(state: SandboxState) -> float:
    loaded = load_catalog(EXAMPLE)
    catalog = loaded.catalog
    auth = catalog.vault.kubernetes_auth
    reviews = {c.name: cluster_review(c, auth.reviewer_service_account) for c in catalog.clusters}
    leader, *followers = [hvac.Client(url=n.address, verify=state.ca_file) for n in state.vault]
    leader_ca = Path(state.ca_file).read_text()  # a follower's join verifies the leader with it
    with stopwatch() as elapsed:
        init = leader.sys.initialize(secret_shares=5, secret_threshold=3)
        for share in init["keys"][:3]:
            leader.sys.submit_unseal_key(share)
        VaultApi(state.vault[0].address, ca_cert=state.ca_file).wait_until_active()
        for follower in followers:
            if not follower.sys.read_seal_status()["initialized"]:
                follower.sys.join_raft_cluster(
                    leader_api_addr=state.vault[0].address, leader_ca_cert=leader_ca
                )
            for share in init["keys"][:3]:
                follower.sys.submit_unseal_key(share)
            while follower.sys.read_seal_status()["sealed"]:
                time.sleep(0.05)
        leader.token = init["root_token"]
        leader.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})
        for policy in all_policies(catalog, loaded.plan):
            leader.sys.create_or_update_acl_policy(policy.name, policy.hcl)
        for cluster in catalog.clusters:
            mount, review = cluster.auth_mount(auth), reviews[cluster.name]
            leader.sys.enable_auth_method("kubernetes", path=mount)
            leader.write_data(
                f"auth/{mount}/config",
                data={
                    "kubernetes_host": review.host,
                    "kubernetes_ca_cert": review.ca_pem,
                    "token_reviewer_jwt": review.reviewer_jwt(),
                    "disable_local_ca_jwt": True,
                },
            )
            leader.write_data(
                f"auth/{mount}/role/{auth.eso_role}",
                data={
                    "bound_service_account_names": [auth.eso_service_account.name],
                    "bound_service_account_namespaces": [auth.eso_service_account.namespace],
                    "token_policies": [f"eso-{cluster.name}"],
                },
            )
            jwt = service_account_token(
                namespace=auth.eso_service_account.namespace,
                name=auth.eso_service_account.name,
                context=cluster.name,
            )
            hvac.Client(url=state.vault[0].address, verify=state.ca_file).auth.kubernetes.login(
                role=auth.eso_role, jwt=jwt, mount_point=mount
            )
        leader.auth.token.revoke_self()
    return elapsed()


def run() -> list[Measurement]:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        try:
            state = _sandbox(root / "pipeline")
            keeper = (root / "keeper.json").as_uri()
            full = _pipeline(state, keeper, root / "runs")
            rerun = _pipeline(state, keeper, root / "runs")
        finally:
            lifecycle.down(root / "pipeline")
        try:
            raw = _raw(_sandbox(root / "raw"))
        finally:
            lifecycle.down(root / "raw")
    return [
        Measurement(
            "vault-bootstrap, fresh 3 nodes", full, baseline_name="raw HTTP calls", baseline_seconds=raw
        ),
        Measurement(
            "vault-bootstrap re-run (no change)", rerun, baseline_name="raw HTTP calls", baseline_seconds=raw
        ),
    ]
