"""Reports (range, daily summary, absent) on a real SQLite store, and the CSV export's format and safety."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from desktop_app import storage as st
from desktop_app.attendance import export
from desktop_app.attendance.grid import build_grid
from desktop_app.attendance.recorder import AttendanceRecorder
from desktop_app.attendance.reports import daily_summary, events_in_range, summarize
from desktop_app.config import AttendanceSettings

TZ = ZoneInfo("America/New_York")
DAY = date(2026, 6, 10)


def at(hour: int, minute: int = 0, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=TZ).astimezone(UTC)


def absent(s: Session, day: date, group: str | None = None) -> list[str]:
    """Who the grid (the one absence rule: grid.py, rules.why_no_absence) marks absent on ``day``, a past one."""
    g = build_grid(s, day, day, TZ, "America/New_York", time(9), date(2026, 7, 1), 4, group=group)
    return [r.name for _, r in g.absences()]


@pytest.fixture
def populated(tmp_path):
    e = st.open_engine(f"sqlite:///{tmp_path / 'r.db'}")
    with Session(e) as s, s.begin():
        ids = {
            "ada": st.add_person(s, "Ada", external_id="E1", group="eng").id,
            "bob": st.add_person(s, "=HYPERLINK(\"http://x\")", external_id="+E2", group="eng").id,
            "cy": st.add_person(s, "Cy", group="ops").id,
            "dee": st.add_person(s, "Dee", group="eng").id,
            "old": st.add_person(s, "Old", group="eng", active=False).id,
        }
        for p in s.scalars(select(st.Person)):  # enrolled before the days the tests look at
            p.created_at = datetime(2026, 5, 1, tzinfo=UTC)
    rec = AttendanceRecorder(e, AttendanceSettings(timezone="America/New_York", station="front"))
    rec.record(ids["ada"], 0.81, ts=at(8, 55))
    rec.record(ids["ada"], 0.77, ts=at(12, 30), station="back")
    rec.record(ids["ada"], 0.79, ts=at(17, 40))
    rec.record(ids["bob"], 0.66, ts=at(9, 10))
    rec.record(ids["cy"], 0.70, ts=at(2, 0, DAY + timedelta(days=1)))  # 02:00 next morning: still DAY (04:00)
    rec.record(ids["dee"], 0.70, ts=at(10, 0, DAY + timedelta(days=1)))  # the next day
    yield e, ids
    e.dispose()


def test_events_in_range_with_filters(populated) -> None:
    e, ids = populated
    with Session(e) as s:
        rows = events_in_range(s, DAY, DAY, TZ, 4)
        assert [r.name for r in rows] == ["Ada", "=HYPERLINK(\"http://x\")", "Ada", "Ada", "Cy"]
        assert [r.kind for r in rows if r.name == "Ada"] == ["check-in", "check-out", "check-out"]
        assert rows[0].local_ts.isoformat() == "2026-06-10T08:55:00-04:00"
        assert all(r.day == DAY for r in rows)
        assert [r.name for r in events_in_range(s, DAY, DAY, TZ, 4, group="ops")] == ["Cy"]
        assert len(events_in_range(s, DAY, DAY, TZ, 4, person_id=ids["ada"])) == 3
        assert [r.local_ts.hour for r in events_in_range(s, DAY, DAY, TZ, 4, station="back")] == [12]
        assert len(events_in_range(s, DAY, DAY + timedelta(days=1), TZ, 4)) == 6
        # with a midnight boundary, Cy's 02:00 event belongs to the next day
        assert "Cy" not in [r.name for r in events_in_range(s, DAY, DAY, TZ, 0)]
        with pytest.raises(ValueError, match="before it starts"):
            events_in_range(s, DAY, DAY - timedelta(days=1), TZ)


def test_daily_summary_first_in_last_out_time_present(populated) -> None:
    e, ids = populated
    with Session(e) as s:
        days = daily_summary(s, DAY, DAY, TZ, 4)
    by = {d.name: d for d in days}
    ada = by["Ada"]
    assert ada.first_in.isoformat() == "2026-06-10T08:55:00-04:00"
    assert ada.last_out.isoformat() == "2026-06-10T17:40:00-04:00"
    assert ada.present == timedelta(hours=8, minutes=45)
    assert ada.events == 3 and ada.stations == ("front", "back")
    bob = by["=HYPERLINK(\"http://x\")"]
    assert bob.last_out is None and bob.present == timedelta(0)
    assert set(by) == {"Ada", "=HYPERLINK(\"http://x\")", "Cy"}


def test_summary_keeps_deleted_people_under_their_pseudonym(populated) -> None:
    e, ids = populated
    with Session(e) as s, s.begin():
        st.delete_person(s, ids["ada"])
    with Session(e) as s:
        days = daily_summary(s, DAY, DAY, TZ, 4)
    anon = [d for d in days if d.person_id is None]
    assert len(anon) == 1 and anon[0].name is None and anon[0].person_ref.startswith("anon-")
    assert anon[0].present == timedelta(hours=8, minutes=45)


def test_group_filters_match_any_case(populated) -> None:
    """As the People search: "OPS" and " ops " are the group "ops", in events, absences and the people list."""
    from desktop_app.attendance.queries import list_people
    from desktop_app.attendance.reports import groups_named

    e, _ = populated
    with Session(e) as s:
        assert groups_named(s, " OPS ") == ["ops"] and groups_named(s, "op") == []
        assert [r.name for r in events_in_range(s, DAY, DAY, TZ, 4, group="OPS")] == ["Cy"]
        assert absent(s, DAY + timedelta(days=1), group="Ops") == ["Cy"]
        assert [p.name for p in list_people(s, group="ENG", active=True)] == ["=HYPERLINK(\"http://x\")", "Ada", "Dee"]
        assert events_in_range(s, DAY, DAY, TZ, 4, group="nobody") == []


def test_absent_people(populated) -> None:
    e, ids = populated
    with Session(e) as s:
        assert absent(s, DAY) == ["Dee"]  # inactive Old is not expected
        assert absent(s, DAY + timedelta(days=1), group="eng") == ["=HYPERLINK(\"http://x\")", "Ada"]
        assert absent(s, DAY, group="ops") == []


def test_safe_cell_neutralises_formulas() -> None:
    for bad in ["=1+1", "+33 6", "-2", "@SUM(A1)", "\tx", "\rx"]:
        assert export.safe_cell(bad) == "'" + bad
    assert export.safe_cell("Zoë") == "Zoë"
    assert export.safe_cell(None) == ""
    assert export.safe_cell(0.5) == "0.5000"
    assert export.safe_cell(datetime(2026, 1, 2, 3, 4, 5, tzinfo=TZ)) == "2026-01-02T03:04:05-05:00"


def test_csv_files_have_bom_header_iso_times_and_no_formulas(populated, tmp_path) -> None:
    e, ids = populated
    with Session(e) as s:
        rows = events_in_range(s, DAY, DAY, TZ, 4)
        absences = build_grid(s, DAY, DAY, TZ, "America/New_York", time(9), date(2026, 7, 1), 4).absences()
    ev_path, sum_path, abs_path = tmp_path / "events.csv", tmp_path / "summary.csv", tmp_path / "absent.csv"
    assert export.events_csv(rows, ev_path) == 5
    assert export.summary_csv(summarize(rows), sum_path) == 3
    assert export.absent_csv(absences, abs_path) == 1
    for path, header in [(ev_path, export.EVENT_HEADER), (sum_path, export.SUMMARY_HEADER),
                         (abs_path, export.ABSENT_HEADER)]:
        raw = path.read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
        table = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
        assert tuple(table[0]) == header
        for line in table[1:]:
            for cell in line:
                assert not cell.startswith(export.FORMULA_PREFIXES), cell
    events = list(csv.DictReader(ev_path.read_text(encoding="utf-8-sig").splitlines()))
    assert events[0]["time"] == "2026-06-10T08:55:00-04:00"
    assert events[0]["time_utc"] == "2026-06-10T12:55:00+00:00"
    assert events[1]["name"] == "'=HYPERLINK(\"http://x\")" and events[1]["external_id"] == "'+E2"
    summary = list(csv.DictReader(sum_path.read_text(encoding="utf-8-sig").splitlines()))
    ada = next(r for r in summary if r["name"] == "Ada")
    assert (ada["first_in"], ada["last_out"], ada["present"], ada["present_minutes"]) == (
        "2026-06-10T08:55:00-04:00", "2026-06-10T17:40:00-04:00", "8:45", "525")
