"""The container entry of every step: Hera's runner, and a failed step's reason as its node message.

In a pod, ``python -m vaultflow.workflows.entry -e module:function <inputs file>``
runs Hera's runner module (``hera.workflows.runner``) with the same arguments,
so a step is called, converted and its result printed exactly as Hera does it.
What the entry adds is how a failure is reported:

* a :class:`~vaultflow.base.errors.VaultflowError` (an expected failure, whose
  message says what and where and carries no secret) is written to stderr as
  one line, ``error: <message>``, without a traceback;
* any other exception keeps its traceback on stderr: it is a bug to look at;
* either way the one-line reason goes to the container's termination message
  file and the process exits 1. Kubernetes reads that file
  (``terminationMessagePath``, by default ``/dev/termination-log``, created
  writable for any user by the kubelet: ``makeMounts`` in
  ``pkg/kubelet/kuberuntime/kuberuntime_container.go``) into the container's
  terminated state, and Argo's controller appends it to the node's message:
  ``main: Error (exit code 1): <message>`` (``inferFailedReason`` in
  ``workflow/controller/operator.go``). For an unexpected exception the reason
  names only its type: its text may hold anything, the log has the rest.

The local runner calls :func:`report_failure` with a file of each attempt in
place of ``/dev/termination-log`` and builds the node message the same way, so
a failed step reads the same on the terminal, in ``argo get`` and in the UI.
"""

from __future__ import annotations

import contextlib
import os
import runpy
import sys
import traceback
from pathlib import Path

from vaultflow.base.errors import VaultflowError

MODULE = "vaultflow.workflows.entry"
HERA_RUNNER_MODULE = "hera.workflows.runner"
TERMINATION_LOG = Path("/dev/termination-log")
# A pod that sets another terminationMessagePath says so here (tests do too).
TERMINATION_LOG_ENV = "VAULTFLOW_TERMINATION_LOG"
MAX_MESSAGE_BYTES = 4096  # what the kubelet reads of the file


def failure_reason(error: BaseException) -> str:
    """The one-line reason of a failed step: the message of an expected error, else the type only."""
    if isinstance(error, VaultflowError):
        return str(error)
    return f"unexpected {type(error).__name__} (the traceback is in the step's log)"


def report_failure(error: BaseException, termination_log: Path) -> int:
    """Write the failure to stderr and its reason to ``termination_log``; return the exit code (1)."""
    if isinstance(error, VaultflowError):
        print(f"error: {error}", file=sys.stderr)
    else:
        traceback.print_exception(error, file=sys.stderr)
    with contextlib.suppress(OSError):  # not in a pod, or no termination message file: stderr has it all
        termination_log.write_text(failure_reason(error), encoding="utf-8")
    return 1


def read_termination_message(termination_log: Path) -> str:
    """What Kubernetes would report from the file: at most its first 4096 bytes, stripped."""
    try:
        data = termination_log.read_bytes()[:MAX_MESSAGE_BYTES]
    except OSError:
        return ""
    return data.decode("utf-8", errors="replace").strip()


def main() -> None:
    """Run Hera's runner as ``python -m hera.workflows.runner`` would, reporting a failure as above."""
    termination_log = Path(os.environ.get(TERMINATION_LOG_ENV) or TERMINATION_LOG)
    try:
        runpy.run_module(HERA_RUNNER_MODULE, run_name="__main__", alter_sys=True)
    except Exception as error:
        sys.exit(report_failure(error, termination_log))


if __name__ == "__main__":
    main()
