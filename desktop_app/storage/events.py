"""Attendance events: written only inside :class:`~desktop_app.attendance.recorder.AttendanceRecorder`'s
transaction (the rules decide the kind); a recorded event is never rewritten."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from desktop_app.event_kinds import EventKind
from desktop_app.storage.models import AttendanceEvent, EventSnapshot, Person


def add_event(s: Session, person: Person, ts: datetime, tz: str, station: str, kind: EventKind | str,
              similarity: float, snapshot_jpeg: bytes | None = None) -> AttendanceEvent:
    ev = AttendanceEvent(person_id=person.id, person_ref=person.pseudonym, ts=ts, tz=tz, station=station,
                         kind=str(EventKind(kind)), similarity=float(similarity))
    if snapshot_jpeg is not None:
        ev.snapshot = EventSnapshot(jpeg=snapshot_jpeg)
    s.add(ev)
    s.flush()
    return ev



def count_events(s: Session) -> int:
    return int(s.scalar(select(func.count(AttendanceEvent.id))) or 0)

