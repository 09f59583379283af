"""The store, the single source of truth: people, face templates, attendance events (SQLAlchemy 2.x).

SQLite by default (``Settings.storage.resolved_url()``) with WAL, foreign keys, a busy timeout and full fsync on
commit; any SQLAlchemy URL works (PostgreSQL for several kiosks sharing one gallery). The schema is created and
upgraded by Alembic migrations (``desktop_app/gallery/migrations``) when :func:`open_engine` finds it behind.

Functions take a :class:`~sqlalchemy.orm.Session`; the caller opens one per user action or worker task::

    with Session(engine) as s, s.begin():
        person = add_person(s, "Ada Lovelace", external_id="E-17")

On SQLite a transaction begins ``IMMEDIATE`` (takes the write lock up front, so a read-then-write transaction
never fails half-way on a lock upgrade); read-only work can use :func:`reader` to begin ``DEFERRED`` instead and
not wait for writers.
"""

from __future__ import annotations

import enum
import logging
import os
import secrets
import sqlite3
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import (
    Boolean,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    func,
    select,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 10_000  # how long a writer waits for another writer before "database is locked"
NAME_MAX = 200
TEXT_MAX = 100  # external id, group, station: the columns' length (PostgreSQL enforces it, SQLite does not)
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SCHEMA_HEAD = "0002"  # the newest migration; bump with every new revision file


class StoreError(RuntimeError):
    """A database problem a person can act on; the message says what happened and what to do.

    ``transient`` names a condition that passes without anyone changing the data ("database busy", "database
    unreachable", "disk full"): the attendance writer keeps the sighting and tries again instead of dropping it.
    Empty for everything else."""

    def __init__(self, message: str, transient: str = "") -> None:
        super().__init__(message)
        self.transient = transient


# --------------------------------------------------------------------------------------------- types and models
class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, stored as naive UTC (portable across SQLite/PostgreSQL)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware (UTC)")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class EventKind(enum.StrEnum):
    CHECK_IN = "check-in"
    CHECK_OUT = "check-out"
    SEEN = "seen"  # written by earlier versions only (a check-out rewritten later); events are now final


class Base(DeclarativeBase):
    pass


class Person(Base):
    __tablename__ = "people"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX))  # names may repeat
    external_id: Mapped[str | None] = mapped_column(String(100))  # employee / student number, unique when given
    group: Mapped[str | None] = mapped_column("group_name", String(100))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # random, unrelated to the person: what their past events keep after they are deleted
    pseudonym: Mapped[str] = mapped_column(String(32), default=lambda: "anon-" + secrets.token_hex(6))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    templates: Mapped[list[Template]] = relationship(back_populates="person", cascade="all, delete-orphan",
                                                     passive_deletes=True)

    __table_args__ = (
        UniqueConstraint("external_id", name="uq_people_external_id"),
        UniqueConstraint("pseudonym", name="uq_people_pseudonym"),
        Index("ix_people_group", "group_name"),  # reports filtered by group; the absent-people query
    )

    def __repr__(self) -> str:
        return f"Person(id={self.id}, name={self.name!r}, external_id={self.external_id!r})"


class Template(Base):
    """One face embedding of a person; ``crop`` (aligned 112x112 JPEG) lives in its own table so that the
    start-up scan over embeddings does not read image bytes."""

    __tablename__ = "templates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"))
    embedding: Mapped[bytes] = mapped_column(LargeBinary)  # float32 little-endian, ``dim`` values
    dim: Mapped[int] = mapped_column(Integer)
    model_id: Mapped[str] = mapped_column(String(100))
    quality: Mapped[float] = mapped_column(Float, default=0.0)
    source: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    person: Mapped[Person] = relationship(back_populates="templates")
    crop: Mapped[TemplateCrop | None] = relationship(cascade="all, delete-orphan", passive_deletes=True,
                                                     uselist=False)

    __table_args__ = (
        Index("ix_templates_model", "model_id"),  # start-up: all templates of the active model
        Index("ix_templates_person", "person_id"),  # delete / list a person's templates
    )

    def vector(self) -> np.ndarray:
        return np.frombuffer(self.embedding, dtype="<f4").copy()


class TemplateCrop(Base):
    __tablename__ = "template_crops"

    template_id: Mapped[int] = mapped_column(ForeignKey("templates.id", ondelete="CASCADE"), primary_key=True)
    jpeg: Mapped[bytes] = mapped_column(LargeBinary)


