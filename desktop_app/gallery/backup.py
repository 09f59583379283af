"""Backups of the SQLite store and restoring one: headless, driven by the GUI (Back up now, the daily backup,
Restore from backup) and by ``fdface backup`` / ``fdface restore``.

A backup is taken with SQLite's online backup API in one step: one read transaction, so it is a consistent
snapshot of every committed event while the app keeps recording (WAL mode: the writer is not blocked). It is
written under a hidden temporary name, flushed to disk, verified (integrity check, our schema and its Alembic
version readable) and only then renamed to its final name: a backup killed half-way leaves at most a hidden
``.partial`` file, which the listing never shows and restore refuses.

Restore works on a private copy of the file: the copy is checked (a SQLite file, not truncated, integrity check,
our tables, a schema version this app knows; an older one is migrated forward with the store's own migrations)
before anything is replaced. The current database is then kept beside itself (``attendance.db.before-restore-
20261204-174512Z``; never deleted by the app) and the checked copy takes its place
in one rename; saved FAISS index files of the database are wiped, so the index is rebuilt from the restored store.
A refused file leaves the current database as it was.

Times in file names are UTC, marked with a ``Z`` (they sort in order and mean one moment whatever the zone and
daylight saving time); what is shown to people (``fdface backup --list``) is on the clock of
``attendance.timezone``, with its name. Names of earlier versions, in the computer's local time without the ``Z``,
are still read.

PostgreSQL is backed up with its own tools: :func:`pg_commands` says how (docs in README.md, Backups).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shlex
import shutil
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from glob import escape as glob_escape
from pathlib import Path

from sqlalchemy.engine import make_url

log = logging.getLogger(__name__)

SQLITE_MAGIC = b"SQLite format 3\x00"
OUR_TABLES = ("people", "templates", "events", "alembic_version")
STAMP = "%Y%m%d-%H%M%S"  # followed by "Z": UTC (names of earlier versions: local time, no Z)
# <db stem>-<6 hex of the database's path>-<UTC time>Z.db: two databases with the same file name that back up
# into one folder never prune each other's backups
_NAME = re.compile(r"^(?P<prefix>.+-[0-9a-f]{6})-(?P<stamp>\d{8}-\d{6})(?P<utc>Z?)\.db$")
PARTIAL = ".partial"
STALE_PARTIAL_S = 3600.0  # a hidden .partial older than this is what a killed backup left: removed
BACKUP_EVERY = timedelta(days=1)  # the desktop app's scheduled backup
BUSY_TIMEOUT_MS = 10_000
EXIT_USE_PG_TOOLS = 3  # `fdface backup` / `restore` on PostgreSQL: nothing done here, the command to run is printed


class BackupError(RuntimeError):
    """A backup or restore that cannot be done; the message (one line) says why and what to do."""


@dataclass(frozen=True)
class BackupFile:
    path: Path
    taken: datetime  # aware (UTC), from the name
    size: int


@dataclass(frozen=True)
class BackupCheck:
    """What a verified file holds."""

    path: Path
    schema: str  # its Alembic version
    people: int
    events: int


@dataclass(frozen=True)
class BackupResult:
    path: Path
    check: BackupCheck
    seconds: float
    removed: tuple[Path, ...] = ()  # older backups dropped by the retention


@dataclass(frozen=True)
class RestoreResult:
    database: Path
    restored_from: Path
    kept_aside: Path | None  # the database as it was before the restore (None: there was none)
    schema_before: str  # the backup's schema version
    schema_now: str  # after migrating forward (the same when it was current)
    people: int
    events: int
    index_files_removed: tuple[Path, ...] = field(default=())
    kept_copies: tuple[Path, ...] = field(default=())  # every before-restore copy beside the database, newest first

    @property
    def migrated(self) -> bool:
        return self.schema_before != self.schema_now


# ------------------------------------------------------------------------------------------------ where things are
def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for other databases. :class:`BackupError` for an in-memory one."""
    u = make_url(url)
    if u.get_backend_name() != "sqlite":
        return None
    if not u.database or u.database == ":memory:" or u.database.startswith("file:"):
        raise BackupError(f"the database {url} is not a file: there is nothing to back up or restore")
    return Path(u.database).expanduser().absolute()


def utc_now(now: datetime | None = None) -> datetime:
    """``now`` (or the present) as an aware UTC time; a naive one is read as the computer's local time."""
    now = now or datetime.now(UTC)
    return (now if now.tzinfo else now.astimezone()).astimezone(UTC)


