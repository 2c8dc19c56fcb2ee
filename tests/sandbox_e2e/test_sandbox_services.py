"""Sandbox II through ``vaultflow sandbox``: the emulators start, show, export, steer and stop."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from azure.core.exceptions import ResourceNotFoundError
from azure.keyvault.secrets import SecretClient
from google.auth.credentials import AnonymousCredentials
from google.cloud import secretmanager
from kubernetes import client, config
from typer.testing import CliRunner

from vaultflow.base.errors import InputError
from vaultflow.cli import app as vaultflow
from vaultflow.cli.sandbox import app
from vaultflow.sandbox import lifecycle
from vaultflow.sandbox.admin import AdminClient
from vaultflow.sandbox.azure.credential import StaticTokenCredential
from vaultflow.sandbox.faults import Fault
from vaultflow.sandbox.observe import wait_for
from vaultflow.sandbox.processes import port_is_listening
from vaultflow.sandbox.state import SandboxState

runner = CliRunner()


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxState]:
    directory = tmp_path_factory.mktemp("services") / "sbx"
    state = lifecycle.up(directory, clusters=1, builtin_crds=True, azure_vaults=["team-a", "team-b"]).state
    yield state
    lifecycle.down(directory)


def exports(state: SandboxState) -> dict[str, str]:
    result = runner.invoke(app, ["env", "--dir", state.directory])
    assert result.exit_code == 0, result.output
    return dict(
        line.removeprefix("export ").split("=", 1)
        for line in result.output.splitlines()
        if line.startswith("export ")
    )


def test_status_lists_the_emulators_and_controllers(services: SandboxState) -> None:
    current = lifecycle.status(Path(services.directory))
    assert current.healthy
    rows = {(c.component, c.name) for c in current.components}
    assert {("gcp (emulator)", "secret manager"), ("azure (emulator)", "key vault team-a")} <= rows
    assert {
        ("eso (emulator)", "workload-1"),
        ("eso (emulator)", "mgmt"),
        ("argocd (emulator)", "mgmt"),
    } <= rows
    assert ("route (sandbox)", "clusters") in rows  # Argo CD's in-cluster destination, shown, never silent


def test_env_points_the_real_sdks_at_the_cloud_emulators(services: SandboxState) -> None:
    variables = exports(services)
    assert "SSL_CERT_FILE" not in variables and "REQUESTS_CA_BUNDLE" not in variables  # no global trust
    ca_file = Path(variables["VAULTFLOW_SANDBOX_CA"])
    assert ca_file.read_text().startswith("-----BEGIN CERTIFICATE-----")
    vaults = dict(pair.split("=", 1) for pair in variables["VAULTFLOW_AZURE_VAULTS"].split(","))
    assert set(vaults) == {"team-a", "team-b"} and variables["VAULTFLOW_AZURE_VAULT_URL"] == vaults["team-a"]

    gcp = secretmanager.SecretManagerServiceClient(
        transport="rest",
        client_options={"api_endpoint": variables["VAULTFLOW_GCP_ENDPOINT"]},
        credentials=AnonymousCredentials(),
    )
    gcp.create_secret(parent="projects/env-test", secret_id="x", secret={"replication": {"automatic": {}}})
    assert [s.name.rsplit("/", 1)[1] for s in gcp.list_secrets(parent="projects/env-test")] == ["x"]
    with SecretClient(
        vaults["team-b"],
        StaticTokenCredential(),
        connection_verify=str(ca_file),
        verify_challenge_resource=False,
    ) as azure:
        azure.set_secret("from-env", "v")
        assert azure.get_secret("from-env").value == "v"


def test_faults_and_routes_through_the_cli(services: SandboxState) -> None:
    directory = services.directory
    admin = AdminClient.for_state(services)
    result = runner.invoke(app, ["fault", "gcp", "--error-rate", "0.5", "--dir", directory])
    assert result.exit_code == 0, result.output
    assert admin.faults() == {"gcp": Fault(error_rate=0.5)}
    status = {(c.component, c.name): c.state for c in lifecycle.status(Path(directory)).components}
    assert status[("fault (injected)", "gcp")] == "error rate 0.5, latency 0s"
    assert runner.invoke(app, ["fault", "gcp", "--clear", "--dir", directory]).exit_code == 0
    assert admin.faults() == {}

    result = runner.invoke(app, ["route", "vault", "https://vault.example.svc:8200", "--dir", directory])
    assert result.exit_code == 0, result.output
    assert admin.routes()["vault"] == {"https://vault.example.svc:8200": services.vault_addr}
    runner.invoke(app, ["route", "vault", "https://vault.example.svc:8200", "--remove", "--dir", directory])
    assert admin.routes()["vault"] == {}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["fault", "ibm", "--down"], "unknown provider 'ibm'"),
        (["fault", "aws", "--error-rate", "2"], "error_rate must be between 0 and 1"),
        (["fault", "aws"], "give --latency, --error-rate or --down"),
        (["route", "clusters", "https://x", "nowhere"], "is not a sandbox cluster"),
        (["route", "git", "https://github.com/o/r.git", "/tmp/repo"], "must be a file:// URL"),
    ],
)
def test_bad_fault_and_route_input(services: SandboxState, arguments: list[str], message: str) -> None:
    result = runner.invoke(vaultflow, ["sandbox", *arguments, "--dir", services.directory])
    assert result.exit_code == 2, result.output
    [line] = result.output.strip().splitlines()  # one clear line, no traceback
    assert message in line


def test_the_admin_api_needs_its_token(services: SandboxState) -> None:
    assert requests.get(f"{services.admin_endpoint}/faults", timeout=5).status_code == 401
    wrong = {"Authorization": "Bearer not-the-token"}
    refused = requests.put(
        f"{services.admin_endpoint}/faults/aws", json={"down": True}, headers=wrong, timeout=5
    )
    assert refused.status_code == 401
    token_file = Path(services.directory) / "run" / "admin.token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600


def test_an_invalid_key_vault_name_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="'no_underscores' is not a Key Vault name"):
        lifecycle.up(tmp_path / "sbx", builtin_crds=True, azure_vaults=["no_underscores"])
    assert not (tmp_path / "sbx").exists()


def test_down_stops_the_emulators_too(tmp_path: Path) -> None:
    state = lifecycle.up(tmp_path / "sbx", clusters=1, builtin_crds=True).state
    ports = state.ports()
    assert {int(v.url.rsplit(":", 1)[1]) for v in state.azure_vaults} <= set(ports)
    assert int(state.gcp_endpoint.rsplit(":", 1)[1]) in ports
    lifecycle.down(tmp_path / "sbx", purge=True)
    assert not any(port_is_listening(port) for port in ports)
    assert not (tmp_path / "sbx").exists()


def test_a_push_to_azure_leaves_no_sdk_header_dump_in_the_supervisor_log(services: SandboxState) -> None:
    """azure-core's HttpLoggingPolicy logs headers at INFO; the supervisor sets it to WARNING."""
    namespace = "azure-log"
    with config.new_client_from_config(config_file=services.kubeconfig, context="workload-1") as api:
        core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
        core.create_namespace({"metadata": {"name": namespace}})
        core.create_namespaced_secret(
            namespace,
            {
                "metadata": {"name": "azure-credentials"},
                "stringData": {
                    "client-id": "00000000-0000-4000-8000-000000000000",
                    "client-secret": "placeholder",
                },
            },
        )
        core.create_namespaced_secret(
            namespace, {"metadata": {"name": "source"}, "stringData": {"password": "log-probe-value"}}
        )
        credential = {"name": "azure-credentials"}
        custom.create_namespaced_custom_object(
            "external-secrets.io",
            "v1",
            namespace,
            "secretstores",
            {
                "apiVersion": "external-secrets.io/v1",
                "kind": "SecretStore",
                "metadata": {"name": "team-a"},
                "spec": {
                    "provider": {
                        "azurekv": {
                            "vaultUrl": "https://team-a.vault.azure.net",
                            "tenantId": "00000000-0000-4000-8000-000000000000",
                            "authType": "ServicePrincipal",
                            "authSecretRef": {
                                "clientId": {**credential, "key": "client-id"},
                                "clientSecret": {**credential, "key": "client-secret"},
                            },
                        }
                    }
                },
            },
        )
        custom.create_namespaced_custom_object(
            "external-secrets.io",
            "v1alpha1",
            namespace,
            "pushsecrets",
            {
                "apiVersion": "external-secrets.io/v1alpha1",
                "kind": "PushSecret",
                "metadata": {"name": "to-azure"},
                "spec": {
                    "secretStoreRefs": [{"name": "team-a", "kind": "SecretStore"}],
                    "selector": {"secret": {"name": "source"}},
                    "data": [{"match": {"secretKey": "password", "remoteRef": {"remoteKey": "log-probe"}}}],
                },
            },
        )

    def pushed() -> str | None:
        with SecretClient(
            services.azure_vault_url("team-a"),
            StaticTokenCredential(),
            connection_verify=services.ca_file,
            verify_challenge_resource=False,
        ) as azure:
            try:
                return azure.get_secret("log-probe").value
            except ResourceNotFoundError:
                return None

    assert (
        wait_for(pushed, timeout=30, what="the PushSecret's value in Key Vault team-a") == "log-probe-value"
    )
    log = (Path(services.directory) / "logs" / "supervisor.log").read_text()
    assert "Request headers:" not in log and "Response headers:" not in log and "Request URL:" not in log


def test_workflows_submitted_to_the_sandbox_argo_server_run_and_report_their_phase(
    services: SandboxState, tmp_path: Path
) -> None:
    """`vaultflow workflows submit --wait` through Hera's real client, run by the sandbox's local runner."""
    import os
    import subprocess
    import sys

    token_file = Path(services.argo_token_file)
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    env_text = runner.invoke(app, ["env", "--dir", services.directory]).output
    assert token_file.read_text().strip() not in env_text  # the shell reads it; it is never printed
    environment = {
        **os.environ,
        **lifecycle.environment(services),
        "ARGO_TOKEN": token_file.read_text().strip(),
    }
    result = subprocess.run(
        [sys.executable, "-m", "vaultflow", "workflows", "submit", "vaultflow-selftest", "--upload-template",
         "--wait", "-p", "message=from-the-sandbox"],
        capture_output=True, text=True, env=environment, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Succeeded" in result.stdout
    logs = list(Path(services.directory, "argo-runs").rglob("join.log"))
    assert logs, "the submitted workflow ran in the sandbox"
