"""No attendance record is lost: a writer process is killed (SIGKILL) while events stream in, and every event it
had reported is found committed in the database afterwards."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from desktop_app import storage as st

REPO = Path(__file__).resolve().parent.parent

# The writer: the GUI's path (EventWriter thread -> AttendanceRecorder -> its own committed transaction ->
# on_event). It reports each event on stdout from on_event, i.e. only after the commit. A fake clock advances
# 6 minutes per sighting so that every sighting passes the 5-minute dedupe window and becomes an event.
WRITER = textwrap.dedent("""
    import sys
    import time
    from datetime import UTC, datetime, timedelta
    from sqlalchemy.orm import Session
    from desktop_app.attendance.recorder import AttendanceRecorder, EventWriter, Sighting
    from desktop_app.config import AttendanceSettings
    from desktop_app import storage as st

    engine = st.open_engine(sys.argv[1])
    with Session(engine) as s, s.begin():
        ids = [st.add_person(s, f"person {i}").id for i in range(20)]
    print("ready", flush=True)
    t0 = datetime(2026, 5, 4, 6, 0, tzinfo=UTC)

    def report(ev):
        print(f"event {ev.id} {ev.person_id} {ev.kind}", flush=True)

    rec = AttendanceRecorder(engine, AttendanceSettings(timezone="UTC", day_boundary_hour=0))
    w = EventWriter(rec, on_event=report)
    n = 0
    while True:
        w.submit(Sighting(ids[n % 20], 0.8, ts=t0 + timedelta(minutes=6 * n)))
        n += 1
        if n % 50 == 0:
            while w.pending > 20:
                time.sleep(0.001)
""")


def test_sigkill_loses_no_reported_event(tmp_path) -> None:
    if not hasattr(signal, "SIGKILL"):
        pytest.skip("needs SIGKILL (POSIX)")
    db = tmp_path / "durable.db"
    url = f"sqlite:///{db}"
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=REPO)
    reported: list[tuple[int, int, str]] = []
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.strip() == "ready", first + (proc.stderr.read() if proc.poll() is not None else "")
        deadline = time.monotonic() + 60
        while len(reported) < 150 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            _, eid, pid, kind = line.split()
            reported.append((int(eid), int(pid), kind))
        proc.send_signal(signal.SIGKILL)  # mid-stream: the writer is in the middle of its next transactions
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert len(reported) >= 150, proc.stderr.read() if proc.stderr else ""
    assert proc.returncode == -signal.SIGKILL

    raw = sqlite3.connect(db)
    assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    raw.close()
    engine = st.open_engine(url)
    with Session(engine) as s:
        stored = {e.id: e for e in s.scalars(select(st.AttendanceEvent))}
    engine.dispose()
    missing = [r for r in reported if r[0] not in stored]
    assert not missing, f"{len(missing)} reported events are not in the database: {missing[:5]}"
    for eid, pid, kind in reported:
        assert stored[eid].person_id == pid
        assert stored[eid].kind == kind  # recorded events are final (rules.py)
    assert len(stored) >= len(reported)
