"""The store, the gallery and the attendance rules on PostgreSQL (several kiosks sharing one gallery).

Runs against ``FDFACE_TEST_POSTGRES_URL`` when it names a database (e.g.
postgresql+psycopg://postgres@127.0.0.1/fdface_test); otherwise, when the PostgreSQL server binaries (initdb,
pg_ctl) and the psycopg driver are installed, against a throwaway server started for this module in a temporary
folder (Unix socket only, trust auth, as the ``postgres`` user when the tests run as root, since the server
refuses root). Skips with the reason when neither is at hand. Each test works in a schema of its own, dropped
afterwards.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from desktop_app import storage as st
from desktop_app.attendance.grid import build_grid
from desktop_app.attendance.recorder import AttendanceRecorder
from desktop_app.attendance.reports import daily_summary
from desktop_app.config import AttendanceSettings
from desktop_app.gallery.service import Gallery

URL = os.environ.get("FDFACE_TEST_POSTGRES_URL", "")


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    cands = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return cands[-1] if cands else None


def _free_port() -> int:
    with socket.socket() as sk:
        sk.bind(("127.0.0.1", 0))
        return sk.getsockname()[1]


@pytest.fixture(scope="module")
def pg_url():
    if URL:
        yield URL
        return
    pytest.importorskip("psycopg", reason="no PostgreSQL driver (pip install -e '.[postgres]')")
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("no FDFACE_TEST_POSTGRES_URL and no PostgreSQL server binaries (initdb, pg_ctl) to start one")
    root = Path(tempfile.mkdtemp(prefix="fdface-pg-"))  # short path: the socket's name has a length limit
    data, run_as = root / "data", []
    if os.geteuid() == 0:  # postgres refuses to run as root: run the throwaway server as the postgres user
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user to start a throwaway server as")
        runuser = shutil.which("runuser")
        if not runuser:
            pytest.skip("running as root and runuser is missing")
        os.chown(root, user.pw_uid, user.pw_gid)
        run_as = [runuser, "-u", "postgres", "--"]
    port = _free_port()

    def run(*cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run([*run_as, *cmd], capture_output=True, text=True, timeout=120)

    r = run(initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
    if r.returncode:
        pytest.skip(f"initdb failed: {r.stderr.strip()[-300:]}")
    r = run(pg_ctl, "-D", str(data), "-w", "-l", str(root / "log.txt"),
            "-o", f"-p {port} -k {root} -c listen_addresses='' -c fsync=off", "start")
    if r.returncode:
        pytest.skip(f"pg_ctl start failed: {(r.stderr or r.stdout).strip()[-300:]}")
    try:
        yield f"postgresql+psycopg://postgres@/postgres?host={root}&port={port}"
    finally:
        run(pg_ctl, "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_kiosk(pg_url: str):
    """A function that opens one more engine (another kiosk: its own connection pool) on this test's schema."""
    try:
        admin = create_engine(pg_url)
        with admin.begin() as c:
            schema = f"fdface_test_{uuid.uuid4().hex[:10]}"
            c.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # no driver, no server
        pytest.skip(f"PostgreSQL at {st.describe_url(pg_url)} not usable: {exc}")
    engines: list = []

    def kiosk():
        engines.append(st.open_engine(pg_url, connect_args={"options": f"-csearch_path={schema}"}))
        return engines[-1]

    yield kiosk
    for e in engines:
        e.dispose()
    with admin.begin() as c:
        c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def pg(pg_kiosk):
    return pg_kiosk()


def vec(seed: int, dim: int = 32) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def test_schema_people_templates_events_on_postgres(pg) -> None:
    assert st.schema_version(pg) == st.SCHEMA_HEAD
    with Session(pg) as s, s.begin():
        a = st.add_person(s, "Ada", external_id="E1", group="eng")
        b = st.add_person(s, "Bob", group="eng")
        st.add_templates(s, a.id, [st.NewTemplate(vec(i), "m@1", crop_jpeg=b"c") for i in range(3)])
        st.add_templates(s, b.id, [st.NewTemplate(vec(9), "m@1")])
        ids = a.id, b.id
    with Session(pg) as s, s.begin(), pytest.raises(st.StoreError, match="already belongs"):
        st.add_person(s, "Eve", external_id="E1")
    with pytest.raises(Exception, match="(?i)unique"), Session(pg) as s, s.begin():
        s.add(st.Person(name="Raw", external_id="E1"))

    g = Gallery(pg, "m@1", 32)
    g.load()
    assert len(g.index) == 4 and g.index.names == {ids[0]: "Ada", ids[1]: "Bob"}
    (m,) = g.decide(vec(1), 0.5, 0.0)
    assert m.person_id == ids[0]

    t0 = datetime(2026, 6, 1, 7, 0, tzinfo=UTC)
    rec = AttendanceRecorder(pg, AttendanceSettings(timezone="UTC", day_boundary_hour=0))
    assert rec.record(ids[0], 0.9, ts=t0).kind == "check-in"
    assert rec.record(ids[0], 0.9, ts=t0 + timedelta(minutes=1)) is None
    assert rec.record(ids[0], 0.9, ts=t0 + timedelta(hours=8)).kind == "check-out"
    with Session(pg) as s:
        days = daily_summary(s, date(2026, 6, 1), date(2026, 6, 1), UTC, 0)
        assert [(d.name, d.present) for d in days] == [("Ada", timedelta(hours=8))]
        for p in s.scalars(select(st.Person)):  # enrolled before the day looked at
            p.created_at = datetime(2026, 5, 1, tzinfo=UTC)
        s.flush()
        marks = build_grid(s, date(2026, 6, 1), date(2026, 6, 1), UTC, "UTC", dtime(9), date(2026, 7, 1), 0)
        assert [r.name for _, r in marks.absences()] == ["Bob"]

    er = g.delete_person(ids[0])
    assert er.templates == 3 and er.events_pseudonymised == 2 and len(g.index) == 1
    with Session(pg) as s:
        days = daily_summary(s, date(2026, 6, 1), date(2026, 6, 1), UTC, 0)
        assert days[0].name is None and days[0].person_ref.startswith("anon-")


def test_a_second_kiosk_sees_new_enrollments_on_refresh(pg) -> None:
    one, two = Gallery(pg, "m@1", 32), Gallery(pg, "m@1", 32)
    one.load()
    two.load()
    with Session(pg) as s, s.begin():
        p = st.add_person(s, "New")
        rows = st.add_templates(s, p.id, [st.NewTemplate(vec(3), "m@1")])
        pid, tids = p.id, [r.id for r in rows]
    one.index_added(pid, "New", tids, vec(3)[None])
    assert len(one.index) == 1 and len(two.index) == 0
    assert two.refresh() and two.index.names == {pid: "New"}
    assert not two.refresh()


def test_concurrent_kiosks_record_one_check_in_per_person(pg_kiosk) -> None:
    """Eight kiosks (engines) deciding at the same instant: one check-in, one check-out (was one per kiosk)."""
    from tests.test_attendance_concurrency import race_recorders

    race_recorders(pg_kiosk)


def test_field_limits_are_checked_before_postgres_refuses_them(pg) -> None:
    """Long station / external id / group: a StoreError naming the field (was a DataError at the first face)."""
    from tests.test_gallery_fields import check_field_limits

    check_field_limits(pg)
