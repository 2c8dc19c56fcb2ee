"""The bootstrap pipeline's steps as it runs them: each under the bootstrap lock (``lock.lock_held``).

The lock (a Lease, see ``vaultflow.steps.vault.lock``) lasts ``lock-duration``
after its last renewal, so that a run whose pods crash frees it by itself. A
run that renewed it only when it took it would lose it to a second run as soon
as it ran longer than that (a keeper write retried for minutes, a follower
catching up, a raised pipeline timeout), and both would configure Vault and
revoke root at once. So each step renews the lock when it starts (one read and
one write of the Lease) and every third of the duration while it runs; a step
that finds the lock taken by another run fails before touching Vault, naming
that run.

Each function here is the step of the same name, with the lock's two arguments
(the catalog, which says where the Lease lives, and the holder: the workflow's
name) added; nothing else.
"""

from typing import Annotated

from hera.workflows import Parameter

from vaultflow.steps.secrets import seed
from vaultflow.steps.vault import configure, init, root_token, smoke, status, unseal
from vaultflow.steps.vault.lock import lock_held


def check_status(
    addresses: str, catalog: str, holder: str, ca_cert: str = ""
) -> Annotated[str, Parameter(name="initialized")]:
    """*status* (``status.check_status``), under the lock."""
    with lock_held(catalog, holder):
        return status.check_status(addresses, ca_cert)


def init_vault(
    addresses: str,
    keeper: str,
    catalog: str,
    holder: str,
    *,
    fallback_keeper: str = "",
    shares: int = 5,
    threshold: int = 3,
    pgp_keys: str = "",
    ca_cert: str = "",
) -> init.InitResult:
    """*init* (``init.init_vault``), under the lock."""
    with lock_held(catalog, holder):
        return init.init_vault(
            addresses,
            keeper,
            fallback_keeper=fallback_keeper,
            shares=shares,
            threshold=threshold,
            pgp_keys=pgp_keys,
            ca_cert=ca_cert,
            catalog=catalog,
        )


def unseal_vault(
    addresses: str, keeper: str, catalog: str, holder: str, *, ca_cert: str = "", join_timeout: float = 30.0
) -> unseal.UnsealResult:
    """*unseal* (``unseal.unseal_vault``), under the lock."""
    with lock_held(catalog, holder):
        return unseal.unseal_vault(
            addresses, keeper, ca_cert=ca_cert, join_timeout=join_timeout, catalog=catalog
        )


def ensure_root_token(
    addresses: str, keeper: str, catalog: str, holder: str, *, ca_cert: str = ""
) -> root_token.RootTokenResult:
    """*root-token* (``root_token.ensure_root_token``), under the lock."""
    with lock_held(catalog, holder):
        return root_token.ensure_root_token(addresses, keeper, catalog=catalog, ca_cert=ca_cert)


def configure_vault(
    addresses: str,
    keeper: str,
    catalog: str,
    holder: str,
    *,
    ca_cert: str = "",
    audit_file: str = "/vault/audit/audit.log",
) -> configure.ConfigureResult:
    """*configure* (``configure.configure_vault``), under the lock."""
    with lock_held(catalog, holder):
        return configure.configure_vault(addresses, keeper, catalog, ca_cert=ca_cert, audit_file=audit_file)


def smoke_test(
    addresses: str, keeper: str, catalog: str, holder: str, *, ca_cert: str = ""
) -> smoke.SmokeResult:
    """*smoke-test* (``smoke.smoke_test``), under the lock."""
    with lock_held(catalog, holder):
        return smoke.smoke_test(addresses, keeper, catalog, ca_cert=ca_cert)


def seed_secrets(
    addresses: str, keeper: str, catalog: str, holder: str, *, placeholders: bool = False, ca_cert: str = ""
) -> seed.SeedResult:
    """*seed* (``seed.seed_secrets``), under the lock."""
    with lock_held(catalog, holder):
        return seed.seed_secrets(addresses, keeper, catalog, placeholders=placeholders, ca_cert=ca_cert)
