"""Turns voted identities into attendance events: each event is committed in its own transaction *before* anyone is
told about it, so an event that was shown or printed is on disk.

:class:`AttendanceRecorder` does one sighting synchronously (the CLI's loop, tests); :class:`EventWriter` is the
single writer thread the GUI uses: sightings are queued, written in order, and ``on_event`` is called after commit.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from desktop_app.attendance.rules import PriorEvent, classify, day_of, day_start, resolve_zone
from desktop_app.config import AttendanceSettings
from desktop_app.gallery.store import AttendanceEvent, EventKind, Person, add_event, store_errors

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecordedEvent:
    """A committed event, as reported to the UI / console."""

    id: int
    person_id: int
    name: str
    external_id: str | None
    ts: datetime  # UTC
    local_ts: datetime  # in the rules' time zone
    tz: str
    station: str
    kind: str
    similarity: float
    demoted: int | None = None  # earlier check-out turned into "seen"


@dataclass(frozen=True)
class Sighting:
    person_id: int
    similarity: float
    ts: datetime | None = None  # None: now
    snapshot_jpeg: bytes | None = None
    station: str | None = None


class AttendanceRecorder:
    """Applies the rules against the store and writes events. Use from one thread (the writer)."""

    def __init__(self, engine: Engine, settings: AttendanceSettings | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.engine = engine
        self.settings = settings or AttendanceSettings()
        self.tz, self.tz_name = resolve_zone(self.settings.timezone)
        self.dedupe = timedelta(minutes=self.settings.dedupe_minutes)
        self.clock = clock or (lambda: datetime.now(UTC))
        self._last: dict[int, datetime] = {}  # person -> last event time: skips the database for repeats

    def record(self, person_id: int, similarity: float, ts: datetime | None = None,
               snapshot_jpeg: bytes | None = None, station: str | None = None) -> RecordedEvent | None:
        """Write the event this sighting makes, or return None (duplicate, unknown or inactive person)."""
        now = (ts or self.clock()).astimezone(UTC)
        last = self._last.get(person_id)
        if last is not None and abs(now - last) < self.dedupe:
            return None
        station = station or self.settings.station
        today_start = day_start(day_of(now, self.tz, self.settings.day_boundary_hour), self.tz,
                                self.settings.day_boundary_hour)
        with store_errors(), Session(self.engine) as s, s.begin():
            # The guard against two kiosks deciding at once: the person's row is locked until commit, so a second
            # recorder of the same person waits here and then sees the first one's event (PostgreSQL: row lock,
            # READ COMMITTED reads what was committed meanwhile; SQLite: BEGIN IMMEDIATE already serialises
            # writers, FOR UPDATE is not emitted there). NO KEY UPDATE: enrolment (a foreign-key share lock on
            # the same row) is not blocked.
            person = s.scalar(select(Person).where(Person.id == person_id)
                              .with_for_update(key_share=True))
            if person is None or not person.active:
                return None
            rows = s.execute(select(AttendanceEvent.id, AttendanceEvent.ts, AttendanceEvent.kind)
                             .where(AttendanceEvent.person_id == person_id,
                                    AttendanceEvent.ts >= min(today_start, now) - self.dedupe)
                             .order_by(AttendanceEvent.ts, AttendanceEvent.id)).all()
            decision = classify(now, [PriorEvent(*r) for r in rows], today_start, self.dedupe)
            if decision.kind is None:
                if rows:
                    self._last[person_id] = max(r[1] for r in rows)
                return None
            if decision.demote is not None:
                s.execute(update(AttendanceEvent).where(AttendanceEvent.id == decision.demote)
                          .values(kind=str(EventKind.SEEN)))
            snap = snapshot_jpeg if self.settings.keep_snapshots else None
            ev = add_event(s, person, now, self.tz_name, station, decision.kind, similarity, snap)
            out = RecordedEvent(ev.id, person.id, person.name, person.external_id, now, now.astimezone(self.tz),
                                self.tz_name, station, str(decision.kind), float(similarity), decision.demote)
        # committed: only now is the event reported
        self._last[person_id] = now
        return out

    def forget(self, person_id: int) -> None:
        """Drop the in-memory dedupe state of a person (deleted or edited)."""
        self._last.pop(person_id, None)


class EventWriter:
    """The one thread that writes events. ``submit`` never blocks; ``on_event`` / ``on_error`` run on the writer
    thread after the commit (a GUI re-emits them as signals)."""

    def __init__(self, recorder: AttendanceRecorder, on_event: Callable[[RecordedEvent], None] | None = None,
                 on_error: Callable[[str], None] | None = None) -> None:
        self.recorder = recorder
        self.on_event = on_event
        self.on_error = on_error
        self._q: queue.Queue[Sighting | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="attendance-writer", daemon=True)
        self._thread.start()

    def submit(self, sighting: Sighting) -> None:
        self._q.put(sighting)

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            try:
                ev = self.recorder.record(item.person_id, item.similarity, item.ts, item.snapshot_jpeg, item.station)
            except Exception as exc:  # keep writing later events; say what went wrong
                log.exception("could not record attendance")
                if self.on_error:
                    self.on_error(str(exc))
                continue
            if ev is not None and self.on_event:
                self.on_event(ev)

    def close(self, timeout: float | None = 30.0) -> None:
        """Write everything queued, then stop."""
        self._q.put(None)
        self._thread.join(timeout)
