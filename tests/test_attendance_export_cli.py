"""`fdface export` as a shell user runs it (subprocesses): relative days, and a reader that stops early; which days
can have absences and group filters (in process)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
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


# ------------------------------------------------------------------------ absences and groups (in process)
def _class_db(tmp_path: Path, today: date) -> tuple[str, Path, date]:
    """Ada and Bob of group "7B", enrolled a month ago; Bob came on the last working day before today and today.
    Returns the URL, the settings file and that working day."""
    worked = today - timedelta(days=1)
    while worked.weekday() >= 5:
        worked -= timedelta(days=1)
    url = f"sqlite:///{tmp_path / 'class.db'}"
    engine = st.open_engine(url)
    month_ago = datetime.now(UTC) - timedelta(days=30)
    with Session(engine) as s, s.begin():
        ada, bob = st.add_person(s, "Ada", group="7B"), st.add_person(s, "Bob", group="7B")
        ada.created_at = bob.created_at = month_ago
        for d in (worked, today):
            st.add_event(s, bob, datetime.combine(d, time(8), tzinfo=UTC), "UTC", "door", "check-in", 0.9)
    engine.dispose()
    cfg = tmp_path / "settings.toml"
    cfg.write_text('[attendance]\ntimezone = "UTC"\nday_boundary_hour = 0\n')
    return url, cfg, worked


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    from desktop_app.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def _csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(text.lstrip("\ufeff").splitlines()))


def test_export_absent_counts_the_days_the_workbook_counts(tmp_path, capsys, monkeypatch) -> None:
    """Today (not over) and weekends list nobody absent, as the Excel "Absent" sheet: one rule (rules.why_no_absence)
    for both; a day that cannot have absences is said in one line instead of listing everyone."""
    import openpyxl

    monkeypatch.delenv("FDFACE_DB", raising=False)
    today = datetime.now(UTC).date()
    url, cfg, worked = _class_db(tmp_path, today)
    db = ("--db", url, "--config", str(cfg))
    code, out, err = _cli(capsys, "export", "absent", "--day", "today", *db)
    assert code == 0 and len(out.splitlines()) == 1 and _csv_rows(out) == []  # the header only, not Ada
    assert f"no absence can be listed for {today}: {today} is" in err and len(err.splitlines()) == 1, err
    assert ("not over yet" in err) == (today.weekday() < 5) and ("not a working day" in err) == (today.weekday() >= 5)
    code, out, err = _cli(capsys, "export", "absent", "--day", str(today + timedelta(days=2)), *db)
    assert code == 0 and _csv_rows(out) == [] and ("has not come yet" in err or "not a working day" in err), err

    first = today - timedelta(days=10)
    code, out, err = _cli(capsys, "export", "absent", "--from", str(first), "--to", "today", *db)
    assert code == 0 and err == ""
    exported = [(r["day"], r["name"], r["group"]) for r in _csv_rows(out)]
    xlsx = tmp_path / "r.xlsx"
    code, _, err = _cli(capsys, "report", "xlsx", str(xlsx), "--from", str(first), "--to", "today", *db)
    assert code == 0, err
    sheet = openpyxl.load_workbook(xlsx)["Absent"]
    head = [c.value for c in sheet[1]]
    in_workbook = [(r[head.index("day")].date().isoformat() if hasattr(r[head.index("day")], "date")
                    else str(r[head.index("day")]), r[head.index("name")], r[head.index("group")])
                   for r in sheet.iter_rows(min_row=2, values_only=True)]
    assert exported == in_workbook
    code, out, err = _cli(capsys, "export", "absent", "--from", str(first), "--to", "today", "--station", "dor", *db)
    assert code == 2 and out == "" and "dor" in err and "door" in err, err  # not everyone absent at a typo
    assert (str(worked), "Ada", "7B") in exported and all(d != str(today) for d, _, _ in exported)
    assert all(n == "Ada" or d != str(worked) for d, n, _ in exported)  # Bob came that day


def test_group_filters_ignore_case_and_an_unknown_group_is_named(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("FDFACE_DB", raising=False)
    today = datetime.now(UTC).date()
    url, cfg, worked = _class_db(tmp_path, today)
    db = ("--db", url, "--config", str(cfg))
    code, out, err = _cli(capsys, "export", "events", "--day", str(worked), "--group", "7b", *db)
    assert code == 0 and [r["name"] for r in _csv_rows(out)] == ["Bob"] and err == ""
    code, out, err = _cli(capsys, "export", "absent", "--day", str(worked), "--group", " 7b", *db)
    assert code == 0 and [r["name"] for r in _csv_rows(out)] == ["Ada"]
    code, out, _ = _cli(capsys, "people", "--group", "7b", "--json", *db)
    assert code == 0 and len(json.loads(out)) == 2
    # an unknown group: the empty export as before (header only, exit 0), and a one-line hint naming the groups
    code, out, err = _cli(capsys, "export", "events", "--day", str(worked), "--group", "7c", *db)
    assert code == 0 and _csv_rows(out) == [] and out.startswith("event_id,")
    assert err == "fdface export: no group named '7c'; groups: 7B: nothing to export\n", err
    code, out, err = _cli(capsys, "people", "--group", "7c", *db)
    assert code == 0 and "nobody matches" in out and "no group named '7c'; groups: 7B" in err
    xlsx = tmp_path / "g.xlsx"
    code, _, err = _cli(capsys, "report", "xlsx", str(xlsx), "--from", str(worked), "--to", str(worked),
                        "--group", "7B ", *db)
    assert code == 0 and "group 7B" in err, err


def test_a_database_that_cannot_be_written_is_still_read(tmp_path, capsys, monkeypatch) -> None:
    """A copy on a read-only stick or share: lists, exports and reports read it; changes are refused in words. (As
    root nothing is read-only here: the disk check is made to say so.)"""
    from desktop_app.storage import engine

    monkeypatch.delenv("FDFACE_DB", raising=False)
    today = datetime.now(UTC).date()
    url, cfg, worked = _class_db(tmp_path, today)
    db = ("--db", url, "--config", str(cfg))
    monkeypatch.setattr(engine, "_read_only_disk", lambda p: True)
    code, out, err = _cli(capsys, "export", "events", "--day", str(worked), *db)
    assert code == 0 and [r["name"] for r in _csv_rows(out)] == ["Bob"]
    assert f"note: {tmp_path / 'class.db'} cannot be written here: it is read, not changed" in err
    code, out, _ = _cli(capsys, "people", "--json", *db)
    assert code == 0 and sorted(p["name"] for p in json.loads(out)) == ["Ada", "Bob"]
    code, _, err = _cli(capsys, "report", "xlsx", str(tmp_path / "r.xlsx"), "--from", str(worked), "--to",
                        str(worked), *db)
    assert code == 0 and (tmp_path / "r.xlsx").stat().st_size > 0, err
    code, _, err = _cli(capsys, "people", "set", "Ada", "--group", "8A", *db)  # a change: refused
    assert code == 2 and "read-only disk" in err, err
    monkeypatch.undo()
    code, out, _ = _cli(capsys, "people", "--json", "--group", "7B", "--db", url, "--config", str(cfg))
    assert {p["group"] for p in json.loads(out)} == {"7B"}  # nothing was changed


def test_a_read_only_copy_in_wal_mode_opens_as_immutable(tmp_path, monkeypatch) -> None:
    """Where SQLite cannot make the -shm file a WAL database needs (a read-only folder), the reader opens the file
    as immutable. Simulated: the first, plain read-only open is made to fail as it fails there."""
    import sqlite3

    from sqlalchemy import text

    from desktop_app.storage import engine, open_engine, open_reader

    url = f"sqlite:///{tmp_path / 'w.db'}"
    open_engine(url).dispose()
    urls, real_create, real_version = [], engine.create_engine, engine.schema_version

    def create(u, *a, **k):
        urls.append(str(u))
        return real_create(u, *a, **k)

    def version(e):
        if "immutable" not in str(e.url):
            raise sqlite3.OperationalError("unable to open database file")
        return real_version(e)

    monkeypatch.setattr(engine, "create_engine", create)
    monkeypatch.setattr(engine, "schema_version", version)
    e = open_reader(url)
    monkeypatch.undo()
    assert len(urls) == 2 and "mode=ro&uri" in urls[0] and urls[1].endswith("mode=ro&immutable=1&uri=true")
    with e.connect() as c:
        assert c.execute(text("select count(*) from people")).scalar() == 0
        with pytest.raises(Exception, match="readonly|read-only|query_only|attempt to write"):
            c.execute(text("insert into people (name) values ('x')"))
    e.dispose()
