"""What the emulated clouds keep while the sandbox is down: a real cloud does not forget its secrets
when a platform restarts, so neither may its emulator.

``CloudSaver.save`` writes every secret of moto's Secrets Manager (names,
descriptions, tags, every staged version with its id, stages and value), of the
GCP Secret Manager emulator and of each Azure Key Vault (their stores'
snapshots) to one JSON file, mode 0600: it holds secret values, like the
clusters' files beside it. ``restore_clouds`` puts them back after a restart,
before ESO starts reconciling, so a PushSecret that ESO does not push again
until its ``refreshInterval`` finds its value where it left it.

moto runs in the supervisor's process (``MotoServer``), so the save reads its
backend's state in memory rather than through its API (which cost about 3,000
requests at 1,000 secrets, the GIL taken from the emulators beside it), and
only when moto served a request that may have changed it since the last save
(``MotoServer.changes``: every request but Secrets Manager's reads); the file
is rewritten only when what it would hold differs.

Not kept: moto's KMS keys and Secrets Manager's creation dates (the API cannot
set them), secrets scheduled for deletion.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import ssl
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vaultflow.sandbox.azure.vault import KeyVaultStore
from vaultflow.sandbox.emulators import ServiceEmulators
from vaultflow.sandbox.gcp.secrets import SecretManagerStore

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]
FORMAT = "vaultflow-sandbox-clouds/v1"


def _secretsmanager(endpoint: str, region: str, ca_file: str = "") -> Any:
    """``ca_file``: the CA an https moto's certificate chains to (botocore verifies it)."""
    import boto3

    return boto3.client(
        "secretsmanager",
        region_name=region,
        endpoint_url=endpoint,
        verify=ca_file or None,
        aws_access_key_id="sandbox",
        aws_secret_access_key="sandbox",  # noqa: S106 (moto accepts any credentials)
    )


# Secrets Manager actions that read only (``X-Amz-Target: secretsmanager.<Action>``); any other request
# to moto may change what it holds.
_READS = frozenset(
    f"secretsmanager.{action}"
    for action in (
        "BatchGetSecretValue",
        "DescribeSecret",
        "GetRandomPassword",
        "GetResourcePolicy",
        "GetSecretValue",
        "ListSecretVersionIds",
        "ListSecrets",
    )
)


