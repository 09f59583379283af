"""The store's one error type and the translation of driver errors into messages a person can act on."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

SQLITE_BUSY_TIMEOUT_MS = 10_000  # how long a writer waits for another writer before "database is locked"


class StoreError(RuntimeError):
    """A database problem a person can act on; the message says what happened and what to do.

    ``transient`` names a condition that passes without anyone changing the data ("database busy", "database
    unreachable", "disk full"): the attendance writer keeps the sighting and tries again instead of dropping it.
    Empty for everything else."""

    def __init__(self, message: str, transient: str = "") -> None:
        super().__init__(message)
        self.transient = transient



ELSEWHERE = "choose another location (Settings > Storage > Database, or --db)"  # where a person changes it


def describe_url(url: str) -> str:
    """Where the database is, for people (the status bar, messages): a SQLite file as its path, which is also what
    a person may type back (``dburl.database_url``); any other database as its URL with the password hidden."""
    try:
        u = make_url(url)
    except Exception:
        return repr(url)
    if u.get_backend_name() == "sqlite":
        return u.database if u.database and u.database != ":memory:" else "a SQLite database in memory"
    return u.render_as_string(hide_password=True)



def friendly_error(exc: BaseException, url: str | None = None) -> StoreError:
    """Turn a driver error into a :class:`StoreError` whose message a person can act on."""
    where = f" ({describe_url(url)})" if url else ""
    text = " ".join(str(getattr(exc, "orig", None) or exc).split())  # one line (drivers add hints on new lines)
    text = text.split(" (Background on this error at:")[0]
    low = text.lower()
    if "locked" in low or "busy" in low or "deadlock" in low or "could not serialize" in low:
        return StoreError(f"the database is busy{where}: another program is writing to it and did not finish "
                          f"within {SQLITE_BUSY_TIMEOUT_MS / 1000:g} s; close other copies of the app and try again",
                          transient="database busy")
    if "disk is full" in low or "no space left" in low:
        return StoreError(f"the disk holding the database is full{where}: {text}; free some space",
                          transient="disk full")
    if "readonly" in low or "read-only" in low or "permission denied" in low:
        return StoreError(f"the database cannot be written{where}: {text}; fix its permissions or "
                          f"{ELSEWHERE}")
    if "unable to open" in low:
        return StoreError(f"the database cannot be opened{where}: {text}; check that the folder exists and can "
                          f"be written, or {ELSEWHERE}")
    if "not a database" in low or "malformed" in low:
        return StoreError(f"the file is not an FDFace database or is damaged{where}: {text}; restore a backup or "
                          "choose another location")
    lost = isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated
    if (lost or "could not connect" in low or "connection refused" in low or "could not translate host" in low
            or "server closed the connection" in low or "connection is closed" in low
            or "terminating connection" in low or "connection timed out" in low):
        return StoreError(f"cannot reach the database server{where}: {text}", transient="database unreachable")
    return StoreError(f"database error{where}: {text}")


@contextmanager
def store_errors(url: str | None = None) -> Iterator[None]:
    """Re-raise database errors as :class:`StoreError` (for the CLI and the GUI's error signal)."""
    try:
        yield
    except StoreError:
        raise
    except (sa_exc.OperationalError, sa_exc.DatabaseError, sa_exc.InterfaceError, sqlite3.Error) as exc:
        raise friendly_error(exc, url) from None

