"""Route what a step writes (stdout, stderr, logging) to that step's log file.

Steps run concurrently on threads of one process, so ``sys.stdout`` cannot
simply be swapped per step. Instead, while any local run is active, the
process-wide streams are wrapped once by a router that looks at the writing
thread: a thread running a step writes into that step's :class:`StepSink`,
every other thread writes where it always did. The same goes for ``logging``
records. The terminal therefore only ever shows the runner's own display.

A thread a step starts itself is not a step thread: what it prints goes to the
original streams. Steps that need helper threads should log through
``logging`` from the step thread, or pass the sink on.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class StepSink:
    """One step attempt's output: everything goes to its log, stdout is also kept as the result."""

    def __init__(self, log_path: Path) -> None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("a", encoding="utf-8")
        self._stdout = io.StringIO()
        self._lock = threading.Lock()

    def write_stdout(self, text: str) -> None:
        with self._lock:
            self._stdout.write(text)
            self._log.write(text)

    def write_stderr(self, text: str) -> None:
        with self._lock:
            self._log.write(text)

    def stdout(self) -> str:
        return self._stdout.getvalue()

    def close(self) -> None:
        with self._lock:
            self._log.close()


class _Registry:
    def __init__(self) -> None:
        self.sinks: dict[int, StepSink] = {}
        self.lock = threading.Lock()
        self.users = 0
        self.terminal: tuple[TextIO, TextIO] | None = None
        self.handler: logging.Handler | None = None
        self.raised_loggers: dict[str, int] = {}

    def sink(self) -> StepSink | None:
        return self.sinks.get(threading.get_ident())


_registry = _Registry()


class _RoutedStream(io.TextIOBase):
    """A stand-in for ``sys.stdout`` / ``sys.stderr`` that routes by writing thread."""

    def __init__(self, original: TextIO, *, is_stdout: bool) -> None:
        super().__init__()
        self.original = original
        self._is_stdout = is_stdout

    def write(self, text: str) -> int:
        sink = _registry.sink()
        if sink is None:
            return self.original.write(text)
        if self._is_stdout:
            sink.write_stdout(text)
        else:
            sink.write_stderr(text)
        return len(text)

    def flush(self) -> None:
        if _registry.sink() is None:
            self.original.flush()

    def isatty(self) -> bool:
        return _registry.sink() is None and self.original.isatty()

    def fileno(self) -> int:
        return self.original.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.original, "encoding", "utf-8")

    def writable(self) -> bool:
        return True


class _StepLogHandler(logging.Handler):
    """Writes step threads' records to their sink; forwards others as Python would have."""

    def __init__(self, forward_to_last_resort: bool) -> None:
        super().__init__(logging.NOTSET)
        self.setFormatter(logging.Formatter(_LOG_FORMAT))
        self._forward = forward_to_last_resort

    def emit(self, record: logging.LogRecord) -> None:
        sink = _registry.sinks.get(record.thread or 0)
        if sink is not None:
            sink.write_stderr(self.format(record) + "\n")
        elif self._forward and logging.lastResort is not None and record.levelno >= logging.lastResort.level:
            logging.lastResort.handle(record)


class _NotFromSteps(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return (record.thread or 0) not in _registry.sinks


_not_from_steps = _NotFromSteps()


def _install() -> None:
    root = logging.getLogger()
    other_handlers = list(root.handlers)
    for handler in other_handlers:
        handler.addFilter(_not_from_steps)
    _registry.handler = _StepLogHandler(forward_to_last_resort=not other_handlers)
    root.addHandler(_registry.handler)
    _registry.terminal = (sys.stdout, sys.stderr)
    sys.stdout = _RoutedStream(sys.stdout, is_stdout=True)
    sys.stderr = _RoutedStream(sys.stderr, is_stdout=False)


def _uninstall() -> None:
    root = logging.getLogger()
    assert _registry.terminal is not None
    sys.stdout, sys.stderr = _registry.terminal
    if _registry.handler is not None:
        root.removeHandler(_registry.handler)
        _registry.handler = None
    for handler in root.handlers:
        handler.removeFilter(_not_from_steps)
    _registry.terminal = None


def _raise_to_info(names: tuple[str, ...]) -> list[str]:
    raised = []
    for name in names:
        logger = logging.getLogger(name)
        if name in _registry.raised_loggers:
            _registry.raised_loggers[name] += 1
            raised.append(name)
        elif logger.level == logging.NOTSET and logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
            _registry.raised_loggers[name] = 1
            raised.append(name)
    return raised


def _restore_levels(names: list[str]) -> None:
    for name in names:
        _registry.raised_loggers[name] -= 1
        if _registry.raised_loggers[name] == 0:
            del _registry.raised_loggers[name]
            logging.getLogger(name).setLevel(logging.NOTSET)


@contextmanager
def routing(step_loggers: tuple[str, ...] = ()) -> Iterator[TextIO]:
    """Keep step output off the terminal for the duration of a run.

    Yields the real stdout (for the runner's own display). ``step_loggers``
    are logger names (the steps' top-level packages) whose INFO records should
    reach the step logs even when nothing configured logging.
    """
    with _registry.lock:
        if _registry.users == 0:
            _install()
        _registry.users += 1
        assert _registry.terminal is not None
        terminal = _registry.terminal[0]
        raised = _raise_to_info(step_loggers)
    try:
        yield terminal
    finally:
        with _registry.lock:
            _restore_levels(raised)
            _registry.users -= 1
            if _registry.users == 0:
                _uninstall()


@contextmanager
def step_output(sink: StepSink) -> Iterator[StepSink]:
    """Route the current thread's output into ``sink`` (inside :func:`routing`)."""
    ident = threading.get_ident()
    _registry.sinks[ident] = sink
    try:
        yield sink
    finally:
        _registry.sinks.pop(ident, None)


def current_sink() -> StepSink | None:
    """The sink of the calling thread, for step helpers that start threads of their own."""
    return _registry.sink()
