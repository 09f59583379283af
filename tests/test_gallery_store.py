"""The store on a real SQLite file: migrations, SQLite settings, people, templates, erasure, clear errors."""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from desktop_app import storage as st
from desktop_app.attendance.queries import list_people


@pytest.fixture
def engine(tmp_path):
    e = st.open_engine(f"sqlite:///{tmp_path / 'g.db'}")
    yield e
    e.dispose()


def vec(seed: int, dim: int = 16) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def test_open_creates_schema_with_sqlite_settings(tmp_path) -> None:
    path = tmp_path / "sub" / "dir" / "g.db"  # missing folders are created
    e = st.open_engine(f"sqlite:///{path}")
    assert st.schema_version(e) == st.SCHEMA_HEAD
    with e.connect() as c:
        assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() == st.SQLITE_BUSY_TIMEOUT_MS
    e.dispose()
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # persistent in the file
    tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"people", "templates", "template_crops", "events", "event_snapshots", "alembic_version"} <= tables
    raw.close()
    # opening again is a no-op migration
    e2 = st.open_engine(f"sqlite:///{path}")
    assert st.schema_version(e2) == st.SCHEMA_HEAD
    e2.dispose()


def test_people_names_repeat_external_ids_do_not(engine) -> None:
    with Session(engine) as s, s.begin():
        a = st.add_person(s, "  Sam Lee ", external_id="E-1", group="night")
        b = st.add_person(s, "Sam Lee")
        assert a.name == b.name == "Sam Lee" and a.id != b.id
        assert a.pseudonym != b.pseudonym and a.pseudonym.startswith("anon-")
        assert a.created_at.tzinfo is UTC
        a_id, b_id = a.id, b.id
    with Session(engine) as s, s.begin(), pytest.raises(st.StoreError, match="already belongs to Sam Lee"):
        st.add_person(s, "Other", external_id="E-1")
    with Session(engine) as s, s.begin(), pytest.raises(st.StoreError, match="needs a name"):
        st.add_person(s, "   ")
    with Session(engine) as s:
        assert [p.name for p in list_people(s, "sam")] == ["Sam Lee", "Sam Lee"]
        assert [p.external_id for p in list_people(s, "E-1")] == ["E-1"]
        assert [p.id for p in list_people(s, "nig")] == [a_id]  # any part of the group too
        assert [p.id for p in list_people(s, f"#{b_id}")] == [b_id]
        assert len(list_people(s, group="night")) == 1
        assert [p.templates for p in list_people(s, active=True)] == [0, 0]
        assert st.resolve_person(s, "E-1").id == a_id
        assert st.resolve_person(s, f"#{b_id}").id == b_id
        with pytest.raises(st.StoreError, match="2 people are named 'Sam Lee'"):
            st.resolve_person(s, "Sam Lee")
        with pytest.raises(st.StoreError, match="no person"):
            st.resolve_person(s, "Nobody")


def test_unique_external_id_is_enforced_by_the_database(engine) -> None:
    with Session(engine) as s, s.begin():
        s.add(st.Person(name="A", external_id="X"))
    with pytest.raises(Exception, match="UNIQUE"), Session(engine) as s, s.begin():
        s.add(st.Person(name="B", external_id="X"))


