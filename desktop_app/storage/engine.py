"""Opening a database: the engine with this app's SQLite settings, Alembic migrations, and the scrub of the
SQLite write-ahead log after an erasure.

SQLite by default (``Settings.storage.resolved_url()``) with WAL, foreign keys, secure delete, a busy timeout and full
fsync on commit; any SQLAlchemy URL works (PostgreSQL for several kiosks sharing one gallery). The schema is created and
upgraded by the Alembic migrations in ``desktop_app/storage/migrations`` when :func:`open_engine` finds it behind.

On SQLite a transaction begins ``IMMEDIATE`` (takes the write lock up front, so a read-then-write transaction
never fails half-way on a lock upgrade); read-only work can use :func:`reader` to begin ``DEFERRED`` instead and
not wait for writers.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from desktop_app.storage.errors import ELSEWHERE, SQLITE_BUSY_TIMEOUT_MS, StoreError, describe_url, friendly_error

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SCHEMA_HEAD = "0002"  # the newest migration; bump with every new revision file


def _is_sqlite(engine_or_url: Engine | str) -> bool:
    url = engine_or_url.url if isinstance(engine_or_url, Engine) else make_url(engine_or_url)
    return url.get_backend_name() == "sqlite"



def _read_only_disk(p: Path) -> bool:
    try:
        return bool(os.statvfs(p).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # AttributeError: no statvfs (Windows)
        return False


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL; None for an in-memory or URI database, another kind of database, or a URL that
    does not parse (:func:`create_store_engine` says what is wrong with it)."""
    try:
        db = make_url(url).database if _is_sqlite(url) else None
    except Exception:
        return None
    if not db or db == ":memory:" or db.startswith("file:"):
        return None
    return Path(db).expanduser()


def database_location_problem(url: str) -> str | None:
    """What stops a SQLite database from being created and written at ``url``, in a person's words; None when
    nothing does (and for other databases, which only a connection can tell). Creates nothing: the settings
    dialog asks before saving a location, :func:`open_engine` before opening one."""
    p = sqlite_file(url)
    if p is None:
        return None
    try:
        return _location_problem(p)
    except OSError as exc:  # a folder on the way that may not even be looked into
        where = f" ({exc.filename})" if exc.filename else ""
        return f"the database {p} cannot be reached: {exc.strerror or exc}{where}; {ELSEWHERE}"


def _location_problem(p: Path) -> str | None:
    if p.is_dir():
        return f"the database path {p} is a folder, not a file; give a file name such as {p / 'fdface.db'}"
    if p.exists():
        if _read_only_disk(p):
            return f"the database {p} is on a read-only disk; {ELSEWHERE}"
        if not os.access(p, os.R_OK | os.W_OK):
            return f"the database {p} cannot be written (permission denied); fix its permissions or {ELSEWHERE}"
    folder = p.parent
    while not folder.exists() and folder != folder.parent:  # the nearest folder that exists: where one is made
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is a file, so the folder for the database cannot be made there; {ELSEWHERE}"
    if _read_only_disk(folder):
        return f"the folder {folder} is on a read-only disk, so the database cannot be created or written; {ELSEWHERE}"
    if not os.access(folder, os.W_OK | os.X_OK):
        what = "its journal files" if folder == p.parent else "its folder"
        return f"the folder {folder} cannot be written (permission denied); the database needs it for {what}: " \
               f"{ELSEWHERE}"
    return None


def _check_sqlite_path(url: str) -> None:
    if problem := database_location_problem(url):
        raise StoreError(problem)
    p = sqlite_file(url)
    if p is None:
        return
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the folder for the database {p.parent}: {exc.strerror or exc}; "
                         f"{ELSEWHERE}") from None