class AttendanceEvent(Base):
    """One attendance record. ``person_id`` is NULL once the person is deleted; ``person_ref`` (their pseudonym)
    then still groups their past events without saying who they were."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    person_ref: Mapped[str] = mapped_column(String(32))
    ts: Mapped[datetime] = mapped_column(UTCDateTime)  # UTC
    tz: Mapped[str] = mapped_column(String(64))  # the local time zone the rules used for this event
    station: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))  # EventKind value
    similarity: Mapped[float] = mapped_column(Float, default=0.0)

    snapshot: Mapped[EventSnapshot | None] = relationship(cascade="all, delete-orphan", passive_deletes=True,
                                                          uselist=False)

    __table_args__ = (
        Index("ix_events_ts", "ts"),  # reports over a date range
        Index("ix_events_person_ts", "person_id", "ts"),  # the rules: a person's last events of the day
    )


class EventSnapshot(Base):
    __tablename__ = "event_snapshots"

    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), primary_key=True)
    jpeg: Mapped[bytes] = mapped_column(LargeBinary)


class UnknownVisitor(Base):
    """A face that stayed unknown over a whole track (the unknown-visitor log, README "Unknown visitors"): when and
    where it was first seen, for how long, and whom it resembled most. ``candidate_id`` is cleared when that person
    is erased (and by the foreign key); no name is kept here, it is read from the person while they exist."""

    __tablename__ = "unknown_visitors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime)  # UTC, the track's first frame
    station: Mapped[str] = mapped_column(String(100))
    similarity: Mapped[float | None] = mapped_column(Float)  # best over the track; None: nobody to compare with
    candidate_id: Mapped[int | None] = mapped_column(ForeignKey("people.id", ondelete="SET NULL"))
    frames: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)

    snapshot: Mapped[UnknownSnapshot | None] = relationship(cascade="all, delete-orphan", passive_deletes=True,
                                                            uselist=False)

    __table_args__ = (
        Index("ix_unknown_visitors_ts", "ts"),  # the list by day, the retention purge
        Index("ix_unknown_visitors_candidate", "candidate_id"),  # erasure clears the link
    )


class UnknownSnapshot(Base):
    __tablename__ = "unknown_snapshots"

    visitor_id: Mapped[int] = mapped_column(ForeignKey("unknown_visitors.id", ondelete="CASCADE"), primary_key=True)
    jpeg: Mapped[bytes] = mapped_column(LargeBinary)


# --------------------------------------------------------------------------------------------- engine
def _is_sqlite(engine_or_url: Engine | str) -> bool:
    url = engine_or_url.url if isinstance(engine_or_url, Engine) else make_url(engine_or_url)
    return url.get_backend_name() == "sqlite"


def describe_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return repr(url)


def _check_sqlite_path(url: str) -> None:
    db = make_url(url).database
    if not db or db == ":memory:" or db.startswith("file:"):
        return
    p = Path(db).expanduser()
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the folder for the database {p.parent}: {exc.strerror or exc}; choose "
                         "another location (--db / storage.database_url)") from None
    if p.is_dir():
        raise StoreError(f"the database path {p} is a folder, not a file; give a file name such as {p / 'fdface.db'}")
    if p.exists() and not os.access(p, os.R_OK | os.W_OK):
        raise StoreError(f"the database {p} cannot be written (permission denied); fix its permissions or choose "
                         "another location (--db / storage.database_url)")
    if not os.access(p.parent, os.W_OK):
        raise StoreError(f"the folder {p.parent} cannot be written (permission denied); the database needs it for "
                         "its journal files: choose another location (--db / storage.database_url)")


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
    except (sa_exc.NoSuchModuleError, ModuleNotFoundError, ImportError) as exc:
        raise StoreError(f"the database URL {describe_url(url)} names a database this installation cannot use "
                         f"({exc}); use sqlite:///PATH, or install the driver for it") from None
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
        return StoreError(f"the database cannot be written{where}: {text}; fix its permissions or choose another "
                          "location (--db / storage.database_url)")
    if "unable to open" in low:
        return StoreError(f"the database cannot be opened{where}: {text}; check that the folder exists and can "
                          "be written, or choose another location (--db / storage.database_url)")
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


# --------------------------------------------------------------------------------------------- text fields
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


# --------------------------------------------------------------------------------------------- ids
def as_id(value: Any) -> int:
    """A row id as a Python int. Ids often come from the index's numpy arrays, and SQLite binds a numpy int64 as an
    8-byte blob that equals no row: a delete would quietly remove nothing while the index dropped the rows."""
    return int(value)


def as_ids(values: Iterable[Any]) -> list[int]:
    return [int(v) for v in values]


# --------------------------------------------------------------------------------------------- people
def add_person(s: Session, name: str, external_id: str | None = None, group: str | None = None,
               active: bool = True) -> Person:
    name, external_id, group = check_person_fields(name, external_id, group)
    if not name:
        raise StoreError("a person needs a name")
    if external_id is not None:
        other = s.scalar(select(Person).where(Person.external_id == external_id))
        if other is not None:
            raise StoreError(f"id {external_id!r} already belongs to {other.name} (person #{other.id})")
    p = Person(name=name, external_id=external_id, group=group, active=active)
    s.add(p)
    s.flush()
    return p


def get_person(s: Session, person_id: int) -> Person | None:
    return s.get(Person, as_id(person_id))


def require_person(s: Session, person_id: int) -> Person:
    """The person, or a :class:`StoreError` saying there is none (deleted meanwhile, perhaps at another kiosk)."""
    person = get_person(s, person_id)
    if person is None:
        raise StoreError(f"no person #{person_id}")
    return person


def find_people(s: Session, query: str | None = None, group: str | None = None,
                active: bool | None = None) -> list[Person]:
    """People ordered by name; ``query`` matches a name part or an exact external id or ``#id``."""
    stmt = select(Person).order_by(Person.name, Person.id)
    if group is not None:
        stmt = stmt.where(Person.group == group)
    if active is not None:
        stmt = stmt.where(Person.active == active)
    if query:
        q = query.strip()
        cond = Person.name.ilike(f"%{q}%") | (Person.external_id == q)
        if q.startswith("#") and q[1:].isdigit():
            cond = cond | (Person.id == int(q[1:]))
        stmt = stmt.where(cond)
    return list(s.scalars(stmt))


