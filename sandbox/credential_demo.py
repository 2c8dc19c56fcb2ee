"""The demo's PostgreSQL parts (issue 16): the database's credentials handed over to Vault after the
seed, and after the rotation a login with what the consuming Kubernetes Secret now holds beside one
with the credential it held before (alternating users: both are accepted until the next rotation).

Nothing here prints a password: only users, where their credential was read, and PostgreSQL's answer.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kubernetes import client, config

from vaultflow.gitops.catalog import LoadedCatalog
from vaultflow.gitops.catalog.model import Consumer, PostgresCredential, Secret
from vaultflow.sandbox.layout import SandboxPaths
from vaultflow.sandbox.postgres import handover
from vaultflow.sandbox.state import SandboxState
from vaultflow.steps.credentials import Credential, CredentialError
from vaultflow.steps.credentials.postgres import PostgresEndpoint, PostgresSingleUser

Say = Callable[[str], None]


def checked_secrets(loaded: LoadedCatalog) -> list[tuple[Secret, PostgresCredential]]:
    """The catalog's secrets whose rotation names a postgres credential."""
    found = []
    for secret in loaded.catalog.secrets:
        credential = secret.rotation.credential if secret.rotation is not None else None
        if credential is not None:
            found.append((secret, credential))
    return found


def handover_stage(loaded: LoadedCatalog, state: SandboxState, say: Say) -> None:
    """After the seed: Vault gets the logins the sandbox's PostgreSQL accepts where what it holds does
    not log in (the seed generated a password the database never saw), as a DBA hands a database over.
    With a root token generated from the keeper's shares by the bootstrap identity, revoked after."""
    if not checked_secrets(loaded) or not state.postgres:
        return
    from vaultflow.steps.vault.root_token import ensure_root_token, revoke_root_token, root_client

    addresses = ",".join(node.address for node in state.vault)
    keeper = SandboxPaths(Path(state.directory)).keeper.as_uri()
    ca = state.ca_file  # OpenBao's certificate chains to the sandbox CA
    ensure_root_token(addresses, keeper, catalog=str(loaded.source), ca_cert=ca)
    try:
        lines = handover(root_client(addresses, keeper, ca), loaded.catalog.vault.kv_mount, state)
    finally:
        revoke_root_token(addresses, keeper, catalog=str(loaded.source), ca_cert=ca)
    say(f"PostgreSQL on {state.postgres} (TLS, the sandbox CA), as the catalog's credential names it:")
    for line in lines:
        say(f"  {line}")


@dataclass
class ConsumerLogins:
    """What each checked secret's first consumer Secret held before the rotation (kept in memory)."""

    before: dict[str, Credential] = field(default_factory=dict, repr=False)


def consumer_credential(state: SandboxState, consumer: Consumer, spec: PostgresCredential) -> Credential:
    """The login the consumer's Kubernetes Secret holds now, read as the workload reads it."""
    api = config.new_client_from_config(config_file=state.kubeconfig, context=consumer.cluster)
    with api:
        secret = client.CoreV1Api(api).read_namespaced_secret(consumer.secret_name, consumer.namespace)
    data = {key: base64.b64decode(value).decode() for key, value in (secret.data or {}).items()}
    keys = {key.property: key.target_key() for key in consumer.keys or []}
    username = data.get(keys.get(spec.username_key, spec.username_key), "")
    return Credential(username, data.get(keys.get(spec.password_key, spec.password_key), ""))


def remember(loaded: LoadedCatalog, state: SandboxState) -> ConsumerLogins:
    """Before the rotation: the credential each checked secret's first consumer holds."""
    logins = ConsumerLogins()
    for secret, spec in checked_secrets(loaded):
        if secret.consumers and state.postgres:
            logins.before[secret.path] = consumer_credential(state, secret.consumers[0], spec)
    return logins


def endpoint(state: SandboxState, spec: PostgresCredential) -> PostgresEndpoint:
    """The server as the catalog names it (its host name, verified against the sandbox CA), reached at
    the sandbox's address: what ``VAULTFLOW_POSTGRES_ROUTES`` does for the rotation."""
    host = spec.host if isinstance(spec.host, str) else "localhost"
    port = int(state.postgres.rsplit(":", 1)[1])
    return PostgresEndpoint(
        host,
        port,
        spec.database,
        spec.sslmode,
        Path(state.ca_file),
        hostaddr=state.postgres.rsplit(":", 1)[0],
    )


def _answer(where: PostgresEndpoint, login: Credential) -> str:
    try:
        PostgresSingleUser(where, login).test(login)
    except CredentialError as error:
        return f"refused ({error})"
    return "accepted (SELECT 1)"


def login_lines(loaded: LoadedCatalog, state: SandboxState, logins: ConsumerLogins) -> list[str]:
    """After the rotation: a login with what each consumer Secret holds now, and one with what it held
    before; one line each, no password."""
    lines = []
    for secret, spec in checked_secrets(loaded):
        previous = logins.before.get(secret.path)
        if previous is None:
            continue
        consumer = secret.consumers[0]
        where = endpoint(state, spec)
        now = consumer_credential(state, consumer, spec)
        place = f"{consumer.cluster}/{consumer.namespace}/{consumer.secret_name}"
        lines.append(f"{secret.path}: login with what {place} holds now: {_answer(where, now)}")
        kept = (
            "until the next rotation" if spec.strategy == "alternating-users" else "(single user: expected)"
        )
        lines.append(f"{secret.path}: login with what {place} held before: {_answer(where, previous)} {kept}")
    return lines
