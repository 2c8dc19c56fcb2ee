"""``vaultflow-selftest``: a diamond of no-op steps that proves a deployment can run pipelines.

Submit it after installing Argo Workflows and the templates: it exercises the
steps image, the Hera runner, the default service account and output passing
between tasks, and touches nothing else.
"""

from __future__ import annotations

from vaultflow.steps import noop
from vaultflow.workflows.dsl import NO_RETRY, Param, Pipeline, Step, param, result

PIPELINES = [
    Pipeline(
        name="vaultflow-selftest",
        description="Diamond of no-op steps: checks the steps image, the runner and output passing.",
        params=[Param("message", default="hello", description="Text passed through the diamond.")],
        default_retry=NO_RETRY,
        timeout="10m",
        steps=[
            Step("start", noop.echo, args={"message": param("message")}),
            Step("left", noop.echo, args={"message": result("start")}, depends="start"),
            Step("right", noop.echo, args={"message": result("start")}, depends="start"),
            Step(
                "join",
                noop.join,
                args={"left": result("left"), "right": result("right")},
                depends="left && right",
            ),
        ],
    )
]
