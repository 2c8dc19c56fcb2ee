"""``vault-bootstrap``: initialise, keep the keys safe, unseal every replica, configure as code,
smoke-test, create the catalog's missing secrets, revoke root.

Re-runnable: on a configured Vault it unseals what is sealed, regenerates a
root token through the bootstrap identity, finds nothing to configure,
smoke-tests and revokes root again. The unseal material and root token only
ever travel between Vault and the keeper; every parameter and output here is
a reference.
"""

from vaultflow.steps.secrets import seed
from vaultflow.steps.vault import configure, init, root_token, smoke, status, unseal
from vaultflow.workflows.dsl import Param, Pipeline, Retry, Step, output, param

VAULT = {"addresses": param("vault-addresses"), "ca_cert": param("ca-cert")}
KEEPER = {**VAULT, "keeper": param("keeper")}
CATALOG = {**KEEPER, "catalog": param("catalog")}
# A step that *fails* (exit code != 0) failed for a reason retrying will not change (an empty
# keeper, a denied policy, a replica that never answered: the steps already retry connecting
# for about 30 s). Argo retries only *errors*: a pod evicted or lost with its node.
INFRASTRUCTURE = Retry(limit=2, backoff="10s", factor=2, max_duration="2m", policy="OnError")

PIPELINES = [
    Pipeline(
        name="vault-bootstrap",
        description="Initialise, unseal, configure and smoke-test Vault from the catalog; revoke root.",
        service_account="vaultflow-bootstrap",
        timeout="30m",
        default_retry=INFRASTRUCTURE,
        params=[
            Param(
                "vault-addresses", description="Replica addresses, comma-separated; the first is the leader."
            ),
            Param(
                "keeper", default="kubernetes://argo/vaultflow-vault-keeper", description="Where shares live."
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
            Param("ca-cert", default="", description="CA bundle file to verify Vault (empty: system trust)."),
            Param(
                "audit-file", default="/vault/audit/audit.log", description="File audit path (Vault only)."
            ),
            Param(
                "seed-placeholders",
                default="false",
                enum=["true", "false"],
                description="Sandbox only: fill static keys of missing secrets with visible placeholders.",
            ),
        ],
        steps=[
            Step("status", status.check_status, args=VAULT),
            Step(
                "init",
                init.init_vault,
                args={
                    **KEEPER,
                    "shares": param("shares"),
                    "threshold": param("threshold"),
                    "pgp_keys": param("pgp-keys"),
                },
                depends="status",
                when=f"{output('status', 'initialized')} == false",
            ),
            Step("unseal", unseal.unseal_vault, args=KEEPER, depends="init.Succeeded || init.Skipped"),
            Step("root-token", root_token.ensure_root_token, args=CATALOG, depends="unseal"),
            Step(
                "configure",
                configure.configure_vault,
                args={**CATALOG, "audit_file": param("audit-file")},
                depends="root-token",
            ),
            Step("smoke-test", smoke.smoke_test, args=CATALOG, depends="configure"),
            Step(
                "seed",
                seed.seed_secrets,
                args={**CATALOG, "placeholders": param("seed-placeholders")},
                depends="smoke-test",
            ),
        ],
        on_exit=Step("revoke-root", root_token.revoke_root_token, args=KEEPER),
    )
]
