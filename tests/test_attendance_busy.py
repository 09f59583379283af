"""A database that another process keeps locked for writing does not stop attendance: the writer keeps the
sightings, says "database busy, N sightings waiting", and writes them all once the lock is released; read-only
commands (`people list`, `export`) do not need the write lock at all."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from desktop_app import storage as st
from desktop_app.attendance.recorder import AttendanceRecorder, EventWriter, Sighting
from desktop_app.config import AttendanceSettings

REPO = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 6, 1, 7, 0, tzinfo=UTC)

# Another program writing: takes the write lock (BEGIN EXCLUSIVE, as a long import would) and holds it until a
# line arrives on stdin (or 120 s pass).
HOLDER = textwrap.dedent("""
    import sqlite3, sys, threading
    con = sqlite3.connect(sys.argv[1], isolation_level=None)
    con.execute("BEGIN EXCLUSIVE")
    con.execute("CREATE TABLE IF NOT EXISTS other_program (x)")
    print("locked", flush=True)
    t = threading.Thread(target=sys.stdin.readline, daemon=True)
    t.start()
    t.join(120)
    con.execute("COMMIT")
    print("released", flush=True)
""")


class Holder:
    def __init__(self, db: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(db)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.strip() == "locked", line + (self.proc.stderr.read() if self.proc.stderr else "")

    def release(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write("go\n")
            self.proc.stdin.flush()
            self.proc.wait(30)

    def __enter__(self) -> Holder:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.release()
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


def _wait_for(cond, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def _db_with(path: Path, *names: str) -> tuple[object, list[int]]:
    """A SQLite store at ``path`` with these people enrolled (no templates): their ids."""
    engine = st.open_engine(f"sqlite:///{path}")
    with Session(engine) as s, s.begin():
        ids = [st.add_person(s, n).id for n in names]
    return engine, ids


def test_event_writer_waits_out_a_busy_database_and_loses_nothing(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(st, "SQLITE_BUSY_TIMEOUT_MS", 200)  # so that the test waits seconds, not minutes
    db = tmp_path / "busy.db"
    engine, people = _db_with(db, *(f"person {i}" for i in range(4)))
    statuses: list[str] = []
    recorded: list = []
    errors: list[str] = []
    w = EventWriter(AttendanceRecorder(engine, AttendanceSettings(timezone="UTC", day_boundary_hour=0)),
                    on_event=recorded.append, on_error=errors.append, on_status=statuses.append)
    try:
        with Holder(db) as holder:
            for i, pid in enumerate(people):
                w.submit(Sighting(pid, 0.9, ts=T0 + timedelta(minutes=i)))
            assert _wait_for(lambda: w.status() == "database busy, 4 sightings waiting"), (w.status(), statuses)
            time.sleep(1.5)  # several busy timeouts and retries while the lock is held
            assert w.pending == 4 and not recorded and not errors
            assert "database busy, 4 sightings waiting" in statuses
            holder.release()
        assert w.close(60) == 0
    finally:
        w.close(5)
    assert not errors
    assert [e.person_id for e in recorded] == people and {e.kind for e in recorded} == {"check-in"}
    assert statuses[-1] == "" and w.status() == ""
    with Session(engine) as s:
        assert s.scalars(select(st.AttendanceEvent.person_id).order_by(st.AttendanceEvent.id)).all() == people
    engine.dispose()


def test_a_sighting_keeps_the_time_it_was_submitted(tmp_path, monkeypatch) -> None:
    """Written late (after a busy spell), an event still carries the moment the face was seen."""
    monkeypatch.setattr(st, "SQLITE_BUSY_TIMEOUT_MS", 100)
    db = tmp_path / "late.db"
    engine, (pid,) = _db_with(db, "Ada")
    recorded: list = []
    w = EventWriter(AttendanceRecorder(engine), on_event=recorded.append)
    with Holder(db) as holder:
        before = datetime.now(UTC)
        w.submit(Sighting(pid, 0.9))
        time.sleep(1.0)
        holder.release()
    assert w.close(60) == 0
    assert len(recorded) == 1 and before <= recorded[0].ts < before + timedelta(seconds=0.5)
    engine.dispose()


def _fdface(*argv: str, timeout: float = 60) -> tuple[subprocess.CompletedProcess, float]:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("FDFACE_DB", None)
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-c", "import sys; from desktop_app.cli import main; sys.exit(main())",
                        *argv], capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)
    return r, time.monotonic() - t0


def test_read_only_commands_do_not_wait_for_the_write_lock(tmp_path) -> None:
    db = tmp_path / "shared.db"
    url = f"sqlite:///{db}"
    engine = st.open_engine(url)
    with Session(engine) as s, s.begin():
        ada = st.add_person(s, "Ada Lovelace", external_id="E-1")
        st.add_event(s, ada, datetime.now(UTC), "UTC", "door", "check-in", 0.9)
    engine.dispose()
    cfg = tmp_path / "settings.toml"
    cfg.write_text('[attendance]\ntimezone = "UTC"\n')
    with Holder(db):
        r, took = _fdface("people", "list", "--db", url, "--config", str(cfg))
        assert r.returncode == 0 and "Ada Lovelace" in r.stdout, r.stderr
        assert took < st.SQLITE_BUSY_TIMEOUT_MS / 1000, f"people list waited {took:.1f} s for the write lock"
        r, took = _fdface("export", "events", "--db", url, "--config", str(cfg))
        assert r.returncode == 0 and "Ada Lovelace" in r.stdout, r.stderr
        assert took < st.SQLITE_BUSY_TIMEOUT_MS / 1000, f"export waited {took:.1f} s for the write lock"


def test_schema_upgrade_still_runs_when_the_schema_is_behind(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = st.create_store_engine(url)
    with engine.connect() as c:  # an empty database: schema version None
        assert st.schema_version(engine) is None
        c.commit()
    engine.dispose()
    engine = st.open_engine(url)
    assert st.schema_version(engine) == st.SCHEMA_HEAD
    engine.dispose()


# ---------------------------------------------------------------------------------- `fdface run` (real pipeline)
def test_run_keeps_recording_while_the_database_is_busy(tmp_path, monkeypatch, capsys) -> None:
    from desktop_app.cli import main
    from tests.test_gallery_cli import photo
    from tests.test_gallery_enroll import embedder_entry

    if embedder_entry().name != "fdfacenet":
        pytest.skip("the CLI uses the installed model: models/fdfacenet.onnx is absent or does not match")
    import shutil

    monkeypatch.setattr(st, "SQLITE_BUSY_TIMEOUT_MS", 300)
    db = tmp_path / "run.db"
    url = f"sqlite:///{db}"
    cfg = tmp_path / "settings.toml"
    cfg.write_text('[attendance]\ntimezone = "UTC"\nstation = "hall"\n')
    c = ("--db", url, "--config", str(cfg), "--threads", "1")
    assert main(["enroll", "Amy", photo("amy", 1), photo("amy", 2), *c]) == 0
    frames = tmp_path / "frames"
    frames.mkdir()
    shutil.copy(photo("amy", 5), frames / "a.png")
    capsys.readouterr()

    result: list[int] = []
    out = err = ""
    with Holder(db) as holder:
        t = threading.Thread(target=lambda: result.append(
            main(["run", str(frames), "--json", "--threshold", "0.2", "--margin", "0.0", *c])), daemon=True)
        t.start()
        deadline = time.monotonic() + 120
        while "database busy" not in err and t.is_alive() and time.monotonic() < deadline:
            time.sleep(0.1)
            o, e = capsys.readouterr()
            out, err = out + o, err + e
        assert "database busy, 1 sighting waiting" in err, err
        time.sleep(1.0)  # longer than the busy timeout: the run keeps waiting, it does not give up
        assert t.is_alive()
        holder.release()
        t.join(120)
    o, e = capsys.readouterr()
    out, err = out + o, err + e
    assert result == [0], err
    assert '"name": "Amy"' in out and '"kind": "check-in"' in out, (out, err)
    assert "Traceback" not in err


def test_sightings_waiting_when_the_writer_closes_are_kept_and_written_by_the_next_one(tmp_path, monkeypatch) -> None:
    """A database busy for longer than the program runs: what waits goes to the spool, and the next writer on
    the same database writes it first, with the original times, once; then the spool is gone."""
    from desktop_app.attendance.recorder import read_spool, spool_path

    monkeypatch.setattr(st, "SQLITE_BUSY_TIMEOUT_MS", 200)
    db = tmp_path / "busy.db"
    url = f"sqlite:///{db}"
    engine, people = _db_with(db, *(f"person {i}" for i in range(3)))
    spool = spool_path(url, tmp_path / "data")
    settings = AttendanceSettings(timezone="UTC", day_boundary_hour=0)
    w = EventWriter(AttendanceRecorder(engine, settings), spool=spool)
    with Holder(db):
        for i, pid in enumerate(people):
            w.submit(Sighting(pid, 0.8 + i / 100, ts=T0 + timedelta(minutes=i), snapshot_jpeg=b"\xff\xd8jpeg%d" % i))
        assert _wait_for(lambda: w.status().startswith("database busy"))
        assert w.close(0.5) == 3 and w.spooled == 3  # the program ends while the database is still locked
    kept = read_spool(spool)
    assert [(k.person_id, k.ts, k.snapshot_jpeg) for k in kept] == \
        [(pid, T0 + timedelta(minutes=i), b"\xff\xd8jpeg%d" % i) for i, pid in enumerate(people)]
    assert spool_path(f"sqlite:///{tmp_path / 'other.db'}", tmp_path / "data") != spool
    recorded: list = []
    w2 = EventWriter(AttendanceRecorder(engine, settings), on_event=recorded.append, spool=spool)
    assert w2.close(30) == 0
    assert [(e.person_id, e.ts) for e in recorded] == [(pid, T0 + timedelta(minutes=i)) for i, pid in enumerate(people)]
    assert not spool.exists()
    w3 = EventWriter(AttendanceRecorder(engine, settings), spool=spool)  # nothing kept: nothing written twice
    assert w3.pending == 0 and w3.close(5) == 0
    with Session(engine) as s:
        assert len(s.scalars(select(st.AttendanceEvent.id)).all()) == 3
    engine.dispose()


def test_a_damaged_spool_line_costs_only_itself(tmp_path) -> None:
    from desktop_app.attendance.recorder import read_spool, write_spool

    p = tmp_path / "s.jsonl"
    write_spool(p, [Sighting(1, 0.9, T0), Sighting(2, 0.8, T0 + timedelta(seconds=1), None, "door")])
    p.write_text(p.read_text() + '{"person_id": "x"\n')
    got = read_spool(p)
    assert [(g.person_id, g.station) for g in got] == [(1, None), (2, "door")]


def test_a_sighting_handed_to_a_writer_being_replaced_is_never_lost(tmp_path) -> None:
    """The store is switched while the frame thread still holds the old writer (issue 18): what it hands over
    after the old writer closed goes to that database's spool and the next writer there records it."""
    from desktop_app.attendance.recorder import spool_path

    url = f"sqlite:///{tmp_path / 'a.db'}"
    engine = st.open_engine(url)
    with Session(engine) as s, s.begin():
        pid = st.add_person(s, "Ann").id
    settings = AttendanceSettings(timezone="UTC", day_boundary_hour=0)
    spool = spool_path(url, tmp_path / "data")
    errors: list[str] = []
    old = EventWriter(AttendanceRecorder(engine, settings), on_error=errors.append, spool=spool)
    assert old.close(5) == 0
    old.submit(Sighting(pid, 0.9, ts=T0))  # a frame thread that had not yet seen the new writer
    assert spool.exists() and not errors
    w = EventWriter(AttendanceRecorder(engine, settings), spool=spool)
    assert w.close(30) == 0 and not spool.exists()
    with Session(engine) as s:
        assert s.scalars(select(st.AttendanceEvent.person_id)).all() == [pid]
    no_spool = EventWriter(AttendanceRecorder(engine, settings), on_error=errors.append)
    no_spool.close(5)
    no_spool.submit(Sighting(pid, 0.9, ts=T0 + timedelta(hours=2)))
    assert errors and "was not recorded" in errors[0]  # said, not dropped in silence
    engine.dispose()


