"""``vaultflow consumers PATH`` against a cluster where the ESO emulator runs: the catalog's
consumers, one written by hand, one the catalog names but nobody applied, and the workloads."""

from __future__ import annotations

from pathlib import Path

from tests.sandbox_eso.conftest import VAULT_ADDRESS, EsoStack, external_secret
from vaultflow.gitops.catalog import LoadedCatalog, parse_catalog
from vaultflow.gitops.names import k8s_name
from vaultflow.steps.observe.consumers import consumers_of

ES = "ExternalSecret"
CATALOG = """\
apiVersion: vaultflow.io/v1alpha1
kind: SecretsCatalog
vault: {{address: "{vault}", storeName: vault-backend}}
gitops: {{repoUrl: https://git.example.com/gitops.git}}
clusters:
  - {{name: eso, kubeContext: eso, argocd: {{server: https://kubernetes.default.svc}}}}
secrets:
  - path: {path}
    keys: [{{name: password, generator: {{type: password, length: 24}}}}]
    rotation:
      schedule: "@daily"
      restart: [{{cluster: eso, namespace: {namespace}, name: api}}]
    consumers:
      - {{cluster: eso, namespace: {namespace}, secretName: db}}
      - {{cluster: eso, namespace: {elsewhere}, secretName: db}}
"""


def _loaded(path: str, namespace: str) -> LoadedCatalog:
    text = CATALOG.format(vault=VAULT_ADDRESS, path=path, namespace=namespace, elsewhere=f"{namespace}-b")
    return parse_catalog(text, Path("catalog.yaml"))


def test_consumers_are_read_from_the_cluster_and_the_catalog(
    eso: EsoStack, namespace: str, vault_path: str
) -> None:
    value = "never-shown"
    eso.vault.secrets.kv.v2.create_or_update_secret(
        vault_path, secret={"password": value}, mount_point="secret"
    )
    remote = [{"secretKey": "password", "remoteRef": {"key": vault_path, "property": "password"}}]
    rendered = k8s_name(vault_path)
    eso.create(namespace, external_secret(rendered, target={"name": "db"}, data=remote))
    by_hand = [{"secretKey": "pw", "remoteRef": {"key": f"secret/data/{vault_path}", "property": "password"}}]
    eso.create(namespace, external_secret("team-copy", target={"name": "team-db"}, data=by_hand))
    eso.wait_ready(namespace, ES, rendered)
    eso.wait_ready(namespace, ES, "team-copy")

    report = consumers_of(_loaded(vault_path, namespace), vault_path, {"eso": eso.api})
    rows = {(r.kind, r.namespace, r.name, r.source) for r in report.rows}
    assert rows == {
        ("ExternalSecret", namespace, rendered, "catalog"),
        ("Secret", namespace, "db", "catalog"),
        ("ExternalSecret", namespace, "team-copy", "discovered"),  # ESO's path rules: secret/data/... too
        ("Secret", namespace, "team-db", "discovered"),
        ("ExternalSecret", f"{namespace}-b", rendered, "missing"),
        ("Workload", namespace, "Deployment/api", "catalog"),
    }
    assert report.in_catalog
    assert value not in report.model_dump_json()

    other = consumers_of(_loaded(vault_path, namespace), f"{vault_path}-unknown", {"eso": eso.api})
    assert (other.in_catalog, other.rows) == (False, [])
