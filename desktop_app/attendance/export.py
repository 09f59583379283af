"""CSV export of attendance reports: UTF-8 with BOM (Excel opens it as UTF-8), a header row, ISO-8601 times with
their UTC offset, and every cell that a spreadsheet would run as a formula neutralised (CSV injection)."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from desktop_app.attendance.reports import DaySummary, EventRow

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")  # what Excel / LibreOffice / Sheets read as a formula start
ENCODING = "utf-8-sig"  # UTF-8 with a byte-order mark

EVENT_HEADER = ("event_id", "time", "time_utc", "day", "person_id", "external_id", "name", "group", "person_ref",
                "station", "kind", "similarity")
SUMMARY_HEADER = ("day", "person_id", "external_id", "name", "group", "person_ref", "first_in", "last_out",
                  "present_minutes", "present", "events", "stations")
ABSENT_HEADER = ("day", "person_id", "external_id", "name", "group")


def safe_cell(value: Any) -> str:
    """The text of one cell; a value starting like a formula gets a leading apostrophe so it stays text."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        text = value.isoformat(timespec="seconds")
    elif isinstance(value, date):
        text = value.isoformat()
    elif isinstance(value, float):
        text = f"{value:.4f}"
    else:
        text = str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


def _duration(td: timedelta) -> str:
    minutes = int(td.total_seconds() // 60)
    return f"{minutes // 60}:{minutes % 60:02d}"


def event_cells(r: EventRow) -> list[Any]:
    return [r.event_id, r.local_ts, r.ts, r.day, r.person_id, r.external_id, r.name, r.group, r.person_ref,
            r.station, r.kind, r.similarity]


def summary_cells(d: DaySummary) -> list[Any]:
    return [d.day, d.person_id, d.external_id, d.name, d.group, d.person_ref, d.first_in, d.last_out,
            int(d.present.total_seconds() // 60), _duration(d.present), d.events, " ".join(d.stations)]


def write_csv(out: TextIO, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(header)
    n = 0
    for row in rows:
        w.writerow([safe_cell(c) for c in row])
        n += 1
    return n


def _to_path(path: str | Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    p = Path(path)
    tmp = p.with_name(p.name + ".part")
    with open(tmp, "w", encoding=ENCODING, newline="") as fh:
        n = write_csv(fh, header, rows)
    os.replace(tmp, p)
    return n


def _csv(header: Sequence[str], cells: Iterable[Sequence[Any]], path: str | Path | None) -> str | int:
    if path is None:
        buf = io.StringIO()
        write_csv(buf, header, cells)
        return buf.getvalue()
    return _to_path(path, header, cells)


def events_csv(rows: Sequence[EventRow], path: str | Path | None = None) -> str | int:
    """Write events to ``path`` (returns the row count) or return the CSV text (without BOM) when no path."""
    return _csv(EVENT_HEADER, (event_cells(r) for r in rows), path)


def summary_csv(rows: Sequence[DaySummary], path: str | Path | None = None) -> str | int:
    return _csv(SUMMARY_HEADER, (summary_cells(d) for d in rows), path)


def absent_rows(absences: Sequence[tuple[date, Any]]) -> list[list[Any]]:
    """The rows of ABSENT_HEADER for (day, grid row) pairs (``AttendanceGrid.absences()``: the one absence rule)."""
    return [[day, r.person_id, r.external_id, r.name, r.group] for day, r in absences]


def absent_csv(absences: Sequence[tuple[date, Any]], path: str | Path) -> int:
    return _to_path(path, ABSENT_HEADER, absent_rows(absences))
