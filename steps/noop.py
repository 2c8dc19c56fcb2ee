"""The smallest steps there are: they prove the image, the runner and output passing work.

``vaultflow-selftest`` runs them on a cluster (or locally) to check that the
steps image starts, that the Hera runner finds the functions and that outputs
flow from one task to the next. The runner benchmark uses them too.

(No ``from __future__ import annotations`` in step modules: Hera reads the
annotations of step functions at run time to convert their inputs.)
"""


def noop() -> None:
    """Do nothing, successfully."""


def echo(message: str) -> str:
    """Return ``message``: its result is the task's ``outputs.result``."""
    return message


def join(left: str, right: str) -> str:
    """Combine two upstream results, so a diamond shows both branches arrived."""
    return f"{left}+{right}"
