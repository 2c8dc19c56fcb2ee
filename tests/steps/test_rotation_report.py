"""The rotation report: the documented JSON shape, Markdown and a table, never a value."""

from __future__ import annotations

import json

from rich.console import Console

from vaultflow.steps.rotation.report import ReportSecret, ReportTarget, RotationReport

TARGET = {
    "kind": "KubernetesSecret",
    "cluster": "prod-eu",
    "namespace": "production",
    "name": "db-secret",
    "cloud": None,
    "source": "catalog",
    "phase": "Verified",
    "seconds": 1.25,
    "indirect": False,
    "message": "holds the new version",
}


def report() -> RotationReport:
    timed_out = ReportTarget.model_validate(
        {
            **TARGET,
            "kind": "AwsSecretsManager",
            "name": "/prod/db",
            "cloud": "aws:eu-west-1",
            "phase": "TimedOut",
            "seconds": None,
            "message": "PushSecret x: not verified within 10s | no current version",
        }
    )
    return RotationReport(
        run_id="rotate-abc",
        secrets=[
            ReportSecret(
                path="prod/database",
                previous_version=3,
                new_version=4,
                outcome="RolledBack",
                targets=[ReportTarget.model_validate(TARGET), timed_out],
            ),
            ReportSecret(
                path="prod/other", previous_version=1, new_version=None, outcome="Skipped", targets=[]
            ),
        ],
    )


def test_the_json_has_the_documented_shape() -> None:
    document = json.loads(report().to_json())
    assert set(document) == {"runId", "secrets"}
    secret = document["secrets"][0]
    # The shape, and what docs/rotation.md adds to it: why, the restarts, the rollback.
    assert set(secret) == {
        "path",
        "previousVersion",
        "newVersion",
        "outcome",
        "targets",
        "message",
        "restarts",
        "rollbackVersion",
        "rollbackTargets",
        "steps",
    }
    assert set(secret["targets"][0]) == {
        "kind",
        "cluster",
        "namespace",
        "name",
        "cloud",
        "source",
        "phase",
        "seconds",
        "indirect",
        "message",
    }
    assert RotationReport.model_validate(document) == report()  # it reads back


def test_a_rollback_is_a_failed_run() -> None:
    assert report().failed()
    rotated = report().model_copy(update={"secrets": [report().secrets[1]]})
    assert not rotated.failed()


def test_markdown_and_table_name_every_target_and_why_it_failed() -> None:
    markdown = report().to_markdown()
    assert "## `prod/database`: RolledBack (v3 → v4)" in markdown
    assert "| AwsSecretsManager `/prod/db` |" in markdown and "\\| no current version" in markdown
    console = Console(width=300, record=True)
    console.print(report().to_table())
    text = console.export_text()
    assert "db-secret" in text and "TimedOut" in text and "1.2" in text