def resolve_person(s: Session, ref: str) -> Person:
    """One person from ``#12``, an external id or an exact name; :class:`StoreError` when none or several."""
    ref = ref.strip()
    if ref.startswith("#") and ref[1:].isdigit():
        p = s.get(Person, int(ref[1:]))
        if p is None:
            raise StoreError(f"no person #{ref[1:]}")
        return p
    p = s.scalar(select(Person).where(Person.external_id == ref))
    if p is not None:
        return p
    same = list(s.scalars(select(Person).where(Person.name == ref)))
    if len(same) == 1:
        return same[0]
    if not same:
        raise StoreError(f"no person named or with id {ref!r}")
    ids = ", ".join(f"#{x.id}" + (f" ({x.external_id})" if x.external_id else "") for x in same)
    raise StoreError(f"{len(same)} people are named {ref!r} ({ids}); say which with #number or the id")


def update_person(s: Session, person: Person, *, name: str | None = None, external_id: str | None = None,
                  group: str | None = None, active: bool | None = None) -> Person:
    if name is not None:
        new_name = check_text("name", name, NAME_MAX)
        if not new_name:
            raise StoreError("a person needs a name")
        person.name = new_name
    if external_id is not None:
        ext = check_text("external id", external_id)
        if ext is not None:
            other = s.scalar(select(Person).where(Person.external_id == ext, Person.id != person.id))
            if other is not None:
                raise StoreError(f"id {ext!r} already belongs to {other.name} (person #{other.id})")
        person.external_id = ext
    if group is not None:
        person.group = check_text("group", group)
    if active is not None:
        person.active = active
    s.flush()
    return person


@dataclass(frozen=True)
class Erasure:
    """What deleting a person removed."""

    person_id: int
    templates: int
    snapshots: int
    events_deleted: int
    events_pseudonymised: int
    unknowns_unlinked: int = 0  # unknown visitors who resembled the person most: they no longer say whom


