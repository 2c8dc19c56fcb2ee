"""Pipelines for the CLI and secret-handling tests, loaded through ``VAULTFLOW_PIPELINE_MODULES``."""

from tests.workflows import sample_steps as s
from vaultflow.workflows.dsl import NO_RETRY, Param, Pipeline, Step, param, result

PIPELINES = [
    Pipeline(
        name="sample-ok",
        description="succeeds",
        params=[Param("message", default="hello")],
        default_retry=NO_RETRY,
        steps=[Step("echo", s.echo, args={"message": param("message")})],
    ),
    Pipeline(
        name="sample-fail",
        description="fails",
        default_retry=NO_RETRY,
        steps=[Step("fail", s.fail), Step("after", s.echo, args={"message": "x"}, depends="fail")],
    ),
    Pipeline(
        name="sample-refused",
        description="fails for an expected reason, and so does its exit handler",
        default_retry=NO_RETRY,
        steps=[Step("unseal", s.give_up, args={"reason": "keeper file:///k.json holds no unseal shares"})],
        on_exit=Step("report", s.refuse, args={"reason": "report target is not configured"}),
    ),
    Pipeline(
        name="secret-handling",
        description="generates a secret, stores it, verifies it: only references travel",
        params=[Param("store"), Param("name", default="db-password")],
        default_retry=NO_RETRY,
        steps=[
            Step("generate", s.generate_secret, args={"store": param("store"), "name": param("name")}),
            Step("verify", s.verify_secret, args={"ref": result("generate")}, depends="generate"),
        ],
    ),
    Pipeline(
        name="secret-leaking",
        description="negative control: a broken step that leaks the value",
        params=[Param("store"), Param("name", default="leaked")],
        default_retry=NO_RETRY,
        steps=[
            Step("generate", s.generate_secret, args={"store": param("store"), "name": param("name")}),
            Step("leak", s.leak_secret, args={"ref": result("generate")}, depends="generate"),
        ],
    ),
]
