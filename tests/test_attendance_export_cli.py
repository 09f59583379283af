"""`fdface export` as a shell user runs it (subprocesses): relative days, and a reader that stops early."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from desktop_app import storage as st

REPO = Path(__file__).resolve().parent.parent
ENTRY = "import sys; from desktop_app.cli import main; sys.exit(main())"


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("FDFACE_DB", None)
    return env


def _db(tmp_path: Path, events: list[tuple[str, datetime]]) -> tuple[str, Path]:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    engine = st.open_engine(url)
    with Session(engine) as s, s.begin():
        people: dict[str, st.Person] = {}
        for name, ts in events:
            p = people.get(name) or people.setdefault(name, st.add_person(s, name))
            st.add_event(s, p, ts, "UTC", "door", "check-in", 0.9)
    engine.dispose()
    cfg = tmp_path / "settings.toml"
    cfg.write_text('[attendance]\ntimezone = "UTC"\nday_boundary_hour = 0\n')
    return url, cfg


def test_export_day_yesterday(tmp_path) -> None:
    today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    url, cfg = _db(tmp_path, [("Yesterday Person", today - timedelta(days=1)), ("Today Person", today),
                              ("Older Person", today - timedelta(days=2))])
    for days in (["--day", "yesterday"], ["--from", "yesterday"], ["--from", "yesterday", "--to", "yesterday"]):
        r = subprocess.run([sys.executable, "-c", ENTRY, "export", "events", *days, "--db", url, "--config",
                            str(cfg)], capture_output=True, text=True, env=_env(), cwd=REPO, timeout=120)
        assert r.returncode == 0, (days, r.stderr)
        names = [row["name"] for row in csv.DictReader(r.stdout.lstrip("\ufeff").splitlines())]
        assert names == ["Yesterday Person"], (days, names)
    r = subprocess.run([sys.executable, "-c", ENTRY, "export", "events", "--from", "yesterday", "--to", "today",
                        "--db", url, "--config", str(cfg)], capture_output=True, text=True, env=_env(), cwd=REPO,
                       timeout=120)
    assert r.returncode == 0 and "Yesterday Person" in r.stdout and "Today Person" in r.stdout, r.stderr


def test_export_into_a_pipe_that_closes_ends_quietly(tmp_path) -> None:
    """`fdface export events | head -1`: no BrokenPipeError traceback, the status of a tool stopped by SIGPIPE."""
    t0 = datetime.now(UTC).replace(hour=8, minute=0, second=0, microsecond=0)
    url, cfg = _db(tmp_path, [(f"Person {i % 50}", t0 + timedelta(seconds=i)) for i in range(6000)])  # ~0.7 MB
    p = subprocess.Popen([sys.executable, "-c", ENTRY, "export", "events", "--db", url, "--config", str(cfg)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), cwd=REPO)
    assert p.stdout is not None and p.stderr is not None
    first = p.stdout.readline()
    assert first.lstrip(b"\xef\xbb\xbf").startswith(b"event_id,"), first
    p.stdout.close()  # what head does after its lines
    err = p.stderr.read().decode()
    assert p.wait(120) == 141, err
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err, err