def delete_person(s: Session, person_id: int, erase_events: bool = False) -> Erasure:
    """Right to erasure: the person, their templates, crops and event snapshots go; their past events are deleted
    (``erase_events``) or keep only the person's pseudonym."""
    person_id = as_id(person_id)
    person = require_person(s, person_id)
    tids = select(Template.id).where(Template.person_id == person_id)
    eids = select(AttendanceEvent.id).where(AttendanceEvent.person_id == person_id)
    s.execute(delete(TemplateCrop).where(TemplateCrop.template_id.in_(tids)))
    n_t = s.execute(delete(Template).where(Template.person_id == person_id)).rowcount
    n_s = s.execute(delete(EventSnapshot).where(EventSnapshot.event_id.in_(eids))).rowcount
    if erase_events:
        n_del = s.execute(delete(AttendanceEvent).where(AttendanceEvent.person_id == person_id)).rowcount
        n_ps = 0
    else:
        n_del = 0
        n_ps = s.execute(update(AttendanceEvent).where(AttendanceEvent.person_id == person_id)
                         .values(person_id=None, person_ref=person.pseudonym)).rowcount
    n_u = s.execute(update(UnknownVisitor).where(UnknownVisitor.candidate_id == person_id)
                    .values(candidate_id=None)).rowcount  # the foreign key would too; said here for every engine
    s.execute(delete(Person).where(Person.id == person_id))
    s.expunge(person)
    return Erasure(person_id, n_t, n_s, n_del, n_ps, n_u)


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


def count_people(s: Session) -> int:
    return int(s.scalar(select(func.count(Person.id))) or 0)


def names_by_id(s: Session) -> dict[int, str]:
    return {int(i): n for i, n in s.execute(select(Person.id, Person.name))}


# --------------------------------------------------------------------------------------------- templates
@dataclass(frozen=True)
class NewTemplate:
    """A template to store: ``embedding`` float32 [D] (normalised); ``crop_jpeg`` kept only if the setting says."""

    embedding: np.ndarray
    model_id: str
    quality: float = 0.0
    source: str = ""
    crop_jpeg: bytes | None = None


def embedding_bytes(v: np.ndarray) -> bytes:
    return np.ascontiguousarray(np.asarray(v, dtype="<f4").reshape(-1)).tobytes()


def add_templates(s: Session, person_id: int, templates: Sequence[NewTemplate]) -> list[Template]:
    """Add templates (all in the caller's transaction: all or none)."""
    person_id = as_id(person_id)
    require_person(s, person_id)
    out = []
    for t in templates:
        v = np.asarray(t.embedding, np.float32).reshape(-1)
        if not np.isfinite(v).all() or v.size == 0:
            raise StoreError("refusing to store an empty or non-finite embedding")
        row = Template(person_id=person_id, embedding=embedding_bytes(v), dim=int(v.size), model_id=t.model_id,
                       quality=float(t.quality), source=t.source[:500])
        if t.crop_jpeg is not None:
            row.crop = TemplateCrop(jpeg=t.crop_jpeg)
        s.add(row)
        out.append(row)
    s.flush()
    return out


def delete_templates(s: Session, template_ids: Iterable[int]) -> int:
    """How many templates (and their crops) were deleted."""
    ids = as_ids(template_ids)
    if not ids:
        return 0
    s.execute(delete(TemplateCrop).where(TemplateCrop.template_id.in_(ids)))
    return int(s.execute(delete(Template).where(Template.id.in_(ids))).rowcount)


@dataclass(frozen=True)
class TemplateArrays:
    """Templates of one model, ready for the index: ids int64 [N], person ids int64 [N], embeddings float32 [N, D]."""

    template_ids: np.ndarray
    person_ids: np.ndarray
    embeddings: np.ndarray


def load_templates(s: Session, model_id: str, dim: int, active_only: bool = True) -> TemplateArrays:
    """Every template computed with ``model_id`` (of active people unless told otherwise), in id order."""
    stmt = (select(Template.id, Template.person_id, Template.embedding)
            .where(Template.model_id == model_id, Template.dim == dim).order_by(Template.id))
    if active_only:
        stmt = stmt.join(Person, Person.id == Template.person_id).where(Person.active.is_(True))
    rows = s.connection().execute(stmt).all()  # Core rows: no ORM bookkeeping for 100k+ templates
    n = len(rows)
    tids = np.fromiter((r[0] for r in rows), np.int64, n)
    pids = np.fromiter((r[1] for r in rows), np.int64, n)
    if n:
        emb = np.frombuffer(b"".join(r[2] for r in rows), dtype="<f4").reshape(n, dim).astype(np.float32)
    else:
        emb = np.zeros((0, dim), np.float32)
    return TemplateArrays(tids, pids, emb)


