"""People x days attendance marks (present / late / absent): the monthly PDF's grid and the Excel "Absent" sheet.

The rule (README "Reports"): a person is *present* on an attendance day with at least one event that day, *late*
when the first check-in of that day came after ``reports.late_after`` (local time on that calendar day: a first
check-in after midnight, before the day boundary, is later still), and *absent* on a working day (Monday to Friday)
that has ended (``rules.why_no_absence``, the one rule for every absence report), with no event, while enrolled
(from the day they were added) and active. Weekends, today (someone may still arrive: today is marked once it is
over), days still to come and days before enrolment carry no mark.
Inactive or deleted people (a pseudonym) appear only with the days they were seen;
nobody is marked absent for a time the store cannot vouch for.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, tzinfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from desktop_app.attendance.queries import station_names
from desktop_app.attendance.reports import DaySummary, EventRow, events_in_range, in_group, summarize
from desktop_app.attendance.rules import DEFAULT_DAY_BOUNDARY_HOUR, day_of, why_no_absence
from desktop_app.storage import Person

PRESENT, LATE, ABSENT, NONE = "P", "L", "A", ""
MARK_WORDS = {PRESENT: "present", LATE: "late", ABSENT: "absent"}

_MONTH = re.compile(r"^\s*(\d{4})-(\d{1,2})\s*$")


def parse_month(text: str) -> tuple[date, date]:
    """First and last day of a month given as YYYY-MM; ValueError with the accepted form otherwise."""
    m = _MONTH.match(text or "")
    if not m or not 1 <= int(m.group(2)) <= 12 or int(m.group(1)) < 1:
        raise ValueError(f"{text!r} is not a month: use YYYY-MM, e.g. 2026-12")
    y, mo = int(m.group(1)), int(m.group(2))
    return date(y, mo, 1), date(y, mo, calendar.monthrange(y, mo)[1])


def is_late(first_in: datetime, day: date, late_after: time) -> bool:
    """``first_in`` (local, aware or naive) is later than ``late_after`` on the calendar day ``day``."""
    naive = first_in.replace(tzinfo=None)
    return naive - datetime.combine(day, time(0)) > timedelta(hours=late_after.hour, minutes=late_after.minute,
                                                              seconds=late_after.second)


@dataclass(frozen=True)
class GridRow:
    person_id: int | None
    person_ref: str
    name: str  # the name, or the pseudonym of a deleted person
    external_id: str | None
    group: str | None
    marks: tuple[str, ...]  # one per day of the grid: PRESENT, LATE, ABSENT or NONE

    @property
    def present(self) -> int:
        """Days present, late ones included."""
        return sum(m in (PRESENT, LATE) for m in self.marks)

    @property
    def late(self) -> int:
        return self.marks.count(LATE)

    @property
    def absent(self) -> int:
        return self.marks.count(ABSENT)


@dataclass(frozen=True)
class AttendanceGrid:
    first: date
    last: date
    days: tuple[date, ...]
    rows: tuple[GridRow, ...]
    group: str | None
    station: str | None
    tz_name: str
    late_after: time
    today: date
    events: tuple[EventRow, ...]  # the range's events (under the filters)
    summaries: tuple[DaySummary, ...]  # what the marks were made from
    tz: tzinfo | None = None  # the zone of tz_name (the PDF's "generated" time is read on its clock)

    def day_totals(self) -> list[tuple[int, int, int]]:
        """(present incl. late, late, absent) for each day."""
        out = []
        for i in range(len(self.days)):
            col = [r.marks[i] for r in self.rows]
            out.append((sum(m in (PRESENT, LATE) for m in col), col.count(LATE), col.count(ABSENT)))
        return out

    def absences(self) -> list[tuple[date, GridRow]]:
        """(day, person) for every absent mark, by day then name."""
        return [(d, r) for i, d in enumerate(self.days) for r in self.rows if r.marks[i] == ABSENT]


def build_grid(s: Session, first: date, last: date, tz: tzinfo, tz_name: str, late_after: time, today: date,
               boundary_hour: int = DEFAULT_DAY_BOUNDARY_HOUR, *, group: str | None = None,
               station: str | None = None, person_id: int | None = None) -> AttendanceGrid:
    """Marks for the days ``first``..``last`` of the active people (of ``group``) and of everyone seen then."""
    events = events_in_range(s, first, last, tz, boundary_hour, group=group, station=station, person_id=person_id)
    summaries = summarize(events)
    days = tuple(first + timedelta(days=i) for i in range((last - first).days + 1))
    stmt = select(Person).where(Person.active.is_(True))
    if group is not None:
        stmt = stmt.where(in_group(s, group))
    if person_id is not None:
        stmt = stmt.where(Person.id == person_id)
    active = {p.pseudonym: p for p in s.scalars(stmt)}
    by_ref: dict[str, dict[date, DaySummary]] = {}
    heads: dict[str, DaySummary] = {}
    for d in summaries:
        by_ref.setdefault(d.person_ref, {})[d.day] = d
        heads.setdefault(d.person_ref, d)
    refs = set(active) | set(by_ref)
    rows = []
    for ref in refs:
        p = active.get(ref)
        seen = by_ref.get(ref, {})
        since = day_of(p.created_at, tz, boundary_hour) if p is not None else None
        marks = []
        for day in days:
            d = seen.get(day)
            if d is not None:
                marks.append(LATE if is_late(d.first_in, day, late_after) else PRESENT)
            elif p is not None and since is not None and day >= since and why_no_absence(day, today) is None:
                marks.append(ABSENT)
            else:
                marks.append(NONE)
        h = heads.get(ref)
        rows.append(GridRow(
            person_id=p.id if p is not None else (h.person_id if h else None), person_ref=ref,
            name=(p.name if p is not None else (h.name if h and h.name else ref)),
            external_id=p.external_id if p is not None else (h.external_id if h else None),
            group=p.group if p is not None else (h.group if h else None), marks=tuple(marks)))
    rows.sort(key=lambda r: (r.name.casefold(), r.person_ref))
    return AttendanceGrid(first=first, last=last, days=days, rows=tuple(rows), group=group, station=station,
                          tz_name=tz_name, late_after=late_after, today=today, events=tuple(events),
                          summaries=tuple(summaries), tz=tz)


def check_station(s: Session, station: str | None) -> None:
    """ValueError naming the known stations when ``station`` never recorded anything: a typo would otherwise
    report everyone absent."""
    if station is None:
        return
    known = station_names(s)
    if station not in known:
        raise ValueError(f"no station named {station!r}; stations: {', '.join(known) or 'none yet'}")


NO_GROUP = "(no group)"


def by_group(grid: AttendanceGrid) -> list[tuple[str, AttendanceGrid]]:
    """The grid split into one grid per group (sorted; people without a group last, as ``NO_GROUP``): the monthly
    PDF of everyone has a section per group, each with its own totals. A grid of one group is returned whole."""
    if grid.group is not None:
        return [(grid.group, grid)]
    groups = sorted({r.group for r in grid.rows if r.group}, key=str.casefold)
    out = [(g, replace(grid, rows=tuple(r for r in grid.rows if r.group == g), group=g)) for g in groups]
    rest = tuple(r for r in grid.rows if not r.group)
    if rest or not out:
        out.append((NO_GROUP if rest else "all groups", replace(grid, rows=rest)))
    return out


def period_text(first: date, last: date) -> str:
    if first.day == 1 and last == date(first.year, first.month, calendar.monthrange(first.year, first.month)[1]):
        return f"{first:%B %Y} ({first} to {last})"
    return f"{first} to {last}"

