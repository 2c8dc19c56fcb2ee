"""The Vault server's ``seal`` stanza, rendered from the catalog's ``vault.seal``.

One place turns the catalog's seal into what a Vault (OpenBao) server reads:
the HCL stanza (``seal "transit" { ... }``, or ``plugin "kms" "aws" { ... }``
with ``seal "aws" { ... }`` on OpenBao 2.6+), the environment that carries its
credentials (from Kubernetes Secrets: never in the configuration, which the
chart writes into a ConfigMap) and the Secret volumes it reads files from. The
``argocd-apps`` Vault Application takes these as Helm values
(``with_seal``, ``vaultflow catalog seal``); the sandbox starts its OpenBao nodes
with the same stanza (``sandbox up --seal transit``).

Parameter names follow OpenBao's seal documentation
(website/content/docs/configuration/seal/{transit,awskms,gcpckms,azurekeyvault}.mdx)
and its declarative plugin configuration (configuration/plugins.mdx).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vaultflow.gitops.catalog.model import (
    AwsKmsSeal,
    AzureKeyVaultSeal,
    GcpCkmsSeal,
    KmsPlugin,
    ShamirSeal,
    TransitSeal,
)

AnySeal = ShamirSeal | TransitSeal | AwsKmsSeal | GcpCkmsSeal | AzureKeyVaultSeal
# Where the openbao chart mounts ``server.extraVolumes`` of type secret: /openbao/userconfig/<name>/.
USERCONFIG = "/openbao/userconfig"
# The name of an OpenBao KMS plugin when the catalog gives none (``plugin "kms" "aws"``, ``seal "aws"``).
DEFAULT_PLUGIN_NAMES = {"awskms": "aws", "gcpckms": "gcp", "azurekeyvault": "azure"}
# The token of the transit seal: OpenBao reads BAO_TOKEN (and VAULT_TOKEN), as its API client does.
TRANSIT_TOKEN_ENV = "BAO_TOKEN"


@dataclass(frozen=True)
class SecretEnv:
    """An environment variable of the server pods, from one key of a Secret (chart:
    ``server.extraSecretEnvironmentVars``)."""

    env_name: str
    secret_name: str
    secret_key: str

    def values(self) -> dict[str, str]:
        return {"envName": self.env_name, "secretName": self.secret_name, "secretKey": self.secret_key}


@dataclass(frozen=True)
class RenderedSeal:
    """What a server needs for the catalog's seal; empty for Shamir."""

    stanza: str = ""  # HCL: seal (and plugin) stanzas; holds no secret
    secret_env: list[SecretEnv] = field(default_factory=list)
    secret_volumes: list[str] = field(default_factory=list)  # Secrets mounted at USERCONFIG/<name>/

    @property
    def auto_unseal(self) -> bool:
        return bool(self.stanza)


def _hcl_value(value: str | bool) -> str:
    if isinstance(value, bool):
        return f'"{str(value).lower()}"'  # OpenBao's seal parameters are strings ("false")
    return json.dumps(value)  # a JSON string is an HCL string (the catalog's patterns exclude "${")


def _block(header: str, parameters: Mapping[str, str | bool | None]) -> str:
    given = {name: value for name, value in parameters.items() if value is not None}
    width = max((len(name) for name in given), default=0)
    lines = [f"  {name.ljust(width)} = {_hcl_value(value)}" for name, value in given.items()]
    return "\n".join([f"{header} {{", *lines, "}"]) + "\n"


def _plugin_block(name: str, plugin: KmsPlugin) -> str:
    return _block(
        f'plugin "kms" "{name}"',
        {
            "image": plugin.image,
            "command": plugin.command,
            "version": plugin.version,
            "binary_name": plugin.binary_name,
            "sha256sum": plugin.sha256sum,
        },
    )


def _cloud_seal(
    kind: str, plugin: KmsPlugin | None, parameters: Mapping[str, str | bool | None]
) -> tuple[str, str]:
    """(seal name, HCL) of a cloud KMS seal: built in (``seal "awskms"``) or an OpenBao KMS plugin."""
    if plugin is None:
        return kind, _block(f'seal "{kind}"', parameters)
    name = plugin.name or DEFAULT_PLUGIN_NAMES[kind]
    return name, _plugin_block(name, plugin) + "\n" + _block(f'seal "{name}"', parameters)


