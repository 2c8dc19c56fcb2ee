"""``target.template`` through the ESO emulator, as ESO 2.9.0 renders it.

Upstream: ``pkg/controllers/externalsecret/externalsecret_controller_template.go``
(``ApplyTemplate``: template metadata instead of the ExternalSecret's, ``type``, ``mergePolicy``,
``templateFrom`` then ``data``), ``externalsecret_controller.go`` (``mutationFunc``: the data hash
of the data as written; a mutation error is ``SecretSyncedError`` "could not update secret"),
``pkg/controllers/templating/parser.go`` (``templateFrom`` ConfigMaps, Secrets, literals) and
``runtime/template/v2/template.go`` (errors wrapped per key).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from tests.sandbox_eso.conftest import EsoStack, external_secret
from vaultflow.sandbox.eso import gohash
from vaultflow.sandbox.observe import wait_for

ES = "ExternalSecret"
DOCKER_CONFIG = (
    '{"auths":{"registry.example":{"username":{{ .user | toJson }},"password":{{ .password | toJson }}}}}'
)


def write(eso: EsoStack, path: str, **values: object) -> None:
    eso.vault.secrets.kv.v2.create_or_update_secret(path, secret=values, mount_point="secret")


def templated(name: str, path: str, template: dict[str, Any], **target: Any) -> dict[str, Any]:
    return external_secret(
        name, dataFrom=[{"extract": {"key": path}}], target={"template": template, **target}
    )


def warnings(eso: EsoStack, namespace: str, name: str) -> list[str]:
    return [e.message for e in eso.events(namespace, name) if e.reason == "UpdateFailed"]


def failed_with(eso: EsoStack, namespace: str, name: str, message: str) -> bool:
    condition = eso.condition(namespace, ES, name)
    return (
        condition.get("status") == "False"
        and condition.get("reason") == "SecretSyncedError"
        and message in warnings(eso, namespace, name)
    )


def test_template_data_renders_the_secret_and_the_hash_is_of_what_was_written(
    eso: EsoStack, namespace: str, vault_path: str
) -> None:
    write(eso, vault_path, user="app", password="s3cr<et", host="db.internal")
    body = templated(
        "rendered",
        vault_path,
        {
            "type": "kubernetes.io/dockerconfigjson",
            "metadata": {
                "labels": {"app": "{{ .user | upper }}"},
                "annotations": {"owner": "platform"},
            },
            "data": {
                ".dockerconfigjson": DOCKER_CONFIG,
                "url": "postgres://{{ .user }}:{{ .password }}@{{ .host }}:5432/app",
            },
        },
    )
    body["metadata"]["labels"] = {"from-es": "not-copied"}
    eso.create(namespace, body)
    eso.wait_ready(namespace, ES, "rendered")

    secret = eso.core.read_namespaced_secret("rendered", namespace)
    data = {key: base64.b64decode(value) for key, value in secret.data.items()}
    assert data == {  # mergePolicy Replace: only what the template renders
        ".dockerconfigjson": b'{"auths":{"registry.example":{"username":"app","password":"s3cr\\u003cet"}}}',
        "url": b"postgres://app:s3cr<et@db.internal:5432/app",
    }
    assert json.loads(data[".dockerconfigjson"])["auths"]["registry.example"]["password"] == "s3cr<et"
    assert secret.type == "kubernetes.io/dockerconfigjson"
    assert secret.metadata.labels["app"] == "APP"  # template metadata is rendered too
    assert "from-es" not in secret.metadata.labels  # with a template, the ExternalSecret's are not copied
    assert secret.metadata.annotations["owner"] == "platform"
    assert secret.metadata.annotations["reconcile.external-secrets.io/data-hash"] == gohash.data_hash(data)


def test_a_rotated_value_is_rendered_again_and_drift_is_repaired(
    eso: EsoStack, namespace: str, vault_path: str
) -> None:
    write(eso, vault_path, user="app", password="first")
    template = {"data": {"url": "https://{{ .user }}:{{ .password }}@api.example"}}
    eso.create(namespace, templated("rotating", vault_path, template))
    eso.wait_ready(namespace, ES, "rotating")
    assert eso.secret_data(namespace, "rotating") == {"url": b"https://app:first@api.example"}

    write(eso, vault_path, user="app", password="second")
    eso.force_sync(namespace, ES, "rotating")
    wait_for(
        lambda: eso.secret_data(namespace, "rotating") == {"url": b"https://app:second@api.example"},
        what="the re-rendered Secret",
    )

    eso.core.patch_namespaced_secret(
        "rotating", namespace, {"data": {"url": base64.b64encode(b"tampered").decode()}}
    )
    wait_for(
        lambda: eso.secret_data(namespace, "rotating") == {"url": b"https://app:second@api.example"},
        what="the repaired Secret (its data no longer matched the data hash)",
    )


def test_merge_policy_merge_keeps_the_provider_keys(eso: EsoStack, namespace: str, vault_path: str) -> None:
    write(eso, vault_path, user="app", password="pw")
    template = {"mergePolicy": "Merge", "data": {"basic": "{{ .user }}:{{ .password | b64enc }}"}}
    eso.create(namespace, templated("merged", vault_path, template))
    eso.wait_ready(namespace, ES, "merged")
    assert eso.secret_data(namespace, "merged") == {"user": b"app", "password": b"pw", "basic": b"app:cHc="}


def test_a_template_with_only_metadata_keeps_the_data(eso: EsoStack, namespace: str, vault_path: str) -> None:
    write(eso, vault_path, token="t")
    template = {"type": "example.com/token", "metadata": {"labels": {"kind": "token"}}}
    eso.create(namespace, templated("metadata-only", vault_path, template))
    eso.wait_ready(namespace, ES, "metadata-only")
    secret = eso.core.read_namespaced_secret("metadata-only", namespace)
    assert (secret.type, secret.metadata.labels["kind"]) == ("example.com/token", "token")
    assert eso.secret_data(namespace, "metadata-only") == {"token": b"t"}


def test_template_from_a_configmap_a_secret_and_a_literal(
    eso: EsoStack, namespace: str, vault_path: str
) -> None:
    write(eso, vault_path, user="app", password="pw", host="db")
    eso.core.create_namespaced_config_map(
        namespace,
        {
            "metadata": {"name": "app-templates"},
            "data": {
                "config.yaml": "user: {{ .user }}\nhost: {{ .host }}\n",
                "pairs": "port: 5432\nhost-upper: {{ .host | upper }}\n",
                "url": "overridden by template.data",
            },
        },
    )
    eso.core.create_namespaced_secret(
        namespace, {"metadata": {"name": "tpl-secret"}, "stringData": {"dsn": "{{ .user }}@{{ .host }}"}}
    )
    template = {
        "templateFrom": [
            {
                "configMap": {
                    "name": "app-templates",
                    "items": [
                        {"key": "config.yaml"},
                        {"key": "pairs", "templateAs": "KeysAndValues"},
                        {"key": "url"},
                    ],
                }
            },
            {"secret": {"name": "tpl-secret", "items": [{"key": "dsn"}]}},
            {"literal": "note: '{{ .user }} on {{ .host }}'", "target": "Annotations"},
        ],
        "data": {"url": "postgres://{{ .user }}:{{ .password }}@{{ .host }}"},
    }
    eso.create(namespace, templated("from-sources", vault_path, template))
    eso.wait_ready(namespace, ES, "from-sources")

    assert eso.secret_data(namespace, "from-sources") == {
        "config.yaml": b"user: app\nhost: db\n",
        "port": b"5432",  # a YAML number into map[string]string: sigs.k8s.io/yaml makes it a string
        "host-upper": b"DB",
        "url": b"postgres://app:pw@db",  # template.data wins over templateFrom
        "dsn": b"app@db",
    }
    annotations = eso.core.read_namespaced_secret("from-sources", namespace).metadata.annotations
    assert annotations["note"] == "app on db"


def test_a_missing_configmap_fails_the_sync_and_is_retried(
    eso: EsoStack, namespace: str, vault_path: str
) -> None:
    write(eso, vault_path, user="app")
    template = {"templateFrom": [{"configMap": {"name": "later", "items": [{"key": "greeting"}]}}]}
    eso.create(namespace, templated("waits", vault_path, template))
    message = 'could not apply template: error fetching templateFrom data: configmaps "later" not found'
    wait_for(lambda: failed_with(eso, namespace, "waits", message), what="the template error")
    assert eso.condition(namespace, ES, "waits")["message"] == "could not update secret"
    assert eso.secret_data(namespace, "waits") is None

    # ESO does not watch the ConfigMap: the backoff retry picks it up
    eso.core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "later"}, "data": {"greeting": "hello {{ .user }}"}}
    )
    eso.wait_ready(namespace, ES, "waits", timeout=30)
    assert eso.secret_data(namespace, "waits") == {"greeting": b"hello app"}


def test_a_template_error_names_the_key_and_keeps_the_secret(
    eso: EsoStack, namespace: str, vault_path: str
) -> None:
    write(eso, vault_path, user="app")
    eso.create(namespace, templated("kept", vault_path, {"data": {"who": "{{ .user }}"}}))
    eso.wait_ready(namespace, ES, "kept")

    eso.custom.patch_namespaced_custom_object(
        "external-secrets.io",
        "v1",
        namespace,
        "externalsecrets",
        "kept",
        {"spec": {"target": {"template": {"data": {"who": "{{ .missing }}"}}}}},
    )
    message = (
        "unable to mutate secret kept: could not apply template: could not execute template: "
        "could not execute template: unable to execute template at key who: unable to execute template "
        'at key who: template: who:1:3: executing "who" at <.missing>: map has no entry for key "missing"'
    )
    wait_for(lambda: failed_with(eso, namespace, "kept", message), what="the template error")
    assert eso.secret_data(namespace, "kept") == {"who": b"app"}  # the Secret is not touched


def test_a_function_the_sandbox_does_not_emulate_is_refused_by_name(
    eso: EsoStack, namespace: str, vault_path: str
) -> None:
    write(eso, vault_path, password="pw")
    eso.create(namespace, templated("digest", vault_path, {"data": {"sum": "{{ .password | sha256sum }}"}}))
    message = (
        "could not apply template: could not execute template: could not execute template: unable to execute "
        'template at key sum: unable to parse template at key sum: template: sum:1: function "sha256sum" '
        "is not emulated by the sandbox's ESO"
    )
    wait_for(lambda: failed_with(eso, namespace, "digest", message), what="the refusal")
    assert eso.secret_data(namespace, "digest") is None


def test_a_privileged_template_is_refused(eso: EsoStack, namespace: str, vault_path: str) -> None:
    """``ValidateSecretTemplate``: no long-lived service-account token through a template."""
    write(eso, vault_path, token="t")
    template = {
        "type": "kubernetes.io/service-account-token",
        "metadata": {"annotations": {"kubernetes.io/service-account.name": "default"}},
    }
    eso.create(namespace, templated("privileged", vault_path, template))
    message = (
        'could not apply template: template.type="kubernetes.io/service-account-token" with annotation '
        '"kubernetes.io/service-account.name" is not allowed'
    )
    wait_for(lambda: failed_with(eso, namespace, "privileged", message), what="the refusal")