def test_templates_round_trip_and_fingerprint(engine) -> None:
    with Session(engine) as s, s.begin():
        p = st.add_person(s, "Ada")
        q = st.add_person(s, "Bob", active=False)
        st.add_templates(s, p.id, [st.NewTemplate(vec(i), "m@1", 0.5, f"a{i}.jpg", b"jpeg") for i in range(3)])
        st.add_templates(s, q.id, [st.NewTemplate(vec(9), "m@1")])
        st.add_templates(s, p.id, [st.NewTemplate(vec(5), "old@0")])
        pid = p.id
    with Session(st.reader(engine)) as s:
        arr = st.load_templates(s, "m@1", 16)
        assert arr.person_ids.tolist() == [pid] * 3  # inactive Bob left out
        np.testing.assert_array_equal(arr.embeddings[1], vec(1))
        assert arr.embeddings.dtype == np.float32
        assert len(st.load_templates(s, "m@1", 16, active_only=False).template_ids) == 4
        assert len(st.load_templates(s, "m@1", 32).template_ids) == 0  # another dimension is not this model
        fp = st.templates_fingerprint(s, "m@1")
        assert st.model_counts(s) == {"m@1": 4, "old@0": 1}
    with Session(engine) as s, s.begin():
        st.delete_templates(s, [int(arr.template_ids[0])])
    with Session(engine) as s:
        assert st.templates_fingerprint(s, "m@1") != fp
    with Session(engine) as s, s.begin(), pytest.raises(st.StoreError, match="non-finite"):
        st.add_templates(s, pid, [st.NewTemplate(np.full(16, np.nan, np.float32), "m@1")])


def _ev(s: Session, person: st.Person, minutes: int, snap: bytes | None = b"snap") -> st.AttendanceEvent:
    t0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    return st.add_event(s, person, t0 + timedelta(minutes=minutes), "UTC", "door", st.EventKind.CHECK_IN, 0.7, snap)


@pytest.mark.parametrize("erase", [False, True])
def test_delete_person_erases_templates_crops_snapshots(engine, erase: bool) -> None:
    with Session(engine) as s, s.begin():
        p = st.add_person(s, "Eve", external_id="E-9")
        other = st.add_person(s, "Ken")
        st.add_templates(s, p.id, [st.NewTemplate(vec(1), "m", crop_jpeg=b"crop1"),
                                   st.NewTemplate(vec(2), "m", crop_jpeg=b"crop2")])
        st.add_templates(s, other.id, [st.NewTemplate(vec(3), "m", crop_jpeg=b"crop3")])
        _ev(s, p, 0)
        _ev(s, p, 60)
        _ev(s, other, 0)
        pid, ref = p.id, p.pseudonym
    with Session(engine) as s, s.begin():
        er = st.delete_person(s, pid, erase_events=erase)
    assert (er.templates, er.snapshots) == (2, 2)
    assert (er.events_deleted, er.events_pseudonymised) == ((2, 0) if erase else (0, 2))
    with Session(engine) as s:
        assert s.get(st.Person, pid) is None
        assert s.scalars(select(st.Template)).all()[0].crop.jpeg == b"crop3"
        assert len(s.scalars(select(st.TemplateCrop)).all()) == 1
        assert len(s.scalars(select(st.EventSnapshot)).all()) == 1  # Ken's
        left = s.scalars(select(st.AttendanceEvent).where(st.AttendanceEvent.person_id.is_(None))).all()
        if erase:
            assert left == []
        else:
            assert len(left) == 2 and {e.person_ref for e in left} == {ref}
            assert "Eve" not in ref and "E-9" not in ref
    with Session(engine) as s, s.begin(), pytest.raises(st.StoreError, match="no person"):
        st.delete_person(s, pid)


def test_foreign_keys_cascade_at_the_database_level(engine) -> None:
    """Even a raw DELETE (another tool, an old app version) cannot leave templates of a missing person."""
    with Session(engine) as s, s.begin():
        p = st.add_person(s, "Raw")
        st.add_templates(s, p.id, [st.NewTemplate(vec(1), "m", crop_jpeg=b"c")])
        _ev(s, p, 0)
        pid = p.id
    with engine.begin() as c:
        c.exec_driver_sql(f"DELETE FROM people WHERE id = {pid}")
    with Session(engine) as s:
        assert s.scalars(select(st.Template)).all() == []
        assert s.scalars(select(st.TemplateCrop)).all() == []
        assert s.scalars(select(st.AttendanceEvent)).one().person_id is None


def test_timestamps_must_be_aware(engine) -> None:
    with Session(engine) as s, s.begin():
        pid = st.add_person(s, "T").id
    with pytest.raises(Exception, match="timezone-aware"), Session(engine) as s, s.begin():
        st.add_event(s, s.get(st.Person, pid), datetime(2026, 1, 1), "UTC", "x", "seen", 0.5)


