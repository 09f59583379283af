"""Several kiosks recording the same person at the same instant make one event, not one each: the decision is
guarded in the database (see recorder.py), not only in one process's memory. PostgreSQL runs the same race in
test_gallery_postgres.py."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from desktop_app import storage as st
from desktop_app.attendance.recorder import AttendanceRecorder
from desktop_app.config import AttendanceSettings

T0 = datetime(2026, 6, 1, 7, 0, tzinfo=UTC)
KIOSKS = 8


def race_recorders(kiosk: Callable[[], Engine], kiosks: int = KIOSKS) -> None:
    """``kiosks`` recorders, each on its own engine (its own connections, like separate machines), record the
    same people at the same instants, released together by a barrier; then the events are checked: one check-in
    per person at T0 and one check-out per person eight hours later (the other sightings are duplicates)."""
    engines = [kiosk() for _ in range(kiosks)]
    with Session(engines[0]) as s, s.begin():
        people = [st.add_person(s, f"person {i}").id for i in range(3)]
    settings = AttendanceSettings(timezone="UTC", day_boundary_hour=0)
    recorders = [AttendanceRecorder(e, settings) for e in engines]
    errors: list[BaseException] = []
    for ts in (T0, T0 + timedelta(hours=8)):
        for pid in people:
            barrier = threading.Barrier(kiosks)

            def go(rec: AttendanceRecorder, pid: int = pid, ts: datetime = ts, barrier=barrier) -> None:
                try:
                    barrier.wait(10)
                    rec.record(pid, 0.9, ts=ts)
                except BaseException as exc:  # noqa: BLE001 - reported below
                    errors.append(exc)

            threads = [threading.Thread(target=go, args=(r,)) for r in recorders]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
    assert not errors, errors
    with Session(engines[0]) as s:
        rows = s.execute(select(st.AttendanceEvent.person_id, st.AttendanceEvent.kind)
                         .order_by(st.AttendanceEvent.person_id, st.AttendanceEvent.ts)).all()
    want = [(p, k) for p in people for k in ("check-in", "check-out")]
    assert [tuple(r) for r in rows] == want


def test_concurrent_sqlite_kiosks_record_one_event(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'kiosks.db'}"
    engines: list[Engine] = []

    def kiosk() -> Engine:
        engines.append(st.open_engine(url))
        return engines[-1]

    try:
        race_recorders(kiosk)
    finally:
        for e in engines:
            e.dispose()
