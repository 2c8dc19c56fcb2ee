"""Run the benchmarks: ``python -m bench [NAME ...]`` (``task bench``).

Each module ``bench/bench_<name>.py`` exposes ``run() -> list[Measurement]``.
Results are printed as a table with the ratio to the baseline measured in the
same run; the exit code is 0 even when a target is missed, because machines
differ: the table says so instead.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

from rich.console import Console
from rich.table import Table

import bench
from bench.common import Measurement


def _modules(selected: list[str]) -> list[str]:
    names = sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_"))
    if selected:
        unknown = [s for s in selected if f"bench_{s}" not in names]
        if unknown:
            available = ", ".join(n.removeprefix("bench_") for n in names)
            sys.exit(f"error: unknown benchmark {', '.join(unknown)} (available: {available})")
        names = [f"bench_{s}" for s in selected]
    return names


def _format_seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.2f} ms" if value < 1 else f"{value:.2f} s"


def main(argv: list[str]) -> int:
    console = Console(width=max(Console().width, 150))  # keep the table's columns readable
    table = Table(title="vaultflow benchmarks (this machine, this run)")
    for column in ("benchmark", "time", "baseline", "baseline time", "ratio", "target", "met"):
        table.add_column(column)
    for module_name in _modules(argv):
        console.print(f"[dim]running {module_name.removeprefix('bench_')} ...[/dim]")
        module = importlib.import_module(f"bench.{module_name}")
        results: list[Measurement] = module.run()
        for m in results:
            target = " ".join(
                part
                for part in (
                    f"<= {_format_seconds(m.target_seconds)}" if m.target_seconds is not None else "",
                    f"ratio <= {m.target_ratio:g}" if m.target_ratio is not None else "",
                )
                if part
            )
            met = {True: "[green]yes[/green]", False: "[red]no[/red]", None: "-"}[m.meets_target]
            table.add_row(
                m.name + (f" [dim]({m.note})[/dim]" if m.note else ""),
                _format_seconds(m.seconds),
                m.baseline_name or "-",
                _format_seconds(m.baseline_seconds),
                f"{m.ratio:.2f}x" if m.ratio is not None else "-",
                target or "-",
                met,
            )
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