def _sqlite_pragmas(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # the driver must not begin on its own: the "begin" event does
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys = ON")
    # deleted rows and freed pages are overwritten with zeros (right to erasure), whatever this SQLite's default
    cur.execute("PRAGMA secure_delete = ON")
    mode = cur.execute("PRAGMA journal_mode = WAL").fetchone()
    if mode and str(mode[0]).lower() not in ("wal", "memory"):
        log.warning("SQLite journal mode is %s, not WAL (a network drive?)", mode[0])
    cur.execute("PRAGMA synchronous = FULL")  # an event that was reported committed survives a power cut
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
    conn.exec_driver_sql(f"BEGIN {mode}")


def reader(engine: Engine) -> Engine:
    """The same engine, but its SQLite transactions begin DEFERRED: for read-only work (reports, start-up)."""
    return engine.execution_options(sqlite_begin="DEFERRED") if _is_sqlite(engine) else engine


POSTGRES_EXTRA = "pip install 'fdface-attendance[postgres]'"  # pyproject.toml: psycopg, this app's driver
SUPPORTED = "a SQLite file (a path, or sqlite:///PATH) or PostgreSQL (postgresql+psycopg://user@host/dbname)"
_NAMES = {"mysql": "MySQL", "mariadb": "MariaDB", "mssql": "Microsoft SQL Server", "oracle": "Oracle"}


def unusable_database(url: str) -> str:
    """Why a URL whose database kind or driver cannot be loaded cannot be used, in a person's words (never the
    driver's "No module named 'psycopg'"): PostgreSQL without its driver names the package to install; other
    kinds are not supported by this app (SQLite and PostgreSQL are)."""
    shown = describe_url(url)
    try:
        parsed = make_url(url)
        backend, driver = parsed.get_backend_name(), parsed.drivername.partition("+")[2] or None
    except Exception:
        backend, driver = url.split(":", 1)[0], None
    if backend == "postgresql":
        if driver in (None, "psycopg"):
            return f"the database URL {shown} names PostgreSQL, whose driver is not installed: {POSTGRES_EXTRA}"
        return (f"the database URL {shown} names PostgreSQL through the {driver} driver, which is not installed; "
                f"this app uses psycopg: write the URL as postgresql+psycopg://... and {POSTGRES_EXTRA}")
    name = _NAMES.get(backend)
    if name:
        return f"the database URL {shown} names {name}, which this app does not support: use {SUPPORTED}"
    return f"the database URL {shown} names a kind of database this app cannot use ({backend}): use {SUPPORTED}"


def create_store_engine(url: str, **kw: Any) -> Engine:
    """An engine for ``url`` with this app's SQLite settings; no migrations (see :func:`open_engine`)."""
    try:
        parsed = make_url(url)
    except sa_exc.ArgumentError:
        raise StoreError(f"the database URL {url!r} is not valid; expected for example sqlite:///C:/data/fdface.db "
                         "or postgresql+psycopg://user:password@host/dbname") from None
    sqlite = parsed.get_backend_name() == "sqlite"
    if sqlite:
        _check_sqlite_path(url)
    try:
        engine = create_engine(parsed, **kw)
    except (sa_exc.NoSuchModuleError, ModuleNotFoundError, ImportError):
        raise StoreError(unusable_database(url)) from None
    except sa_exc.ArgumentError as exc:
        raise StoreError(f"the database URL {describe_url(url)} is not valid: {exc}") from None
    if sqlite:
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def open_engine(url: str, **kw: Any) -> Engine:
    """Open the database at ``url`` and bring its schema up to date (Alembic). Raises :class:`StoreError`."""
    engine = create_store_engine(url, **kw)
    try:
        migrate(engine)
    except StoreError:
        engine.dispose()
        raise
    except (sa_exc.SQLAlchemyError, sqlite3.Error) as exc:
        engine.dispose()
        raise friendly_error(exc, url) from None
    return engine


def _read_only_pragmas(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA query_only = ON")
    cur.close()


def open_reader(url: str) -> Engine:
    """A SQLite database opened for reading only, for the reports and lists of a copy that cannot be written (a
    read-only disk, stick or share): nothing is created beside it, and its schema must be current (upgrading
    needs writing). A database in WAL mode needs its -shm file, which a read-only folder cannot hold: then it is
    opened as immutable, which is what a read-only medium is. Raises :class:`StoreError`."""
    from urllib.parse import quote

    p = sqlite_file(url)
    if p is None:
        raise StoreError(f"{describe_url(url)} cannot be opened read-only here")
    p = p.absolute()
    if not p.is_file():
        raise StoreError(f"there is no database at {p}")
    last: Exception | None = None
    for extra in ("", "&immutable=1"):
        engine = create_engine(f"sqlite:///file:{quote(p.as_posix())}?mode=ro{extra}&uri=true")
        event.listen(engine, "connect", _read_only_pragmas)
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN DEFERRED"))
        try:
            version = schema_version(engine)
        except (sa_exc.SQLAlchemyError, sqlite3.Error) as exc:
            engine.dispose()
            last = exc
            continue
        if version != SCHEMA_HEAD:
            engine.dispose()
            raise StoreError(f"the database {p} is from an older version of the app and needs upgrading, which needs "
                             f"writing; open it once where it can be written")
        return engine
    raise friendly_error(last, url) if last is not None else StoreError(f"cannot open {p}")


def migrate(engine: Engine) -> None:
    """Upgrade the schema to the newest migration, but only when it is behind: checking is a plain read, so
    opening an up-to-date database does not need the write lock (``people list`` and ``export`` work while a
    kiosk is writing)."""
    from alembic import command
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if schema_version(engine) == ScriptDirectory.from_config(cfg).get_current_head():
        return
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        conn.commit()


def schema_version(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with reader(engine).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()



def scrub(engine: Engine) -> bool:
    """After an erasure: make the deleted data unreadable on disk too. On SQLite (secure_delete zeroes the rows and
    pages in the database file) the write-ahead log still holds earlier copies of the changed pages: checkpoint it
    and truncate it to nothing. False when another connection kept the log in use (it is truncated at a later
    checkpoint); other engines: nothing to do here."""
    if not _is_sqlite(engine):
        return True
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        busy, _log, _done = raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    if busy:
        log.warning("after an erasure the SQLite write-ahead log could not be truncated (another connection is "
                    "reading); it still holds earlier page copies until the next checkpoint")
    return not busy

