"""``vault.seal``: Shamir by default, or auto-unseal (transit, awskms, gcpckms, azurekeyvault), validated
with positioned errors and rendered into the server's ``seal`` stanza (``vaultflow.gitops.vault_seal``)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vaultflow.gitops.catalog import CatalogError, LoadedCatalog, load_catalog, parse_catalog
from vaultflow.gitops.catalog.schema import catalog_json_schema
from vaultflow.gitops.vault_seal import chart_values, expected_seal_types, render_seal

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "catalog.yaml"
SHA = "a" * 64
HEAD = """\
apiVersion: vaultflow.io/v1alpha1
kind: SecretsCatalog
gitops:
  repoUrl: https://git.example.com/gitops.git
clusters:
  - {name: one, kubeContext: one, argocd: {server: https://kubernetes.default.svc}}
vault:
  address: https://vault.example.com:8200
"""


def parse(seal: str) -> LoadedCatalog:
    return parse_catalog(HEAD + textwrap.indent(textwrap.dedent(seal), "  "), Path("catalog.yaml"))


def problems(seal: str) -> list[str]:
    with pytest.raises(CatalogError) as caught:
        parse(seal)
    return [issue.render("catalog.yaml") for issue in caught.value.issues]


def line_of(seal: str, needle: str) -> int:
    text = HEAD + textwrap.indent(textwrap.dedent(seal), "  ")
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


TRANSIT = """\
seal:
  type: transit
  address: https://unsealer.vault-system.svc:8200
  keyName: autounseal
  tokenSecretRef: {name: vault-transit-seal, key: token}
  tlsCaCert: /openbao/userconfig/unsealer-ca/ca.crt
"""


def test_the_default_is_shamir_and_renders_nothing() -> None:
    seal = load_catalog(EXAMPLE).catalog.vault.seal
    assert seal.type == "shamir"
    assert render_seal(seal).stanza == "" and chart_values(seal) == {}
    assert parse("seal: {type: shamir}\n").catalog.vault.seal.type == "shamir"


def test_transit_renders_the_stanza_and_takes_its_token_from_a_secret() -> None:
    seal = parse(TRANSIT).catalog.vault.seal
    rendered = render_seal(seal)
    assert rendered.stanza.splitlines() == [
        'seal "transit" {',
        '  address         = "https://unsealer.vault-system.svc:8200"',
        '  mount_path      = "transit/"',
        '  key_name        = "autounseal"',
        '  disable_renewal = "false"',
        '  tls_ca_cert     = "/openbao/userconfig/unsealer-ca/ca.crt"',
        "}",
    ]
    assert chart_values(seal)["server"]["extraSecretEnvironmentVars"] == [
        {"envName": "BAO_TOKEN", "secretName": "vault-transit-seal", "secretKey": "token"}
    ]
    assert expected_seal_types(seal) == {"transit"}


def test_cloud_seals_render_their_parameters_and_credentials() -> None:
    aws = parse(
        """\
        seal:
          type: awskms
          region: eu-west-1
          kmsKeyId: alias/vault-unseal
          credentials: {secretName: vault-kms-creds}
        """
    ).catalog.vault.seal
    assert render_seal(aws).stanza == (
        'seal "awskms" {\n  region     = "eu-west-1"\n  kms_key_id = "alias/vault-unseal"\n}\n'
    )
    assert [e.env_name for e in render_seal(aws).secret_env] == ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]

    gcp = parse(
        """\
        seal:
          type: gcpckms
          project: my-project-1
          region: global
          keyRing: vault
          cryptoKey: unseal
          credentialsSecretRef: {name: vault-kms-sa, key: key.json}
        """
    ).catalog.vault.seal
    assert 'credentials = "/openbao/userconfig/vault-kms-sa/key.json"' in render_seal(gcp).stanza
    assert chart_values(gcp)["server"]["extraVolumes"] == [{"type": "secret", "name": "vault-kms-sa"}]

    azure = parse(
        """\
        seal:
          type: azurekeyvault
          tenantId: 00000000-0000-4000-8000-000000000000
          vaultName: platform-unseal
          keyName: vault-root
        """
    ).catalog.vault.seal
    stanza = render_seal(azure).stanza
    assert stanza.startswith('seal "azurekeyvault" {') and 'environment = "AZUREPUBLICCLOUD"' in stanza
    assert render_seal(azure).secret_env == []  # a managed identity: no secret at all


def test_an_openbao_kms_plugin_is_declared_beside_a_seal_of_its_name() -> None:
    seal = parse(
        f"""\
        seal:
          type: awskms
          region: eu-west-1
          kmsKeyId: arn:aws:kms:eu-west-1:123456789012:key/0b7c1d2e-0000-4000-8000-000000000000
          plugin: {{image: ghcr.io/openbao/openbao-plugin-kms-awskms, version: v0.1.0, sha256sum: "{SHA}"}}
        """
    ).catalog.vault.seal
    stanza = render_seal(seal).stanza
    assert stanza.startswith(
        'plugin "kms" "aws" {\n  image     = "ghcr.io/openbao/openbao-plugin-kms-awskms"'
    )
    assert f'  sha256sum = "{SHA}"\n}}\n\nseal "aws" {{\n' in stanza
    assert expected_seal_types(seal) == {"awskms", "aws"}


@pytest.mark.parametrize(
    ("seal", "needle", "field", "words"),
    [
        ("seal: {type: raft}\n", "type: raft", "vault.seal", "unknown type 'raft': expected one of 'shamir'"),
        (
            TRANSIT.replace("https://unsealer.vault-system.svc:8200", "http://unsealer.example.com:8200"),
            "type: transit",
            "vault.seal",
            "uses plain http to a non-loopback host",
        ),
        (TRANSIT.replace("  keyName: autounseal\n", ""), "seal:", "vault.seal.keyName", "missing required"),
        (
            TRANSIT.replace("key: token", "key: 'bad key'"),
            "tokenSecretRef",
            "vault.seal.tokenSecretRef.key",
            "not a valid Kubernetes Secret key",
        ),
        (
            "seal: {type: awskms, region: eu-west-1, kmsKeyId: my-key}\n",
            "kmsKeyId",
            "vault.seal.kmsKeyId",
            "should match pattern",
        ),
        (
            "seal:\n  type: awskms\n  region: eu-west-1\n  kmsKeyId: alias/unseal\n"
            f"  plugin: {{image: img, command: bin, version: v1.0.0, sha256sum: '{SHA}'}}\n",
            "plugin",
            "vault.seal.plugin",
            "set exactly one of 'image' or 'command' (found: 'image', 'command')",
        ),
        (
            "seal: {type: gcpckms, project: my-project-1, region: global, keyRing: r}\n",
            "type: gcpckms",
            "vault.seal.cryptoKey",
            "missing required",
        ),
        (
            "seal:\n  type: azurekeyvault\n  tenantId: 00000000-0000-4000-8000-000000000000\n"
            "  vaultName: v\n  keyName: k\n",
            "vaultName",
            "vault.seal.vaultName",
            "should match pattern",
        ),
    ],
)
def test_each_mistake_is_named_at_its_place(seal: str, needle: str, field: str, words: str) -> None:
    found = problems(seal)
    assert len(found) == 1, found
    assert found[0].startswith(f"catalog.yaml:{line_of(seal, needle)}:"), found
    assert f": {field}: " in found[0] and words in found[0], found


def test_the_json_schema_publishes_every_seal() -> None:
    seal = catalog_json_schema()["$defs"]["VaultConfig"]["properties"]["seal"]
    assert seal["default"] == {"type": "shamir"}
    assert set(seal["discriminator"]["mapping"]) == {
        "shamir",
        "transit",
        "awskms",
        "gcpckms",
        "azurekeyvault",
    }


def test_catalog_seal_prints_the_stanza_and_values(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(HEAD + textwrap.indent(TRANSIT, "  "))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "vaultflow", "catalog", "seal", *args]
        return subprocess.run(command, capture_output=True, text=True, check=False)

    text = run(str(catalog))
    assert text.returncode == 0, text.stderr
    assert 'seal "transit" {' in text.stdout and "envName: BAO_TOKEN" in text.stdout
    document = json.loads(run(str(catalog), "--output", "json").stdout)
    assert (
        document["type"] == "transit"
        and document["stanza"] == render_seal(parse(TRANSIT).catalog.vault.seal).stanza
    )
    shamir = run(str(EXAMPLE))
    assert shamir.returncode == 0 and "vault.seal is shamir: no seal stanza" in shamir.stdout
