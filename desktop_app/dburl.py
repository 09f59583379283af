"""Where the database is, as a person types it: a SQLAlchemy URL, or simply the path of a SQLite file.

One conversion for the CLI (``--db``, ``FDFACE_DB``, the settings' ``storage.database_url``) and the GUI (the
settings dialog, ``fdface-gui --db``), so that both accept the same things (docs/INPUT.md).
"""

from __future__ import annotations

import re
from pathlib import Path

# scheme://... with a scheme of two letters or more, so that a Windows drive (C:/data/a.db) is never one
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]+://")


def is_database_url(text: str) -> bool:
    return bool(_URL.match(text.strip()))


def database_url(text: str | Path) -> str:
    """A URL (``sqlite:////srv/fdface/attendance.db``, ``postgresql+psycopg://kiosk@db/attendance``) as it is; a
    plain path (``attendance.db``, ``~/fdface/attendance.db``, ``C:\\Users\\ada\\attendance.db``) as the URL of
    that SQLite file, made absolute against the current folder; empty stays empty (the default database)."""
    t = str(text).strip()
    if not t or is_database_url(t):
        return t
    p = Path(t).expanduser()
    return f"sqlite:///{p.absolute().as_posix()}"
