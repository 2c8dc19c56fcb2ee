"""Go duration strings (``1h``, ``15m``, ``1h30m``, ``1.5s``, ``300ms``), as ESO and Argo CD read them.

``refreshInterval: 1h`` in an ExternalSecret and ``backoff.duration: 10s`` in an
Application are parsed by Go's ``time.ParseDuration``; the emulators must read
them the same way, including ``0`` and compound values.
"""

from __future__ import annotations

import re

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Seconds in a Go duration; ``ValueError`` naming the text when it is not one."""
    value = text.strip()
    sign = -1.0 if value.startswith("-") else 1.0
    body = value.lstrip("+-")
    if body == "0":
        return 0.0
    position, total = 0, 0.0
    while position < len(body):
        match = _PART.match(body, position)
        if match is None:
            raise ValueError(f"invalid duration {text!r}")
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if not body:
        raise ValueError(f"invalid duration {text!r}")
    return sign * total
