"""``vaultflow <command> --help`` names what each option takes: a metavar for a value, none for a flag."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from vaultflow.cli import app


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command path of the CLI (typer vendors click: its group class is typer's own)."""
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


COMMANDS = list(_commands(typer.main.get_command(app)))


def _help(path: tuple[str, ...], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("COLUMNS", "200")  # one option per line, whatever the real terminal
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    return result.output


def _option_line(help_text: str, option: str) -> str:
    (line,) = [line for line in help_text.splitlines() if f"{option} " in line or line.endswith(option)]
    return line


def test_a_value_option_shows_its_metavar_and_a_flag_shows_none(monkeypatch: pytest.MonkeyPatch) -> None:
    shown = _help(("run",), monkeypatch)
    assert "<path>" in _option_line(shown, "--run-dir")
    assert "KEY=VALUE" in _option_line(shown, "--parameter")
    quiet = _option_line(shown, "--quiet")
    assert "<" not in quiet and "No live progress tree" in quiet


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "vaultflow")
def test_no_flag_of_any_command_shows_a_type(path: tuple[str, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    shown = _help(path, monkeypatch)
    assert "<bool>" not in shown
    assert "Show this message and exit." in _option_line(shown, "--help")