def test_two_writers_on_one_spool_never_overwrite_each_other(tmp_path, monkeypatch) -> None:
    """The GUI reopening the same database (or the app and `fdface run` on one machine): a writer that took the
    spool and another that spools later must not lose each other's sightings (review of 2026-12-04)."""
    from desktop_app.attendance.recorder import append_spool, spool_path

    monkeypatch.setattr(st, "SQLITE_BUSY_TIMEOUT_MS", 200)
    db = tmp_path / "busy.db"
    url = f"sqlite:///{db}"
    engine, people = _db_with(db, *(f"person {i}" for i in range(3)))
    settings = AttendanceSettings(timezone="UTC", day_boundary_hour=0)
    spool = spool_path(url, tmp_path / "data")
    append_spool(spool, [Sighting(people[0], 0.9, T0)])  # kept by an earlier run
    with Holder(db):
        a = EventWriter(AttendanceRecorder(engine, settings), spool=spool)  # takes p0 from the spool
        a.submit(Sighting(people[1], 0.9, T0 + timedelta(minutes=1)))
        b = EventWriter(AttendanceRecorder(engine, settings), spool=spool)  # the store reopened: nothing to take
        assert b.pending == 0
        a.submit(Sighting(people[2], 0.9, T0 + timedelta(minutes=2)))
        assert a.close(0.5) == 3 and a.spooled == 3  # still busy: a keeps all it holds in the spool
        a.submit(Sighting(people[2], 0.9, T0 + timedelta(minutes=30)))  # handed to a closed writer: spooled too
    assert b.close(30) == 0
    c = EventWriter(AttendanceRecorder(engine, settings), spool=spool)
    assert c.pending == 4 and c.close(30) == 0
    with Session(engine) as s:
        got = s.execute(select(st.AttendanceEvent.person_id, st.AttendanceEvent.ts)).all()
    assert sorted(p for p, _ in got) == sorted([people[0], people[1], people[2], people[2]])
    assert not spool.exists() and not list(spool.parent.glob("*.claimed-*"))
    engine.dispose()


