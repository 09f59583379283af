"""Attendance rules as pure functions: which local day a moment belongs to, and what a sighting becomes.

- A *day* runs from ``day_boundary_hour`` local time to the same hour the next day (a night shift ending at 02:00
  still belongs to the evening it started with the default boundary of 04:00).
- A sighting less than the dedupe window after the person's last event makes no new event.
- The first event of a person's day is a check-in; every later one is a check-out, and the day's last check-out
  is when they left (the daily summary's ``last_out``).
- Absence is counted only on a working day (Monday to Friday) that has ended (:func:`why_no_absence`): today
  someone may still arrive, weekends are nobody's absence.
- A recorded event is never changed afterwards: its kind is final the moment it is committed, so exports taken at
  different times agree on every event they share (a later one only has more rows). Events recorded as "seen" by
  earlier versions (a check-out rewritten when a later one came) stay as they are.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from desktop_app.event_kinds import EventKind

WORKDAYS = frozenset(range(5))  # Monday..Friday: the days an absence is counted
_DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
DEFAULT_DEDUPE = timedelta(minutes=5)
DEFAULT_DAY_BOUNDARY_HOUR = 4
LOCAL = "local"


@dataclass(frozen=True)
class PriorEvent:
    """What the rules need to know about an earlier event of the same person."""

    id: int
    ts: datetime  # aware
    kind: str


@dataclass(frozen=True)
class Decision:
    """What a sighting becomes: ``kind`` None means no event (``reason`` says why)."""

    kind: EventKind | None
    reason: str = ""


def local_zone_name() -> str:
    """The IANA name of this computer's time zone when it can be found, else its abbreviation (e.g. "CET")."""
    tz = os.environ.get("TZ", "").lstrip(":")
    if tz:
        try:
            ZoneInfo(tz)
            return tz
        except (ZoneInfoNotFoundError, ValueError):
            pass
    try:
        link = Path("/etc/localtime").resolve()
        parts = link.parts
        if "zoneinfo" in parts:
            name = "/".join(parts[parts.index("zoneinfo") + 1:])
            ZoneInfo(name)
            return name
    except (OSError, ZoneInfoNotFoundError, ValueError):
        pass
    return datetime.now().astimezone().tzname() or "UTC"


def resolve_zone(name: str) -> tuple[tzinfo, str]:
    """(tzinfo, name to record) for a setting value: an IANA name or "local"."""
    if name and name != LOCAL:
        return ZoneInfo(name), name
    label = local_zone_name()
    try:
        return ZoneInfo(label), label
    except (ZoneInfoNotFoundError, ValueError):
        local = datetime.now().astimezone().tzinfo
        return (local or UTC), label


def day_of(ts: datetime, tz: tzinfo, boundary_hour: int = DEFAULT_DAY_BOUNDARY_HOUR) -> date:
    """The attendance day of an aware moment ``ts``."""
    if ts.tzinfo is None:
        raise ValueError("day_of needs an aware datetime")
    local = ts.astimezone(tz)
    return (local.replace(tzinfo=None) - timedelta(hours=boundary_hour)).date()


def day_start(day: date, tz: tzinfo, boundary_hour: int = DEFAULT_DAY_BOUNDARY_HOUR) -> datetime:
    """When ``day`` begins, in UTC."""
    return datetime.combine(day, time(boundary_hour), tzinfo=tz).astimezone(UTC)


def day_bounds(first: date, last: date, tz: tzinfo,
               boundary_hour: int = DEFAULT_DAY_BOUNDARY_HOUR) -> tuple[datetime, datetime]:
    """[start, end) in UTC covering the days ``first`` to ``last`` inclusive."""
    return day_start(first, tz, boundary_hour), day_start(last + timedelta(days=1), tz, boundary_hour)


def classify(now: datetime, recent: Sequence[PriorEvent], today_start: datetime,
             dedupe: timedelta = DEFAULT_DEDUPE) -> Decision:
    """What a voted sighting at ``now`` becomes, given the person's events since ``today_start - dedupe``
    (oldest first). Pure: no clock, no database."""
    if recent:
        last = max(recent, key=lambda e: (e.ts, e.id))
        gap = abs(now - last.ts)  # a clock set back must not create a burst of events
        if gap < dedupe:
            return Decision(None, reason=f"seen {gap.total_seconds():.0f} s after the last event "
                                         f"(dedupe window {dedupe.total_seconds() / 60:g} min)")
    if not any(e.ts >= today_start for e in recent):
        return Decision(EventKind.CHECK_IN)
    return Decision(EventKind.CHECK_OUT)  # earlier events keep their kind (recorded events are final)


def why_no_absence(day: date, today: date) -> str | None:
    """None when someone can be absent on ``day``: a working day (Monday to Friday) that has ended, ``today`` being
    the current attendance day (:func:`day_of` of now). Otherwise why not, in words. The one rule for every
    absence report: the monthly grid's marks, the Excel "Absent" sheet and ``fdface export absent``."""
    if day.weekday() not in WORKDAYS:
        return f"{day} is a {_DAY_NAMES[day.weekday()]}, not a working day (Monday to Friday)"
    if day == today:
        return f"{day} is today and not over yet (someone may still arrive)"
    if day > today:
        return f"{day} has not come yet"
    return None
