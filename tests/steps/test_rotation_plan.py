"""Planning a rotation: named or due secrets, every refusal before anything is written."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import UnsealedVault
from vaultflow.base.errors import InputError
from vaultflow.base.times import parse_time
from vaultflow.gitops.catalog import parse_catalog
from vaultflow.gitops.catalog.model import Catalog
from vaultflow.gitops.policies import rotation_policies
from vaultflow.steps.rotation.plan import plan_rotation
from vaultflow.steps.rotation.write import write_rotation
from vaultflow.steps.vault.api import VaultApi

CATALOG = """\
apiVersion: vaultflow.io/v1alpha1
kind: SecretsCatalog
vault: {{address: https://vault.example.com:8200}}
gitops: {{repoUrl: https://git.example.com/gitops.git}}
clusters: [{{name: one, kubeContext: one, argocd: {{server: https://kubernetes.default.svc}}}}]
secrets:
  - path: {prefix}/hourly
    keys: [{{name: token, generator: {{type: random}}}}]
    rotation: {{schedule: "@hourly"}}
    consumers: [{{cluster: one, namespace: apps, secretName: hourly}}]
  - path: {prefix}/yearly
    keys: [{{name: token, generator: {{type: random}}}}]
    rotation: {{schedule: "@yearly"}}
  - path: {prefix}/never
    keys: [{{name: token, generator: {{type: random}}}}]
  - path: {prefix}/unseeded
    keys: [{{name: token, generator: {{type: random}}}}]
    rotation: {{schedule: "@daily"}}
"""


@pytest.fixture
def setup(unsealed_vault: UnsealedVault) -> tuple[VaultApi, Catalog, str]:
    prefix = f"plan-test-{uuid.uuid4().hex[:8]}"
    catalog = parse_catalog(CATALOG.format(prefix=prefix), Path("catalog.yaml")).catalog
    root = unsealed_vault.client()
    hcl = "\n".join(policy.hcl for policy in rotation_policies(catalog))  # the role's: base and shards
    root.sys.create_or_update_policy(name=f"{prefix}-rotation", policy=hcl)
    for name in ("hourly", "yearly", "never"):
        root.secrets.kv.v2.create_or_update_secret(
            f"{prefix}/{name}", secret={"token": "t"}, mount_point="secret"
        )
    token = root.auth.token.create(policies=[f"{prefix}-rotation"], no_default_policy=True, ttl="10m")
    return VaultApi(unsealed_vault.address, token=token["auth"]["client_token"]), catalog, prefix


def test_named_paths_rotate_whether_due_or_not(setup: tuple[VaultApi, Catalog, str]) -> None:
    vault, catalog, prefix = setup
    plan = plan_rotation(
        vault, catalog, paths=[f"{prefix}/yearly"], all_due=False, run_id="r", now=datetime.now(UTC)
    )
    assert [(s.path, s.why, s.version) for s in plan.secrets] == [(f"{prefix}/yearly", "requested", 1)]


def test_all_due_takes_what_the_schedule_says_should_have_run(setup: tuple[VaultApi, Catalog, str]) -> None:
    vault, catalog, prefix = setup
    catalog.secrets[:] = [s for s in catalog.secrets if not s.path.endswith("unseeded")]
    two_hours_on = datetime.now(UTC) + timedelta(hours=2)
    plan = plan_rotation(vault, catalog, paths=[], all_due=True, run_id="r", now=two_hours_on)
    assert [s.path for s in plan.secrets] == [f"{prefix}/hourly"]  # created 2 h ago: an hourly run is owed
    if two_hours_on.year == datetime.now(UTC).year:  # else @yearly fired in between, and it is due too
        assert plan.not_due == [f"{prefix}/yearly"]
    # Once rotated, it is no longer due until the schedule fires again.
    write_rotation(vault, "secret", catalog.secrets[0], "r", now=two_hours_on)
    again = plan_rotation(vault, catalog, paths=[], all_due=True, run_id="r2", now=two_hours_on)
    assert f"{prefix}/hourly" in again.not_due
    later = plan_rotation(
        vault, catalog, paths=[], all_due=True, run_id="r3", now=two_hours_on + timedelta(hours=1)
    )
    assert [s.path for s in later.secrets if s.why == "due"][:1] == [f"{prefix}/hourly"]
    assert later.secrets[0].last_rotated_at is not None


def test_every_refusal_is_listed_before_anything_is_read_or_written(
    setup: tuple[VaultApi, Catalog, str],
) -> None:
    vault, catalog, prefix = setup
    with pytest.raises(InputError) as refused:
        plan_rotation(
            vault,
            catalog,
            paths=[f"{prefix}/never", f"{prefix}/nope", f"{prefix}/hourly"],
            all_due=False,
            run_id="r",
            now=datetime.now(UTC),
        )
    message = str(refused.value)
    assert f"{prefix}/never: has no rotation in the catalog" in message
    assert f"{prefix}/nope: not in the catalog" in message
    assert f"{prefix}/hourly" not in message


def test_a_secret_missing_from_vault_is_refused(setup: tuple[VaultApi, Catalog, str]) -> None:
    vault, catalog, prefix = setup
    with pytest.raises(InputError, match=rf"{prefix}/unseeded: does not exist in Vault"):
        plan_rotation(
            vault, catalog, paths=[f"{prefix}/unseeded"], all_due=False, run_id="r", now=datetime.now(UTC)
        )


def test_a_consumer_eso_never_refreshes_is_refused(setup: tuple[VaultApi, Catalog, str]) -> None:
    """The catalog refuses it at load; a catalog object changed after loading is refused by the plan too."""
    vault, catalog, prefix = setup
    hourly = catalog.secrets[0]
    consumer = hourly.consumers[0].model_copy(update={"refresh_policy": "CreatedOnce"})
    catalog = catalog.model_copy(
        update={"secrets": [hourly.model_copy(update={"consumers": [consumer]}), *catalog.secrets[1:]]}
    )
    with pytest.raises(
        InputError, match="consumer one/apps/hourly cannot pick up a new value: refreshPolicy CreatedOnce"
    ):
        plan_rotation(
            vault, catalog, paths=[f"{prefix}/hourly"], all_due=False, run_id="r", now=datetime.now(UTC)
        )


def test_nothing_asked_is_bad_input(setup: tuple[VaultApi, Catalog, str]) -> None:
    vault, catalog, _ = setup
    with pytest.raises(InputError, match="--all-due"):
        plan_rotation(vault, catalog, paths=[], all_due=False, run_id="r", now=datetime.now(UTC))


def test_vault_times_parse_with_nanoseconds_and_zones() -> None:
    assert parse_time("2026-12-01T03:00:00.123456789Z") == datetime(2026, 12, 1, 3, 0, 0, 123456, tzinfo=UTC)
    assert parse_time("2026-12-01T05:00:00+02:00") == datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="not an RFC 3339 time"):
        parse_time("yesterday")