def test_a_sighting_written_twice_counts_once_even_without_a_dedupe_window(tmp_path) -> None:
    engine, (pid,) = _db_with(tmp_path / "a.db", "Ann")
    settings = AttendanceSettings(timezone="UTC", day_boundary_hour=0, dedupe_minutes=0.0)
    assert AttendanceRecorder(engine, settings).record(pid, 0.9, T0) is not None
    assert AttendanceRecorder(engine, settings).record(pid, 0.9, T0) is None  # the replay of a spooled sighting
    assert AttendanceRecorder(engine, settings).record(pid, 0.9, T0 + timedelta(seconds=1)) is not None
    engine.dispose()


def test_an_erased_persons_waiting_sightings_are_dropped_from_the_writer(tmp_path, monkeypatch) -> None:
    from desktop_app.gallery.service import Gallery

    monkeypatch.setattr(st, "SQLITE_BUSY_TIMEOUT_MS", 200)
    db = tmp_path / "busy.db"
    engine, (ann, bob) = _db_with(db, "Ann", "Bob")
    w = EventWriter(AttendanceRecorder(engine, AttendanceSettings(timezone="UTC", day_boundary_hour=0)),
                    spool=tmp_path / "spool.jsonl")
    g = Gallery(engine, "m", 4, url=f"sqlite:///{db}", background=False)
    g.erasure_listeners.append(w.forget_person)
    with Holder(db):
        for k, pid in enumerate([bob, ann, ann, bob]):
            w.submit(Sighting(pid, 0.9, T0 + timedelta(minutes=k), b"face-of-%d" % pid))
        assert _wait_for(lambda: w.status().startswith("database busy"))
        assert w.forget_person(ann) == 2 and w.pending == 2
        assert w.close(0.5) == 2
    assert b"face-of-%d" % ann not in (tmp_path / "spool.jsonl").read_bytes()
    engine.dispose()
