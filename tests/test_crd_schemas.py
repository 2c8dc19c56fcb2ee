"""The CRD validator catches what a strict API server would."""

from __future__ import annotations

from typing import Any

from vaultflow.gitops.crd_schemas import CrdRegistry


def _external_secret() -> dict[str, Any]:
    return {
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": "db", "namespace": "production"},
        "spec": {
            "secretStoreRef": {"name": "vault-backend", "kind": "ClusterSecretStore"},
            "target": {"name": "db-secret", "creationPolicy": "Owner"},
            "dataFrom": [{"extract": {"key": "secret/data/prod/database"}}],
        },
    }


def test_valid_external_secret_passes(upstream_crds: CrdRegistry) -> None:
    assert upstream_crds.validate(_external_secret()) == []


def test_enum_violation_names_the_field(upstream_crds: CrdRegistry) -> None:
    obj = _external_secret()
    obj["spec"]["target"]["creationPolicy"] = "Sometimes"
    (error,) = upstream_crds.validate(obj)
    assert error.startswith("spec.target.creationPolicy:")


def test_unknown_field_is_rejected(upstream_crds: CrdRegistry) -> None:
    obj = _external_secret()
    obj["spec"]["dataFrom"][0]["extract"]["kee"] = "typo"
    (error,) = upstream_crds.validate(obj)
    assert error.startswith("spec.dataFrom[0].extract:") and "kee" in error


def test_int_or_string_accepts_both(upstream_crds: CrdRegistry) -> None:
    app = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "a"},
        "spec": {
            "project": "default",
            "destination": {"server": "https://kubernetes.default.svc"},
            "source": {"repoURL": "https://example.com/r.git", "path": "p"},
            "syncPolicy": {"retry": {"limit": 3}},
        },
    }
    assert upstream_crds.validate(app) == []


def test_unserved_version_is_rejected(upstream_crds: CrdRegistry) -> None:
    obj = _external_secret()
    obj["apiVersion"] = "external-secrets.io/v1beta1"
    (error,) = upstream_crds.validate(obj)
    assert "no served CRD version" in error