def render_seal(seal: AnySeal) -> RenderedSeal:
    """The stanza, secret environment and volumes of ``seal`` (nothing for Shamir)."""
    if isinstance(seal, ShamirSeal):
        return RenderedSeal()
    if isinstance(seal, TransitSeal):
        stanza = _block(
            'seal "transit"',
            {
                "address": seal.address,
                "mount_path": seal.mount_path.rstrip("/") + "/",
                "key_name": seal.key_name,
                "namespace": seal.namespace,
                "disable_renewal": seal.disable_renewal,
                "tls_ca_cert": seal.tls_ca_cert,
                "tls_server_name": seal.tls_server_name,
            },
        )
        token = SecretEnv(TRANSIT_TOKEN_ENV, seal.token_secret_ref.name, seal.token_secret_ref.key)
        return RenderedSeal(stanza=stanza, secret_env=[token])
    if isinstance(seal, AwsKmsSeal):
        _, stanza = _cloud_seal(
            "awskms",
            seal.plugin,
            {"region": seal.region, "kms_key_id": seal.kms_key_id, "endpoint": seal.endpoint},
        )
        env = []
        if seal.credentials is not None:
            creds = seal.credentials
            env = [
                SecretEnv("AWS_ACCESS_KEY_ID", creds.secret_name, creds.access_key_id_key),
                SecretEnv("AWS_SECRET_ACCESS_KEY", creds.secret_name, creds.secret_access_key_key),
            ]
        return RenderedSeal(stanza=stanza, secret_env=env)
    if isinstance(seal, GcpCkmsSeal):
        ref = seal.credentials_secret_ref
        credentials = f"{USERCONFIG}/{ref.name}/{ref.key}" if ref is not None else None
        _, stanza = _cloud_seal(
            "gcpckms",
            seal.plugin,
            {
                "credentials": credentials,
                "project": seal.project,
                "region": seal.region,
                "key_ring": seal.key_ring,
                "crypto_key": seal.crypto_key,
            },
        )
        return RenderedSeal(stanza=stanza, secret_volumes=[ref.name] if ref is not None else [])
    _, stanza = _cloud_seal(
        "azurekeyvault",
        seal.plugin,
        {
            "tenant_id": seal.tenant_id,
            "vault_name": seal.vault_name,
            "key_name": seal.key_name,
            "environment": seal.environment,
            "resource": seal.resource,
        },
    )
    azure = seal.credentials
    env = []
    if azure is not None:
        env = [
            SecretEnv("AZURE_CLIENT_ID", azure.secret_name, azure.client_id_key),
            SecretEnv("AZURE_CLIENT_SECRET", azure.secret_name, azure.client_secret_key),
        ]
    return RenderedSeal(stanza=stanza, secret_env=env)


def expected_seal_types(seal: AnySeal) -> frozenset[str]:
    """What ``sys/seal-status`` ``type`` may say for a server configured with ``seal``: the seal's type,
    or, for an OpenBao KMS plugin, the plugin's name (the wrapper it dispenses reports its own type)."""
    names: set[str] = {seal.type}
    plugin = getattr(seal, "plugin", None)
    if isinstance(plugin, KmsPlugin):
        names.add(plugin.name or DEFAULT_PLUGIN_NAMES[seal.type])
    return frozenset(names)


def chart_values(seal: AnySeal) -> dict[str, Any]:
    """The openbao chart values ``seal`` adds to the Vault Application (``server.*``); {} for Shamir.

    ``server.ha.raft.config`` gets the stanza appended (see ``with_seal``); the
    credentials come from Secrets as environment variables or mounted files.
    """
    rendered = render_seal(seal)
    if not rendered.auto_unseal:
        return {}
    server: dict[str, Any] = {"ha": {"raft": {"config": rendered.stanza}}}
    if rendered.secret_env:
        server["extraSecretEnvironmentVars"] = [env.values() for env in rendered.secret_env]
    if rendered.secret_volumes:
        server["extraVolumes"] = [{"type": "secret", "name": name} for name in rendered.secret_volumes]
    return {"server": server}


def with_seal(values: Mapping[str, Any], seal: AnySeal) -> dict[str, Any]:
    """The Vault Application's chart ``values`` with ``seal`` added: the stanza after the raft
    configuration, the Secret environment and volumes after those already there. Shamir: unchanged."""
    merged = copy.deepcopy(dict(values))
    added = chart_values(seal).get("server")
    if not added:
        return merged
    server = merged.setdefault("server", {})
    raft = server.setdefault("ha", {}).setdefault("raft", {})
    config = str(raft.get("config", ""))
    raft["config"] = (config.rstrip("\n") + "\n\n" if config else "") + added["ha"]["raft"]["config"]
    for key in ("extraSecretEnvironmentVars", "extraVolumes"):
        if key in added:
            server[key] = [*server.get(key, []), *added[key]]
    return merged
