"""Functions with every signature shape the Hera runner converts (for the conformance test)."""

from pathlib import Path
from typing import Annotated, Any

from hera.workflows import Input, Output, Parameter
from pydantic import BaseModel


class Ref(BaseModel):
    path: str
    version: int


class Settings(Input):
    mount: str
    retries: int = 3


class Report(Output):
    commit: Annotated[str, Parameter(name="commit")]
    count: int


def typed(
    *, count: int, ratio: float, flag: bool, name: str, tags: list[str], ref: Ref, note: str | None = None
) -> dict[str, Any]:
    return {
        "count": count * 2,
        "ratio": ratio,
        "flag": not flag,
        "name": name.upper(),
        "tags": tags[::-1],
        "ref": ref,
        "note": note,
    }


def annotated(x: Annotated[int, Parameter(name="the-x")]) -> Annotated[str, Parameter(name="doubled")]:
    return str(x * 2)


def two_outputs(
    a: str,
) -> tuple[Annotated[str, Parameter(name="first")], Annotated[int, Parameter(name="length")]]:
    return a[:1], len(a)


def output_model(sha: str) -> Report:
    return Report(commit=sha, count=2, result="done")


def falsy(n: int) -> int:
    return n * 0


def with_input_model(settings: Settings) -> str:
    return f"{settings.mount}/{settings.retries}"


def writes_output(value: str, out: Annotated[Path, Parameter(name="written", output=True)]) -> None:
    out.write_text(value[::-1])


def prints_and_returns(message: str) -> Ref:
    print("a line before the result")
    return Ref(path=message, version=7)


def loose(**kwargs: str) -> list[str]:
    return sorted(kwargs)
