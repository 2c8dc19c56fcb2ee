"""``vaultflow sandbox env --as PIPELINE``: a shell that reaches every cluster as the pipeline's own
service account (the kubeconfig its pod would hold), not as the sandbox's admin.

Against a real sandbox named after the example catalog (TLS, RBAC enforced): before onboarding it
refuses in one line that says to onboard; after, each pipeline's kubeconfig is 0600, every context
in it authenticates as the account (the API server's 403 names the user, a SelfSubjectAccessReview
through ``kubectl auth can-i`` allows what the shipped RBAC grants and nothing more), and stdout
holds none of the tokens.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from typer.testing import CliRunner

from vaultflow.cli import app
from vaultflow.gitops.catalog import LoadedCatalog, load_catalog
from vaultflow.sandbox import lifecycle
from vaultflow.sandbox.accounts import onboard_clusters
from vaultflow.sandbox.platform import install_platform_accounts
from vaultflow.sandbox.state import SandboxState

VAULTFLOW = (sys.executable, "-m", "vaultflow")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml"
LOADED: LoadedCatalog = load_catalog(EXAMPLE)
# pipeline -> (its account as the user the API server sees, the contexts its kubeconfig must hold)
PIPELINES = {
    "vault-bootstrap": ("system:serviceaccount:argo:vaultflow-bootstrap", ["prod-eu", "prod-us"]),
    "rotate-secrets": ("system:serviceaccount:argo:vaultflow-rotation", ["prod-eu", "prod-us"]),
    # the sandbox runs Argo CD in a cluster of its own (mgmt): the delivery reaches it as itself too
    "apply-eso-resources": ("system:serviceaccount:argo:vaultflow-delivery", ["mgmt", "prod-eu", "prod-us"]),
}


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxState]:
    """The catalog's clusters with what the platform's charts make, not onboarded yet."""
    directory = tmp_path_factory.mktemp("sandbox")
    state = lifecycle.up(directory, cluster_names=[c.name for c in LOADED.catalog.clusters]).state
    try:
        install_platform_accounts(state, LOADED.catalog)
        yield state
    finally:
        lifecycle.down(directory)


def env_as(state: SandboxState, pipeline: str) -> tuple[int, str, str]:
    """``vaultflow sandbox env --as PIPELINE`` as a shell runs it: exit code, stdout, stderr."""
    done = subprocess.run(
        [*VAULTFLOW, "sandbox", "env", "--dir", state.directory, "--as", pipeline, "--catalog", str(EXAMPLE)],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def exported(stdout: str) -> dict[str, str]:
    pairs = [
        shlex.split(line[len("export ") :])[0] for line in stdout.splitlines() if line.startswith("export ")
    ]
    return dict(pair.split("=", 1) for pair in pairs)


def every_token(state: SandboxState, kubeconfig: Path) -> list[str]:
    """The tokens a leak could show: the admin's, the account kubeconfig's, each long-lived one."""
    held = [u["user"]["token"] for path in (Path(state.kubeconfig), kubeconfig) for u in _users(path)]
    for cluster in ("prod-eu", "prod-us"):
        api = config.new_client_from_config(config_file=state.kubeconfig, context=cluster)
        for secret in client.CoreV1Api(api).list_secret_for_all_namespaces().items:
            if secret.type == "kubernetes.io/service-account-token" and secret.data:
                held.append(base64.b64decode(secret.data["token"]).decode())
    return held


def _users(path: Path) -> list[dict[str, dict[str, str]]]:
    return list(yaml.safe_load(path.read_text())["users"])


def can_i(environment: dict[str, str], context: str, *arguments: str) -> str:
    """``kubectl auth can-i`` (a SelfSubjectAccessReview) in a shell that ran the exports."""
    done = subprocess.run(
        ["kubectl", "--context", context, "auth", "can-i", *arguments],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **environment},
    )
    return done.stdout.strip() or done.stderr.strip()


def test_env_as_names_the_choices_for_an_unknown_account() -> None:
    result = CliRunner().invoke(app, ["sandbox", "env", "--as", "argo/nobody", "--catalog", str(EXAMPLE)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: no pipeline runs as 'argo/nobody'; name one of argo/vaultflow-bootstrap (vault-bootstrap), "
        "argo/vaultflow-delivery (apply-eso-resources), argo/vaultflow-rotation (rotate-secrets)"
    ]


def test_env_as_gives_each_pipeline_its_own_identity_once_onboarded(sandbox: SandboxState) -> None:
    code, stdout, stderr = env_as(sandbox, "vault-bootstrap")
    assert (code, stdout) == (1, "")
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert "not onboarded yet" in stderr and "`task cluster:onboard" in stderr
    assert "`vaultflow sandbox up --catalog CATALOG`" in stderr

    onboard_clusters(sandbox, LOADED)
    for pipeline, (user, contexts) in PIPELINES.items():
        code, stdout, stderr = env_as(sandbox, pipeline)
        assert code == 0, stderr
        environment = exported(stdout)
        kubeconfig = Path(environment["KUBECONFIG"])
        assert kubeconfig != Path(sandbox.kubeconfig)
        assert kubeconfig.stat().st_mode & 0o077 == 0
        assert environment["VAULT_ADDRESSES"] == ",".join(node.address for node in sandbox.vault)
        assert "unset ARGO_TOKEN" in stdout and "ARGO_TOKEN=" not in stdout
        held = yaml.safe_load(kubeconfig.read_text())
        assert sorted(c["name"] for c in held["contexts"]) == contexts
        # each context's user is named as the context, as onboarding names it: none reads "-admin"
        assert sorted(c["context"]["user"] for c in held["contexts"]) == contexts
        assert sorted(u["name"] for u in held["users"]) == contexts
        for context in contexts:
            api = config.new_client_from_config(config_file=str(kubeconfig), context=context)
            with pytest.raises(ApiException) as refused:
                client.CoreV1Api(api).list_namespace()
            assert refused.value.status == 403
            message = json.loads(refused.value.body)["message"]
            assert f'User "{user}" cannot list resource "namespaces"' in message, context
            assert can_i(environment, context, "list", "namespaces") == "no"
        assert not [token for token in every_token(sandbox, kubeconfig) if token in stdout]

    # what the shipped RBAC grants, and only where it does: the bootstrap's reviewer token in prod-us
    code, stdout, _ = env_as(sandbox, "argo/vaultflow-bootstrap")
    environment = exported(stdout)
    reviewer = ("create", "serviceaccounts/vault-token-reviewer", "--subresource=token", "-n", "vault-system")
    assert can_i(environment, "prod-us", *reviewer) == "yes"
    assert can_i(environment, "prod-us", *reviewer[:-1], "production") == "no"
    assert can_i(environment, "prod-us", "create", "serviceaccounts/default", *reviewer[2:]) == "no"
