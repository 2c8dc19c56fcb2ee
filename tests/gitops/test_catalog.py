"""The catalog loads what is right and names exactly what is wrong."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from vaultflow.gitops.catalog import CatalogError, LoadedCatalog, load_catalog, parse_catalog

HEADER = """\
apiVersion: vaultflow.io/v1alpha1
kind: SecretsCatalog
vault:
  address: https://vault.example.com:8200
gitops:
  repoUrl: https://git.example.com/gitops.git
clouds:
  - {name: aws, provider: aws, region: eu-west-1, auth: {secretRef: {secretName: aws-creds}}}
  - {name: gcp, provider: gcp, projectId: my-project-1, auth: {secretRef: {secretName: gcp-creds}}}
  - name: az
    provider: azure
    vaultUrl: https://v.vault.azure.net
    tenantId: 00000000-0000-4000-8000-000000000000
    auth: {servicePrincipal: {secretName: az-creds}}
clusters:
  - {name: one, kubeContext: one, argocd: {server: https://kubernetes.default.svc}}
  - {name: two, kubeContext: two, argocd: {name: two}}
"""


def parse(body: str, name: str = "catalog.yaml") -> LoadedCatalog:
    return parse_catalog(HEADER + textwrap.dedent(body), Path(name))


def problems(body: str) -> list[str]:
    with pytest.raises(CatalogError) as caught:
        parse(body)
    return [issue.render("catalog.yaml") for issue in caught.value.issues]


def line_of(body: str, needle: str) -> int:
    """1-based line of the last ``needle`` in HEADER + body (what the error must point at)."""
    text = HEADER + textwrap.dedent(body)
    lines = [number for number, line in enumerate(text.splitlines(), start=1) if needle in line]
    assert lines, f"{needle!r} not in catalog"
    return lines[-1]


def test_example_catalog_loads(repo_root: Path) -> None:
    loaded = load_catalog(repo_root / "examples" / "catalog.yaml")
    catalog = loaded.catalog
    assert [c.name for c in catalog.clusters] == ["prod-eu", "prod-us"]
    assert {c.provider for c in catalog.clouds} == {"aws", "gcp", "azure"}
    by_path = {s.path: s for s in catalog.secrets}
    # The seed's examples are all there, with their exact settings.
    assert by_path["prod/database"].consumers[0].secret_name == "db-secret"
    assert by_path["prod/database"].consumers[0].keys is None  # dataFrom.extract
    app = by_path["prod/app-credentials"].consumers[0]
    assert (app.namespace, app.secret_name, app.creation_policy) == ("production", "app-secret", "Owner")
    admin = by_path["argocd/admin"].consumers[0]
    assert (admin.secret_name, admin.creation_policy, admin.deletion_policy, admin.refresh_interval) == (
        "argocd-secret",
        "Merge",
        "Retain",
        "5m",
    )
    assert admin.keys is not None and admin.keys[0].property == "admin.password"
    lambda_push = by_path["prod/lambda/db-password"].pushes[0]
    assert (lambda_push.cloud, lambda_push.remote_key) == ("aws-prod", "/prod/lambda/db-password")


def test_keys_shorthand_and_defaults() -> None:
    loaded = parse(
        """\
        secrets:
          - path: app/api
            keys: [{name: token, generator: {type: uuid}}]
            consumers: [{cluster: one, namespace: apps, secretName: api, keys: [token]}]
        """
    )
    consumer = loaded.catalog.secrets[0].consumers[0]
    assert consumer.keys is not None
    assert consumer.keys[0].property == "token"
    assert consumer.keys[0].target_key() == "token"
    assert (consumer.creation_policy, consumer.deletion_policy, consumer.refresh_interval) == (
        "Owner",
        "Retain",
        "1h",
    )


# Each kind of mistake: (catalog body, the line to point at, field path, words of the message).
MISTAKES = [
    pytest.param(
        """\
        secrets:
          - path: app/db
            keys: [{name: password, generator: {type: password}}]
            consumers: [{cluster: one, namespace: Apps, secretName: db}]
        """,
        "namespace: Apps",
        "secrets[0].consumers[0].namespace",
        "not a valid DNS-1123 label",
        id="dns-1123",
    ),
    pytest.param(
        """\
        secrets:
          - path: app/db
            keys: [{name: password, generator: {type: password}}]
            rotation: {schedule: "0 25 * * *"}
        """,
        "schedule",
        "secrets[0].rotation.schedule",
        "hour '25': outside 0-23",
        id="cron",
    ),
    pytest.param(
        """\
        secrets:
          - path: app/db
            keys: [{name: password, generator: {type: password}}]
            consumers:
              - {cluster: three, namespace: apps, secretName: db}
        """,
        "cluster: three",
        "secrets[0].consumers[0].cluster",
        "unknown cluster 'three' (defined: one, two)",
        id="undefined-cluster",
    ),
    pytest.param(
        """\
        secrets:
          - path: app/db
            keys: [{name: password, generator: {type: password}}]
            pushes:
              - {cloud: ibm, remoteKey: db, cluster: one, namespace: apps}
        """,
        "cloud: ibm",
        "secrets[0].pushes[0].cloud",
        "unknown cloud 'ibm'",
        id="undefined-cloud",
    ),
    pytest.param(
        """\
        secrets:
          - path: app/db
            keys: [{name: password, generator: {type: password}}]
            consumers: [{cluster: one, namespace: apps, secretName: db}]
          - path: app/db2
            keys: [{name: password, generator: {type: password}}]
            consumers: [{cluster: one, namespace: apps, secretName: db}]
        """,
        "secretName: db}",
        "secrets[1].consumers[0].secretName",
        "only one ExternalSecret may own",
        id="two-owners",
    ),
    pytest.param(
        """\
        secrets:
          - path: app/db
            keys: [{name: password, generator: {type: password}}]
            consumers: [{cluster: one, namespace: apps, secretName: db, creationPolcy: Owner}]
        """,
        "creationPolcy",
        "secrets[0].consumers[0].creationPolcy",
        "unknown field 'creationPolcy'; did you mean 'creationPolicy'?",
        id="unknown-field",
    ),
    pytest.param(
        """\
        secrets:
          - path: app/db
            keys: [{name: password, generator: {type: password}}]
            consumers: [{cluster: one, namespace: apps}]
        """,
        "namespace: apps",
        "secrets[0].consumers[0].secretName",
        "missing required field 'secretName'",
        id="missing-field",
    ),
    pytest.param(
        """\
        secrets:
          - path: app/db
            keys: [{name: password, generator: {type: password, length: "32"}}]
        """,
        "length",
        "secrets[0].keys[0].generator.length",
        "valid integer",
        id="wrong-type",
    ),
    pytest.param(
        """\
        secrets:
          - path: app/db
            keys: [{name: password, generator: {type: magic}}]
        """,
        "type: magic",
        "secrets[0].keys[0].generator",
        "unknown type 'magic'",
        id="unknown-generator",
    ),
    pytest.param(
        """\
        secrets:
          - path: app/db
            keys: [{name: password, generator: {type: password}}]
            consumers:
              - {cluster: one, namespace: apps, secretName: db, keys: [{property: passwd}]}
        """,
        "passwd",
        "secrets[0].consumers[0].keys[0].property",
        "'passwd' is not a key of secret 'app/db'",
        id="unknown-property",
    ),
    pytest.param(
        """\
        secrets:
          - path: app/db
            keys: [{name: password, generator: {type: password}}]
            pushes:
              - {cloud: az, remoteKey: /prod/db, cluster: one, namespace: apps}
        """,
        "remoteKey",
        "secrets[0].pushes[0].remoteKey",
        "not a valid azure secret name",
        id="remote-key-format",
    ),
    pytest.param(
        """\
        secrets:
          - path: app/db
            keys: [{name: password, generator: {type: password}}]
            pushes:
              - {cloud: aws, remoteKey: db}
        """,
        "remoteKey: db",
        "secrets[0].pushes[0]",
        "a push needs 'cluster' and 'namespace'",
        id="push-without-location",
    ),
    pytest.param(
        """\
        secrets:
          - path: app/db
            keys: [{name: user, generator: {type: static}}]
            rotation: {schedule: "@daily"}
        """,
        "rotation",
        "secrets[0].rotation",
        "a rotation needs at least one generated key",
        id="rotation-of-static",
    ),
    pytest.param(
        """\
        secrets:
          - path: app/db
            keys: [{name: password, generator: {type: password}}]
            consumers:
              - {cluster: one, namespace: apps, secretName: db, creationPolicy: Merge, deletionPolicy: Delete}
        """,
        "deletionPolicy: Delete",
        "secrets[0].consumers[0]",
        "refused by ESO",
        id="eso-policy-combination",
    ),
    pytest.param(
        """\
        secrets:
          - path: secret/data/app/db
            keys: [{name: password, generator: {type: password}}]
        """,
        "path: secret",
        "secrets[0].path",
        "",
        id="api-prefix-is-accepted-only-as-a-real-path",
    ),
    pytest.param(
        """\
        secrets:
          - path: data/app/db
            keys: [{name: password, generator: {type: password}}]
        """,
        "path: data",
        "secrets[0].path",
        "without the KV v2 API prefix",
        id="kv-api-prefix",
    ),
    pytest.param(
        """\
        secrets:
          - path: app/db
            keys: [{name: password, generator: {type: password}}]
          - path: app/db
            keys: [{name: password, generator: {type: password}}]
        """,
        "path: app/db",
        "secrets[1].path",
        "already defined at secrets[0]",
        id="duplicate-path",
    ),
    pytest.param(
        """\
        secrets:
          - path: app/db
            path: app/other
            keys: [{name: password, generator: {type: password}}]
        """,
        "path: app/other",
        "secrets[0].path",
        "duplicate key 'path'",
        id="duplicate-yaml-key",
    ),
]


@pytest.mark.parametrize(("body", "needle", "field", "words"), MISTAKES)
def test_each_mistake_is_named_precisely(body: str, needle: str, field: str, words: str) -> None:
    if not words:
        # 'secret/data/app/db' is a legal path *name* (a secret under a folder called secret):
        # the catalog accepts it rather than guessing; only a leading data/ is refused.
        parse(body)
        return
    found = problems(body)
    expected_line = line_of(body, needle)
    matching = [p for p in found if f": {field}: " in p and words in p]
    assert matching, f"no problem for {field} with {words!r} in {found}"
    assert matching[0].startswith(f"catalog.yaml:{expected_line}:"), matching


def test_every_field_problem_is_reported_at_once() -> None:
    # Reference checks (unknown clusters, ownership) need well-formed fields, so they run
    # after these are fixed; every field-level problem is reported in one go.
    found = problems(
        """\
        secrets:
          - path: /bad
            keys: [{name: password, generator: {type: password, length: 4}}]
            consumers: [{cluster: nowhere, namespace: apps, secretName: Bad}]
        """
    )
    assert len(found) == 3, found
    assert [p.split(": ")[1] for p in found] == [
        "secrets[0].path",
        "secrets[0].keys[0].generator.length",
        "secrets[0].consumers[0].secretName",
    ]
    assert found == sorted(found, key=lambda p: [int(n) for n in p.split(":")[1:3]])


def test_yaml_syntax_error_points_at_the_line() -> None:
    found = problems("secrets:\n  - path: [unclosed\n")
    assert len(found) == 1
    assert "YAML syntax error" in found[0]
    assert found[0].startswith(f"catalog.yaml:{HEADER.count(chr(10)) + 3}:")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "found an empty file"),
        ("- a\n- b\n", "found list"),
        ("a: 1\n---\nb: 2\n", "single YAML document"),
    ],
)
def test_not_a_catalog(text: str, words: str) -> None:
    with pytest.raises(CatalogError) as caught:
        parse_catalog(text, Path("c.yaml"))
    assert words in str(caught.value)


def test_missing_file_is_one_clear_problem(tmp_path: Path) -> None:
    with pytest.raises(CatalogError) as caught:
        load_catalog(tmp_path / "nope.yaml")
    assert str(caught.value).endswith("nope.yaml:1:1: <document>: file not found")


def test_plain_http_to_a_remote_vault_is_refused_unless_acknowledged() -> None:
    insecure = HEADER.replace("https://vault.example.com:8200", "http://vault.example.com:8200")
    with pytest.raises(CatalogError, match="plain http"):
        parse_catalog(insecure, Path("c.yaml"))
    acknowledged = insecure.replace(
        "address: http://vault.example.com:8200",
        "address: http://vault.example.com:8200\n  insecureHttp: true",
    )
    parse_catalog(acknowledged, Path("c.yaml"))
    loopback = HEADER.replace("https://vault.example.com:8200", "http://127.0.0.1:8200")
    parse_catalog(loopback, Path("c.yaml"))


def test_missing_ca_file_is_reported(tmp_path: Path) -> None:
    text = HEADER.replace(
        "address: https://vault.example.com:8200", "address: https://v:8200\n  tls: {caFile: ca.pem}"
    )
    source = tmp_path / "catalog.yaml"
    source.write_text(text)
    with pytest.raises(CatalogError, match=r"CA file 'ca\.pem' not found"):
        load_catalog(source)
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    assert load_catalog(source).catalog.vault.tls.ca_file == "ca.pem"


def test_merge_consumers_may_share_a_secret_when_keys_differ() -> None:
    loaded = parse(
        """\
        secrets:
          - path: app/a
            keys: [{name: a, generator: {type: uuid}}]
            consumers: [{cluster: one, namespace: apps, secretName: shared, creationPolicy: Merge, keys: [a]}]
          - path: app/b
            keys: [{name: b, generator: {type: uuid}}]
            consumers: [{cluster: one, namespace: apps, secretName: shared, creationPolicy: Merge, keys: [b]}]
        """
    )
    assert len(loaded.plan.external_secrets) == 2
    found = problems(
        """\
        secrets:
          - path: app/a
            keys: [{name: k, generator: {type: uuid}}]
            consumers: [{cluster: one, namespace: apps, secretName: shared, creationPolicy: Merge, keys: [k]}]
          - path: app/b
            keys: [{name: k, generator: {type: uuid}}]
            consumers: [{cluster: one, namespace: apps, secretName: shared, creationPolicy: Merge, keys: [k]}]
        """
    )
    assert any("secrets[1].consumers[0].keys" in p and "k also written by" in p for p in found), found


def test_push_reuses_a_consumer_secret_or_gets_its_own_source() -> None:
    loaded = parse(
        """\
        secrets:
          - path: app/db
            keys: [{name: password, generator: {type: password}}, {name: user, generator: {type: static}}]
            consumers: [{cluster: one, namespace: apps, secretName: db}]
            pushes:
              - {cloud: aws, remoteKey: app/db}
              - {cloud: gcp, remoteKey: app-db-password, key: password, cluster: two, namespace: jobs}
        """
    )
    plan = loaded.plan
    to_aws, to_gcp = plan.push_secrets
    assert (to_aws.cluster, to_aws.namespace, to_aws.source_secret, to_aws.source_key) == (
        "one",
        "apps",
        "db",
        None,
    )
    assert (to_gcp.cluster, to_gcp.namespace, to_gcp.source_secret, to_gcp.source_key) == (
        "two",
        "jobs",
        "app-db-push-source",
        "password",
    )
    source = [es for es in plan.external_secrets if es.for_pushes]
    assert [(es.cluster, es.namespace, es.target) for es in source] == [("two", "jobs", "app-db-push-source")]


@pytest.mark.parametrize(("text", "seconds"), [("0", 0.0), (".5s", 0.5), ("1h30m", 5400.0)])
def test_refresh_interval_reads_as_eso_reads_it(text: str, seconds: float) -> None:
    """ESO takes any Go duration, including 0 (never refresh) and a leading-dot fraction."""
    from vaultflow.gitops.catalog.types import duration_seconds

    loaded = parse(
        f"""\
        secrets:
          - path: app/api
            keys: [{{name: token, generator: {{type: static}}}}]
            consumers: [{{cluster: one, namespace: apps, secretName: api, refreshInterval: "{text}"}}]
        """
    )
    assert duration_seconds(loaded.catalog.secrets[0].consumers[0].refresh_interval) == seconds


def test_a_negative_duration_is_refused_with_its_place() -> None:
    body = """\
        secrets:
          - path: app/api
            keys: [{name: token, generator: {type: static}}]
            consumers: [{cluster: one, namespace: apps, secretName: api, refreshInterval: "-1m"}]
        """
    [problem] = problems(body)
    assert "secrets[0].consumers[0].refreshInterval" in problem and "is negative" in problem


ROTATED_WITH_CONSUMER = """\
    secrets:
      - path: app/api
        keys: [{{name: token, generator: {{type: random}}}}]
        rotation: {{schedule: "@daily"}}
        consumers: [{{cluster: one, namespace: apps, secretName: api, {consumer}}}]
    """


@pytest.mark.parametrize(
    ("consumer", "field", "reason"),
    [
        ("refreshPolicy: CreatedOnce", "refreshPolicy", "CreatedOnce never refreshes"),
        ('refreshInterval: "0"', "refreshInterval", "refreshInterval 0 with the Periodic policy"),
        ('refreshPolicy: Periodic, refreshInterval: "0s"', "refreshInterval", "refreshInterval 0"),
    ],
)
def test_a_rotated_secret_refuses_consumers_eso_never_refreshes(
    consumer: str, field: str, reason: str
) -> None:
    [problem] = problems(ROTATED_WITH_CONSUMER.format(consumer=consumer))
    assert f"secrets[0].consumers[0].{field}" in problem and reason in problem


@pytest.mark.parametrize(
    "consumer", ["refreshPolicy: OnChange", 'refreshPolicy: OnChange, refreshInterval: "0"']
)
def test_on_change_consumers_pick_up_force_sync(consumer: str) -> None:
    """ESO's OnChange refreshes whenever the object's metadata changes: the force-sync annotation does."""
    loaded = parse(ROTATED_WITH_CONSUMER.format(consumer=consumer))
    assert loaded.catalog.secrets[0].consumers[0].refresh_policy == "OnChange"
    [external_secret] = loaded.plan.external_secrets
    assert external_secret.refresh_policy == "OnChange"
