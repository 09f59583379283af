"""Excel export of the attendance reports (XlsxWriter; the choice is measured in docs/BENCHMARKS.md "Excel library").

One workbook, a sheet per report: "Events", "Daily summary" (the CSV export's two reports, same columns) and
"Absent" (the absences of the range by the rule of :mod:`desktop_app.attendance.grid`). Cells have real types:
days are dates, times are date-times in the report's time zone (Excel has no time zones: the zone is named in the
column heading), the time present is a duration (``[h]:mm`` format, so it adds up past 24 hours), ids and counts
are numbers. The header row is frozen and filtered, and the columns are as wide as their content.

Text is always written as text, never as a formula. A cell that a spreadsheet would read as a formula start
(``= + - @``, tab, CR) gets Excel's *quote prefix* cell format: the value stays exactly the text ("+41"), Excel shows
it as text and never evaluates it, even when the cell is edited (the CSV export, which has no formats, uses a
leading apostrophe instead). An Absent sheet with no absence says so in its first row.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from desktop_app.attendance.export import EVENT_HEADER, FORMULA_PREFIXES
from desktop_app.attendance.grid import AttendanceGrid, GridRow
from desktop_app.attendance.reports import DaySummary, EventRow

MAX_ROWS = 1_048_575  # Excel's sheet limit, less the header row
MAX_WIDTH = 60  # characters; longer cells wrap in Excel's view rather than push the next column off screen
DATE_FMT = "yyyy-mm-dd"
TIME_FMT = "yyyy-mm-dd hh:mm:ss"
DURATION_FMT = "[h]:mm"  # hours past 24 keep counting: a month's total reads 152:30, not 8:30

SHEETS = ("Events", "Daily summary", "Absent")
SUMMARY_HEADER = ("day", "person_id", "external_id", "name", "group", "person_ref", "first_in", "last_out",
                  "present", "events", "stations")
ABSENT_HEADER = ("day", "weekday", "person_id", "external_id", "name", "group")
NO_ABSENCE = "No absence in this range (working days that have ended, people enrolled and active then)"


class XlsxError(OSError):
    """The workbook could not be written (the message names the file and what to do)."""


@dataclass(frozen=True)
class Column:
    title: str
    kind: str  # "text", "int", "float", "date", "datetime", "duration"


def _event_columns(tz_name: str) -> list[Column]:
    kinds = {"event_id": "int", "time": "datetime", "time_utc": "datetime", "day": "date", "person_id": "int",
             "similarity": "float"}
    titles = {"time": f"time ({tz_name})" if tz_name else "time"}
    return [Column(titles.get(h, h), kinds.get(h, "text")) for h in EVENT_HEADER]


def _summary_columns(tz_name: str) -> list[Column]:
    kinds = {"day": "date", "person_id": "int", "first_in": "datetime", "last_out": "datetime",
             "present": "duration", "events": "int"}
    titles = {k: f"{k} ({tz_name})" for k in ("first_in", "last_out")} if tz_name else {}
    return [Column(titles.get(h, h), kinds.get(h, "text")) for h in SUMMARY_HEADER]


ABSENT_COLUMNS = [Column(h, {"day": "date", "person_id": "int"}.get(h, "text")) for h in ABSENT_HEADER]


def event_values(r: EventRow) -> list[Any]:
    return [r.event_id, r.local_ts, r.ts, r.day, r.person_id, r.external_id, r.name, r.group, r.person_ref,
            r.station, r.kind, r.similarity]


def summary_values(d: DaySummary) -> list[Any]:
    return [d.day, d.person_id, d.external_id, d.name, d.group, d.person_ref, d.first_in, d.last_out, d.present,
            d.events, " ".join(d.stations)]


def absent_values(day: date, r: GridRow) -> list[Any]:
    return [day, f"{day:%A}", r.person_id, r.external_id, r.name, r.group]


def _naive(v: datetime) -> datetime:
    """Excel keeps wall-clock times only: the value as read on the clock of its own zone."""
    return v.replace(tzinfo=None)


def _shown_width(v: Any, kind: str) -> int:
    if v is None:
        return 0
    if kind == "datetime":
        return 19
    if kind == "date":
        return 10
    if kind == "duration":
        return 7
    if kind == "float":
        return 6
    return len(str(v))


def write_xlsx(path: str | Path, events: Sequence[EventRow], summaries: Sequence[DaySummary],
               absences: Sequence[tuple[date, GridRow]], tz_name: str = "") -> dict[str, int]:
    """Write the three sheets to ``path`` (through a ``.part`` file renamed into place: a failed write leaves no
    half file under the real name). Returns the row count of each sheet. Raises :class:`XlsxError`."""
    import xlsxwriter
    from xlsxwriter.exceptions import XlsxFileError

    sheets = [
        (SHEETS[0], _event_columns(tz_name), [event_values(r) for r in events]),
        (SHEETS[1], _summary_columns(tz_name), [summary_values(d) for d in summaries]),
        (SHEETS[2], ABSENT_COLUMNS, [absent_values(day, r) for day, r in absences]),
    ]
    for name, _, rows in sheets:
        if len(rows) > MAX_ROWS:
            raise XlsxError(f"the {name} sheet would have {len(rows):,} rows, more than Excel's {MAX_ROWS:,}: "
                            "export a shorter range")
    p = Path(path)
    tmp = p.with_name(p.name + ".part")
    # no conversion of text into formulas, numbers or links, whatever it looks like: every text cell stays text
    wb = xlsxwriter.Workbook(str(tmp), {"strings_to_formulas": False, "strings_to_numbers": False,
                                        "strings_to_urls": False, "remove_timezone": True})
    fmt = {"date": wb.add_format({"num_format": DATE_FMT}), "datetime": wb.add_format({"num_format": TIME_FMT}),
           "duration": wb.add_format({"num_format": DURATION_FMT}), "float": wb.add_format({"num_format": "0.000"}),
           "quoted": wb.add_format({"quote_prefix": True})}
    head = wb.add_format({"bold": True, "bottom": 1})
    counts: dict[str, int] = {}
    for name, cols, rows in sheets:
        ws = wb.add_worksheet(name)
        widths = [len(c.title) for c in cols]
        for j, c in enumerate(cols):
            ws.write_string(0, j, c.title, head)
        for i, row in enumerate(rows, start=1):
            for j, (c, v) in enumerate(zip(cols, row, strict=True)):
                widths[j] = max(widths[j], _shown_width(v, c.kind))
                _write_cell(ws, i, j, v, c.kind, fmt)
        if name == SHEETS[2] and not rows:
            ws.write_string(1, 0, NO_ABSENCE)
        previous = 0.0
        for j, w in enumerate(widths):
            width = float(min(w, MAX_WIDTH) + 2)
            # XlsxWriter writes adjacent columns of one width as one range; readers that look at a range's first
            # column only (openpyxl) then see no width for the others. Half a character more keeps each its own.
            width += 0.5 if width == previous else 0.0
            ws.set_column(j, j, width)
            previous = width
        ws.freeze_panes(1, 0)
        ws.autofilter(0, 0, max(len(rows), 1), len(cols) - 1)
        counts[name] = len(rows)
    try:
        wb.close()
        os.replace(tmp, p)
    except (OSError, XlsxFileError) as exc:
        tmp.unlink(missing_ok=True)
        inner = exc.args[0] if exc.args and isinstance(exc.args[0], OSError) else exc  # XlsxWriter wraps it
        cause = getattr(inner, "strerror", None) or str(inner)
        raise XlsxError(f"cannot write {p}: {cause}") from None
    return counts


def _write_cell(ws: Any, i: int, j: int, v: Any, kind: str, fmt: dict[str, Any]) -> None:
    if v is None:
        return
    if kind == "datetime" and isinstance(v, datetime):
        ws.write_datetime(i, j, _naive(v), fmt["datetime"])
    elif kind == "date" and isinstance(v, date):
        ws.write_datetime(i, j, v, fmt["date"])
    elif kind == "duration" and isinstance(v, timedelta):
        ws.write_datetime(i, j, v, fmt["duration"])  # a duration: days as a number, shown as hours:minutes
    elif kind in ("int", "float") and isinstance(v, int | float) and not isinstance(v, bool):
        ws.write_number(i, j, v, fmt.get(kind))
    else:
        text = str(v)
        if text.startswith(FORMULA_PREFIXES):
            ws.write_string(i, j, text, fmt["quoted"])
        else:
            ws.write_string(i, j, text)


def write_grid_xlsx(path: str | Path, grid: AttendanceGrid) -> dict[str, int]:
    """:func:`write_xlsx` of a grid's range: its events, daily summaries and absences."""
    return write_xlsx(path, grid.events, grid.summaries, grid.absences(), grid.tz_name)
