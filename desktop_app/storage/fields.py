"""Text fields and ids as the store keeps them: checked the same way for every engine, before anything is written."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Any

from desktop_app.storage.errors import StoreError

NAME_MAX = 200
TEXT_MAX = 100  # external id, group, station: the columns' length (PostgreSQL enforces it, SQLite does not)

# Text-direction controls: U+202E turns "Ada" into "adA" on screen and in every table that shows it.
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff")


def printable_text(value: str) -> str:
    """``value`` fit for one cell of a table: NFC-normalised; line breaks, tabs and other white space become one
    space; control characters, text-direction controls and lone surrogates are removed; trimmed. Joiners
    (U+200C/U+200D) stay: some scripts and emoji need them."""
    out: list[str] = []
    for ch in unicodedata.normalize("NFC", value):
        if ch.isspace():
            if out and out[-1] != " ":
                out.append(" ")
        elif ch not in _BIDI_CONTROLS and unicodedata.category(ch) not in ("Cc", "Cs"):
            out.append(ch)
    return "".join(out).strip()


def check_text(label: str, value: str | None, limit: int = TEXT_MAX) -> str | None:
    """``value`` as stored (:func:`printable_text`), or None when empty; :class:`StoreError` naming ``label`` when
    nothing printable is left or it is longer than its column. Checked here for every engine, so that a value
    SQLite would take does not fail later on PostgreSQL (at the first recognised face, for a station name)."""
    raw = (value or "").strip()
    if not raw:
        return None
    text = printable_text(raw)
    if not text:
        raise StoreError(f"the {label} {raw!r} has nothing left once control and text-direction characters are "
                         "removed: type it again with letters or digits")
    if len(text) > limit:
        raise StoreError(f"the {label} is too long ({len(text)} characters, at most {limit}): shorten it")
    return text


def check_station(station: str) -> str:
    """A station name as recorded with every event (setting ``attendance.station`` or ``--station``)."""
    text = check_text("station name", station)
    if text is None:
        raise StoreError("the station name is empty: give the station a name (Settings > Attendance or --station)")
    return text


def check_person_fields(name: str | None = None, external_id: str | None = None,
                        group: str | None = None) -> tuple[str | None, str | None, str | None]:
    """Name, external id and group as they would be stored (None where not given or empty), or a
    :class:`StoreError` naming the field: before any photo is processed."""
    return (check_text("name", name, NAME_MAX), check_text("external id", external_id),
            check_text("group", group))



def as_id(value: Any) -> int:
    """A row id as a Python int. Ids often come from the index's numpy arrays, and SQLite binds a numpy int64 as an
    8-byte blob that equals no row: a delete would quietly remove nothing while the index dropped the rows."""
    return int(value)


def as_ids(values: Iterable[Any]) -> list[int]:
    return [int(v) for v in values]

