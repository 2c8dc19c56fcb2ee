"""``vaultflow workflows submit --wait`` through Hera's real WorkflowsService, on the sandbox Argo Server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from vaultflow.base.errors import InputError
from vaultflow.cli import _VaultflowGroup
from vaultflow.cli import workflows as workflows_cli
from vaultflow.sandbox.argo_server import ArgoServer
from vaultflow.sandbox.pki import CertificateAuthority
from vaultflow.workflows import submit as argo

TOKEN = "sandbox-argo-token-for-tests"


@pytest.fixture(scope="module")
def argo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArgoServer]:
    with ArgoServer(run_root=tmp_path_factory.mktemp("argo-runs"), token=TOKEN) as server:
        yield server


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, argo_server: ArgoServer) -> typer.Typer:
    monkeypatch.setenv("VAULTFLOW_PIPELINE_MODULES", "tests.workflows.sample_pipelines")
    monkeypatch.setenv("ARGO_SERVER", argo_server.url)
    monkeypatch.setenv("ARGO_TOKEN", TOKEN)
    monkeypatch.setenv("ARGO_NAMESPACE", "argo")
    app = typer.Typer(cls=_VaultflowGroup, pretty_exceptions_enable=False)
    app.add_typer(workflows_cli.app, name="workflows")
    app.command("unused")(lambda: None)
    return app


def _submit(cli: typer.Typer, *arguments: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli, ["workflows", "submit", *arguments, "--poll-seconds", "0.05", "--timeout", "60"]
    )
    return result.exit_code, result.output


def test_submit_wait_ends_with_the_workflows_real_phase(cli: typer.Typer, argo_server: ArgoServer) -> None:
    code, output = _submit(cli, "vaultflow-selftest", "-p", "message=ping", "--wait", "--upload-template")
    assert code == 0, output
    assert "Succeeded" in output
    workflow_name = output.split()[1]
    conn = argo.connection(environ={"ARGO_SERVER": argo_server.url, "ARGO_TOKEN": TOKEN})
    outcome = argo.wait(conn, workflow_name, poll_seconds=0.05)
    results = {node["displayName"]: node.get("outputs", {}).get("result") for node in outcome.nodes.values()}
    assert results["join"] == "ping+ping"


def test_submit_wait_exits_one_when_the_workflow_fails(cli: typer.Typer) -> None:
    code, output = _submit(cli, "sample-fail", "--wait", "--upload-template")
    assert code == 1, output
    assert "Failed" in output and "failed: fail" in output


def test_submit_without_wait_returns_the_workflow_name(cli: typer.Typer, argo_server: ArgoServer) -> None:
    code, output = _submit(cli, "sample-ok", "--upload-template")
    assert code == 0, output
    assert output.startswith("submitted sample-ok-")
    argo_server.wait_idle()


def test_bad_parameters_are_refused_before_submitting(cli: typer.Typer, argo_server: ArgoServer) -> None:
    conn = argo.connection(environ={"ARGO_SERVER": argo_server.url, "ARGO_TOKEN": TOKEN})
    before = len(argo._call(conn, "list", lambda: argo._service(conn).list_workflows("argo")).items or [])
    code, output = _submit(cli, "sample-ok", "-p", "mesage=typo", "--wait")
    assert code == 2, output
    assert "unknown parameter(s) mesage" in output
    after = len(argo._call(conn, "list", lambda: argo._service(conn).list_workflows("argo")).items or [])
    assert after == before


def test_a_template_missing_on_the_server_is_reported(cli: typer.Typer) -> None:
    code, output = _submit(cli, "server-only-template", "--wait")
    assert code == 1
    assert "not found" in output


def test_a_wrong_token_is_refused_and_never_printed(
    cli: typer.Typer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARGO_TOKEN", "wrong-token-value")
    code, output = _submit(cli, "sample-ok", "--wait")
    assert code == 1
    assert "refused the credentials" in output
    assert "wrong-token-value" not in output and TOKEN not in output


def test_tls_is_verified_by_default(
    cli: typer.Typer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    authority = CertificateAuthority()
    ca_file = tmp_path / "ca.crt"
    ca_file.write_text(authority.certificate_pem)
    context = authority.issue_server_certificate().ssl_context()
    with ArgoServer(run_root=tmp_path / "runs", token=TOKEN, ssl_context=context) as server:
        monkeypatch.setenv("ARGO_SERVER", server.url)
        monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
        code, output = _submit(cli, "sample-ok", "--wait", "--upload-template")
        assert code == 1 and "TLS verification" in output
        code, output = _submit(cli, "sample-ok", "--wait", "--upload-template", "--insecure-skip-verify")
        assert code == 0, output
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_file))
        code, output = _submit(cli, "sample-ok", "--wait")
        assert code == 0, output
        server.wait_idle()


def test_connection_settings_follow_the_argo_cli() -> None:
    conn = argo.connection(environ={"ARGO_SERVER": "argo.example.com:2746", "ARGO_TOKEN": "Bearer x"})
    assert conn.url == "https://argo.example.com:2746/" and conn.verify_tls and conn.namespace == "argo"
    assert "Bearer" not in repr(conn)
    local = argo.connection(
        environ={"ARGO_SERVER": "127.0.0.1:2746", "ARGO_SECURE": "false", "ARGO_TOKEN": "x"}
    )
    assert local.url == "http://127.0.0.1:2746/"
    with pytest.raises(InputError, match="clear text"):
        argo.connection(environ={"ARGO_SERVER": "http://argo.example.com", "ARGO_TOKEN": "x"})
    with pytest.raises(InputError, match="ARGO_SERVER"):
        argo.connection(environ={})
    assert not argo.connection(environ={"ARGO_SERVER": "h:1", "ARGO_INSECURE_SKIP_VERIFY": "true"}).verify_tls


def test_an_unreachable_argo_server_names_the_cause(
    cli: typer.Typer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vaultflow.sandbox.openbao import free_port

    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("ARGO_SERVER", url)
    code, output = _submit(cli, "sample-ok", "--wait")
    assert code == 1
    assert f"cannot reach the Argo Server at {url}/ (connection refused)" in " ".join(output.split())