def _parse_stamp(stamp: str, utc: bool) -> datetime:
    t = datetime.strptime(stamp, STAMP)
    return t.replace(tzinfo=UTC) if utc else t.astimezone().astimezone(UTC)


def stamp_of(now: datetime) -> str:
    """The time part of a file name: UTC, marked with Z."""
    return f"{utc_now(now):{STAMP}}Z"


def backup_prefix(db: Path) -> str:
    key = hashlib.sha1(str(Path(db).expanduser().absolute()).encode()).hexdigest()[:6]
    return f"{Path(db).stem}-{key}"


def list_backups(folder: Path, db: Path) -> list[BackupFile]:
    """The finished backups of ``db`` in ``folder``, newest first (hidden partial files are not backups)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    prefix = backup_prefix(db)
    out = []
    for p in folder.iterdir():
        m = _NAME.match(p.name)
        if not m or m["prefix"] != prefix or not p.is_file():
            continue
        try:
            out.append(BackupFile(p, _parse_stamp(m["stamp"], bool(m["utc"])), p.stat().st_size))
        except (ValueError, OSError):
            continue
    return sorted(out, key=lambda b: b.taken, reverse=True)


def backup_due(folder: Path, db: Path, now: datetime | None = None, every: timedelta = BACKUP_EVERY) -> bool:
    """True when the newest backup of ``db`` is older than ``every`` (or there is none) and ``db`` exists."""
    if not Path(db).exists():
        return False
    backups = list_backups(folder, db)
    return not backups or utc_now(now) - backups[0].taken >= every


def retained(backups: Sequence[BackupFile], keep_daily: int, keep_weekly: int, tz: tzinfo | None = None) -> set[Path]:
    """Which backups the retention keeps: the newest of each of the last ``keep_daily`` days that have one, the
    newest of each of the last ``keep_weekly`` ISO weeks that have one, and always the newest of all. Days and
    weeks are those of ``tz`` (``attendance.timezone``; None: the computer's zone)."""
    ordered = sorted(backups, key=lambda b: b.taken, reverse=True)
    keep: set[Path] = {ordered[0].path} if ordered else set()
    days: list[object] = []
    weeks: list[object] = []
    for b in ordered:
        local = b.taken.astimezone(tz)
        day, week = local.date(), local.isocalendar()[:2]
        if day not in days and len(days) < keep_daily:
            days.append(day)
            keep.add(b.path)
        if week not in weeks and len(weeks) < keep_weekly:
            weeks.append(week)
            keep.add(b.path)
    return keep


def prune(folder: Path, db: Path, keep_daily: int, keep_weekly: int, tz: tzinfo | None = None) -> list[Path]:
    """Delete the backups of ``db`` the retention does not keep; returns them."""
    backups = list_backups(folder, db)
    keep = retained(backups, keep_daily, keep_weekly, tz)
    removed = []
    for b in backups:
        if b.path not in keep:
            try:
                b.path.unlink()
                removed.append(b.path)
            except OSError as exc:
                log.warning("could not remove the old backup %s: %s", b.path, exc)
    return removed


# ------------------------------------------------------------------------------------------------ checking a file
def _known_revisions() -> tuple[str, set[str]]:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from desktop_app.storage import MIGRATIONS_DIR

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    script = ScriptDirectory.from_config(cfg)
    return str(script.get_current_head()), {r.revision for r in script.walk_revisions()}


def _check_header(path: Path, shown: Path) -> None:
    """A clear word for a file that is not SQLite at all, or cut short (a copy that did not finish)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(100)
    except OSError as exc:
        raise BackupError(f"{shown} cannot be read: {exc.strerror or exc}") from None
    if size == 0:
        raise BackupError(f"{shown} is empty: it is not a backup (a copy that never started?)")
    if len(head) < 100 or not head.startswith(SQLITE_MAGIC):
        raise BackupError(f"{shown} is not a SQLite database, so not an FDFace Attendance backup")
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(head[28:32], "big")
    counter_ok = head[24:28] == head[92:96]  # the in-header size is valid only then (SQLite file format, 1.3.9)
    if pages and counter_ok and size < pages * page_size:
        raise BackupError(f"{shown} is truncated: {size:,} bytes where its header says {pages * page_size:,}; the "
                          "copy did not finish. Use another backup")


def verify_file(path: Path, shown: Path | None = None) -> BackupCheck:
    """Integrity check and schema of a file this process may open read-write (a private copy or our own unfinished
    backup). Raises :class:`BackupError` with one line naming the file (``shown``: the name the person gave, when
    ``path`` is a private copy of it) and the problem."""
    path = Path(path)
    shown = Path(shown) if shown is not None else path
    _check_header(path, shown)
    con = None
    try:
        con = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000)
        rows = [r[0] for r in con.execute("PRAGMA integrity_check(5)")]
        if rows != ["ok"]:
            first = " ".join(" ".join(map(str, rows)).replace("*** in database main ***", "").split())[:200]
            raise BackupError(f"{shown} is damaged (integrity check: {first}); use another backup")
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        missing = [t for t in OUR_TABLES if t not in tables]
        if missing:
            raise BackupError(f"{shown} is not an FDFace Attendance database (no {', '.join(missing)} table); "
                              "choose a backup made by this app")
        versions = [r[0] for r in con.execute("SELECT version_num FROM alembic_version")]
        people = int(con.execute("SELECT count(*) FROM people").fetchone()[0])
        events = int(con.execute("SELECT count(*) FROM events").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{shown} cannot be read as a database ({' '.join(str(exc).split())}): it is damaged or "
                          "not a backup; use another backup") from None
    finally:
        if con is not None:
            con.close()
    head, known = _known_revisions()
    if len(versions) != 1:
        raise BackupError(f"{shown} has no schema version ({len(versions)} rows in alembic_version): it is not a "
                          "backup made by this app")
    if versions[0] not in known:
        raise BackupError(f"{shown} was made by a newer version of FDFace Attendance (schema {versions[0]}; this one "
                          f"knows up to {head}): update the app, then restore it")
    return BackupCheck(path, str(versions[0]), people, events)


def _fsync(path: Path, flags: int = os.O_RDWR | getattr(os, "O_BINARY", 0)) -> None:
    """Flush a file to disk (opened for writing: Windows flushes only such handles)."""
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX: fsync the folder; NTFS journals the rename itself)."""
    if os.name == "nt":
        return
    try:
        _fsync(folder, os.O_RDONLY)
    except OSError as exc:
        log.debug("could not fsync %s: %s", folder, exc)


def _unlink_quietly(*paths: Path) -> None:
    for p in paths:
        try:
            p.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("could not remove %s: %s", p, exc)


def _with_suffix(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


# ------------------------------------------------------------------------------------------------ backup
def make_backup(db: Path, folder: Path, keep_daily: int = 7, keep_weekly: int = 4,
                now: datetime | None = None, tz: tzinfo | None = None) -> BackupResult:
    """Back ``db`` up into ``folder`` (made when missing), verify it, then apply the retention (days of ``tz``)."""
    db, folder = Path(db), Path(folder).expanduser()
    if not db.is_file():
        raise BackupError(f"there is no database at {db}: nothing to back up (check --db or the settings)")
    if folder.exists() and not folder.is_dir():
        raise BackupError(f"{folder} is a file, not a folder: choose a folder for the backups (--to FOLDER, or "
                          "Settings > Backups)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BackupError(f"cannot create the backup folder {folder}: {exc.strerror or exc}; choose another one "
                          "(--to, or Settings > Backups)") from None
    if not os.access(folder, os.W_OK):
        raise BackupError(f"the backup folder {folder} cannot be written (permission denied); choose another one "
                          "(--to, or Settings > Backups)")
    _remove_stale_partials(folder, db)
    t0 = time.perf_counter()
    stamp = utc_now(now)
    prefix = backup_prefix(db)
    final = folder / f"{prefix}-{stamp_of(stamp)}.db"
    while final.exists():  # two backups within one second: the later one a second on
        stamp += timedelta(seconds=1)
        final = folder / f"{prefix}-{stamp_of(stamp)}.db"
    partial = folder / f".{final.name}.{os.getpid()}{PARTIAL}"
    try:
        _copy_online(db, partial)
        _fsync(partial)
        check = verify_file(partial)
        os.replace(partial, final)  # only a verified file ever has a backup's name
        _fsync_dir(folder)
    except BackupError as exc:
        _unlink_quietly(partial, _with_suffix(partial, "-journal"))
        raise BackupError(f"the backup of {db} failed: {exc}") from None
    except (OSError, sqlite3.Error) as exc:
        _unlink_quietly(partial, _with_suffix(partial, "-journal"))
        text = " ".join(str(getattr(exc, "strerror", None) or exc).split())
        hint = "; free some space" if "full" in text.lower() or "space" in text.lower() else ""
        raise BackupError(f"the backup of {db} into {folder} failed: {text}{hint}") from None
    removed = prune(folder, db, keep_daily, keep_weekly, tz)
    return BackupResult(final, BackupCheck(final, check.schema, check.people, check.events),
                        time.perf_counter() - t0, tuple(removed))


def _copy_online(db: Path, target: Path) -> None:
    """SQLite's backup API in one step: a single read transaction, hence a consistent snapshot of what was
    committed when it began, while the app keeps writing (stepwise copies restart whenever another connection
    writes, and could never finish under load). The copy is left in rollback-journal mode: one self-contained
    file."""
    src = sqlite3.connect(str(db), timeout=BUSY_TIMEOUT_MS / 1000)  # only read (read-only WAL needs its -shm)
    try:
        dst = sqlite3.connect(str(target))
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode = DELETE")
        finally:
            dst.close()
    finally:
        src.close()


def _remove_stale_partials(folder: Path, db: Path) -> None:
    prefix = "." + backup_prefix(db) + "-"
    now = time.time()
    for p in folder.glob(f".*{PARTIAL}*"):
        if p.name.startswith(prefix):
            try:
                if now - p.stat().st_mtime > STALE_PARTIAL_S:
                    p.unlink()
            except OSError:
                pass


# ------------------------------------------------------------------------------------------------ restore
def restore_database(backup: Path, db: Path, *, now: datetime | None = None,
                     confirm: Callable[[BackupCheck], bool] | None = None) -> RestoreResult:
    """Check ``backup`` on a private copy, migrate it forward when its schema is older, then put it in place of
    ``db`` (kept aside first). ``confirm`` is asked with what the backup holds after it was checked and before
    anything is replaced; False stops with nothing changed. :class:`BackupError` leaves ``db`` untouched.

    Nothing else may have ``db`` open (the GUI closes its own connections first): in WAL mode (the store's) another
    program that has it open is detected and the restore refused."""
    backup, db = Path(backup).expanduser().absolute(), Path(db).expanduser().absolute()
    if not backup.is_file():
        raise BackupError(f"{backup}: no such file" if not backup.exists() else f"{backup} is not a file")
    if backup.name.endswith((PARTIAL, PARTIAL + "-journal")):
        raise BackupError(f"{backup} is an unfinished backup (the backup was interrupted): use a finished one")
    if db.exists() and backup.samefile(db):
        raise BackupError(f"{backup} is the database itself: choose a backup file")
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BackupError(f"cannot create the folder {db.parent}: {exc.strerror or exc}") from None
    copy = db.parent / f".{db.name}.restore-{os.getpid()}.tmp"
    try:
        try:
            shutil.copyfile(backup, copy)  # the main file only: a stray journal beside the backup is not ours
        except OSError as exc:
            raise BackupError(f"cannot copy {backup} next to the database ({db.parent}): "
                              f"{exc.strerror or exc}") from None
        check = verify_file(copy, backup)
        check = BackupCheck(backup, check.schema, check.people, check.events)
        schema_now = _migrate_copy(copy, backup, check.schema)
        if confirm is not None and not confirm(check):
            raise BackupError("not restored: the current database was left as it was")
        _fsync(copy)
        kept = _set_aside(db, utc_now(now))
        os.replace(copy, db)  # in one step: the path always holds a whole database, the old or the restored one
        for suffix in ("-wal", "-shm", "-journal"):  # the old database's (emptied) log must not meet the new file
            _unlink_quietly(_with_suffix(db, suffix))
        _fsync_dir(db.parent)
    finally:
        _unlink_quietly(copy, _with_suffix(copy, "-journal"), _with_suffix(copy, "-wal"), _with_suffix(copy, "-shm"))
    removed = _remove_index_files(db)
    # never deleted by the app: a kept copy may hold the only record of attendance taken after the backup
    copies = tuple(kept_aside_copies(db))
    return RestoreResult(db, backup, kept, check.schema, schema_now, check.people, check.events, removed, copies)


def kept_aside_copies(db: Path) -> list[Path]:
    """The copies of ``db`` kept before restores (``NAME.before-restore-STAMP[Z][-n]``), newest first."""
    pattern = re.compile(rf"^{re.escape(db.name)}\.before-restore-(\d{{8}}-\d{{6}})(Z?)(?:-(\d+))?$")
    found = []
    for p in db.parent.glob(f"{glob_escape(db.name)}.before-restore-*"):
        m = pattern.match(p.name)
        if m and p.is_file():
            try:
                found.append((_parse_stamp(m[1], bool(m[2])), int(m[3] or 1), p))
            except ValueError:
                continue
    return [p for *_, p in sorted(found, reverse=True)]


def copies_note(copies: tuple[Path, ...]) -> str:
    """What a person is told about the copies kept before restores (they pile up; only a person may delete them)."""
    if len(copies) < 2:
        return ""
    size = sum(p.stat().st_size for p in copies if p.exists()) / 1e6
    return (f"{len(copies)} copies kept before restores lie beside the database ({size:.1f} MB in all, oldest "
            f"{copies[-1].name}); each holds what was recorded before its restore, so the app never deletes them: "
            "delete the ones you no longer need")


def _migrate_copy(copy: Path, shown: Path, schema: str) -> str:
    """Bring the copy's schema up to this app's (the store's Alembic migrations); its version afterwards."""
    from desktop_app import storage as st

    head, _ = _known_revisions()
    if schema != head:
        try:
            engine = st.open_engine(f"sqlite:///{copy.as_posix()}")
            try:
                schema = str(st.schema_version(engine))
            finally:
                engine.dispose()
        except Exception as exc:  # the migration's own message, whatever it is: the database stays as it was
            raise BackupError(f"{shown} has the older schema {schema} and could not be brought up to date "
                              f"({' '.join(str(exc).split())[:300]}); nothing was restored") from None
        verify_file(copy, shown)
    con = sqlite3.connect(str(copy))
    try:
        con.execute("PRAGMA journal_mode = DELETE")  # one self-contained file, no log beside it
    finally:
        con.close()
    return schema


def _set_aside(db: Path, now: datetime) -> Path | None:
    """Keep the current database next to itself before it is replaced (a hard link where the file system allows:
    instant, and the path never lacks a database). Refused while another program uses it."""
    if not db.exists():
        return None
    kept = db.with_name(f"{db.name}.before-restore-{stamp_of(now)}")
    n = 1
    while kept.exists():
        n += 1
        kept = db.with_name(f"{db.name}.before-restore-{stamp_of(now)}-{n}")
    con = None
    wal = _with_suffix(db, "-wal")
    try:
        con = sqlite3.connect(str(db), timeout=BUSY_TIMEOUT_MS / 1000)
        busy = con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        con.close()
        con = None
        # the last connection to close deletes the write-ahead log: one still there means another program has
        # the database open, even idle (it would go on writing into the file kept aside)
        busy = busy or wal.exists()
    except sqlite3.DatabaseError as exc:  # a damaged current database (the reason to restore): kept as it is
        log.warning("the current database %s could not be checkpointed before the restore: %s", db, exc)
        busy = 0
    finally:
        if con is not None:
            con.close()
    if busy:
        raise BackupError(f"the database {db} is in use by another program (the app or fdface run on another "
                          "window?): close it and restore again; nothing was changed")
    try:
        try:
            os.link(db, kept)
        except OSError:
            shutil.copy2(db, kept)
            _fsync(kept)
        if wal.exists() and wal.stat().st_size > 0:  # a damaged database's log: kept with it
            shutil.copy2(wal, _with_suffix(kept, "-wal"))
    except OSError as exc:
        _unlink_quietly(kept)
        raise BackupError(f"cannot keep the current database aside as {kept}: {exc.strerror or exc}; nothing was "
                          "changed") from None
    return kept


def _remove_index_files(db: Path) -> tuple[Path, ...]:
    """Saved FAISS index files were built from the database that was replaced: wiped (they hold its embeddings),
    so the next start rebuilds the index from the restored store."""
    from desktop_app.gallery.service import index_files, wipe_file

    files = index_files(f"sqlite:///{db.as_posix()}")
    for f in files:
        wipe_file(f)
    return tuple(files)


# ------------------------------------------------------------------------------------------------ PostgreSQL
def pg_commands(url: str, now: datetime | None = None, file: str | Path | None = None) -> tuple[str, str]:
    """The pg_dump and pg_restore command lines for a PostgreSQL URL, without its password (pg_dump asks for it,
    or reads PGPASSWORD / ~/.pgpass). ``file``: the dump to restore (and the one pg_dump writes); without it a
    name with the UTC time."""
    u = make_url(url)
    name = u.database or "postgres"
    file = str(file) if file is not None else f"{name}-{stamp_of(utc_now(now))}.dump"
    conn = []
    if u.host:
        conn.append(f"--host={u.host}")
    if u.port:
        conn.append(f"--port={u.port}")
    if u.username:
        conn.append(f"--username={u.username}")
    conn.append(f"--dbname={name}")
    q = " ".join(shlex.quote(a) for a in conn)
    return (f"pg_dump --format=custom --file={shlex.quote(file)} {q}",
            f"pg_restore --clean --if-exists --no-owner {q} {shlex.quote(file)}")