def test_clear_message_for_malformed_url() -> None:
    with pytest.raises(st.StoreError, match="not valid"):
        st.open_engine("this is not a url")
    with pytest.raises(st.StoreError, match="cannot use"):
        st.open_engine("nosuchdb://host/x")


@pytest.mark.skipif(os.name == "nt" or os.geteuid() == 0, reason="permissions are not enforced for root/Windows")
def test_clear_message_for_unwritable_path(tmp_path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(st.StoreError, match="permission denied"):
            st.open_engine(f"sqlite:///{ro / 'g.db'}")
        with pytest.raises(st.StoreError, match="cannot create the folder"):
            st.open_engine(f"sqlite:///{ro / 'sub' / 'g.db'}")
    finally:
        ro.chmod(0o700)


def test_clear_message_when_the_folder_is_a_file(tmp_path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    with pytest.raises(st.StoreError, match="afile is a file, so the folder for the database cannot be made there"):
        st.open_engine(f"sqlite:///{blocker / 'g.db'}")
    with pytest.raises(st.StoreError, match="is a folder"):
        st.open_engine(f"sqlite:///{tmp_path}")


def test_not_a_database_file(tmp_path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is a text file, not SQLite" * 100)
    with pytest.raises(st.StoreError, match="not an FDFace database or is damaged"):
        st.open_engine(f"sqlite:///{bad}")


def test_clear_message_for_a_locked_database(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(st, "SQLITE_BUSY_TIMEOUT_MS", 200)
    path = tmp_path / "g.db"
    e = st.open_engine(f"sqlite:///{path}")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another program holds the write lock
    try:
        with pytest.raises(st.StoreError, match="busy.*another program"), st.store_errors(), \
                Session(e) as s, s.begin():
            st.add_person(s, "Waiting")
    finally:
        other.execute("ROLLBACK")
        other.close()
        e.dispose()


def test_clear_message_for_an_unreachable_server() -> None:
    pytest.importorskip("psycopg", reason="the PostgreSQL driver (extra 'postgres') is not installed")
    with pytest.raises(st.StoreError, match="cannot reach the database server") as err:
        st.open_engine("postgresql+psycopg://kiosk:s3cret@127.0.0.1:1/attendance")
    assert "s3cret" not in str(err.value) and "\n" not in str(err.value)


def test_clear_message_for_a_read_only_database(tmp_path) -> None:
    """Works as root too (unlike file permissions): SQLite opened read-only refuses every write."""
    st.open_engine(f"sqlite:///{tmp_path / 'g.db'}").dispose()
    ro = st.open_engine(f"sqlite:///file:{tmp_path / 'g.db'}?mode=ro&uri=true")
    with pytest.raises(st.StoreError, match="cannot be written.*readonly"), st.store_errors(), \
            Session(ro) as s, s.begin():
        st.add_person(s, "Nobody")
    ro.dispose()


def test_gallery_attendance_and_cli_import_without_qt() -> None:
    import subprocess
    import sys
    from pathlib import Path

    mods = ("desktop_app.storage", "desktop_app.gallery.index", "desktop_app.gallery.service",
            "desktop_app.gallery.enroll", "desktop_app.attendance.rules", "desktop_app.attendance.recorder",
            "desktop_app.attendance.reports", "desktop_app.attendance.export", "desktop_app.cli.gallery_cmds")
    code = f"import sys, importlib; [importlib.import_module(m) for m in {mods!r}]; " \
           "assert not [m for m in sys.modules if m.startswith(('PySide6', 'torch'))], 'Qt or torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parent.parent)


def test_graph_search_effort_is_a_setting(tmp_path) -> None:
    from desktop_app.config import ConfigError, Settings
    from desktop_app.gallery.index import HNSW_EF_SEARCH
    from desktop_app.gallery.service import Gallery

    assert Settings().storage.hnsw_ef_search == HNSW_EF_SEARCH  # the setting's default is the index's tuned value

    cfg = tmp_path / "settings.toml"
    cfg.write_text(f'[storage]\ndatabase_url = "sqlite:///{tmp_path / "g.db"}"\nhnsw_ef_search = 300\n')
    settings = Settings.load(cfg)
    g = Gallery.open(settings, "m@1", 8, persist_index=False)
    try:
        assert g.index.ef_search == 300
    finally:
        g.close()
    cfg.write_text("[storage]\nhnsw_ef_search = 5\n")
    with pytest.raises(ConfigError, match="storage.hnsw_ef_search"):
        Settings.load(cfg)


def test_store_takes_numpy_ids(engine) -> None:
    """Ids straight from the index arrays (numpy int64) act like Python ints in every store function: SQLite would
    bind an int64 as an 8-byte blob that matches no row, so the store would delete nothing while the index
    removed the templates (issue 18)."""
    with Session(engine) as s, s.begin():
        p = st.add_person(s, "Ada")
        q = st.add_person(s, "Bob")
        st.add_templates(s, np.int64(p.id), [st.NewTemplate(vec(i), "m@1", crop_jpeg=b"c") for i in range(3)])
        st.add_templates(s, q.id, [st.NewTemplate(vec(9), "m@1")])
        st.add_event(s, q, datetime(2026, 3, 2, 8, 0, tzinfo=UTC), "UTC", "door", st.EventKind.CHECK_IN, 0.7)
        pid, qid = p.id, q.id
    with Session(engine) as s:
        arr = st.load_templates(s, "m@1", 16)
    ada = arr.template_ids[arr.person_ids == pid]
    assert ada.dtype == np.int64
    with Session(engine) as s, s.begin():
        assert st.delete_templates(s, ada[:2]) == 2
        assert st.delete_templates(s, iter([ada[2]])) == 1
    with Session(engine) as s:
        assert st.load_templates(s, "m@1", 16).person_ids.tolist() == [qid]
        assert s.scalar(select(st.TemplateCrop.template_id)) is None
        assert st.get_person(s, np.int64(pid)).name == "Ada"
    with Session(engine) as s, s.begin():
        assert st.delete_person(s, np.int64(qid), erase_events=True).events_deleted == 1


def test_a_database_is_described_as_a_person_would_type_it(tmp_path) -> None:
    from desktop_app.dburl import database_url

    path = tmp_path / "kiosk" / "attendance.db"
    assert st.describe_url(f"sqlite:///{path}") == str(path)  # the status bar shows the file, not a URL
    assert database_url(st.describe_url(database_url(str(path)))) == database_url(str(path))  # and it types back
    assert st.describe_url("sqlite://") == "a SQLite database in memory"
    shown = st.describe_url("postgresql+psycopg://kiosk:s3cret@db.lab/attendance")
    assert "s3cret" not in shown and shown.startswith("postgresql+psycopg://kiosk:") and "db.lab/attendance" in shown
    assert st.describe_url("not a url") == "'not a url'"
    err = st.friendly_error(sqlite3.OperationalError("database is locked"), f"sqlite:///{path}")
    assert f"({path})" in str(err) and "sqlite:" not in str(err)


def test_people_named_matches_up_to_case_and_spacing_beyond_ascii(engine) -> None:
    with Session(engine) as s, s.begin():
        zoe = st.add_person(s, "Zoë  Ångström")
        st.add_person(s, "Zoe Angstrom")
        gone = st.add_person(s, "ZOË ÅNGSTRÖM")
        gone.active = False
        s.flush()
        want = [zoe.id, gone.id]
    with Session(engine) as s:
        assert [p.id for p in st.people_named(s, " zoë ångström ")] == want  # inactive ones too
        assert st.people_named(s, "   ") == [] and st.people_named(s, "Zoë") == []
        import unicodedata

        assert [p.id for p in st.people_named(s, unicodedata.normalize("NFD", "Zoë Ångström"))] == want
