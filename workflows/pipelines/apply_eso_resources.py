"""``apply-eso-resources``: preflight, render and commit (or open a pull request), wait for Argo CD at the
commit, verify every ExternalSecret and PushSecret Ready.

The same library as ``vaultflow gitops apply`` (``vaultflow.steps.delivery``), split into the steps a
reader of the run wants to see fail: a preflight finding stops the run before any commit
(``fail-on-findings``); *apply* never waits; *wait-for-sync* waits for the pull request's merge (pr
mode) and for each Application of the changed paths at the revision; *verify-ready* waits for ESO.
Steps pass references only: the commit, the revision, the pull request's number, the changed paths.

Git and GitHub credentials: the Secret named by ``git-credentials-secret`` (key ``token``) is mounted
read-only into every step's pod at ``tasks.GIT_CREDENTIALS_DIR``; the steps read the token from there,
never from a parameter. Optional: without it, the pod starts and Git is refused (one line), unless the
image's own Git configuration authenticates.

``mutex``: two deliveries of the same tree at once would both land (the push rebases), but each would
wait on the other's commit; one at a time keeps each run's wait about its own commit.
"""

from vaultflow.steps.delivery import tasks
from vaultflow.workflows.dsl import (
    CA_CERT,
    NO_RETRY,
    VAULT_CA_SECRET,
    Param,
    Pipeline,
    Retry,
    SecretMount,
    Step,
    kubeconfig_mount,
    kubeconfig_secret_param,
    output,
    param,
    vault_ca_mount,
)

DELIVERY = {
    "repo": param("repo"),
    "branch": param("branch"),
    "path": param("path"),
}
# A failed step failed for a reason a retry will not change (a finding, a refused token, a sync that did
# not come): the steps already wait. Argo retries only errors: a pod evicted or lost with its node.
INFRASTRUCTURE = Retry(limit=2, backoff="10s", factor=2, max_duration="5m", policy="OnError")

PIPELINES = [
    Pipeline(
        name="apply-eso-resources",
        description=(
            "Deliver the catalog's ESO resources through Git: preflight, commit or pull request, "
            "Argo CD synced at the commit, every ExternalSecret and PushSecret Ready."
        ),
        service_account="vaultflow-delivery",
        timeout="1h",
        mutex="apply-eso-resources",
        default_retry=INFRASTRUCTURE,
        secret_mounts=[
            SecretMount(
                name="git-credentials",
                secret=param("git-credentials-secret"),
                path=str(tasks.GIT_CREDENTIALS_DIR),
                optional=True,
            ),
            vault_ca_mount(),
            kubeconfig_mount(),
        ],
        params=[
            Param(
                "catalog",
                default="configmap://argo/vaultflow-catalog",
                description="The secrets catalog: a file, or configmap://<namespace>/<name>[/<key>].",
            ),
            Param(
                "mode",
                default="push",
                enum=["push", "pr"],
                description="push: a commit on the branch; pr: a branch and a pull request (GitHub).",
            ),
            Param("merge", default="false", enum=["true", "false"], description="pr mode: merge it at once."),
            Param(
                "branch",
                default="",
                description="Branch Argo CD follows (empty: the catalog's gitops.revision).",
            ),
            Param("path", default="", description="Directory of the rendered tree (empty: gitops.path)."),
            Param("repo", default="", description="GitOps repository (empty: the catalog's gitops.repoUrl)."),
            Param("timeout", default="10m", description="How long each waiting step waits (a Go duration)."),
            Param(
                "vault-addresses",
                default="",
                description="Vault addresses, comma-separated (empty: the catalog's vault.address).",
            ),
            Param(
                "fail-on-findings",
                default="true",
                enum=["true", "false"],
                description="A preflight finding stops the run before any commit.",
            ),
            CA_CERT,
            VAULT_CA_SECRET,
            kubeconfig_secret_param("vaultflow-delivery"),
            Param(
                "git-credentials-secret",
                default="vaultflow-delivery-git",
                description=(
                    "Secret in the workflow's namespace whose key 'token' may push to the GitOps repository "
                    "(mode=pr: and open, update, merge pull requests); mounted as a file, never a parameter."
                ),
            ),
        ],
        steps=[
            Step(
                "preflight",
                tasks.preflight,
                args={
                    "catalog": param("catalog"),
                    "addresses": param("vault-addresses"),
                    "fail_on_findings": param("fail-on-findings"),
                    "ca_cert": param("ca-cert"),
                },
            ),
            Step(
                "apply",
                tasks.apply,
                args={
                    "catalog": param("catalog"),
                    "mode": param("mode"),
                    **DELIVERY,
                    "addresses": param("vault-addresses"),
                    "ca_cert": param("ca-cert"),
                    "merge": param("merge"),
                },
                depends="preflight",
                # A push that reached the remote must not be repeated blindly; apply commits only on change,
                # so a retry is harmless, but a failed apply (refused token) fails the same way again.
                retry=NO_RETRY,
            ),
            Step(
                "wait-for-sync",
                tasks.wait_for_sync,
                args={
                    "catalog": param("catalog"),
                    "mode": param("mode"),
                    "revision": output("apply", "revision"),
                    "pull_request": output("apply", "pull-request"),
                    "changed": output("apply", "changed"),
                    **DELIVERY,
                    "timeout": param("timeout"),
                },
                depends="apply",
            ),
            Step(
                "verify-ready",
                tasks.verify_ready,
                args={
                    "catalog": param("catalog"),
                    "revision": output("wait-for-sync", "revision"),
                    "changed": output("apply", "changed"),
                    **DELIVERY,
                    "timeout": param("timeout"),
                },
                depends="wait-for-sync",
            ),
        ],
    )
]
