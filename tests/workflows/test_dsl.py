"""Registering a pipeline refuses mistakes before anything runs, each named by pipeline and step.

Declarations are plain data: the tests build them through ``conftest.pipeline``,
which checks them exactly as the registry does.
"""

from __future__ import annotations

import pytest

from tests.workflows import broken_pipelines, dsl_steps, sample_steps
from tests.workflows.conftest import RunPipeline, pipeline
from vaultflow.base.errors import InputError
from vaultflow.gitops.crd_schemas import CrdRegistry
from vaultflow.workflows.checks import carries_secret_type
from vaultflow.workflows.compile import workflow_template
from vaultflow.workflows.dsl import Param, Retry, Schedule, SecretMount, Step, param, result
from vaultflow.workflows.registry import Registry, load_registry


@pytest.mark.parametrize(
    "function",
    [dsl_steps.returns_secret, dsl_steps.takes_credentials, dsl_steps.returns_nested_secret],
    ids=lambda f: f.__name__,
)
def test_steps_that_take_or_return_secret_types_are_refused(function: object) -> None:
    args = {"credentials": "{}"} if function is dsl_steps.takes_credentials else {}
    with pytest.raises(InputError, match="secret type; pass a reference"):
        pipeline("secretive", [Step("s", function, args=args)])  # type: ignore[arg-type]


def test_the_secret_type_check_sees_through_containers_and_models() -> None:
    assert carries_secret_type(list[dict[str, dsl_steps.Credentials]])
    assert carries_secret_type(dsl_steps.Credentials | None)
    assert not carries_secret_type(dict[str, list[int]])


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([Step("a", dsl_steps.needs)], "argument 'path' of tests.workflows.dsl_steps:needs is required"),
        ([Step("a", dsl_steps.needs, args={"path": "p", "verison": 2})], "has no parameter 'verison'"),
        ([Step("A_b", dsl_steps.needs, args={"path": "p"})], "must be a DNS label"),
        ([Step("main", dsl_steps.needs, args={"path": "p"})], "'main' is reserved"),
        (
            [Step("a", dsl_steps.needs, args={"path": "p"}), Step("a", dsl_steps.needs, args={"path": "q"})],
            "declared twice",
        ),
        ([Step("a", dsl_steps.needs, args={"path": "p"}, depends="b")], "unknown task 'b'"),
        (
            [
                Step("a", dsl_steps.needs, args={"path": result("b")}),
                Step("b", sample_steps.echo, args={"message": "x"}),
            ],
            "not a dependency",
        ),
        (
            [Step("a", dsl_steps.needs, args={"path": param("missing")})],
            "workflow parameter 'missing' is not declared",
        ),
        (
            [Step("a", dsl_steps.needs, args={"path": "p"}, when="{{workflow.name}} =~ x")],
            "'=~' is not supported",
        ),
        ([Step("a", dsl_steps.needs, args={"path": "p"}, timeout="soon")], "not a duration"),
    ],
)
def test_declaration_mistakes_are_refused_with_their_place(steps: list[Step], message: str) -> None:
    with pytest.raises(InputError) as refused:
        pipeline("mistaken", steps)
    assert message in str(refused.value)


def test_schedules_are_checked() -> None:
    with pytest.raises(InputError, match="minute '99': outside 0-59"):
        pipeline(
            "cron",
            [Step("a", dsl_steps.needs, args={"path": "p"})],
            schedules=[Schedule("nightly", "99 * * * *")],
        )
    with pytest.raises(InputError, match="has 6 fields"):  # croniter takes seconds, Argo does not
        pipeline(
            "cron",
            [Step("a", dsl_steps.needs, args={"path": "p"})],
            schedules=[Schedule("nightly", "0 0 3 * * *")],
        )
    with pytest.raises(InputError, match="argument 'target' is not a parameter"):
        pipeline(
            "cron",
            [Step("a", dsl_steps.needs, args={"path": "p"})],
            schedules=[Schedule("n", "@daily", {"target": "x"})],
        )


def test_a_declaration_is_data_and_the_registry_refuses_it_when_wrong() -> None:
    (broken,) = broken_pipelines.PIPELINES  # importing the module did not refuse anything
    with pytest.raises(InputError) as refused:
        load_registry([broken_pipelines.__name__])
    assert "pipeline 'broken', step 'read':" in str(refused.value)
    assert "has no parameter 'verison'" in str(refused.value)
    with pytest.raises(InputError, match="has no parameter 'verison'"):
        Registry([broken])


def test_registry_refuses_duplicate_names_and_names_what_exists() -> None:
    one = pipeline(
        "one",
        [Step("a", dsl_steps.needs, args={"path": "p"})],
        params=[Param("x", default="1")],
        schedules=[Schedule("nightly", "0 3 * * *", {"x": "2"})],
    )
    registry = Registry([one])
    with pytest.raises(InputError, match="already registered"):
        registry.add(one)
    with pytest.raises(InputError, match=r"unknown workflow template 'two' \(known: one\)"):
        registry.get("two")
    assert registry.has("one-nightly") and registry.pipeline_for("one-nightly") is one
    assert registry.document("one-nightly")["kind"] == "CronWorkflow"


def test_default_retry_applies_unless_a_step_overrides_it() -> None:
    declared = pipeline(
        "retries",
        [
            Step("a", dsl_steps.needs, args={"path": "p"}),
            Step("b", dsl_steps.needs, args={"path": "p"}, retry=Retry(limit=5)),
        ],
        default_retry=Retry(limit=1),
    )
    assert declared.retry_of(declared.step("a")) == Retry(limit=1)
    assert declared.retry_of(declared.step("b")) == Retry(limit=5)


def test_secret_mounts_compile_to_read_only_volumes_and_mistakes_are_refused(
    upstream_crds: CrdRegistry, run_pipeline: RunPipeline
) -> None:
    """A Secret mounted into every step's pod (its name a parameter); the local runner has no pods and
    runs the same pipeline, leaving the mount to the cluster."""
    steps = [Step("a", dsl_steps.needs, args={"path": "p"}), Step("b", dsl_steps.needs, args={"path": "p"})]
    mount = SecretMount(name="creds", secret=param("creds"), path="/var/run/secrets/creds")
    declared = pipeline("mounted", steps, params=[Param("creds", default="my-secret")], secret_mounts=[mount])
    document = workflow_template(declared).to_dict()
    assert upstream_crds.validate(document) == []
    assert document["spec"]["volumes"] == [
        {"name": "creds", "secret": {"secretName": "{{workflow.parameters.creds}}", "defaultMode": 0o440}}
    ]
    scripts = [t["script"] for t in document["spec"]["templates"] if "script" in t]
    assert [s["volumeMounts"] for s in scripts] == [
        [{"name": "creds", "mountPath": "/var/run/secrets/creds", "readOnly": True}]
    ] * 2
    assert run_pipeline(declared).phase == "Succeeded"
    for wrong, message in [
        (SecretMount(name="Creds", secret="s", path="/x"), "the name must be a DNS label"),
        (SecretMount(name="creds", secret="s", path="relative"), "must be absolute"),
        (SecretMount(name="creds", secret="", path="/x"), "needs the Secret's name"),
    ]:
        with pytest.raises(InputError, match=f"pipeline 'mounted', secret mount '{wrong.name}': .*{message}"):
            pipeline("mounted", steps, secret_mounts=[wrong])
    with pytest.raises(InputError, match="declared twice"):
        pipeline(
            "mounted", steps, secret_mounts=[mount, SecretMount(name="other", secret="s", path=mount.path)]
        )
