"""``task demo``, then ``task sandbox:down``, then ``task demo`` again: the second run carries on with the
same Vault (sealed, unsealed by the bootstrap pipeline with the keeper), and neither run prints a secret
value or an unkeyed digest of one."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from kubernetes import client, config

from vaultflow.sandbox import demo, lifecycle
from vaultflow.sandbox.state import SandboxState

DIGESTS = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512", "sha3_224", "sha3_256", "sha3_512")


def secret_values(state: SandboxState) -> set[bytes]:
    """Every value ESO wrote into a Secret of the catalog's clusters (the catalog's secrets, as in Vault)."""
    values: set[bytes] = set()
    for cluster in state.workload_clusters:
        with config.new_client_from_config(config_file=state.kubeconfig, context=cluster.name) as api:
            for secret in client.CoreV1Api(api).list_secret_for_all_namespaces().items:
                if (secret.metadata.labels or {}).get("reconcile.external-secrets.io/managed") != "true":
                    continue
                values |= {base64.b64decode(value) for value in (secret.data or {}).values()}
    return {value for value in values if len(value) >= 6}


def unkeyed_digests(value: bytes) -> list[str]:
    """What a careless display would print: the first 12 hex digits of common digests of the value."""
    return [hashlib.new(name, value).hexdigest()[:12] for name in DIGESTS]


def run_demo(catalog: Path, directory: Path, capsys: pytest.CaptureFixture[str]) -> str:
    code = demo.main(["--catalog", str(catalog), "--dir", str(directory)])
    output = capsys.readouterr().out
    assert code == 0, output
    return output


def test_demo_then_down_then_demo_again_and_no_value_or_digest_is_shown(
    repo_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog = repo_root / "examples" / "catalog.yaml"
    directory = tmp_path / "demo"
    try:
        first = run_demo(catalog, directory, capsys)
        lifecycle.down(directory)
        second = run_demo(catalog, directory, capsys)
        words = " ".join(second.split())  # rich wraps lines where the terminal ends
        assert "sandbox started again on its kept state: the same Vault, initialised and sealed" in words
        assert "no commit" in words and "demo finished" in words
        assert f"task sandbox:down SANDBOX_DIR={directory}" in words

        values = secret_values(lifecycle.load_state(directory))
        assert values, "the demo synced secrets into the clusters"
        for output in (first, second):
            for value in values:
                assert value.decode(errors="replace") not in output
                assert not [d for d in unkeyed_digests(value) if d in output]
    finally:
        lifecycle.down(directory, purge=True)
    assert not directory.exists()


def test_the_closing_hint_names_the_sandbox_directory() -> None:
    assert "`task sandbox:down`" in demo.closing_hint(Path(".sandbox"))
    elsewhere = demo.closing_hint(Path("/tmp/my sandbox"))
    assert "`task sandbox:down SANDBOX_DIR='/tmp/my sandbox'`" in elsewhere
    assert "vaultflow sandbox env --dir '/tmp/my sandbox'" in elsewhere


def test_fingerprints_are_keyed_per_run() -> None:
    value = b"a secret value"
    one, other = demo.Fingerprints(), demo.Fingerprints()
    assert one.of(value) == one.of(value) != other.of(value)
    assert one.of(value).removeprefix("hmac:") not in hashlib.sha256(value).hexdigest()
