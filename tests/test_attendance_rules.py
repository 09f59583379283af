"""Attendance rules (pure functions) and the recorder that applies them against a real SQLite store."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from desktop_app import storage as st
from desktop_app.attendance.recorder import AttendanceRecorder, EventWriter, Sighting
from desktop_app.attendance.rules import (
    DEFAULT_DEDUPE,
    PriorEvent,
    classify,
    day_bounds,
    day_of,
    day_start,
    resolve_zone,
    why_no_absence,
)
from desktop_app.config import AttendanceSettings

PARIS = ZoneInfo("Europe/Paris")
T0 = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)  # 08:00 in Paris


def test_day_of_uses_local_time_and_the_boundary_hour() -> None:
    # 02:30 local on the 3rd belongs to the 2nd with a 04:00 boundary, to the 3rd with a 00:00 boundary
    ts = datetime(2026, 3, 3, 2, 30, tzinfo=PARIS)
    assert day_of(ts, PARIS, 4) == date(2026, 3, 2)
    assert day_of(ts, PARIS, 0) == date(2026, 3, 3)
    # the same UTC moment is another day in another zone
    utc = datetime(2026, 3, 2, 23, 30, tzinfo=UTC)
    assert day_of(utc, UTC, 0) == date(2026, 3, 2)
    assert day_of(utc, ZoneInfo("Asia/Tokyo"), 0) == date(2026, 3, 3)
    with pytest.raises(ValueError):
        day_of(datetime(2026, 1, 1), UTC)


def test_day_start_and_bounds_follow_daylight_saving() -> None:
    # Paris goes to summer time on 2026-03-29: the day starting at 04:00 local is 02:00 UTC instead of 03:00
    assert day_start(date(2026, 3, 28), PARIS, 4) == datetime(2026, 3, 28, 3, 0, tzinfo=UTC)
    assert day_start(date(2026, 3, 29), PARIS, 4) == datetime(2026, 3, 29, 2, 0, tzinfo=UTC)
    a, b = day_bounds(date(2026, 3, 28), date(2026, 3, 28), PARIS, 4)
    assert b - a == timedelta(hours=23)


def test_resolve_zone() -> None:
    tz, name = resolve_zone("America/New_York")
    assert name == "America/New_York" and datetime(2026, 7, 1, tzinfo=tz).utcoffset() == timedelta(hours=-4)
    tz, name = resolve_zone("local")
    assert name and datetime(2026, 7, 1, tzinfo=tz).utcoffset() is not None


def test_first_sighting_is_a_check_in() -> None:
    d = classify(T0, [], today_start=T0 - timedelta(hours=3))
    assert d.kind == st.EventKind.CHECK_IN


def test_sightings_inside_the_dedupe_window_make_no_event() -> None:
    prior = [PriorEvent(1, T0, "check-in")]
    start = T0 - timedelta(hours=3)
    assert classify(T0 + timedelta(minutes=4, seconds=59), prior, start).kind is None
    assert "dedupe" in classify(T0 + timedelta(minutes=1), prior, start).reason
    assert classify(T0 + DEFAULT_DEDUPE, prior, start).kind == st.EventKind.CHECK_OUT
    # a custom window
    assert classify(T0 + timedelta(minutes=9), prior, start, dedupe=timedelta(minutes=10)).kind is None
    # a clock set back a little does not create an event either
    assert classify(T0 - timedelta(minutes=2), prior, start).kind is None


def test_every_later_sighting_is_a_check_out() -> None:
    start = T0 - timedelta(hours=3)
    prior = [PriorEvent(1, T0, "check-in"), PriorEvent(2, T0 + timedelta(hours=1), "check-out")]
    assert classify(T0 + timedelta(hours=2), prior, start) == classify(T0 + timedelta(hours=1), prior[:1], start)
    assert classify(T0 + timedelta(hours=2), prior, start).kind == st.EventKind.CHECK_OUT


def test_yesterdays_events_do_not_count_for_today() -> None:
    start = T0 - timedelta(hours=3)
    prior = [PriorEvent(1, start - timedelta(hours=5), "check-out")]
    d = classify(T0, prior, start)
    assert d.kind == st.EventKind.CHECK_IN
    # ...but the dedupe window still spans the day boundary
    just_before = [PriorEvent(1, start - timedelta(minutes=1), "check-out")]
    assert classify(start + timedelta(minutes=1), just_before, start).kind is None


def test_absences_count_on_working_days_that_have_ended() -> None:
    today = date(2026, 12, 5)  # a Saturday
    assert why_no_absence(date(2026, 12, 4), today) is None  # Friday, over
    assert why_no_absence(today, today) == "2026-12-05 is a Saturday, not a working day (Monday to Friday)"
    assert "not over yet" in why_no_absence(date(2026, 12, 7), date(2026, 12, 7))
    assert why_no_absence(date(2026, 12, 8), date(2026, 12, 7)) == "2026-12-08 has not come yet"


# ------------------------------------------------------------------------------------------- recorder on a store
@pytest.fixture
def engine(tmp_path):
    e = st.open_engine(f"sqlite:///{tmp_path / 'a.db'}")
    yield e
    e.dispose()


def _person(engine, name: str, active: bool = True) -> int:
    with Session(engine) as s, s.begin():
        return st.add_person(s, name, active=active).id


def _kinds(engine) -> list[tuple[int | None, str]]:
    with Session(engine) as s:
        return [(e.person_id, e.kind) for e in s.scalars(select(st.AttendanceEvent).order_by(st.AttendanceEvent.ts))]


def test_recorder_writes_check_in_then_check_outs(engine) -> None:
    ada = _person(engine, "Ada")
    rec = AttendanceRecorder(engine, AttendanceSettings(timezone="Europe/Paris", station="door-2"))
    e1 = rec.record(ada, 0.8, ts=T0)
    assert e1 is not None and e1.kind == "check-in" and e1.station == "door-2" and e1.name == "Ada"
    assert e1.tz == "Europe/Paris" and e1.local_ts.utcoffset() == timedelta(hours=1)
    assert rec.record(ada, 0.9, ts=T0 + timedelta(minutes=3)) is None  # dedupe
    e2 = rec.record(ada, 0.7, ts=T0 + timedelta(hours=4))
    e3 = rec.record(ada, 0.7, ts=T0 + timedelta(hours=9))
    assert (e2.kind, e3.kind, e3.demoted) == ("check-out", "check-out", None)
    assert _kinds(engine) == [(ada, "check-in"), (ada, "check-out"), (ada, "check-out")]  # e2 was not rewritten
    # next day starts with a check-in again
    e4 = rec.record(ada, 0.7, ts=T0 + timedelta(days=1))
    assert e4.kind == "check-in"


def test_recorder_dedupes_across_restarts_from_the_database(engine) -> None:
    ada = _person(engine, "Ada")
    AttendanceRecorder(engine).record(ada, 0.8, ts=T0)
    fresh = AttendanceRecorder(engine)  # no in-memory state
    assert fresh.record(ada, 0.8, ts=T0 + timedelta(minutes=2)) is None
    assert len(_kinds(engine)) == 1


def test_recorder_counts_people_recognised_again_within_the_dedupe_window(engine) -> None:
    """What `fdface run` reports besides its events: people seen whose every sighting was a repeat."""
    ada, bob, off = _person(engine, "Ada"), _person(engine, "Bob"), _person(engine, "Off", active=False)
    AttendanceRecorder(engine).record(ada, 0.8, ts=T0)
    rec = AttendanceRecorder(engine)  # a second run: Ada was recorded a minute ago (from the database)
    assert rec.record(ada, 0.8, ts=T0 + timedelta(minutes=1)) is None
    assert rec.record(ada, 0.8, ts=T0 + timedelta(minutes=2)) is None  # the in-memory shortcut: still one person
    assert rec.record(off, 0.8, ts=T0) is None  # inactive: not a repeat
    assert rec.repeats_only == 1
    assert rec.record(bob, 0.8, ts=T0) is not None
    assert rec.record(bob, 0.8, ts=T0 + timedelta(minutes=1)) is None  # Bob got an event: not "only repeats"
    assert rec.repeats_only == 1
    w = EventWriter(AttendanceRecorder(engine))
    w.submit(Sighting(ada, 0.8, ts=T0 + timedelta(minutes=3)))
    w.close()
    assert w.repeats_only == 1


def test_recorder_ignores_unknown_and_inactive_people_and_keeps_snapshots_by_setting(engine) -> None:
    off = _person(engine, "Off", active=False)
    on = _person(engine, "On")
    rec = AttendanceRecorder(engine)
    assert rec.record(off, 0.9, ts=T0) is None
    assert rec.record(9999, 0.9, ts=T0) is None
    rec.record(on, 0.9, ts=T0, snapshot_jpeg=b"jpeg")
    keep = AttendanceRecorder(engine, AttendanceSettings(keep_snapshots=True))
    keep.record(on, 0.9, ts=T0 + timedelta(hours=1), snapshot_jpeg=b"jpeg")
    with Session(engine) as s:
        assert [x.jpeg for x in s.scalars(select(st.EventSnapshot))] == [b"jpeg"]


def test_event_writer_reports_only_committed_events_in_order(engine) -> None:
    ada, bob = _person(engine, "Ada"), _person(engine, "Bob")
    seen: list = []

    def on_event(ev) -> None:
        with Session(engine) as s:  # reported => already in the database
            assert s.get(st.AttendanceEvent, ev.id) is not None
        seen.append((ev.person_id, ev.kind))

    w = EventWriter(AttendanceRecorder(engine), on_event=on_event)
    for i, p in enumerate([ada, bob, ada, ada]):
        w.submit(Sighting(p, 0.8, ts=T0 + timedelta(minutes=10 * i)))
    w.close()
    assert seen == [(ada, "check-in"), (bob, "check-in"), (ada, "check-out"), (ada, "check-out")]


def test_recorded_events_are_final_so_exports_taken_at_different_times_agree(engine) -> None:
    """An export at noon and one in the evening list the morning's events identically; the evening one has more
    rows (README, "Attendance rules")."""
    from desktop_app.attendance.export import events_csv, summary_csv
    from desktop_app.attendance.reports import daily_summary, events_in_range

    ada = _person(engine, "Ada")
    rec = AttendanceRecorder(engine, AttendanceSettings(timezone="UTC", day_boundary_hour=0))
    day = T0.date()

    def export() -> tuple[list[str], list[str]]:
        with Session(engine) as s:
            events = events_csv(events_in_range(s, day, day, UTC, 0)).splitlines()
            summary = summary_csv(daily_summary(s, day, day, UTC, 0)).splitlines()
        return events, summary

    rec.record(ada, 0.8, ts=T0)  # 07:00 in
    rec.record(ada, 0.8, ts=T0 + timedelta(hours=5))  # 12:00 out for lunch
    noon, noon_summary = export()
    rec.record(ada, 0.8, ts=T0 + timedelta(hours=6))  # 13:00 back
    rec.record(ada, 0.8, ts=T0 + timedelta(hours=10))  # 17:00 home
    evening, evening_summary = export()
    assert len(noon) == 3 and evening[:3] == noon  # header + the two events, unchanged
    assert [row.split(",")[10] for row in evening[1:]] == ["check-in", "check-out", "check-out", "check-out"]
    # the day's summary is as of the export: the last check-out moves as the day goes on
    assert noon_summary[1].split(",")[7].endswith("T12:00:00+00:00")
    assert evening_summary[1].split(",")[7].endswith("T17:00:00+00:00")
