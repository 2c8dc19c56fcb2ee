"""Times as Vault and Kubernetes write them (RFC 3339), read into aware datetimes."""

from __future__ import annotations

import re
from datetime import datetime

_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)")


def parse_time(text: str) -> datetime:
    """An RFC 3339 time as Vault writes it (nanoseconds, ``Z``), which ``fromisoformat`` cannot read."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not an RFC 3339 time")
    seconds, fraction, zone = match.groups()
    return datetime.fromisoformat(seconds + (fraction or "")[:7] + ("+00:00" if zone == "Z" else zone))