def templates_fingerprint(s: Session, model_id: str) -> str:
    """Changes whenever a template of ``model_id`` is added or removed, or a person is (de)activated: the key
    under which a saved index file is valid."""
    n, mx, sm = s.execute(select(func.count(Template.id), func.max(Template.id), func.sum(Template.id))
                          .join(Person, Person.id == Template.person_id)
                          .where(Template.model_id == model_id, Person.active.is_(True))).one()
    return f"{model_id}|{n}|{mx or 0}|{sm or 0}"


def model_counts(s: Session) -> dict[str, int]:
    """How many templates each model id has."""
    rows = s.execute(select(Template.model_id, func.count(Template.id)).group_by(Template.model_id))
    return {m: int(n) for m, n in rows}


def templates_needing_model(s: Session, model_id: str) -> tuple[list[int], list[int]]:
    """Templates computed with another model: (ids that can be recomputed from a kept crop, ids that cannot)."""
    rows = s.execute(select(Template.id, TemplateCrop.template_id)
                     .outerjoin(TemplateCrop, TemplateCrop.template_id == Template.id)
                     .where(Template.model_id != model_id)).all()
    return [r[0] for r in rows if r[1] is not None], [r[0] for r in rows if r[1] is None]


# --------------------------------------------------------------------------------------------- events
def add_event(s: Session, person: Person, ts: datetime, tz: str, station: str, kind: EventKind | str,
              similarity: float, snapshot_jpeg: bytes | None = None) -> AttendanceEvent:
    ev = AttendanceEvent(person_id=person.id, person_ref=person.pseudonym, ts=ts, tz=tz, station=station,
                         kind=str(EventKind(kind)), similarity=float(similarity))
    if snapshot_jpeg is not None:
        ev.snapshot = EventSnapshot(jpeg=snapshot_jpeg)
    s.add(ev)
    s.flush()
    return ev


def events_of_person_since(s: Session, person_id: int, since: datetime) -> list[AttendanceEvent]:
    """A person's events at or after ``since`` (UTC), oldest first (the rules use the day's events)."""
    return list(s.scalars(select(AttendanceEvent)
                          .where(AttendanceEvent.person_id == as_id(person_id), AttendanceEvent.ts >= since)
                          .order_by(AttendanceEvent.ts, AttendanceEvent.id)))


def count_events(s: Session) -> int:
    return int(s.scalar(select(func.count(AttendanceEvent.id))) or 0)


# --------------------------------------------------------------------------------------------- unknown visitors
def add_unknown(s: Session, ts: datetime, station: str, similarity: float | None, candidate_id: int | None,
                frames: int, seconds: float, snapshot_jpeg: bytes | None = None) -> UnknownVisitor | None:
    """Log one unknown visitor; None when this very one is logged already (a spooled sighting whose first try
    committed). A ``candidate_id`` whose person is gone (erased meanwhile) is stored as None."""
    if s.scalar(select(UnknownVisitor.id).where(UnknownVisitor.ts == ts, UnknownVisitor.station == station,
                                                UnknownVisitor.frames == int(frames))) is not None:
        return None
    if candidate_id is not None and s.get(Person, as_id(candidate_id)) is None:
        candidate_id = None
    row = UnknownVisitor(ts=ts, station=station, similarity=None if similarity is None else float(similarity),
                         candidate_id=None if candidate_id is None else as_id(candidate_id), frames=int(frames),
                         seconds=float(seconds))
    if snapshot_jpeg is not None:
        row.snapshot = UnknownSnapshot(jpeg=snapshot_jpeg)
    s.add(row)
    s.flush()
    return row


def has_unknowns_before(s: Session, cutoff: datetime) -> bool:
    """Whether any unknown visitor is older than ``cutoff`` (a read: the purge asks before it takes the write
    lock)."""
    return s.scalar(select(UnknownVisitor.id).where(UnknownVisitor.ts < cutoff).limit(1)) is not None


def delete_unknowns(s: Session, before: datetime | None = None, ids: Iterable[int] | None = None) -> int:
    """Delete unknown visitors (and their snapshots): all of them, those older than ``before``, or ``ids``.
    Returns how many. Follow with :func:`scrub` so that the deleted snapshots leave the SQLite log too."""
    cond = []
    if before is not None:
        cond.append(UnknownVisitor.ts < before)
    if ids is not None:
        cond.append(UnknownVisitor.id.in_(as_ids(ids)))
    vids = select(UnknownVisitor.id).where(*cond)
    s.execute(delete(UnknownSnapshot).where(UnknownSnapshot.visitor_id.in_(vids)))
    return int(s.execute(delete(UnknownVisitor).where(*cond)).rowcount)