class MotoServer:
    """moto's server in this process (as ``moto.server.ThreadedMotoServer``), counting in ``changes``
    every request it served that may have changed its state (counted once the request is answered)."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self._host, self._port = host, port
        self._ssl_context = ssl_context  # HTTPS, as the real Secrets Manager endpoint is; None: HTTP
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._changes = 0

    @property
    def changes(self) -> int:
        with self._lock:
            return self._changes

    def _counting(self, app: Callable[..., Any]) -> Callable[..., Any]:
        def counted(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            try:
                return app(environ, start_response)  # type: ignore[no-any-return]
            finally:
                if environ.get("HTTP_X_AMZ_TARGET", "") not in _READS:
                    with self._lock:
                        self._changes += 1

        return counted

    def start(self) -> str:
        """Serve in a daemon thread; the endpoint (``https://host:port`` with an ``ssl_context``)."""
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        app = self._counting(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            self._host,
            self._port,
            app,
            True,
            request_handler=MotoRequestHandler,
            ssl_context=self._ssl_context,
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto", daemon=True)
        self._thread.start()
        host, port = self._server.server_address[:2]
        return f"{'https' if self._ssl_context is not None else 'http'}://{host}:{port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()


def aws_state() -> dict[str, list[JsonObject]]:
    """Every Secrets Manager secret moto holds in this process (its default account, the one any
    access key of the sandbox maps to), per region: names,
    descriptions, tags and every staged version (id, stages, value), oldest first."""
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.secretsmanager.models import FakeSecret, secretsmanager_backends

    account = dict.get(secretsmanager_backends, DEFAULT_ACCOUNT_ID)  # plain get: creates nothing
    regions: dict[str, list[JsonObject]] = {}
    for region, backend in sorted(dict.items(account) if account is not None else []):
        secrets = []
        for secret in list(dict.values(backend.secrets)):
            if not isinstance(secret, FakeSecret) or secret.is_deleted():
                continue
            versions = []
            for version in sorted(secret.versions.values(), key=lambda v: v.get("createdate", 0)):
                stages = list(version.get("version_stages") or [])
                if not stages:
                    continue
                entry: JsonObject = {"id": version["version_id"], "stages": stages}
                if version.get("secret_binary") is not None:
                    entry["binary"] = version["secret_binary"]  # moto keeps it as the API's base64
                else:
                    entry["string"] = version.get("secret_string", "")
                versions.append(entry)
            secrets.append(
                {
                    "name": secret.name,
                    "description": secret.description or "",
                    "tags": list(secret.tags or []),
                    "versions": versions,
                }
            )
        if secrets:
            regions[region] = sorted(secrets, key=lambda s: s["name"])
    return regions


def _value(version: JsonObject) -> JsonObject:
    if "binary" in version:
        return {"SecretBinary": base64.b64decode(version["binary"])}
    return {"SecretString": version["string"]}


def restore_aws(endpoint: str, regions: dict[str, list[JsonObject]], ca_file: str = "") -> None:
    """Create the saved secrets again: the same names, version ids, stages and values."""
    for region, secrets in regions.items():
        client = _secretsmanager(endpoint, region, ca_file)
        for secret in secrets:
            versions = secret["versions"]
            if not versions:
                continue
            first, *later = versions
            extra = {"Description": secret["description"]} if secret["description"] else {}
            if secret["tags"]:
                extra["Tags"] = secret["tags"]
            client.create_secret(
                Name=secret["name"], ClientRequestToken=first["id"], **_value(first), **extra
            )
            for version in later:
                client.put_secret_value(
                    SecretId=secret["name"],
                    ClientRequestToken=version["id"],
                    VersionStages=version["stages"],
                    **_value(version),
                )


@dataclass
class CloudSaver:
    """Saves the clouds when something changed: moto's state is read again only after a request that
    may have changed it (``MotoServer.changes``), and the file is written only when it would differ."""

    moto: MotoServer
    path: Path
    _changes: int | None = None
    _aws: dict[str, list[JsonObject]] = field(default_factory=dict, repr=False)  # holds values
    _saved: str | None = field(default=None, repr=False)
    aws_reads: int = 0  # how often moto's state was read (the tests count them)

    def save(self, services: ServiceEmulators, azure_vaults: Sequence[str]) -> bool:
        """Save what changed since the last call; whether the file was written. The emulators' servers
        may be stopped already (their stores are read); so may moto's (its state is in memory)."""
        azure = {name: services.azure.vault(name).store for name in azure_vaults}
        return self.save_stores(services.gcp.store, azure)

    def save_stores(self, gcp: SecretManagerStore, azure: Mapping[str, KeyVaultStore]) -> bool:
        """``save`` of moto's state, the GCP emulator's store and each Key Vault's (by name)."""
        changes = self.moto.changes  # before reading: a change made meanwhile is read next time
        if changes != self._changes:
            self._aws, self._changes = aws_state(), changes
            self.aws_reads += 1
        document = _document(gcp, azure, self._aws)
        if document == self._saved:
            return False
        _write(self.path, document)
        self._saved = document
        return True


def _document(gcp: SecretManagerStore, azure: Mapping[str, KeyVaultStore], aws: dict[str, Any]) -> str:
    document = {
        "format": FORMAT,
        "aws": aws,
        "gcp": gcp.snapshot(),
        "azure": {name: store.snapshot() for name, store in azure.items()},
    }
    return json.dumps(document, separators=(",", ":"))


def _write(path: Path, document: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(document)
    temporary.replace(path)


def restore_clouds(
    services: ServiceEmulators, aws_endpoint: str, azure_vaults: Sequence[str], path: Path, ca_file: str = ""
) -> None:
    """Put back what ``CloudSaver.save`` wrote; a Key Vault the sandbox no longer has is left out."""
    if not path.is_file():
        return
    document = json.loads(path.read_text())
    if document.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} file")
    restore_aws(aws_endpoint, document["aws"], ca_file)
    services.gcp.store.restore(document["gcp"])
    for name, saved in document["azure"].items():
        if name in azure_vaults:
            services.azure.vault(name).store.restore(saved)
        else:
            log.warning("Key Vault %s is not in the sandbox any more; its secrets are not restored", name)
