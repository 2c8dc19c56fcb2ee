"""``vault-bootstrap``: one run at a time, initialise, keep the keys safe, unseal every replica,
configure as code, smoke-test, create the catalog's missing secrets, revoke root.

Under auto-unseal (the catalog's ``vault.seal``: transit or a cloud KMS) *init*
creates recovery shares, kept like unseal shares; *unseal* submits none and only
waits for every replica to unseal itself; *root-token* regenerates root with
the recovery shares. *init* and *unseal* check that Vault's seal type is the
catalog's before they act.

Every step after *lock* is the step of ``vaultflow.steps.vault.locked``: it renews
the lock when it starts and while it runs, so a run longer than ``lock-duration``
keeps it, and stops if another run took it.

Re-runnable: on a configured Vault it unseals what is sealed, regenerates a
root token through the bootstrap identity, finds nothing to configure,
smoke-tests and revokes root again. The unseal material and root token only
ever travel between Vault and the keeper; every parameter and output here is
a reference.
"""

from vaultflow.steps.vault import lock, locked
from vaultflow.workflows.dsl import (
    CA_CERT,
    VAULT_CA_SECRET,
    WORKFLOW_NAME,
    Param,
    Pipeline,
    Retry,
    Step,
    kubeconfig_mount,
    kubeconfig_secret_param,
    param,
    vault_ca_mount,
)

LOCKED = {"catalog": param("catalog"), "holder": WORKFLOW_NAME}  # where the lock lives, and who holds it
VAULT = {"addresses": param("vault-addresses"), "ca_cert": param("ca-cert"), **LOCKED}
KEEPER = {**VAULT, "keeper": param("keeper")}
# A step that *fails* (exit code != 0) failed for a reason retrying will not change (an empty
# keeper, a denied policy, a replica that never answered: the steps already retry connecting
# for about 30 s). Argo retries only *errors*: a pod evicted or lost with its node.
INFRASTRUCTURE = Retry(limit=2, backoff="10s", factor=2, max_duration="2m", policy="OnError")

PIPELINES = [
    Pipeline(
        name="vault-bootstrap",
        description="Initialise, unseal, configure and smoke-test Vault from the catalog; revoke root.",
        mutex="vaultflow-vault-bootstrap",
        service_account="vaultflow-bootstrap",
        timeout="30m",
        default_retry=INFRASTRUCTURE,
        secret_mounts=[vault_ca_mount(), kubeconfig_mount()],
        params=[
            Param(
                "vault-addresses", description="Replica addresses, comma-separated; the first is the leader."
            ),
            Param(
                "keeper", default="kubernetes://argo/vaultflow-vault-keeper", description="Where shares live."
            ),
            Param(
                "fallback-keeper",
                default="",
                description="A second keeper for the shares if the keeper fails after init (empty: none).",
            ),
            Param(
                "catalog",
                default="configmap://argo/vaultflow-catalog",
                description="The secrets catalog: a file, or configmap://<namespace>/<name>[/<key>].",
            ),
            Param("shares", default="5", description="Shamir shares created at init."),
            Param("threshold", default="3", description="Shares needed to unseal."),
            Param(
                "pgp-keys",
                default="",
                description="Optional base64 PGP keys, one per share, comma-separated.",
            ),
            CA_CERT,
            VAULT_CA_SECRET,
            kubeconfig_secret_param("vaultflow-bootstrap"),
            Param(
                "audit-file", default="/vault/audit/audit.log", description="File audit path (Vault only)."
            ),
            Param(
                "seed-placeholders",
                default="false",
                enum=["true", "false"],
                description="Sandbox only: fill static keys of missing secrets with visible placeholders.",
            ),
            Param(
                "lock-wait", default="10m", description="How long to wait for another bootstrap to finish."
            ),
            Param(
                "lock-duration",
                default=lock.DEFAULT_DURATION,
                description="How long the lock outlives its last renewal (every step renews it).",
            ),
        ],
        steps=[
            Step(
                "lock",
                lock.lock_bootstrap,
                args={**LOCKED, "wait": param("lock-wait"), "duration": param("lock-duration")},
            ),
            Step("status", locked.check_status, args=VAULT, depends="lock"),
            # Always: a no-op on an initialised Vault with a full keeper, and where a re-run copies the
            # material from the fallback keeper into the keeper.
            Step(
                "init",
                locked.init_vault,
                args={
                    **KEEPER,
                    "fallback_keeper": param("fallback-keeper"),
                    "shares": param("shares"),
                    "threshold": param("threshold"),
                    "pgp_keys": param("pgp-keys"),
                },
                depends="status",
            ),
            Step("unseal", locked.unseal_vault, args=KEEPER, depends="init"),
            Step("root-token", locked.ensure_root_token, args=KEEPER, depends="unseal"),
            Step(
                "configure",
                locked.configure_vault,
                args={**KEEPER, "audit_file": param("audit-file")},
                depends="root-token",
            ),
            Step("smoke-test", locked.smoke_test, args=KEEPER, depends="configure"),
            Step(
                "seed",
                locked.seed_secrets,
                args={**KEEPER, "placeholders": param("seed-placeholders")},
                depends="smoke-test",
            ),
        ],
        # Only the lock's holder revokes root (once the bootstrap identity is proven), then unlocks.
        on_exit=Step("revoke-root", lock.finish_bootstrap, args=KEEPER),
    )
]
