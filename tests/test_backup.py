"""Backups and restore (desktop_app/gallery/backup.py, `fdface backup` / `fdface restore`, File > Back up now /
Restore from backup): real SQLite files, the real attendance writer, a real process killed with SIGKILL, the real
Alembic migrations and the real Qt window (offscreen)."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from desktop_app import storage as st
from desktop_app.attendance.recorder import AttendanceRecorder, EventWriter, Sighting
from desktop_app.cli import main as cli_main
from desktop_app.config import AttendanceSettings, Settings
from desktop_app.gallery import backup as bk

REPO = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 6, 1, 7, 0, tzinfo=UTC)


def url_of(db: Path) -> str:
    return f"sqlite:///{db.as_posix()}"


def new_store(db: Path, people: int = 3) -> tuple[object, list[int]]:
    engine = st.open_engine(url_of(db))
    with Session(engine) as s, s.begin():
        pids = [st.add_person(s, f"Person {i}", external_id=f"E{i}").id for i in range(people)]
    return engine, pids


def add_ballast(db: Path, megabytes: int) -> None:
    """Bulk in a table of its own, so that copying and checking the database takes a while."""
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE IF NOT EXISTS ballast (b BLOB)")
    con.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) "
                "INSERT INTO ballast SELECT randomblob(1000000) FROM c", (megabytes,))
    con.commit()
    con.close()


def events_of(db: Path) -> list[tuple]:
    """(id, person, time, kind, snapshot) of every event, by id; read with sqlite3 (no migration on open)."""
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT e.id, e.person_id, e.ts, e.kind, s.jpeg FROM events e "
                           "LEFT JOIN event_snapshots s ON s.event_id = e.id ORDER BY e.id").fetchall()
    finally:
        con.close()


def files_state(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def record_some(engine, pids: list[int], n: int) -> None:
    rec = AttendanceRecorder(engine, AttendanceSettings(timezone="UTC", day_boundary_hour=0, dedupe_minutes=0))
    for i in range(n):
        assert rec.record(pids[i % len(pids)], 0.9, ts=T0 + timedelta(minutes=i)) is not None


# ------------------------------------------------------------------------------------------------ (1) under load
def test_a_backup_taken_while_events_are_written_restores_to_a_prefix_of_them(tmp_path):
    db = tmp_path / "live" / "attendance.db"
    db.parent.mkdir()
    engine, pids = new_store(db, people=20)
    add_ballast(db, 30)
    settings = AttendanceSettings(timezone="UTC", day_boundary_hour=0, dedupe_minutes=0, keep_snapshots=True)
    committed: list = []
    writer = EventWriter(AttendanceRecorder(engine, settings), on_event=committed.append)
    stop = threading.Event()

    def feed() -> None:  # a busy entrance: sightings keep coming, each with its snapshot
        i = 0
        while not stop.is_set():
            if writer.pending < 20:
                writer.submit(Sighting(pids[i % len(pids)], 0.9, ts=T0 + timedelta(seconds=i),
                                       snapshot_jpeg=b"jpeg-%06d-" % i + bytes(3000)))
                i += 1
            else:
                time.sleep(0.001)

    def checkpoint() -> None:  # the log is copied into the database file over and over, as SQLite does by itself
        con = sqlite3.connect(db, timeout=10)
        while not stop.is_set():
            con.execute("PRAGMA wal_checkpoint(PASSIVE)")
            time.sleep(0.005)
        con.close()

    feeder = threading.Thread(target=feed)
    feeder.start()
    checkpointer = threading.Thread(target=checkpoint)
    checkpointer.start()
    try:
        deadline = time.monotonic() + 60
        while len(committed) < 30 and time.monotonic() < deadline:
            time.sleep(0.01)
        taken = []
        for k in range(3):
            before = len(committed)
            r = bk.make_backup(db, tmp_path / "backups", keep_daily=10, keep_weekly=0,
                               now=datetime(2026, 12, 1 + k, 12, 0))
            taken.append((r, before, len(committed)))
            time.sleep(0.2)
    finally:
        stop.set()
        feeder.join()
        checkpointer.join()
        assert writer.close(timeout=120) == 0
        engine.dispose()
    live = events_of(db)
    assert len(live) == len(committed) > 30
    assert any(after > before for _, before, after in taken), "no event was committed while a backup ran"
    for k, (r, before, after) in enumerate(taken):
        restored = tmp_path / f"restored-{k}" / "attendance.db"
        result = bk.restore_database(r.path, restored)
        got = events_of(restored)
        assert result.events == len(got)
        assert before <= len(got) <= after + 1, (k, before, len(got), after)
        assert got == live[:len(got)], f"backup {k} is not a prefix of what was committed"
        assert all(row[4] is not None for row in got), "an event without its snapshot: half a transaction"


# ------------------------------------------------------------------------------------------------ (2) refused files
def test_a_corrupt_truncated_or_foreign_file_is_refused_and_the_database_is_untouched(tmp_path):
    live = tmp_path / "live"
    live.mkdir()
    db = live / "attendance.db"
    engine, pids = new_store(db)
    record_some(engine, pids, 40)
    engine.dispose()
    good = bk.make_backup(db, tmp_path / "backups").path
    data = good.read_bytes()
    page = int.from_bytes(data[16:18], "big")
    bad = tmp_path / "bad"
    bad.mkdir()
    truncated = bad / "truncated.db"
    truncated.write_bytes(data[: len(data) // 2])
    corrupt = bytearray(data)
    for p in range(1, len(data) // page):  # every page but the first: its content overwritten past its header
        corrupt[p * page + 12: p * page + page - 16] = os.urandom(page - 28)
    (bad / "corrupt.db").write_bytes(bytes(corrupt))
    con = sqlite3.connect(bad / "foreign.db")
    con.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL)")
    con.commit()
    con.close()
    (bad / "notes.db").write_text("shopping list: milk, eggs\n" * 20)
    before = files_state(live)

    for name, word in [("truncated.db", "truncated"), ("corrupt.db", "damaged"),
                       ("foreign.db", "not an FDFace Attendance database"), ("notes.db", "not a SQLite database")]:
        with pytest.raises(bk.BackupError) as err:
            bk.restore_database(bad / name, db)
        text = str(err.value)
        assert word in text and name in text and "\n" not in text, text
        assert files_state(live) == before, f"the database changed when {name} was refused"
    assert bk.restore_database(good, db).events == 40  # the good one is taken (the check can say yes)


# ------------------------------------------------------------------------------------------------ (3) SIGKILL
KILLED_BACKUP = """
import sys
from desktop_app.cli import main
sys.exit(main(["backup", "--db", sys.argv[1], "--to", sys.argv[2]]))
"""


@pytest.mark.skipif(os.name == "nt", reason="SIGKILL is POSIX")
@pytest.mark.parametrize("kill_after", ["copy started", "copy written"])
def test_a_backup_killed_half_way_leaves_nothing_that_is_listed_or_restored(tmp_path, kill_after):
    db = tmp_path / "live" / "attendance.db"
    db.parent.mkdir()
    engine, pids = new_store(db)
    record_some(engine, pids, 10)
    engine.dispose()
    add_ballast(db, 150)
    folder = tmp_path / "backups"
    size = db.stat().st_size
    proc = subprocess.Popen([sys.executable, "-c", KILLED_BACKUP, str(db), str(folder)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    want = 1 if kill_after == "copy started" else size  # some bytes, or all of them (then it is verifying)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        written = [p for p in folder.iterdir() if not p.name.endswith("-journal")] if folder.is_dir() else []
        try:
            if written and written[0].stat().st_size >= want:
                break
        except FileNotFoundError:
            pass
        time.sleep(0.002)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL, "the backup finished before it could be killed: use a bigger database"
    left = sorted(p for p in folder.iterdir())
    assert left, "the kill came before the backup wrote anything"
    assert bk.list_backups(folder, db) == []
    before = files_state(db.parent)
    for p in left:
        with pytest.raises(bk.BackupError):
            bk.restore_database(p, db)
        assert files_state(db.parent) == before
    # the next backup is complete and the only one listed
    r = bk.make_backup(db, folder)
    assert [b.path for b in bk.list_backups(folder, db)] == [r.path]


# ------------------------------------------------------------------------------------------------ (4) older schema
def test_restoring_a_backup_of_an_older_schema_migrates_it_forward_and_drops_the_saved_index(tmp_path):
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(st.MIGRATIONS_DIR))
    script = ScriptDirectory.from_config(cfg)
    head = script.get_current_head()
    older = script.get_revision(head).down_revision
    assert older, "only one migration: nothing older to restore"
    old_db = tmp_path / "old" / "attendance.db"
    old_db.parent.mkdir()
    engine = st.create_store_engine(url_of(old_db))
    with engine.connect() as conn:  # a database as an earlier version of the app left it
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, older)
        conn.commit()
    engine.dispose()
    con = sqlite3.connect(old_db)
    con.execute("INSERT INTO people (name, active, pseudonym, created_at, updated_at) "
                "VALUES ('Ada Lovelace', 1, 'anon-0123456789ab', '2025-01-01 08:00:00', '2025-01-01 08:00:00')")
    con.commit()
    con.close()

    db = tmp_path / "live" / "attendance.db"
    db.parent.mkdir()
    engine, _ = new_store(db, people=0)
    engine.dispose()
    index = [db.with_name(f"{db.name}.fdfacenet_abc.faiss"), db.with_name(f"{db.name}.fdfacenet_abc.faiss.ids")]
    for f in index:
        f.write_bytes(b"saved index of the database being replaced")
    r = bk.restore_database(old_db, db)
    assert (r.schema_before, r.schema_now, r.migrated) == (older, head, True)
    con = sqlite3.connect(db)
    try:
        assert con.execute("SELECT version_num FROM alembic_version").fetchall() == [(head,)]
        assert con.execute("SELECT name FROM people").fetchall() == [("Ada Lovelace",)]
    finally:
        con.close()
    assert not any(f.exists() for f in index) and set(r.index_files_removed) == set(index)
    assert r.kept_aside is not None and r.kept_aside.exists()
    con = sqlite3.connect(old_db)  # the file given was not changed
    try:
        assert con.execute("SELECT version_num FROM alembic_version").fetchall() == [(older,)]
    finally:
        con.close()


# ------------------------------------------------------------------------------------------------ (5) retention
def test_retention_keeps_the_newest_of_the_last_days_and_weeks(tmp_path):
    db = tmp_path / "attendance.db"
    db.write_bytes(b"")
    folder = tmp_path / "backups"
    folder.mkdir()
    prefix = bk.backup_prefix(db)
    stamps = ["2026-12-04 18:00", "2026-12-04 12:00", "2026-12-03 09:00", "2026-12-02 09:00", "2026-12-01 09:00",
              "2026-11-30 09:00", "2026-11-29 09:00", "2026-11-28 09:00", "2026-11-27 09:00", "2026-11-20 09:00",
              "2026-11-13 09:00", "2026-11-06 09:00", "2026-10-30 09:00"]
    names = {}
    for s in stamps:
        names[s] = f"{prefix}-{datetime.strptime(s, '%Y-%m-%d %H:%M'):%Y%m%d-%H%M%S}.db"
        (folder / names[s]).write_bytes(b"x")
    other = folder / "attendance-ffffff-20260101-000000.db"  # another database's backup: not this one's to prune
    other.write_bytes(b"x")
    # 3 days: Dec 4 (the 18:00 one), 3, 2; 3 ISO weeks: week 49 (Dec 4 18:00), 48 (Sun Nov 29), 47 (Fri Nov 20)
    keep = {"2026-12-04 18:00", "2026-12-03 09:00", "2026-12-02 09:00", "2026-11-29 09:00", "2026-11-20 09:00"}
    removed = bk.prune(folder, db, keep_daily=3, keep_weekly=3)
    assert {p.name for p in removed} == {names[s] for s in stamps if s not in keep}
    assert {p.name for p in folder.iterdir()} == {names[s] for s in keep} | {other.name}
    assert bk.retained(bk.list_backups(folder, db), 1, 0) == {folder / names["2026-12-04 18:00"]}


# ------------------------------------------------------------------------------------------------ (6) CLI
def test_cli_backup_list_restore_and_postgresql(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("FDFACE_DB", raising=False)
    cfg = tmp_path / "settings.toml"
    Settings().save(cfg)
    db = tmp_path / "live" / "attendance.db"
    db.parent.mkdir()
    engine, pids = new_store(db)
    record_some(engine, pids, 5)
    engine.dispose()
    folder = tmp_path / "backups"
    base = ["--db", str(db), "--config", str(cfg)]

    assert cli_main(["backup", *base, "--to", str(folder)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"backed up {db} to {folder}") and "3 people, 5 events" in out and "verified" in out
    (backup,) = bk.list_backups(folder, db)
    assert cli_main(["backup", *base, "--to", str(folder), "--list"]) == 0
    assert str(backup.path) in capsys.readouterr().out

    damaged = tmp_path / "damaged.db"
    damaged.write_bytes(backup.path.read_bytes()[:50_000])
    before = files_state(db.parent)
    assert cli_main(["restore", str(damaged), *base, "--yes"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "truncated" in err and "Traceback" not in err, err
    monkeypatch.setattr("sys.stdin", open(os.devnull))  # noqa: SIM115 - no terminal: no question, no restore
    assert cli_main(["restore", str(backup.path), *base]) == 2
    err = capsys.readouterr().err
    assert "not restored" in err and "--yes" in err
    assert files_state(db.parent) == before

    other = st.open_engine(url_of(db))  # another program with the database open, idle
    with Session(other) as sess:
        assert st.count_events(sess) == 5
    assert cli_main(["restore", str(backup.path), *base, "--yes"]) == 2
    assert "in use by another program" in capsys.readouterr().err
    other.dispose()
    assert files_state(db.parent) == before
    assert cli_main(["restore", str(backup.path), *base, "--yes"]) == 0
    out = capsys.readouterr().out
    assert "restored" in out and "kept as" in out and "before-restore-" in out
    assert len(events_of(db)) == 5

    pg = "postgresql+psycopg://kiosk:s3cret@db-host:5433/attendance"
    for command, tool in (["backup"], "pg_dump"), (["restore", "x.dump"], "pg_restore"):
        assert cli_main([*command, "--db", pg, "--config", str(cfg)]) == bk.EXIT_USE_PG_TOOLS
        cap = capsys.readouterr()
        assert cap.out.startswith(tool) and "--host=db-host" in cap.out and "--port=5433" in cap.out
        assert "--username=kiosk" in cap.out and "s3cret" not in cap.out + cap.err
        assert "Nothing was done" in cap.err


def test_cli_restore_on_postgresql_prints_the_command_for_the_file_given(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("FDFACE_DB", raising=False)
    cfg = tmp_path / "settings.toml"
    Settings().save(cfg)
    pg = "postgresql+psycopg://kiosk@db-host/attendance"
    assert cli_main(["restore", "nightly 2026-12-03.dump", "--db", pg, "--config", str(cfg)]) == 3
    out = capsys.readouterr().out.strip()
    assert out.startswith("pg_restore ") and out.endswith(" 'nightly 2026-12-03.dump'"), out
    assert out.count(".dump") == 1


def test_cli_backup_into_a_file_says_choose_a_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("FDFACE_DB", raising=False)
    cfg = tmp_path / "settings.toml"
    Settings().save(cfg)
    db = tmp_path / "attendance.db"
    new_store(db)[0].dispose()
    assert cli_main(["backup", "--db", str(db), "--config", str(cfg), "--to", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert f"{cfg} is a file, not a folder: choose a folder" in err and err.count("\n") == 1, err


def test_backup_and_kept_copy_names_are_utc_and_listed_on_the_configured_clock(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("FDFACE_DB", raising=False)
    cfg = tmp_path / "settings.toml"
    Settings().with_changes("attendance", timezone="Pacific/Kiritimati").save(cfg)  # UTC+14: not this machine's
    db = tmp_path / "attendance.db"
    new_store(db)[0].dispose()
    folder = tmp_path / "backups"
    assert cli_main(["backup", "--db", str(db), "--config", str(cfg), "--to", str(folder)]) == 0
    capsys.readouterr()
    (b,) = bk.list_backups(folder, db)
    assert b.path.name.endswith("Z.db") and b.taken.tzinfo is not None
    assert abs((datetime.now(UTC) - b.taken).total_seconds()) < 120  # the name's time is UTC
    assert cli_main(["backup", "--db", str(db), "--config", str(cfg), "--to", str(folder), "--list"]) == 0
    shown = b.taken.astimezone(ZoneInfo("Pacific/Kiritimati"))
    assert f"{shown:%Y-%m-%d %H:%M:%S} Pacific/Kiritimati" in capsys.readouterr().out
    # a backup named by an earlier version (local time, no Z) is still listed, at the same moment
    old = folder / f"{bk.backup_prefix(db)}-20261201-120000.db"
    old.write_bytes(b.path.read_bytes())
    older = next(x for x in bk.list_backups(folder, db) if x.path == old)
    assert older.taken == datetime(2026, 12, 1, 12).astimezone().astimezone(UTC)
    old.unlink()
    r = bk.restore_database(b.path, db, now=datetime(2026, 12, 4, 17, 45, 12, tzinfo=UTC))
    assert r.kept_aside is not None and r.kept_aside.name == "attendance.db.before-restore-20261204-174512Z"


def test_kept_copies_are_never_deleted_and_the_restore_says_how_many(tmp_path):
    """Each kept copy may hold the only record of attendance taken after its backup: the app keeps them all and
    says how many there are and their size, for a person to decide."""
    db = tmp_path / "attendance.db"
    engine, pids = new_store(db)
    record_some(engine, pids, 2)
    engine.dispose()
    backup = bk.make_backup(db, tmp_path / "backups").path
    legacy = db.with_name(db.name + ".before-restore-20261101-080000")  # an earlier version's name: the oldest
    legacy.write_bytes(db.read_bytes())
    results = [bk.restore_database(backup, db, now=datetime(2026, 12, d, 9, tzinfo=UTC)) for d in (1, 2, 3, 4)]
    kept = sorted(p.name for p in tmp_path.glob("attendance.db.before-restore-*"))
    assert kept == [legacy.name] + [f"attendance.db.before-restore-2026120{d}-090000Z" for d in (1, 2, 3, 4)]
    assert len(results[3].kept_copies) == 5 and results[3].kept_copies[-1] == legacy
    note = bk.copies_note(results[3].kept_copies)
    assert "5 copies" in note and "never deletes" in note and legacy.name in note
    assert len(events_of(db)) == 2


def test_background_refusals_are_logged_in_one_line_and_bugs_with_their_traceback(tmp_path, request, caplog):
    pytest.importorskip("pytestqt")
    qtbot = request.getfixturevalue("qtbot")
    from desktop_app.ui.tasks import TaskQueue

    q = TaskQueue("test-refusals")
    got: list[str] = []

    def refuse():
        raise bk.BackupError("damaged.db is truncated: use another backup")

    def bug():
        return 1 / 0

    try:
        with caplog.at_level("WARNING", logger="desktop_app.ui.tasks"):
            for job in (refuse, bug):
                q.submit(job, None, got.append)
            qtbot.waitUntil(lambda: len(got) == 2, timeout=10_000)
    finally:
        q.stop()
    assert got == ["damaged.db is truncated: use another backup", "division by zero"]
    refused, failed = [r for r in caplog.records if r.name == "desktop_app.ui.tasks"]
    assert not refused.exc_info and refused.getMessage() == "background job 1 refused: damaged.db is truncated: " \
        "use another backup"
    assert failed.exc_info is not None and failed.exc_info[0] is ZeroDivisionError


# ------------------------------------------------------------------------------------------------ (7) the GUI
def test_gui_back_up_now_and_restore_with_confirmation(tmp_path, request, monkeypatch):
    pytest.importorskip("pytestqt")
    qtbot = request.getfixturevalue("qtbot")
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    from desktop_app.ui.controller import AppController

    db = tmp_path / "attendance.db"
    engine, pids = new_store(db)
    record_some(engine, pids, 4)
    engine.dispose()
    s = Settings().with_changes("storage", database_url=url_of(db)).with_changes("performance", threads=1)
    s = s.with_changes("capture", source="").with_changes("backup", folder=str(tmp_path / "backups"))
    ctl = AppController(s, tmp_path / "settings.toml", source="", camera_lister=lambda: [])
    qtbot.addWidget(ctl.window)
    try:
        with qtbot.waitSignal(ctl.storeReady, timeout=60_000):
            ctl.start()
        assert ctl.backups.first_look.isActive() and ctl.backups.timer.isActive()  # the daily backup is scheduled
        texts = [a.text() for a in ctl.window.menuBar().actions()[0].menu().actions()]
        assert "&Back up now" in texts and "&Restore from backup…" in texts
        with qtbot.waitSignal(ctl.backups.finished, timeout=60_000) as said:
            assert ctl.backups.backup_if_due()  # the daily backup: none yet, so one is made now
        assert said.args[0].startswith("Backed up to") and "4 events" in said.args[0]
        with qtbot.waitSignal(ctl.backups.finished, timeout=60_000) as said:
            ctl.window.act_backup.trigger()
        assert said.args[0].startswith("Backed up to") and "4 events" in said.args[0]
        assert "1 older backup(s) removed" in said.args[0]  # the same day: its newest is kept
        assert ctl.window.statusBar().currentMessage() == said.args[0]
        (backup,) = bk.list_backups(tmp_path / "backups", db)
        box = ctl.backups.box  # Back up now: the whole path, in a box where it can be selected and copied
        assert isinstance(box, QMessageBox) and box.isVisible() and str(backup.path) in box.text()
        assert box.textInteractionFlags() & Qt.TextInteractionFlag.TextSelectableByMouse
        box.accept()
        assert not ctl.backups.backup_if_due()  # one a day: there is one from now

        dlg = ctl.show_settings()  # Settings > Backups: validated and saved like every other field
        dlg.set_field("backup", "keep_daily", 0)
        assert "Daily backups kept" in dlg.problem()
        dlg.set_field("backup", "keep_daily", 3)
        dlg.set_field("backup", "scheduled", False)
        dlg.accept()
        assert (ctl.settings.backup.keep_daily, ctl.settings.backup.scheduled) == (3, False)
        assert Settings.load(tmp_path / "settings.toml").backup.keep_daily == 3
        aside = tmp_path / "aside.db"
        backup.path.rename(aside)  # no backup at all now, but the daily backup is off
        assert not ctl.backups.backup_if_due()
        aside.rename(backup.path)

        with Session(ctl.engine) as sess, sess.begin():  # recorded after the backup
            st.add_event(sess, st.require_person(sess, pids[0]), T0 + timedelta(days=1), "UTC", "door", "check-in", 0.9)
        monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(backup.path), ""))
        ctl.window.act_restore.trigger()
        box = ctl.backups.box
        assert isinstance(box, QMessageBox) and box.defaultButton().text() == "Cancel"
        box.button(QMessageBox.StandardButton.Cancel).click()  # cancelled: nothing happens
        qtbot.wait(200)
        assert ctl.backups.running == "" and len(events_of(db)) == 5

        damaged = tmp_path / "damaged.db"  # refused: the app goes on with its database, nothing was closed
        damaged.write_bytes(backup.path.read_bytes()[:30_000])
        gallery, engine = ctl.gallery, ctl.engine
        monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(damaged), ""))
        ctl.window.act_restore.trigger()
        with qtbot.waitSignal(ctl.backups.finished, timeout=60_000) as said:
            ctl.backups.box.button(QMessageBox.StandardButton.Yes).click()
        assert said.args[0].startswith("Not restored: ") and "truncated" in said.args[0]
        assert "truncated" in ctl.backups.box.text()
        ctl.backups.box.accept()
        assert (ctl.gallery, ctl.engine) == (gallery, engine) and len(events_of(db)) == 5

        monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(backup.path), ""))
        ctl.window.act_restore.trigger()
        with qtbot.waitSignals([ctl.backups.finished, ctl.storeReady], timeout=60_000):
            ctl.backups.box.button(QMessageBox.StandardButton.Yes).click()
        msg = ctl.window.statusBar().currentMessage()
        assert msg.startswith(f"Restored from {backup.path}") and "kept as" in msg
        with Session(ctl.engine) as sess:
            assert st.count_events(sess) == 4  # as the backup had it
        kept = ctl.backups.last.kept_aside
        assert len(events_of(kept)) == 5  # the event recorded after the backup is in the kept copy
        box = ctl.backups.box  # the restore's result: the full path of the kept copy, selectable, never cut off
        assert isinstance(box, QMessageBox) and box.isVisible() and box.windowTitle() == "Restore"
        assert str(kept) in box.text() and str(backup.path) in box.text()
        assert box.textInteractionFlags() & Qt.TextInteractionFlag.TextSelectableByMouse
        box.accept()

        # the app records into the restored database
        ctl.writer.submit(Sighting(pids[1], 0.9, ts=datetime.now(UTC)))
        qtbot.waitUntil(lambda: len(events_of(db)) == 5, timeout=30_000)
    finally:
        ctl.shutdown()
