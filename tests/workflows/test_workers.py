"""The worker pool: an attempt stuck in its step never keeps another attempt from starting."""

from __future__ import annotations

import threading

from vaultflow.workflows.runner.workers import Workers


def test_a_stuck_job_does_not_block_the_next() -> None:
    workers = Workers()
    release = threading.Event()
    done = threading.Event()

    def stuck() -> None:
        release.wait()

    workers.submit(stuck)
    workers.submit(done.set)
    try:
        assert done.wait(timeout=30)  # it ran beside the job that is still stuck
    finally:
        release.set()
        workers.shutdown()
