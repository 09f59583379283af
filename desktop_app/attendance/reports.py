"""Attendance reports over the store: events in a date range, a daily summary per person, absent people.

Days are attendance days (see rules.py: local time zone, day boundary hour). People deleted since keep their
pseudonym (``person_ref``) and no name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from desktop_app.attendance.rules import DEFAULT_DAY_BOUNDARY_HOUR, day_bounds, day_of
from desktop_app.storage import AttendanceEvent, EventKind, Person


@dataclass(frozen=True)
class EventRow:
    event_id: int
    ts: datetime  # UTC
    local_ts: datetime  # in the report's time zone
    day: date
    person_id: int | None  # None: the person was deleted
    person_ref: str
    name: str | None
    external_id: str | None
    group: str | None
    station: str
    kind: str
    similarity: float


@dataclass(frozen=True)
class DaySummary:
    """One person's day: first check-in, last check-out (None with a single event), time between them."""

    day: date
    person_id: int | None
    person_ref: str
    name: str | None
    external_id: str | None
    group: str | None
    first_in: datetime  # local
    last_out: datetime | None  # local
    present: timedelta
    events: int
    stations: tuple[str, ...]


def group_names(s: Session) -> list[str]:
    """The groups people are in, sorted (for the filters, the group box and "no group named ..." hints)."""
    return sorted(g for g in s.scalars(select(Person.group).distinct()) if g)


def groups_named(s: Session, group: str) -> list[str]:
    """The stored groups that ``group`` names: the same up to case and surrounding spaces ("7b" finds "7B"), as
    the People search matches; [] when there is none. Every group filter selects these (:func:`in_group`)."""
    key = group.strip().casefold()
    return [g for g in group_names(s) if g.strip().casefold() == key]


def in_group(s: Session, group: str) -> ColumnElement[bool]:
    """The condition "the person is in ``group``" of every report, grid and list (see :func:`groups_named`)."""
    return Person.group.in_(groups_named(s, group))


def events_in_range(s: Session, first: date, last: date, tz: tzinfo,
                    boundary_hour: int = DEFAULT_DAY_BOUNDARY_HOUR, *, person_id: int | None = None,
                    group: str | None = None, station: str | None = None) -> list[EventRow]:
    """Events of the days ``first``..``last`` (inclusive), oldest first, optionally for one person, group or
    station."""
    if last < first:
        raise ValueError(f"the range ends ({last}) before it starts ({first})")
    start, end = day_bounds(first, last, tz, boundary_hour)
    stmt = (select(AttendanceEvent, Person)
            .outerjoin(Person, Person.id == AttendanceEvent.person_id)
            .where(AttendanceEvent.ts >= start, AttendanceEvent.ts < end)
            .order_by(AttendanceEvent.ts, AttendanceEvent.id))
    if person_id is not None:
        stmt = stmt.where(AttendanceEvent.person_id == person_id)
    if group is not None:
        stmt = stmt.where(in_group(s, group))
    if station is not None:
        stmt = stmt.where(AttendanceEvent.station == station)
    out = []
    for ev, p in s.execute(stmt):
        local = ev.ts.astimezone(tz)
        out.append(EventRow(
            event_id=ev.id, ts=ev.ts, local_ts=local, day=day_of(ev.ts, tz, boundary_hour),
            person_id=ev.person_id, person_ref=ev.person_ref, name=p.name if p else None,
            external_id=p.external_id if p else None, group=p.group if p else None,
            station=ev.station, kind=ev.kind, similarity=ev.similarity,
        ))
    return out


def summarize(rows: Sequence[EventRow]) -> list[DaySummary]:
    """Daily summary per person from event rows (pure); ordered by day, then name."""
    by: dict[tuple[date, str], list[EventRow]] = {}
    for r in rows:
        by.setdefault((r.day, r.person_ref), []).append(r)
    out = []
    for (day, ref), evs in by.items():
        evs.sort(key=lambda r: (r.ts, r.event_id))
        ins = [r for r in evs if r.kind == EventKind.CHECK_IN]
        first = ins[0] if ins else evs[0]
        last = evs[-1] if len(evs) > 1 else None
        head = evs[0]
        out.append(DaySummary(
            day=day, person_id=head.person_id, person_ref=ref, name=head.name, external_id=head.external_id,
            group=head.group, first_in=first.local_ts, last_out=last.local_ts if last else None,
            present=(last.ts - first.ts) if last else timedelta(0), events=len(evs),
            stations=tuple(dict.fromkeys(r.station for r in evs)),
        ))
    out.sort(key=lambda d: (d.day, (d.name or "\uffff").casefold(), d.person_ref))
    return out


def daily_summary(s: Session, first: date, last: date, tz: tzinfo,
                  boundary_hour: int = DEFAULT_DAY_BOUNDARY_HOUR, *, person_id: int | None = None,
                  group: str | None = None, station: str | None = None) -> list[DaySummary]:
    return summarize(events_in_range(s, first, last, tz, boundary_hour, person_id=person_id, group=group,
                                     station=station))
