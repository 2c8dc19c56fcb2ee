"""A pipeline module with a wrong declaration: importing it works, registering it must not."""

from tests.workflows import dsl_steps
from vaultflow.workflows.dsl import NO_RETRY, Pipeline, Step

PIPELINES = [
    Pipeline(
        name="broken",
        description="misspells an argument of its step",
        default_retry=NO_RETRY,
        steps=[Step("read", dsl_steps.needs, args={"path": "p", "verison": 2})],
    )
]
