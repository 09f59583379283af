"""A sighting waiting in the spool while the database is restored from a backup is never filed under whoever has its
person number in the restored database (SQLite gives a freed number to the next person enrolled): the spool line
carries the person's pseudonym, the writer checks it, and a sighting that no longer matches is kept aside in a file
it names, never dropped and never misfiled (README "Backups and restore").

Real parts: SQLite files, the backup and restore of ``gallery/backup.py``, another process holding the write lock.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from desktop_app import storage as st
from desktop_app.attendance import unknowns as un
from desktop_app.attendance.recorder import (
    AttendanceRecorder,
    EventWriter,
    NotThisPerson,
    Sighting,
    UnknownSighting,
    kept_aside_path,
    read_spool,
    spool_path,
)
from desktop_app.config import AttendanceSettings, UnknownSettings
from desktop_app.gallery.backup import make_backup, restore_database
from tests.test_attendance_busy import Holder

T0 = datetime(2026, 6, 1, 7, 0, tzinfo=UTC)
SETTINGS = AttendanceSettings(timezone="UTC", day_boundary_hour=0)


def _add(engine, name: str) -> int:
    with Session(engine) as s, s.begin():
        return st.add_person(s, name).id


def test_a_spooled_sighting_is_kept_aside_when_a_restore_gave_its_number_to_someone_else(tmp_path, monkeypatch):
    monkeypatch.setattr(st, "SQLITE_BUSY_TIMEOUT_MS", 200)
    db = tmp_path / "att.db"
    url = f"sqlite:///{db}"
    engine = st.open_engine(url)
    ann = _add(engine, "Ann")
    engine.dispose()
    backup = make_backup(db, tmp_path / "backups").path  # Ann only
    engine = st.open_engine(url)
    bob = _add(engine, "Bob")  # enrolled after the backup
    spool = spool_path(url, tmp_path / "data")
    with Holder(db):  # the database busy: Bob's sighting waits, then goes to the spool
        w = EventWriter(AttendanceRecorder(engine, SETTINGS, unknowns=UnknownSettings()), spool=spool)
        w.submit(Sighting(bob, 0.9, T0, b"face-of-bob"))
        w.submit(UnknownSighting(0.3, bob, 20, 2.0, T0))  # a stranger who resembled Bob
        assert w.close(0.5) == 2 and w.spooled == 2
    assert [getattr(it, "person_ref", None) or getattr(it, "candidate_ref", None) for it in read_spool(spool)] \
        != [None, None], "the spool says who the numbers meant"
    engine.dispose()

    restore_database(backup, db)  # back to Ann only; the next person enrolled gets Bob's number
    engine = st.open_engine(url)
    carl = _add(engine, "Carl")
    assert carl == bob
    errors: list[str] = []
    w2 = EventWriter(AttendanceRecorder(engine, SETTINGS), on_error=errors.append, spool=spool)
    assert w2.close(30) == 0
    with Session(engine) as s:
        events = s.scalars(select(st.AttendanceEvent.person_id)).all()
    assert events == [], "no event for Carl: the sighting was Bob's"
    rows = un.list_unknowns(engine)
    assert len(rows) == 1 and rows[0].candidate_id is None  # logged, but not as resembling Carl
    aside = kept_aside_path(spool)
    assert w2.kept_aside == 1 and aside.exists() and not spool.exists()
    kept = [json.loads(line) for line in aside.read_text().splitlines()]
    assert [(k["person_id"], k["ts"]) for k in kept] == [(bob, T0.isoformat())]
    assert "someone else" in kept[0]["reason"]
    assert kept[0]["snapshot"] is None and b"face-of-bob" not in aside.read_bytes()  # no face picture kept aside
    assert len(errors) == 1 and str(aside) in errors[0] and f"person #{bob}" in errors[0]
    # a person who exists in the restored database as they were is recorded as always
    w3 = EventWriter(AttendanceRecorder(engine, SETTINGS), spool=spool)
    w3.submit(Sighting(ann, 0.9, T0))
    assert w3.close(30) == 0
    with Session(engine) as s:
        assert s.scalars(select(st.AttendanceEvent.person_id)).all() == [ann]
    engine.dispose()


def test_a_sighting_of_a_person_missing_after_a_restore_is_kept_aside_but_an_erased_ones_is_dropped(tmp_path):
    engine = st.open_engine(f"sqlite:///{tmp_path / 'a.db'}")
    ann, bob = _add(engine, "Ann"), _add(engine, "Bob")
    spool = tmp_path / "spool.jsonl"
    rec = AttendanceRecorder(engine, SETTINGS)
    rec.load_refs()
    # Bob's sighting spooled by a run against another copy of the database, where number 2 was Bob
    w = EventWriter(rec, spool=spool)
    w.close(5)
    w.submit(Sighting(bob, 0.9, T0))  # to a closed writer: spooled with Bob's pseudonym
    with Session(engine) as s, s.begin():  # this copy lost Bob (as a restore of an older backup would)
        s.execute(st.AttendanceEvent.__table__.delete())
        s.delete(s.get(st.Person, bob))
    w2 = EventWriter(AttendanceRecorder(engine, SETTINGS), spool=spool)
    assert w2.close(30) == 0 and w2.kept_aside == 1 and kept_aside_path(spool).exists()
    # an erasure, by contrast, drops the person's sighting even when it was already being written
    w3 = EventWriter(AttendanceRecorder(engine, SETTINGS), spool=tmp_path / "other.jsonl")
    w3.close(5)
    w3.recorder.load_refs()
    ref = w3.recorder.refs[ann]
    assert w3.forget_person(ann) == 0
    w3._keep_aside(Sighting(ann, 0.9, T0, person_ref=ref), NotThisPerson("erased"))  # the one in flight
    assert w3.kept_aside == 0 and not kept_aside_path(tmp_path / "other.jsonl").exists()
    engine.dispose()
