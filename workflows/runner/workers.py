"""The threads step attempts run on: the local stand-in for the pods Argo starts.

Argo starts one pod per attempt and can kill it at a deadline; Python cannot
stop a thread. So the coordinator decides how many attempts run at once
(``parallelism``, as Argo does) and abandons an attempt at its deadline, and
this pool only makes sure a thread is available for every attempt it starts:
idle threads are reused, and a thread still stuck in an abandoned step is
simply replaced by a new one.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable


class Workers:
    """Daemon worker threads, reused when idle, one started whenever none is idle."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self._threads = 0

    def submit(self, job: Callable[[], None]) -> None:
        """Run ``job`` on an idle thread, or on a new one if none is idle."""
        with self._lock:
            spawn = self._idle == 0
            if spawn:
                self._threads += 1
            else:
                self._idle -= 1
        self._jobs.put(job)
        if spawn:
            threading.Thread(target=self._work, name="vaultflow-step", daemon=True).start()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            job()
            with self._lock:
                self._idle += 1

    def shutdown(self) -> None:
        """Let every thread end once idle (one stuck in an abandoned step ends with the process)."""
        with self._lock:
            count = self._threads
        for _ in range(count):
            self._jobs.put(None)
