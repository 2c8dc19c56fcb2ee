"""``vaultflow --help`` start-up time, beside ``python -c pass`` (the interpreter's own floor).

Target (issue 2): under 0.3 s. Heavy SDKs must not be imported to print help.
"""

from __future__ import annotations

import subprocess
import sys

from bench.common import Measurement, best_of


def _command(*args: str) -> float:
    return best_of(7, lambda: subprocess.run([sys.executable, *args], check=True, capture_output=True))


def run() -> list[Measurement]:
    baseline = _command("-c", "pass")
    help_time = _command("-m", "vaultflow", "--help")
    return [
        Measurement(
            "vaultflow --help",
            help_time,
            baseline_name="python -c pass",
            baseline_seconds=baseline,
            target_seconds=0.3,
        )
    ]
