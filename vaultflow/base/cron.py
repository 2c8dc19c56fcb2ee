"""Cron schedules as Argo Workflows accepts them.

Argo validates a CronWorkflow's schedules with ``cron.ParseStandard`` of
github.com/robfig/cron/v3 (workflow/validate/validate.go, ValidateCronWorkflow):
an optional ``CRON_TZ=Zone`` (or ``TZ=Zone``) prefix, then either a descriptor
(``@hourly`` ... ``@yearly``, ``@every <Go duration>``) or exactly five fields
(minute hour day-of-month month day-of-week) made of ``*``, ``?``, numbers or
names, ranges ``a-b``, steps ``/n`` and lists ``,``. Six-field (seconds) and
seven-field expressions, ``L``, ``W`` and ``#``, which ``croniter`` accepts, are
refused by Argo and so refused here. The catalog and the pipeline DSL both use
this one validator.
"""

from __future__ import annotations

import functools
import zoneinfo
from dataclasses import dataclass
from datetime import datetime, timedelta

from vaultflow.base.durations import parse_go_duration

DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # names[i] stands for low + i


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day-of-month", 1, 31),
    _Field(
        "month", 1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
    ),
    _Field("day-of-week", 0, 6, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)


@functools.lru_cache(maxsize=1024)
def validate_cron(schedule: str) -> str:
    """``schedule`` itself when Argo accepts it; ``ValueError`` saying what is wrong otherwise.

    Cached: a catalog repeats a handful of schedules thousands of times.
    """
    body = schedule.strip()
    if body.startswith(("CRON_TZ=", "TZ=")):
        zone, _, body = body.partition(" ")
        _check_zone(schedule, zone.split("=", 1)[1])
        body = body.strip()
    if body.startswith("@"):
        _check_descriptor(schedule, body)
        return schedule
    fields = body.split()
    if len(fields) != len(_FIELDS):
        raise ValueError(
            f"{schedule!r} has {len(fields)} fields: Argo wants 5 "
            f"(minute hour day-of-month month day-of-week) or a descriptor such as @hourly"
        )
    for text, field in zip(fields, _FIELDS, strict=True):
        for part in text.split(","):
            _check_part(schedule, part, field)
    return schedule


def _check_zone(schedule: str, zone: str) -> None:
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{schedule!r}: unknown time zone {zone!r}") from None


def _check_descriptor(schedule: str, body: str) -> None:
    if body.startswith("@every "):
        try:
            parse_go_duration(body.removeprefix("@every ").strip())
        except ValueError as error:
            raise ValueError(f"{schedule!r}: @every {error}") from None
        return
    if body not in DESCRIPTORS:
        raise ValueError(
            f"{schedule!r} is not a known descriptor ({', '.join(DESCRIPTORS)}, @every <duration>)"
        )


def _check_part(schedule: str, part: str, field: _Field) -> None:
    where = f"{schedule!r}: {field.name} {part!r}"
    span, slash, step = part.partition("/")
    if slash and (not step.isdigit() or int(step) == 0):
        raise ValueError(f"{where}: the step must be a positive number")
    if span in ("*", "?"):
        return
    bounds = span.split("-")
    if len(bounds) > 2:
        raise ValueError(f"{where}: too many hyphens")
    start = _value(where, bounds[0], field)
    end = _value(where, bounds[1], field) if len(bounds) == 2 else start
    if start < field.low or end > field.high:
        raise ValueError(f"{where}: outside {field.low}-{field.high}")
    if start > end:
        raise ValueError(f"{where}: the range starts after it ends")


def _value(where: str, text: str, field: _Field) -> int:
    lowered = text.lower()
    if lowered in field.names:
        return field.low + field.names.index(lowered)
    if not text.isdigit():
        raise ValueError(f"{where}: {text!r} is not a number" + (" or a name" if field.names else ""))
    return int(text)


def previous_run(schedule: str, now: datetime, default_zone: str = "UTC") -> datetime:
    """When ``schedule`` last fired at or before ``now`` (an aware datetime), in the schedule's zone.

    The zone is the schedule's ``CRON_TZ=``/``TZ=`` prefix, else ``default_zone``
    (a CronWorkflow's ``timezone``). ``@every D`` fires every D since an origin
    only the controller knows, so its last run is taken as ``now - D``: a secret
    is due when D has passed since it last rotated.
    """
    from croniter import croniter  # lazily: only rotation planning needs it

    body, zone = _body_and_zone(schedule, default_zone)
    if body.startswith("@every "):
        return now - timedelta(seconds=parse_go_duration(body.removeprefix("@every ").strip()))
    local = now.astimezone(zoneinfo.ZoneInfo(zone))
    fired: datetime = croniter(body, local).get_prev(datetime)
    # croniter stops one step short when ``now`` is exactly a firing time: that firing counts.
    return local if croniter.match(body, local) and local.second == 0 and local.microsecond == 0 else fired


def next_run(schedule: str, after: datetime, default_zone: str = "UTC") -> datetime:
    """When ``schedule`` first fires strictly after ``after`` (an aware datetime).

    The zone rule is ``previous_run``'s; ``@every D`` is taken as ``after + D``, the
    same origin ``previous_run`` assumes (the last rotation).
    """
    from croniter import croniter  # lazily: only rotation planning and the exporter need it

    body, zone = _body_and_zone(schedule, default_zone)
    if body.startswith("@every "):
        return after + timedelta(seconds=parse_go_duration(body.removeprefix("@every ").strip()))
    fired: datetime = croniter(body, after.astimezone(zoneinfo.ZoneInfo(zone))).get_next(datetime)
    return fired


def _body_and_zone(schedule: str, default_zone: str) -> tuple[str, str]:
    """The schedule without its ``CRON_TZ=``/``TZ=`` prefix, and the zone it names (else the default)."""
    body, zone = validate_cron(schedule).strip(), default_zone
    if body.startswith(("CRON_TZ=", "TZ=")):
        prefix, _, body = body.partition(" ")
        zone, body = prefix.split("=", 1)[1], body.strip()
    return body, zone
