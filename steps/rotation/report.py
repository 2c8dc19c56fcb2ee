"""The rotation report: per secret and per target, what happened and how long it took.

Its JSON shape is documented in docs/rotation.md and is a contract: tools read
it. It holds references and timings only: no value, and no digest of one (a
human-set value can be brute-forced from an unkeyed hash).
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from vaultflow.steps.rotation.restart import WorkloadResult
from vaultflow.steps.rotation.verify import TargetResult

Outcome = Literal["Rotated", "RolledBack", "Failed", "Skipped"]


class _Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class ReportTarget(_Camel):
    kind: Literal["KubernetesSecret", "AwsSecretsManager", "GcpSecretManager", "AzureKeyVault"]
    cluster: str | None
    namespace: str | None
    name: str
    cloud: str | None
    source: Literal["catalog", "discovered"]
    phase: Literal["Verified", "Failed", "TimedOut"]
    seconds: float | None
    indirect: bool
    message: str

    @classmethod
    def of(cls, result: TargetResult) -> ReportTarget:
        return cls.model_validate(result.model_dump())


class ReportRestart(_Camel):
    """A workload restarted once every target of its secret was verified."""

    cluster: str
    namespace: str
    kind: Literal["Deployment", "StatefulSet", "DaemonSet"]
    name: str
    phase: Literal["Restarted", "Failed", "TimedOut"]
    message: str

    @classmethod
    def of(cls, result: WorkloadResult) -> ReportRestart:
        return cls.model_validate(result.model_dump())


class ReportStep(_Camel):
    """One step of a credential rotation (stage, set, test, finish, or restore after a failed test)."""

    name: Literal["stage", "set", "test", "finish", "restore"]
    phase: Literal["Done", "Resumed", "Failed"]  # Resumed: done by an earlier run, found in Vault
    seconds: float
    message: str = ""


class ReportSecret(_Camel):
    path: str
    previous_version: int
    new_version: int | None
    outcome: Outcome
    targets: list[ReportTarget]
    message: str = ""  # why it failed or was skipped, in one line ("" when Rotated)
    restarts: list[ReportRestart] = []
    rollback_version: int | None = None  # the version that restored the previous data
    rollback_targets: list[ReportTarget] = []  # each target verified again, holding the previous data
    steps: list[ReportStep] = []  # a credential rotation's stage/set/test/finish (rotation.credential)


class RotationReport(_Camel):
    run_id: str
    secrets: list[ReportSecret]

    def failed(self) -> bool:
        """True when any secret did not end Rotated or Skipped (a rollback is still a failed rotation)."""
        return any(secret.outcome in ("Failed", "RolledBack") for secret in self.secrets)

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json", by_alias=True), indent=2, sort_keys=False) + "\n"

    def to_markdown(self) -> str:
        lines = [f"# Rotation {self.run_id}", ""]
        for secret in self.secrets:
            versions = (
                f"v{secret.previous_version} → v{secret.new_version}" if secret.new_version else "not written"
            )
            lines += [f"## `{secret.path}`: {secret.outcome} ({versions})", ""]
            if secret.message:
                lines += [_escape(secret.message), ""]
            if secret.steps:
                lines += ["| step | phase | seconds | note |", "| --- | --- | --- | --- |"]
                lines += [
                    f"| {s.name} | {s.phase} | {s.seconds:.3f} | {_escape(s.message)} |" for s in secret.steps
                ]
                lines.append("")
            lines += _markdown_targets(secret.targets) if secret.targets else ["No targets.", ""]
            if secret.rollback_version is not None:
                lines += [f"Rolled back: the previous data written as v{secret.rollback_version}.", ""]
                lines += _markdown_targets(secret.rollback_targets)
            if secret.restarts:
                lines += ["| restarted | where | phase | note |", "| --- | --- | --- | --- |"]
                lines += [
                    f"| {r.kind} `{r.name}` | {r.cluster}/{r.namespace} | {r.phase} | {_escape(r.message)} |"
                    for r in secret.restarts
                ]
                lines.append("")
        return "\n".join(lines)

    def to_table(self) -> object:
        """A rich ``Table`` (returned as object so that rich is imported only by who prints it)."""
        from rich.table import Table

        table = Table(title=f"rotation {self.run_id}")
        for column in ("secret", "outcome", "target", "where", "phase", "seconds", "note"):
            table.add_column(column, overflow="fold")
        for secret in self.secrets:
            rows: list[tuple[str, ...]] = [
                (f"step {s.name}", "", s.phase, f"{s.seconds:.3f}", s.message) for s in secret.steps
            ]
            rows += [_row(target) for target in secret.targets]
            if secret.rollback_version is not None:
                rows += [_row(t, f"rollback v{secret.rollback_version}: ") for t in secret.rollback_targets]
            rows += [
                (f"{r.kind} {r.name}", f"{r.cluster}/{r.namespace}", r.phase, "-", f"restart: {r.message}")
                for r in secret.restarts
            ]
            for index, row in enumerate(rows or [("-", "", "", "", secret.message)]):
                first = index == 0
                table.add_row(secret.path if first else "", secret.outcome if first else "", *row)
        return table


def _markdown_targets(targets: list[ReportTarget]) -> list[str]:
    lines = ["| target | where | phase | seconds | note |", "| --- | --- | --- | --- | --- |"]
    lines += [
        f"| {target.kind} `{target.name}` | {_where(target)} | {target.phase} | {_seconds(target)} "
        f"| {_escape(_note(target))} |"
        for target in targets
    ]
    return [*lines, ""]


def _row(target: ReportTarget, prefix: str = "") -> tuple[str, str, str, str, str]:
    return (
        f"{prefix}{target.kind} {target.name}",
        _where(target),
        target.phase,
        _seconds(target),
        _note(target),
    )


def _where(target: ReportTarget) -> str:
    if target.cloud:
        return f"{target.cloud} (pushed from {target.cluster}/{target.namespace})"
    return f"{target.cluster}/{target.namespace}"


def _seconds(target: ReportTarget) -> str:
    return "-" if target.seconds is None else f"{target.seconds:.1f}"


def _note(target: ReportTarget) -> str:
    notes = [target.source] + (["indirect"] if target.indirect else [])
    if target.phase != "Verified":
        notes.append(target.message)
    return ", ".join(notes)


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
