"""The transit unsealer of ``sandbox up --seal transit``: a second OpenBao whose transit engine holds
the key that protects the sandbox Vault's root key.

This is the pattern HashiCorp documents for auto-unseal with transit
(``seal "transit"``, OpenBao's website/content/docs/configuration/seal/transit.mdx):
a separate Vault, run and unsealed by its own operators, with a transit key and
a token allowed only ``update`` on ``transit/encrypt/<key>`` and
``transit/decrypt/<key>``, orphan and periodic so that it neither dies with a
parent nor reaches a maximum TTL (the seal renews it).

Here the sandbox is that operator: it starts the unsealer (raft storage in
``DIR/openbao/unsealer``, no dev mode), initialises it with one share and
unseals it, keeping that share and the unsealer's root token in a 0600 file in
its data directory (the unsealer is sandbox infrastructure: nothing in the
pipelines ever reads that file). The seal token is kept beside it, reused while
it works and minted again when it does not (a sandbox stopped for longer than
its period). The sandbox's Vault nodes get the token as ``BAO_TOKEN`` in their
environment, never in their configuration, and the ``seal "transit"`` stanza
rendered by ``vaultflow.gitops.vault_seal`` from the same catalog model a real
platform uses.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vaultflow.base.errors import OperationError
from vaultflow.gitops.catalog.model import TransitSeal
from vaultflow.gitops.vault_seal import TRANSIT_TOKEN_ENV, render_seal
from vaultflow.sandbox.openbao import OpenBaoServer, free_port
from vaultflow.sandbox.pki import CertificateAuthority
from vaultflow.steps.vault.api import VaultApi

log = logging.getLogger("vaultflow.sandbox.unsealer")

NODE_ID = "unsealer"
MOUNT = "transit"
KEY_NAME = "vaultflow-sandbox-autounseal"
POLICY = "vaultflow-sandbox-autounseal"
TOKEN_PERIOD = "24h"
POLICY_HCL = f"""\
path "{MOUNT}/encrypt/{KEY_NAME}" {{
  capabilities = ["update"]
}}
path "{MOUNT}/decrypt/{KEY_NAME}" {{
  capabilities = ["update"]
}}
"""


def _write_private(path: Path, text: str) -> None:
    descriptor = os.open(path.with_name(f".{path.name}.tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    path.with_name(f".{path.name}.tmp").replace(path)


@dataclass
class Unsealer:
    """The unsealer OpenBao and what the sandbox keeps to operate it."""

    server: OpenBaoServer
    ca_file: Path  # the CA the unsealer's certificate chains to: the nodes' seal and the sandbox verify it

    @classmethod
    def planned(cls, root: Path, port: int, authority: CertificateAuthority, ca_file: Path) -> Unsealer:
        """The unsealer in ``root/unsealer`` on ``port`` (0: a free one), serving TLS with a certificate
        from ``authority`` (whose certificate is ``ca_file``), as a production unsealer does; not started."""
        server = OpenBaoServer(
            root / NODE_ID, node_id=NODE_ID, port=port or free_port(), authority=authority, ca_file=ca_file
        )
        return cls(server, ca_file)

    @property
    def address(self) -> str:
        return self.server.address

    @property
    def keys_file(self) -> Path:
        return self.server.data_dir / "unsealer-keys.json"

    @property
    def token_file(self) -> Path:
        return self.server.data_dir / "transit-seal.token"

    def seal(self) -> TransitSeal:
        """The main nodes' transit seal, as a catalog would declare it (the token Secret is nominal:
        the sandbox passes the token in the environment itself)."""
        return TransitSeal.model_validate(
            {
                "type": "transit",
                "address": self.address,
                "mountPath": MOUNT,
                "keyName": KEY_NAME,
                "tokenSecretRef": {"name": "vault-transit-seal", "key": "token"},
                "tlsCaCert": str(self.ca_file.resolve()),
            }
        )

    def seal_hcl(self) -> str:
        return render_seal(self.seal()).stanza

    # ------------------------------------------------------------------ operate

    def start(self, timeout: float = 60.0) -> dict[str, str]:
        """Start (or restart) the unsealer, initialise it the first time, unseal it, make sure its transit
        key and policy exist; the environment the main nodes need (``BAO_TOKEN``)."""
        self.server.start(timeout)
        return {TRANSIT_TOKEN_ENV: self._seal_token(self._unseal())}

    def restart(self, timeout: float = 60.0) -> None:
        """Restart on its data and unseal it again (its token and key stay)."""
        self.server.stop()
        self.server.start(timeout)
        self._unseal()

    def stop(self) -> None:
        self.server.stop()

    def _unseal(self) -> VaultApi:
        api = VaultApi(self.address, ca_cert=str(self.ca_file))
        status = api.seal_status()
        if not status.initialized:
            keys, root_token = api.initialize(1, 1, None)
            _write_private(self.keys_file, json.dumps({"share": keys[0], "root_token": root_token}) + "\n")
            log.info(
                "initialised the transit unsealer at %s (share and root token kept in %s, 0600)",
                self.address,
                self.keys_file,
            )
        kept = self._kept_keys()
        if api.seal_status().sealed:
            api.submit_unseal_share(kept["share"])
        api.wait_until_active(timeout=30)
        root = api.with_token(kept["root_token"])
        self._ensure_transit(root)
        return root

    def _kept_keys(self) -> dict[str, str]:
        try:
            kept: dict[str, str] = json.loads(self.keys_file.read_text())
        except (OSError, ValueError) as error:
            raise OperationError(
                f"the transit unsealer's keys in {self.keys_file} are unreadable "
                f"({error.__class__.__name__}): start over with `vaultflow sandbox down --purge`"
            ) from None
        return kept

    @staticmethod
    def _ensure_transit(root: VaultApi) -> None:
        import hvac.exceptions

        client: Any = root.client
        with root.errors("set up the transit engine of the unsealer"):
            mounts = client.sys.list_mounted_secrets_engines()
            if f"{MOUNT}/" not in mounts.get("data", mounts):
                client.sys.enable_secrets_engine("transit", path=MOUNT)
            try:
                client.secrets.transit.read_key(KEY_NAME, mount_point=MOUNT)
            except hvac.exceptions.InvalidPath:
                client.secrets.transit.create_key(KEY_NAME, key_type="aes256-gcm96", mount_point=MOUNT)
            client.sys.create_or_update_policy(POLICY, POLICY_HCL)

    def _seal_token(self, root: VaultApi) -> str:
        """The kept seal token while it still works, else a new orphan periodic one (kept, 0600)."""
        if self.token_file.is_file():
            token = self.token_file.read_text().strip()
            if token and root.with_token(token).token_works():
                return token
        with root.errors("create the transit seal's token"):
            created = root.client.auth.token.create_orphan(
                policies=[POLICY],
                no_default_policy=True,
                period=TOKEN_PERIOD,
                display_name="vaultflow-sandbox-transit-seal",
            )
        token = str(created["auth"]["client_token"])
        _write_private(self.token_file, token + "\n")
        return token
